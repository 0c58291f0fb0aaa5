/* SPDX-License-Identifier: MIT */
/* A full arena drops and overwrites nothing: receiving stops, TCP flow
 * control holds the sender back, -ENOSPC says why, and receiving resumes
 * after release with the stream intact. */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

#define MAXREC 8192

static void full_arena(enum pktstore_recv_path rp)
{
	char path[256];
	int c, s;
	uint64_t flow;
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 2 << 20,
				   .segment_size = 64 << 10, .recv_path = rp };
	struct pktstore *ps;
	struct pktstore_stats st;

	arena_path(MEDIUM_TMPFS, "full", path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	skip_if_path_missing(rp, ret, path);
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	/* Six times what the data region holds. */
	const uint64_t total = 6 * st.data_bytes;

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	struct sender *snd = sender_start(c, 21, 0, total, 1);

	static uint64_t held[MAXREC];
	unsigned nheld = 0, first = 0, fulls = 0;
	uint64_t seq = 0;
	struct pktstore_rec r[64];
	time_t deadline = time(NULL) + 60;

	for (;;) {
		cr_assert(time(NULL) < deadline, "no progress: seq %lu of %lu",
			  (unsigned long)seq, (unsigned long)total);
		int n = pktstore_recv_persist(ps, flow, r, 64, 0);

		if (n == 0)
			break;
		if (n == -ENOSPC) {
			/* Full: hold on a moment to prove the bytes wait in
			 * TCP, then free the oldest half of what we hold. */
			fulls++;
			cr_assert_eq(pktstore_recv_persist(ps, flow, r, 64, PKTSTORE_NONBLOCK),
				     -ENOSPC);
			cr_assert(nheld > first, "full with nothing held");
			usleep(2000);
			unsigned half = first + (nheld - first + 1) / 2;

			for (; first < half; first++)
				cr_assert_eq(pktstore_release(ps, held[first]), 0);
			continue;
		}
		cr_assert(n > 0, "recv_persist: %s", pktstore_strerror(n));
		for (int i = 0; i < n; i++) {
			cr_assert_eq(r[i].seq, seq);
			cr_assert(check_stream(21, seq, r[i].data, r[i].len));
			seq += r[i].len;
			cr_assert_lt(nheld, MAXREC);
			held[nheld++] = r[i].id;
		}
		/* Records before `first` are gone; compact the list now and then. */
		if (nheld > MAXREC - 128) {
			memmove(held, held + first, (nheld - first) * sizeof(held[0]));
			nheld -= first;
			first = 0;
		}
	}
	sender_join(snd);
	cr_assert_eq(seq, total, "every byte arrived once, in order");
	cr_assert_geq(fulls, 3, "the arena filled up (%u times)", fulls);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_geq(st.enospc_events, 1);
	cr_assert_eq(pktstore_close(ps), 0);
	close(c);
	close(s);
	unlink(path);
}

Test(full, uring_inc) { full_arena(PKTSTORE_PATH_URING_INC); }
Test(full, uring_fixed) { full_arena(PKTSTORE_PATH_URING_FIXED); }
Test(full, recv) { full_arena(PKTSTORE_PATH_RECV); }

/* Out of descriptors (tiny records, big segments) is back-pressure too. */
static void out_of_descriptors(enum pktstore_recv_path rp)
{
	char path[256];
	int c, s;
	uint64_t flow, seq = 0;
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 1 << 20,
				   .segment_size = 256 << 10, .bytes_per_record = 64 << 10,
				   .recv_path = rp };
	struct pktstore *ps;
	struct pktstore_stats st;
	struct pktstore_rec r[64];

	arena_path(MEDIUM_TMPFS, "desc", path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	skip_if_path_missing(rp, ret, path);
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_lt(st.descriptors, 64);
	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	static uint64_t ids[4096];
	unsigned n_ids = 0, freed = 0;

	for (int i = 0; i < 300; i++) {
		send_stream(c, 4, seq, 10);
		for (;;) {
			int n = pktstore_recv_persist(ps, flow, r, 64, 0);

			if (n == -ENOSPC) {
				cr_assert_lt(freed, n_ids);
				cr_assert_eq(pktstore_release(ps, ids[freed++]), 0);
				continue;
			}
			cr_assert(n > 0, "%s", pktstore_strerror(n));
			for (int k = 0; k < n; k++) {
				cr_assert_eq(r[k].seq, seq);
				cr_assert(check_stream(4, seq, r[k].data, r[k].len));
				seq += r[k].len;
				ids[n_ids++] = r[k].id;
			}
			break;
		}
		while (seq < (uint64_t)(i + 1) * 10) {
			int n = pktstore_recv_persist(ps, flow, r, 64, 0);

			if (n == -ENOSPC) {
				cr_assert_eq(pktstore_release(ps, ids[freed++]), 0);
				continue;
			}
			cr_assert(n > 0);
			for (int k = 0; k < n; k++) {
				cr_assert_eq(r[k].seq, seq);
				seq += r[k].len;
				ids[n_ids++] = r[k].id;
			}
		}
	}
	cr_assert_eq(seq, 3000);
	cr_assert_gt(freed, 0);
	cr_assert_eq(pktstore_close(ps), 0);
	close(c);
	close(s);
	unlink(path);
}

