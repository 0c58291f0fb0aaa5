/* SPDX-License-Identifier: MIT */
/*
 * pktstore/adapters/libevent.h - drive a store from a libevent 2 event_base.
 *
 *   struct pktstore_libevent *a =
 *       pktstore_libevent_new(base, ps, on_records, on_status, arg);
 *   ...after releasing or trimming records: pktstore_libevent_kick(a);
 *   pktstore_libevent_free(a);
 *
 * A persistent read event on pktstore_fd(), and a timer for kicks: the kick
 * arms it to fire at once, since pktstore_fd() is quiet while the arena is
 * full and stays so when space returns, and a drain that had to stop early
 * kicks itself. A timer, not event_active() on the read event: an event
 * made active from its own callback runs again in the same pass, before
 * the loop polls, so a busy store would starve every other descriptor.
 */
#ifndef PKTSTORE_ADAPTERS_LIBEVENT_H
#define PKTSTORE_ADAPTERS_LIBEVENT_H

#include <stdlib.h>

#include <event2/event.h>

#include "loop.h"

struct pktstore_libevent {
	struct pktstore_loop l;
	struct event *ev;   /* pktstore_fd() readable */
	struct event *kick; /* a drain at the next turn of the loop */
};

static inline void pktstore_libevent_kick(struct pktstore_libevent *a)
{
	static const struct timeval now = { 0, 0 };

	evtimer_add(a->kick, &now);
}

static inline void pktstore__libevent_ready(evutil_socket_t fd, short what, void *arg)
{
	struct pktstore_libevent *a = (struct pktstore_libevent *)arg;
	int ret = pktstore_loop_drain(&a->l);

	(void)fd;
	(void)what;
	if (ret == 1)
		pktstore_libevent_kick(a);
	else if (ret == PKTSTORE_EBROKEN)
		event_del(a->ev); /* the store is done (loop.h) */
}

static inline struct pktstore_libevent *
pktstore_libevent_new(struct event_base *base, struct pktstore *ps,
		      pktstore_loop_records_fn on_records, pktstore_loop_status_fn on_status,
		      void *arg)
{
	int fd = pktstore_fd(ps);
	struct pktstore_libevent *a;

	if (fd < 0 || !(a = (struct pktstore_libevent *)calloc(1, sizeof(*a))))
		return NULL;
	a->l = (struct pktstore_loop){ .ps = ps, .on_records = on_records,
				       .on_status = on_status, .arg = arg };
	a->ev = event_new(base, fd, EV_READ | EV_PERSIST, pktstore__libevent_ready, a);
	a->kick = evtimer_new(base, pktstore__libevent_ready, a);
	if (!a->ev || !a->kick || event_add(a->ev, NULL)) {
		if (a->ev)
			event_free(a->ev);
		if (a->kick)
			event_free(a->kick);
		free(a);
		return NULL;
	}
	return a;
}

static inline void pktstore_libevent_free(struct pktstore_libevent *a)
{
	if (!a)
		return;
	event_free(a->ev);
	event_free(a->kick);
	free(a);
}

#endif
