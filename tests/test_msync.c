/* SPDX-License-Identifier: MIT */
/* A failing msync(2): on a page-granularity medium (a regular file) every
 * flush is an msync, and pktstore_append(3), pktstore_close(3) and
 * pktstore_recv_persist(3) document what its failure does: the call that
 * met it returns its errno (-EIO), every later call PKTSTORE_EBROKEN, the
 * stats keep the errno, and the next open reports a dirty shutdown with
 * every acknowledged record whole. msync is wrapped at link time
 * (-Wl,--wrap=msync against the static library) and fails on demand. */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

int __real_msync(void *addr, size_t len, int flags);
int __wrap_msync(void *addr, size_t len, int flags);

/* msync calls to let through before failing (-1: never fail), and the
 * errno of the failure. */
static atomic_int pass_before_failing = -1;
static int fail_errno = EIO;
static atomic_int calls;

int __wrap_msync(void *addr, size_t len, int flags)
{
	atomic_fetch_add(&calls, 1);
	if (atomic_load(&pass_before_failing) == 0) {
		errno = fail_errno;
		return -1;
	}
	if (atomic_load(&pass_before_failing) > 0)
		atomic_fetch_sub(&pass_before_failing, 1);
	return __real_msync(addr, len, flags);
}

static void fail_from_now(int err)
{
	fail_errno = err;
	atomic_store(&pass_before_failing, 0);
}

static void heal(void)
{
	atomic_store(&pass_before_failing, -1);
}

static struct pktstore *create(const char *name, char *path, size_t n, uint64_t *flow)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | PKTSTORE_EXCL, .size = 16 << 20 };
	struct pktstore *ps;
	struct pktstore_stats st;

	heal();
	arena_path(MEDIUM_FILE, name, path, n);
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	if (st.granularity != PKTSTORE_GRAN_PAGE) {
		pktstore_close(ps);
		unlink(path);
		cr_skip_test("%s maps at a finer granularity than a page: no msync to fail", path);
	}
	cr_assert_eq(pktstore_flow_create(ps, 1, flow), 0);
	return ps;
}

/* Record i's bytes: its length and contents follow from i. */
static uint32_t rec_len(unsigned i)
{
	return 1 + (i * 37) % 300;
}

static void append_ok(struct pktstore *ps, uint64_t flow, unsigned i, uint64_t *id)
{
	uint8_t buf[512];
	struct pktstore_rec r;

	fill_stream(7, i * 1000u, buf, rec_len(i));
	cr_assert_eq(pktstore_append(ps, flow, buf, rec_len(i), &r), 0, "append %u", i);
	id[i] = r.id;
}

/* After a reopen with msync working again: records from..to-1
 * (acknowledged) whole, and a dirty shutdown if the session broke (a close
 * that failed part way may have made its clean mark durable already). */
