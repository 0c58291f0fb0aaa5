/* SPDX-License-Identifier: MIT */
/* An event loop around a full arena: pktstore_fd() stays quiet while no
 * call can make progress (it used to stay readable, a busy loop), and a
 * client that hangs up while the arena is full still gets its end of
 * stream, so the application can close the socket (no CLOSE_WAIT) and
 * release that client's records. On every receive path. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

#define CLIENTS 6

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(backpressure, .fini = cleanup);

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* What an event loop does: wait for the fd, then call in. */
static int wait_and_receive(struct pktstore *ps, int timeout_ms, struct pktstore_rec *r,
			    unsigned max, bool *woke)
{
	struct pollfd p = { .fd = pktstore_fd(ps), .events = POLLIN };
	int n = poll(&p, 1, timeout_ms);

	cr_assert_geq(n, 0);
	*woke = n > 0;
	return pktstore_recv_persist_any(ps, r, max, PKTSTORE_NONBLOCK);
}

static void full_then_hangup(enum pktstore_recv_path rp, uint32_t bytes_per_record)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 2 << 20,
				   .segment_size = 64 << 10, .bytes_per_record = bytes_per_record,
				   .recv_path = rp };
	struct pktstore *ps;
	int ret;

	arena_path(MEDIUM_TMPFS, "bp", path, sizeof(path));
	ret = pktstore_open(path, &o, &ps);
	skip_if_path_missing(rp, ret, path);
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));

	int c[CLIENTS], s[CLIENTS];
	uint64_t flow[CLIENTS];

	for (int i = 0; i < CLIENTS; i++) {
		tcp_pair(&c[i], &s[i]);
		cr_assert_eq(pktstore_attach(ps, s[i], (uint64_t)i, &flow[i]), 0);
	}
	/* Each client writes more than the arena holds, without blocking. */
	static uint8_t chunk[16 << 10];
	uint64_t sent[CLIENTS] = { 0 };
	struct pktstore_rec r[64];
	uint64_t deadline = now_ms() + 20000;
	bool full = false, woke;

	while (!full) {
		cr_assert_lt(now_ms(), deadline, "the arena never filled");
		for (int i = 0; i < CLIENTS; i++) {
			fill_stream((uint64_t)i, sent[i], chunk, sizeof(chunk));
			ssize_t n = send(c[i], chunk, rp == PKTSTORE_PATH_RECV ? sizeof(chunk) : 700,
					 MSG_DONTWAIT);

			if (n > 0)
				sent[i] += (uint64_t)n;
		}
		ret = wait_and_receive(ps, 10, r, 64, &woke);
		cr_assert(ret >= 0 || ret == -EAGAIN || ret == -ENOSPC, "%s", pktstore_strerror(ret));
		full = ret == -ENOSPC;
	}

	/* Full, nothing released: the fd must not keep waking the loop. */
	unsigned wakeups = 0;
	uint64_t until = now_ms() + 400;

	while (now_ms() < until) {
		ret = wait_and_receive(ps, 50, r, 64, &woke);
		cr_assert(ret == -ENOSPC || ret == -EAGAIN, "%s", pktstore_strerror(ret));
		wakeups += woke;
	}
	cr_assert_leq(wakeups, 3, "pktstore_fd() woke the loop %u times in 400 ms while full",
		      wakeups);

	/* Client 0 hangs up while the arena is still full. */
	close(c[0]);
	bool ended = false;

	deadline = now_ms() + 5000;
	while (!ended) {
		cr_assert_lt(now_ms(), deadline, "no end of stream for a client that hung up");
		ret = wait_and_receive(ps, 100, r, 64, &woke);
		for (int k = 0; k < ret; k++) {
			if (r[k].flow == flow[0] && !r[k].id && !r[k].len) {
				/* Its last bytes wait unread: a hang-up notice;
				 * or, with nothing unread, the end itself. */
				cr_assert(r[k].flags & (PKTSTORE_REC_END | PKTSTORE_REC_HANGUP));
				cr_assert(r[k].status == 0 || r[k].status == -ENOBUFS,
					  "end status %s", pktstore_strerror(r[k].status));
				ended = true;
			}
		}
	}
	/* The application can now let the socket go. */
	cr_assert_eq(pktstore_detach(ps, flow[0]), 0);
	cr_assert_eq(close(s[0]), 0);

	for (int i = 1; i < CLIENTS; i++) {
		close(c[i]);
		close(s[i]);
	}
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(backpressure, recv) { full_then_hangup(PKTSTORE_PATH_RECV, 512); }
Test(backpressure, uring_inc) { full_then_hangup(PKTSTORE_PATH_URING_INC, 512); }
Test(backpressure, uring_fixed) { full_then_hangup(PKTSTORE_PATH_URING_FIXED, 512); }
/* Out of descriptors rather than bytes. */
Test(backpressure, descriptors_recv) { full_then_hangup(PKTSTORE_PATH_RECV, 32 << 10); }
Test(backpressure, descriptors_uring_inc) { full_then_hangup(PKTSTORE_PATH_URING_INC, 32 << 10); }
Test(backpressure, descriptors_uring_fixed)
{
	full_then_hangup(PKTSTORE_PATH_URING_FIXED, 32 << 10);
}

/* After a restart every segment may hold a live record. The io_uring paths
 * used to lend only whole free segments, so such an arena took no byte
 * more, for good, while the free tails of those segments sat unused. */
static void tails_after_restart(enum pktstore_recv_path rp)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 1 << 20,
				   .segment_size = 64 << 10, .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore *ps;
	struct pktstore_stats st;
	static char big[40 << 10];
	uint64_t local, flow;
	int c, s, ret;

	arena_path(MEDIUM_TMPFS, "tails", path, sizeof(path));
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_flow_create(ps, 0, &local), 0);
	while (pktstore_append(ps, local, big, sizeof(big), NULL) == 0)
		;
	cr_assert_eq(pktstore_close(ps), 0);

	o = (struct pktstore_opts){ .recv_path = rp };
	ret = pktstore_open(path, &o, &ps);
	skip_if_path_missing(rp, ret, path);
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.segments_free, 0);
	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 1, &flow), 0);
	send_stream(c, 5, 0, 3000);
	uint64_t got = 0, deadline = now_ms() + 5000;
	struct pktstore_rec r[16];

	while (got < 3000) {
		cr_assert_lt(now_ms(), deadline, "jammed: %lu of 3000 bytes", (unsigned long)got);
		int n = pktstore_recv_persist(ps, flow, r, 16, PKTSTORE_NONBLOCK);

		if (n == -EAGAIN) {
			usleep(1000);
			continue;
		}
		cr_assert_gt(n, 0, "%s", pktstore_strerror(n));
		for (int i = 0; i < n; i++) {
			cr_assert_eq(r[i].seq, got);
			cr_assert(check_stream(5, got, r[i].data, r[i].len));
			got += r[i].len;
		}
	}
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(backpressure, tails_after_restart_recv) { tails_after_restart(PKTSTORE_PATH_RECV); }
Test(backpressure, tails_after_restart_uring_inc) { tails_after_restart(PKTSTORE_PATH_URING_INC); }
Test(backpressure, tails_after_restart_uring_fixed)
{
	tails_after_restart(PKTSTORE_PATH_URING_FIXED);
}
