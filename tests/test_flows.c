/* SPDX-License-Identifier: MIT */
/* Many flows at once through the event-driven call and the pollable fd:
 * every flow's stream arrives whole, in seq order, with its end reported. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

#define NFLOWS 16
#define PER_FLOW (256 * 1024 + 77)
#define WRITES 64

struct flow_state {
	int c, s;
	uint64_t id, seq;
	int ended;
};

static void many_flows(enum pktstore_recv_path rp)
{
	char path[256];
	struct flow_state fl[NFLOWS];
	struct sender *snd[NFLOWS];

	arena_path(MEDIUM_TMPFS, "flows", path, sizeof(path));
	struct pktstore *ps = store_open(path, 64 << 20, rp);
	int fd = pktstore_fd(ps);

	cr_assert(fd >= 0);
	for (int i = 0; i < NFLOWS; i++) {
		memset(&fl[i], 0, sizeof(fl[i]));
		tcp_pair(&fl[i].c, &fl[i].s);
		cr_assert_eq(pktstore_attach(ps, fl[i].s, (uint64_t)i, &fl[i].id), 0);
		snd[i] = sender_start(fl[i].c, fl[i].id, 0, PER_FLOW, 1);
	}

	struct pktstore_rec r[128];
	int ended = 0;
	unsigned records = 0, packed = 0;
	const void *prev_end = NULL;

	while (ended < NFLOWS) {
		int n = pktstore_recv_persist_any(ps, r, 128, PKTSTORE_NONBLOCK);

		if (n == -EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			cr_assert(poll(&p, 1, 10000) > 0, "no progress within 10 s");
			continue;
		}
		cr_assert(n > 0, "recv_persist_any: %s", pktstore_strerror(n));
		for (int i = 0; i < n; i++) {
			struct flow_state *f = NULL;

			for (int k = 0; k < NFLOWS; k++)
				if (fl[k].id == r[i].flow)
					f = &fl[k];
			cr_assert(f, "record of an unknown flow %lu", (unsigned long)r[i].flow);
			cr_assert(!f->ended, "record after end of stream");
			if (r[i].id == 0) {
				cr_assert_eq(r[i].len, 0);
				cr_assert_eq(r[i].status, 0, "end status %d", r[i].status);
				cr_assert_eq(f->seq, PER_FLOW);
				f->ended = 1;
				ended++;
				continue;
			}
			cr_assert_eq(r[i].seq, f->seq);
			/* A fixed buffer bounds a receive. */
			if (rp == PKTSTORE_PATH_URING_FIXED)
				cr_assert_leq(r[i].len, 16384);
			cr_assert(check_stream(f->id, r[i].seq, r[i].data, r[i].len));
			f->seq += r[i].len;
			if (r[i].data == prev_end)
				packed++;
			prev_end = (const char *)r[i].data + r[i].len;
			records++;
		}
	}
	/* With incremental buffers the records of all flows are packed back to
	 * back in the segment. */
	if (rp == PKTSTORE_PATH_URING_INC)
		cr_assert(packed * 2 > records, "%u of %u records packed", packed, records);

	/* Every stream ended and was reported: nothing more can come, and the
	 * fd says so (an event loop waiting on it must not spin). */
	cr_assert_eq(pktstore_recv_persist_any(ps, r, 128, 0), 0);
	struct pollfd idle = { .fd = fd, .events = POLLIN };

	cr_assert_eq(poll(&idle, 1, 0), 0, "pktstore_fd readable with nothing to do");
	for (int i = 0; i < NFLOWS; i++) {
		sender_join(snd[i]);
		cr_assert_eq(pktstore_detach(ps, fl[i].id), 0);
		close(fl[i].c);
		close(fl[i].s);
	}
	cr_assert_eq(pktstore_recv_persist_any(ps, r, 128, 0), 0, "nothing attached: 0");
	struct pktstore_flow_info info[NFLOWS + 1];

	cr_assert_eq(pktstore_flows(ps, 0, info, NFLOWS + 1), NFLOWS);
	for (int i = 1; i < NFLOWS; i++)
		cr_assert(info[i].id > info[i - 1].id);
	cr_assert_eq(pktstore_flows(ps, info[NFLOWS / 2 - 1].id, info, NFLOWS), NFLOWS / 2);
	cr_assert_eq(pktstore_close(ps), 0);
	unlink(path);
}

Test(flows, any_uring_inc) { many_flows(PKTSTORE_PATH_URING_INC); }
Test(flows, any_uring_fixed) { many_flows(PKTSTORE_PATH_URING_FIXED); }
Test(flows, any_recv) { many_flows(PKTSTORE_PATH_RECV); }

#define SMALL_ROUNDS 3000
static char small_path[256];

static void small_cleanup(void)
{
	if (small_path[0])
		unlink(small_path);
}

/* Thousands of small records on one flow keep seq continuous. On uring-fixed
 * (the automatic choice before Linux 6.12) every receive takes a whole 16 KiB
 * buffer however few bytes came, and none is released here: the arena has
 * room for two such receives a round. */
Test(flows, thousands_of_small_records, .fini = small_cleanup)
{
	char *path = small_path;
	int c, s;
	uint64_t flow;

	arena_path(MEDIUM_TMPFS, "small", path, sizeof(small_path));
	struct pktstore *ps =
		store_open(path, (32 << 20) + SMALL_ROUNDS * 2 * (16 << 10), PKTSTORE_PATH_AUTO);

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	uint64_t off = 0;
	unsigned records = 0;

	for (int round = 0; round < SMALL_ROUNDS; round++) {
		size_t n = 1 + (size_t)(round * 7919) % 300;

		send_stream(c, 5, off, n);
		records += recv_expect(ps, flow, 5, off, n);
		off += n;
	}
	cr_assert_geq(records, SMALL_ROUNDS);
	struct pktstore_flow_info fi;

	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), 0);
	cr_assert_eq(fi.next_seq, off);
	cr_assert_eq(fi.records, records);
	cr_assert_eq(fi.state, PKTSTORE_FLOW_ATTACHED);
	cr_assert_eq(pktstore_close(ps), 0);
	close(c);
	close(s);
	unlink(path);
}
