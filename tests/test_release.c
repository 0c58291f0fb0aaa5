/* SPDX-License-Identifier: MIT */
/* The durability point of a release (pktstore_release(3)): a release is
 * durable once a receive call that commits returns, whichever way it
 * returns: with records, with -EAGAIN, or with -EINTR from a signal that
 * ended its wait. A receive call with nothing to hand out leaves the
 * releases to the commit after its wait (one drain per request); these
 * tests hold every way out of that wait to the contract, on every receive
 * path. A release is durable exactly when its descriptor is free again
 * (descriptors free at the commit that makes the release durable, not
 * before), which pktstore_stats() shows. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static char path[256];

static void cleanup(void)
{
	if (path[0])
		unlink(path);
}

TestSuite(release, .fini = cleanup);

enum way_out { WITH_RECORDS, WITH_EAGAIN, WITH_EINTR };

static uint64_t desc_free(struct pktstore *ps)
{
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	return st.descriptors_free;
}

/* One record of the flow, received with a blocking call. */
static struct pktstore_rec one_record(struct pktstore *ps)
{
	struct pktstore_rec r[4];

	for (int tries = 0; tries < 100; tries++) {
		int n = pktstore_recv_persist_any(ps, r, 4, 0);

		cr_assert_gt(n, 0, "%d", n);
		for (int i = 0; i < n; i++)
			if (r[i].len)
				return r[i];
	}
	cr_assert_fail("no record came");
	return r[0];
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void released_then(enum pktstore_recv_path rp, enum way_out how)
{
	int c, s;
	uint64_t flow;
	struct pktstore_rec r[4];

	arena_path(MEDIUM_TMPFS, "release", path, sizeof(path));
	struct pktstore *ps = store_open(path, 16 << 20, rp);

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	cr_assert_eq(send(c, "first", 5, 0), 5);
	struct pktstore_rec first = one_record(ps);
	uint64_t free0 = desc_free(ps);

	cr_assert_eq(pktstore_release(ps, first.id), 0);
	cr_assert_eq(desc_free(ps), free0, "a release is not durable before a commit");

	int n;

	switch (how) {
	case WITH_RECORDS:
		/* The bytes wait in the socket, not yet landed: the call has
		 * nothing to hand out before its wait. */
		cr_assert_eq(send(c, "second", 6, 0), 6);
		n = pktstore_recv_persist_any(ps, r, 4, 0);
		cr_assert_gt(n, 0, "%d", n);
		cr_assert_eq(r[0].len, 6);
		/* The released descriptor is free, the new record took one. */
		cr_assert_eq(desc_free(ps), free0, "the release was not committed with the record");
		break;
	case WITH_EAGAIN:
		n = pktstore_recv_persist_any(ps, r, 4, PKTSTORE_NONBLOCK);
		cr_assert_eq(n, -EAGAIN, "%d", n);
		cr_assert_eq(desc_free(ps), free0 + 1, "-EAGAIN returned before the release was durable");
		break;
	case WITH_EINTR: {
		struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
		struct itimerval it = { .it_value = { 0, 100 * 1000 } };

		cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
		cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
		n = pktstore_recv_persist_any(ps, r, 4, 0);
		cr_assert_eq(n, -EINTR, "%d", n);
		cr_assert_eq(desc_free(ps), free0 + 1, "-EINTR returned before the release was durable");
		break;
	}
	}
	cr_assert_eq(pktstore_close(ps), 0);
	close(c);
	close(s);
}

#define WAYS(name, rp)                                       \
	Test(release, name##_with_records)                   \
	{                                                    \
		released_then(rp, WITH_RECORDS);             \
	}                                                    \
	Test(release, name##_with_eagain)                    \
	{                                                    \
		released_then(rp, WITH_EAGAIN);              \
	}                                                    \
	Test(release, name##_with_eintr)                     \
	{                                                    \
		released_then(rp, WITH_EINTR);               \
	}

WAYS(recv, PKTSTORE_PATH_RECV)
WAYS(uring_fixed, PKTSTORE_PATH_URING_FIXED)
WAYS(uring_inc, PKTSTORE_PATH_URING_INC)