Test(full, out_of_descriptors_uring_inc) { out_of_descriptors(PKTSTORE_PATH_URING_INC); }
Test(full, out_of_descriptors_uring_fixed) { out_of_descriptors(PKTSTORE_PATH_URING_FIXED); }
Test(full, out_of_descriptors_recv) { out_of_descriptors(PKTSTORE_PATH_RECV); }

/* After a restart every segment may hold a live record. Appends must still
 * find room (the free tails of those segments), or nothing could ever be
 * moved to free a segment. */
Test(full, appends_after_reopen_use_segment_tails)
{
	char path[256];
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 1 << 20,
				   .segment_size = 64 << 10, .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore *ps;
	struct pktstore_stats st;
	static char big[40 << 10], small[20 << 10];
	uint64_t flow;
	int held = 0;

	arena_path(MEDIUM_TMPFS, "tails", path, sizeof(path));
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_flow_create(ps, 0, &flow), 0);
	/* 40 KiB records: one per 64 KiB segment, each leaving a 24 KiB tail. */
	while (pktstore_append(ps, flow, big, sizeof(big), NULL) == 0)
		held++;
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(held, (int)st.segments);
	cr_assert_eq(pktstore_append(ps, flow, small, sizeof(small), NULL), -ENOSPC);
	cr_assert_eq(pktstore_close(ps), 0);

	o.flags = 0;
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.segments_free, 0);
	for (int i = 0; i < held; i++)
		cr_assert_eq(pktstore_append(ps, flow, small, sizeof(small), NULL), 0, "tail %d", i);
	cr_assert_eq(pktstore_append(ps, flow, small, sizeof(small), NULL), -ENOSPC);
	/* And the old records are intact. */
	struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = flow, .hi = UINT64_MAX };
	struct pktstore_rec r[64];
	int n = pktstore_range(ps, &q, r, 64);

	cr_assert_eq(n, 2 * held);
	for (int i = 0; i < n; i++) {
		struct pktstore_rec g;

		cr_assert_eq(pktstore_get(ps, r[i].id, &g, 0), 0);
	}
	cr_assert_eq(pktstore_close(ps), 0);
	unlink(path);
}

/* Recovery scans only the descriptor slots ids have reached until the log
 * wraps (the superblock's id limit), then all of them: records are found
 * before, across and after the wrap. */
Test(full, recovery_before_and_after_the_log_wraps)
{
	char path[256];
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 1 << 20,
				   .segment_size = 64 << 10, .bytes_per_record = 4096,
				   .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore *ps;
	struct pktstore_stats st;
	static uint64_t ids[4096];
	uint64_t flow;
	uint8_t buf[300];
	int made = 0, first = 0;

	arena_path(MEDIUM_TMPFS, "wrap", path, sizeof(path));
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	const int ndesc = (int)st.descriptors;

	cr_assert_lt(ndesc, 1000);
	cr_assert_eq(pktstore_flow_create(ps, 0, &flow), 0);
	for (int phase = 0; phase < 3; phase++) {
		/* Phase 0 stays below one log's worth of ids; 1 and 2 wrap it. */
		int target = phase == 0 ? ndesc / 3 : made + 2 * ndesc;

		while (made < target) {
			struct pktstore_rec r;

			fill_stream(flow, (uint64_t)made * sizeof(buf), buf, sizeof(buf));
			cr_assert_eq(pktstore_append(ps, flow, buf, sizeof(buf), &r), 0);
			ids[made++ % 4096] = r.id;
			if (made - first > 40) /* keep the newest 40 */
				cr_assert_eq(pktstore_release(ps, ids[first++ % 4096]), 0);
		}
		cr_assert_eq(pktstore_close(ps), 0);
		o.flags = 0;
		cr_assert_eq(pktstore_open(path, &o, &ps), 0);
		cr_assert_eq(pktstore_stats(ps, &st), 0);
		cr_assert_eq(st.recovered_records, (uint64_t)(made - first), "phase %d", phase);
		for (int i = first; i < made; i++) {
			struct pktstore_rec g;

			cr_assert_eq(pktstore_get(ps, ids[i % 4096], &g, 0), 0, "phase %d", phase);
			cr_assert(check_stream(flow, g.seq, g.data, g.len));
		}
	}
	cr_assert_eq(pktstore_close(ps), 0);
	unlink(path);
}
