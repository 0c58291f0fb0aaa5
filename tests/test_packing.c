/* SPDX-License-Identifier: MIT */
/*
 * Small receives pack densely on every receive path: an arena filled with
 * 100-byte messages, each received as a record of its own, holds a record
 * for every 200 bytes of its data region or less. On uring-fixed each
 * receive takes a 16 KiB buffer, and it is the rest of that buffer, lent
 * again, that keeps the slack small.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

#define MSG 100

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(packing, .fini = cleanup);

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Fill a 4 MiB arena with 100-byte messages, each received as a record of
 * its own, until it is full: its data bytes per record held. */
static void pack(enum pktstore_recv_path rp, const char *name)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 4 << 20,
				   .segment_size = 64 << 10, .bytes_per_record = 96,
				   .recv_path = rp };
	struct pktstore_rec recs[16];
	struct pktstore_stats st;
	struct pktstore *ps;
	uint64_t flow, sent = 0, got = 0, records = 0, deadline = now_ms() + 60000;
	int c, s, k = 0;

	arena_path(MEDIUM_TMPFS, name, path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	if (ret && rp != PKTSTORE_PATH_RECV)
		cr_skip_test("%s: the kernel lacks this receive path: %s", name,
			     pktstore_strerror(ret));
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	/* One message at a time, each received before the next is sent. */
	while (k >= 0 && records < 200000) {
		cr_assert_lt(now_ms(), deadline, "%s: still not full after %lu records", name,
			     (unsigned long)records);
		send_stream(c, 1, sent, MSG);
		sent += MSG;
		while (got < sent) {
			k = pktstore_recv_persist(ps, flow, recs, 16, 0);
			if (k == -ENOSPC)
				break;
			cr_assert_gt(k, 0, "%s: %s", name, pktstore_strerror(k));
			for (int i = 0; i < k; i++)
				got += recs[i].len;
			records += (uint64_t)k;
		}
	}
	cr_assert_eq(k, -ENOSPC);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	double per = (double)st.data_bytes / (double)st.records;

	cr_log_info("%s: full after %lu records of about %u bytes: %.0f bytes of arena each",
		    name, (unsigned long)st.records, MSG, per);
	cr_assert_leq(per, 200.0, "%s: full after %lu records of %u bytes: %.0f bytes each",
		      name, (unsigned long)st.records, MSG, per);
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(packing, uring_inc) { pack(PKTSTORE_PATH_URING_INC, "pack-inc"); }
Test(packing, uring_fixed) { pack(PKTSTORE_PATH_URING_FIXED, "pack-fixed"); }
Test(packing, recv) { pack(PKTSTORE_PATH_RECV, "pack-recv"); }

/*
 * Space the application gives back comes back: with every record released
 * as soon as it is received, at most four segments stay out of the free
 * list (lent to the kernel, or receiving), however long the traffic runs
 * and whatever sizes it comes in. On uring-fixed the rests of buffers are
 * lent again at the back of the ring; if new segments were chopped while
 * older ones still had rests out, the lent buffers would spread over ever
 * more segments until none was free, and a store holding almost no live
 * bytes would stop receiving.
 */
#define FLOWS 4

static void spread(enum pktstore_recv_path rp, const char *name)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 4 << 20,
				   .segment_size = 64 << 10, .recv_path = rp };
	struct pktstore_rec recs[16];
	struct pktstore_stats st;
	struct pktstore *ps;
	uint64_t flow[FLOWS], sent[FLOWS] = { 0 }, got[FLOWS] = { 0 }, total = 0;
	uint64_t rnd = 0x243F6A8885A308D3ull, deadline = now_ms() + 60000;
	int c[FLOWS], s[FLOWS];
	unsigned worst = 0;

	arena_path(MEDIUM_TMPFS, name, path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	if (ret && rp != PKTSTORE_PATH_RECV)
		cr_skip_test("%s: the kernel lacks this receive path: %s", name,
			     pktstore_strerror(ret));
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	for (int i = 0; i < FLOWS; i++) {
		tcp_pair(&c[i], &s[i]);
		cr_assert_eq(pktstore_attach(ps, s[i], 0, &flow[i]), 0);
	}
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	/* Eight times the data region, in messages of 1..3000 bytes taking
	 * turns over the flows, each received and released before the next. */
	for (unsigned m = 0; total < 8 * st.data_bytes; m++) {
		int i = (int)(m % FLOWS);

		rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
		size_t len = 1 + (size_t)((rnd >> 33) % 3000);

		cr_assert_lt(now_ms(), deadline, "%s: %lu of %lu bytes after 60 s", name,
			     (unsigned long)total, (unsigned long)(8 * st.data_bytes));
		send_stream(c[i], (uint64_t)i, sent[i], len);
		sent[i] += len;
		total += len;
		while (got[i] < sent[i]) {
			int k = pktstore_recv_persist(ps, flow[i], recs, 16, 0);

			cr_assert_gt(k, 0, "%s: after %lu bytes with nothing live: %s", name,
				     (unsigned long)total, pktstore_strerror(k));
			for (int j = 0; j < k; j++) {
				got[i] += recs[j].len;
				cr_assert_eq(pktstore_release(ps, recs[j].id), 0);
			}
		}
		/* A release frees its bytes once it is durable. */
		cr_assert_eq(pktstore_sync(ps), 0);
		cr_assert_eq(pktstore_stats(ps, &st), 0);
		unsigned out = (unsigned)(st.segments - st.segments_free);

		worst = out > worst ? out : worst;
		cr_assert_leq(out, 4, "%s: %u of %lu segments out with nothing live, after %lu bytes",
			      name, out, (unsigned long)st.segments, (unsigned long)total);
	}
	cr_log_info("%s: at most %u of %lu segments out", name, worst,
		    (unsigned long)st.segments);
	for (int i = 0; i < FLOWS; i++) {
		close(c[i]);
		close(s[i]);
	}
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(packing, released_space_returns_uring_inc) { spread(PKTSTORE_PATH_URING_INC, "spread-inc"); }
Test(packing, released_space_returns_uring_fixed)
{
	spread(PKTSTORE_PATH_URING_FIXED, "spread-fixed");
}
Test(packing, released_space_returns_recv) { spread(PKTSTORE_PATH_RECV, "spread-recv"); }