static void reopen_check(const char *path, const uint64_t *id, unsigned from, unsigned to,
			 bool broke)
{
	struct pktstore *ps;
	struct pktstore_stats st;

	heal();
	cr_assert_eq(pktstore_open(path, NULL, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	if (broke)
		cr_assert_eq(st.dirty_shutdown, 1, "the broken session is taken for a clean one");
	cr_assert_eq(st.broken, 0);
	for (unsigned i = from; i < to; i++) {
		struct pktstore_rec r;

		cr_assert_eq(pktstore_get(ps, id[i], &r, 0), 0, "acknowledged record %u lost", i);
		cr_assert_eq(r.len, rec_len(i));
		cr_assert(check_stream(7, i * 1000u, r.data, r.len), "record %u's bytes", i);
	}
	cr_assert_eq(pktstore_close(ps), 0);
	unlink(path);
}

static void assert_broken(struct pktstore *ps, uint64_t flow, int err)
{
	struct pktstore_stats st;
	uint8_t b = 0;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.broken, -err, "stats.broken %d", st.broken);
	cr_assert_eq(pktstore_append(ps, flow, &b, 1, NULL), PKTSTORE_EBROKEN);
	cr_assert_eq(pktstore_sync(ps), PKTSTORE_EBROKEN);
}

/* A session before its failure: an arena on a regular file, n records
 * appended (acknowledged), those from `released` on released but not yet
 * committed. */
struct session {
	char path[256];
	uint64_t flow, id[64];
	struct pktstore *ps;
};

static void start(struct session *s, const char *name, unsigned n, unsigned released)
{
	s->ps = create(name, s->path, sizeof(s->path), &s->flow);
	for (unsigned i = 0; i < n; i++)
		append_ok(s->ps, s->flow, i, s->id);
	for (unsigned i = released; i < n; i++)
		cr_assert_eq(pktstore_release(s->ps, s->id[i]), 0);
}

Test(msync, append_meets_it)
{
	struct session s;
	uint8_t buf[64] = { 1 };

	start(&s, "msync-append", 40, 40);
	fail_from_now(EIO);
	cr_assert_eq(pktstore_append(s.ps, s.flow, buf, sizeof(buf), NULL), -EIO);
	assert_broken(s.ps, s.flow, EIO);
	cr_assert_eq(pktstore_close(s.ps), PKTSTORE_EBROKEN);
	reopen_check(s.path, s.id, 0, 40, true);
}

/* Its errno is kept as it is, not folded into -EIO. */
Test(msync, other_errno_passed_on)
{
	struct session s;
	uint8_t b = 2;

	start(&s, "msync-enomem", 5, 5);
	fail_from_now(ENOMEM);
	cr_assert_eq(pktstore_append(s.ps, s.flow, &b, 1, NULL), -ENOMEM);
	assert_broken(s.ps, s.flow, ENOMEM);
	cr_assert_eq(pktstore_close(s.ps), PKTSTORE_EBROKEN);
	reopen_check(s.path, s.id, 0, 5, true);
}

/* The commit of releases fails: the released records may come back (their
 * release was never durable), the others are all there. */
Test(msync, release_commit_meets_it)
{
	struct session s;

	start(&s, "msync-release", 30, 20);
	fail_from_now(EIO);
	cr_assert_eq(pktstore_sync(s.ps), -EIO);
	assert_broken(s.ps, s.flow, EIO);
	cr_assert_eq(pktstore_close(s.ps), PKTSTORE_EBROKEN);
	reopen_check(s.path, s.id, 0, 20, true);
}

/* Close commits what is pending, then marks the shutdown clean. If the
 * commit fails, the mark is not made: the next open checks as after a
 * crash. */
Test(msync, close_commit_meets_it)
{
	struct session s;

	start(&s, "msync-close-commit", 25, 20);
	fail_from_now(EIO);
	cr_assert_eq(pktstore_close(s.ps), -EIO);
	reopen_check(s.path, s.id, 0, 20, true);
}

/* Nothing pending: only the mark fails. Every record was durable before
 * it, so whether the next open finds the mark (the page cache may still
 * hold it) or not, everything is there. */
Test(msync, close_mark_meets_it)
{
	struct session s;

	start(&s, "msync-close-mark", 25, 25);
	fail_from_now(EIO);
	cr_assert_eq(pktstore_close(s.ps), -EIO);
	reopen_check(s.path, s.id, 0, 25, false);
}

/* A failure at each msync of a session in turn: whichever call meets it
 * returns its errno, and what was acknowledged before is whole after. */
Test(msync, every_point)
{
	char path[256];
	int total;

	{
		/* Count the msync calls of the session once, unfailed. */
		uint64_t flow, id[64];
		struct pktstore *ps = create("msync-count", path, sizeof(path), &flow);

		atomic_store(&calls, 0);
		for (unsigned i = 0; i < 12; i++)
			append_ok(ps, flow, i, id);
		for (unsigned i = 0; i < 4; i++)
			cr_assert_eq(pktstore_release(ps, id[i]), 0);
		cr_assert_eq(pktstore_sync(ps), 0);
		cr_assert_eq(pktstore_close(ps), 0);
		total = atomic_load(&calls);
		unlink(path);
	}
	cr_assert_gt(total, 12, "%d msync calls for 12 appends", total);
	for (int k = 0; k < total; k++) {
		uint64_t flow, id[64];
		unsigned acked = 0;
		struct pktstore *ps = create("msync-point", path, sizeof(path), &flow);
		uint8_t buf[512];
		int ret = 0;

		atomic_store(&pass_before_failing, k);
		for (unsigned i = 0; i < 12 && !ret; i++) {
			struct pktstore_rec r;

			fill_stream(7, i * 1000u, buf, rec_len(i));
			ret = pktstore_append(ps, flow, buf, rec_len(i), &r);
			if (!ret)
				id[acked++] = r.id;
		}
		for (unsigned i = 0; i < 4 && i < acked && !ret; i++)
			ret = pktstore_release(ps, id[i]);
		if (!ret)
			ret = pktstore_sync(ps);

		struct pktstore_stats st;

		cr_assert_eq(pktstore_stats(ps, &st), 0);
		int closed = pktstore_close(ps);

		/* Every msync from k on fails: some call met it, with its errno
		 * (a failed id limit or flow entry fails only that call; a
		 * failed commit breaks the store), or else close did. */
		cr_assert(ret == -EIO || (ret == 0 && closed == -EIO),
			  "msync %d: calls %d, close %d", k, ret, closed);
		if (st.broken) {
			cr_assert_eq(st.broken, -EIO);
			cr_assert_eq(closed, PKTSTORE_EBROKEN, "msync %d: close %d", k, closed);
		} else {
			cr_assert_eq(closed, -EIO, "msync %d: close of a store that met failing "
				     "msyncs returned %d", k, closed);
		}
		/* Released records may come back; from 4 on, all must be there. */
		reopen_check(path, id, 4, acked > 4 ? acked : 4, st.broken != 0);
	}
}

/* The receive path's commit meets it: recv_persist returns -EIO, then
 * PKTSTORE_EBROKEN; after a reopen every byte it handed out is there, in
 * order. */
static void receive_meets_it(enum pktstore_recv_path rp, const char *name)
{
	char path[256];
	int client, server;
	uint64_t flow, got = 0;
	struct pktstore_rec r[64];
	struct pktstore_stats st;

	heal();
	arena_path(MEDIUM_FILE, name, path, sizeof(path));
	struct pktstore *ps = store_open(path, 16 << 20, rp);

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	if (st.granularity != PKTSTORE_GRAN_PAGE) {
		pktstore_close(ps);
		unlink(path);
		cr_skip_test("%s maps at a finer granularity than a page: no msync to fail", path);
	}
	tcp_pair(&client, &server);
	cr_assert_eq(pktstore_attach(ps, server, 0, &flow), 0);
	send_stream(client, 3, 0, 20000);
	got = 20000;
	recv_expect(ps, flow, 3, 0, got);
	fail_from_now(EIO);
	send_stream(client, 3, got, 5000);

	int n = pktstore_recv_persist(ps, flow, r, 64, 0);

	cr_assert_eq(n, -EIO, "recv_persist with msync failing: %d", n);
	cr_assert_eq(pktstore_recv_persist(ps, flow, r, 64, PKTSTORE_NONBLOCK), PKTSTORE_EBROKEN);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.broken, -EIO);
	cr_assert_eq(pktstore_close(ps), PKTSTORE_EBROKEN);
	close(client);

	heal();
	uint8_t buf[20000];

	cr_assert_eq(pktstore_open(path, NULL, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.dirty_shutdown, 1);
	cr_assert_eq(pktstore_read(ps, flow, 0, buf, sizeof(buf)), (int)sizeof(buf),
		     "bytes handed out before the failure are missing");
	cr_assert(check_stream(3, 0, buf, sizeof(buf)));
	cr_assert_eq(pktstore_close(ps), 0);
	unlink(path);
}

Test(msync, receive_uring_inc) { receive_meets_it(PKTSTORE_PATH_URING_INC, "msync-inc"); }
Test(msync, receive_uring_fixed) { receive_meets_it(PKTSTORE_PATH_URING_FIXED, "msync-fixed"); }
Test(msync, receive_recv) { receive_meets_it(PKTSTORE_PATH_RECV, "msync-recv"); }
