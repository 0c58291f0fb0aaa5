/* SPDX-License-Identifier: MIT */
/*
 * The event-loop adapters (include/pktstore/adapters/) inside their loops,
 * white-box (a store is made broken by hand, as a failed persist leaves it):
 *  - a broken store fails every call at once while its fd stays readable (a
 *    socket still holds bytes): the adapter must stop watching it, or the
 *    loop calls in on every turn, at full CPU, for ever;
 *  - libevent: a drain that stops early must let the loop poll before the
 *    next one, or a busy store starves every other descriptor.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <criterion/criterion.h>

/* One record per call and one call per drain: every drain with records
 * left ends early and schedules the next. */
#define PKTSTORE_LOOP_BATCH 1
#define PKTSTORE_LOOP_ROUNDS 1
#include <pktstore/adapters/epoll.h>
#include <pktstore/adapters/libevent.h>
#include <pktstore/adapters/libuv.h>

#include "../../lib/internal.h"
#include "../util.h"

#define TURNS 50
#define FLOWS 6

static char path[256];
static int client[FLOWS] = { -1, -1, -1, -1, -1, -1 }, server[FLOWS] = { -1, -1, -1, -1, -1, -1 };

static void cleanup(void)
{
	for (int i = 0; i < FLOWS; i++) {
		if (client[i] >= 0)
			close(client[i]);
		if (server[i] >= 0)
			close(server[i]);
		client[i] = server[i] = -1;
	}
	unlink(path);
}

TestSuite(loops, .fini = cleanup);

static void release_all(struct pktstore *ps, struct pktstore_rec *recs, int n, void *arg)
{
	(void)arg;
	for (int i = 0; i < n; i++)
		if (recs[i].id)
			pktstore_release(ps, recs[i].id);
}

static int statuses;

static void count_status(struct pktstore *ps, int status, void *arg)
{
	(void)ps, (void)arg, (void)status;
	statuses++;
}

/* A store on the recv path (its fd is an epoll set of the sockets, readable
 * while a socket holds bytes) with `flows` flows whose bytes wait unread. */
static struct pktstore *store_with_bytes(const char *name, int flows)
{
	struct pktstore *ps;

	arena_path(MEDIUM_TMPFS, name, path, sizeof(path));
	ps = store_open(path, 16 << 20, PKTSTORE_PATH_RECV);
	for (int i = 0; i < flows; i++) {
		uint64_t flow;

		tcp_pair(&client[i], &server[i]);
		cr_assert_eq(pktstore_attach(ps, server[i], 0, &flow), 0);
		send_stream(client[i], (uint64_t)i, 0, 100);
	}
	usleep(20 * 1000); /* loopback: the bytes are in the sockets */
	return ps;
}

static struct pktstore *broken_store(const char *name)
{
	struct pktstore *ps = store_with_bytes(name, 1);

	ps->broken = -EIO; /* what a failed commit leaves */
	return ps;
}

Test(loops, epoll_stops_watching_a_broken_store)
{
	struct pktstore *ps = broken_store("loops-epoll");
	struct pktstore_epoll a;
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	statuses = 0;
	cr_assert(epfd >= 0);
	cr_assert_eq(pktstore_epoll_init(&a, epfd, ps, release_all, count_status, NULL), 0);
	for (int t = 0; t < TURNS; t++) {
		struct epoll_event ev[4];
		int n = epoll_wait(epfd, ev, 4, 1);

		for (int i = 0; i < n; i++)
			if (pktstore_epoll_owns(&a, &ev[i]))
				pktstore_epoll_handle(&a);
	}
	cr_assert_geq(statuses, 1, "the failure is reported");
	cr_assert_leq(a.l.drains, 2, "the loop called in %lu times in %d turns", a.l.drains, TURNS);
	pktstore_epoll_fini(&a);
	close(epfd);
	pktstore_close(ps);
}

Test(loops, libevent_stops_watching_a_broken_store)
{
	struct pktstore *ps = broken_store("loops-libevent");
	struct event_base *base = event_base_new();
	struct pktstore_libevent *a;

	statuses = 0;
	cr_assert(base);
	a = pktstore_libevent_new(base, ps, release_all, count_status, NULL);
	cr_assert(a);
	for (int t = 0; t < TURNS; t++)
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	cr_assert_geq(statuses, 1, "the failure is reported");
	cr_assert_leq(a->l.drains, 2, "the loop called in %lu times in %d turns", a->l.drains,
		      TURNS);
	pktstore_libevent_free(a);
	event_base_free(base);
	pktstore_close(ps);
}

Test(loops, libuv_stops_watching_a_broken_store)
{
	struct pktstore *ps = broken_store("loops-libuv");
	uv_loop_t loop;
	struct pktstore_libuv a;

	statuses = 0;
	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(pktstore_libuv_init(&a, &loop, ps, release_all, count_status, NULL), 0);
	for (int t = 0; t < TURNS; t++)
		uv_run(&loop, UV_RUN_NOWAIT);
	cr_assert_geq(statuses, 1, "the failure is reported");
	cr_assert_leq(a.l.drains, 2, "the loop called in %lu times in %d turns", a.l.drains, TURNS);
	pktstore_libuv_close(&a, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
	pktstore_close(ps);
}

/* libevent: another descriptor that becomes ready during a drain is served
 * at the next turn of the loop, not after the store runs dry (FLOWS records,
 * one per drain). The store's own fd may come first in that turn. */
static unsigned long drains_when_served;
static int served;

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
	struct pktstore_libevent *a = arg;
	char c;

	(void)what;
	cr_assert_eq(read(fd, &c, 1), 1);
	drains_when_served = a->l.drains;
	served = 1;
}

static int pipe_w = -1;

static void release_and_poke(struct pktstore *ps, struct pktstore_rec *recs, int n, void *arg)
{
	release_all(ps, recs, n, arg);
	if (pipe_w >= 0) {
		cr_assert_eq(write(pipe_w, "x", 1), 1); /* another client's request */
		pipe_w = -1;
	}
}

Test(loops, libevent_drains_let_the_loop_poll)
{
	struct pktstore *ps = store_with_bytes("loops-fair", FLOWS);
	struct event_base *base = event_base_new();
	struct pktstore_libevent *a;
	int p[2];

	cr_assert(base);
	cr_assert_eq(pipe(p), 0);
	pipe_w = p[1];
	served = 0;
	a = pktstore_libevent_new(base, ps, release_and_poke, NULL, NULL);
	cr_assert(a);

	struct event *pe = event_new(base, p[0], EV_READ | EV_PERSIST, on_pipe, a);

	cr_assert(pe);
	cr_assert_eq(event_add(pe, NULL), 0);
	for (int t = 0; t < TURNS && !served; t++)
		event_base_loop(base, EVLOOP_ONCE);
	cr_assert(served);
	cr_assert_leq(drains_when_served, 2,
		      "the pipe, ready since the first drain, was served after %lu drains",
		      drains_when_served);
	event_free(pe);
	pktstore_libevent_free(a);
	event_base_free(base);
	close(p[0]);
	close(p[1]);
	pktstore_close(ps);
}
