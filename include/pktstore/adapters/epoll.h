/* SPDX-License-Identifier: MIT */
/*
 * pktstore/adapters/epoll.h - drive a store from a plain epoll(7) loop.
 *
 *   struct pktstore_epoll a;
 *   pktstore_epoll_init(&a, epfd, ps, on_records, on_status, arg);
 *   ...
 *   n = epoll_wait(epfd, ev, 64, -1);
 *   for each ev: if (pktstore_epoll_owns(&a, &ev[i])) pktstore_epoll_handle(&a);
 *   ...after releasing or trimming records: pktstore_epoll_kick(&a);
 *   pktstore_epoll_fini(&a);
 *
 * Two descriptors join the epoll set, both with data.ptr = &a: the store's
 * pktstore_fd() and an eventfd of the adapter's own, which the kick (and a
 * drain that had to stop early) makes readable, since pktstore_fd() is
 * quiet while the arena is full and stays so when space returns.
 */
#ifndef PKTSTORE_ADAPTERS_EPOLL_H
#define PKTSTORE_ADAPTERS_EPOLL_H

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "loop.h"

struct pktstore_epoll {
	struct pktstore_loop l;
	int epfd, kickfd;
};

static inline int pktstore_epoll_init(struct pktstore_epoll *a, int epfd, struct pktstore *ps,
				      pktstore_loop_records_fn on_records,
				      pktstore_loop_status_fn on_status, void *arg)
{
	struct epoll_event ev;
	int fd = pktstore_fd(ps), err;

	ev.events = EPOLLIN;
	ev.data.ptr = a; /* not in the initialiser: C++ has no nested designators */

	if (fd < 0)
		return fd;
	a->l = (struct pktstore_loop){ .ps = ps, .on_records = on_records,
				       .on_status = on_status, .arg = arg };
	a->epfd = epfd;
	a->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->kickfd < 0)
		return -errno;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev))
		err = -errno;
	else if (epoll_ctl(epfd, EPOLL_CTL_ADD, a->kickfd, &ev)) {
		err = -errno;
		epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
	} else
		return 0;
	close(a->kickfd);
	return err;
}

/* Both descriptors out of the set (again after a stop: ENOENT, ignored). */
static inline void pktstore__epoll_unwatch(struct pktstore_epoll *a)
{
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, pktstore_fd(a->l.ps), NULL);
	epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->kickfd, NULL);
}

static inline int pktstore_epoll_owns(const struct pktstore_epoll *a, const struct epoll_event *ev)
{
	return ev->data.ptr == a;
}

/* Ask for a drain at the next turn of the loop. */
static inline void pktstore_epoll_kick(struct pktstore_epoll *a)
{
	uint64_t one = 1;

	if (write(a->kickfd, &one, sizeof(one)) < 0) {
		/* Already readable (the counter is full): the drain is due. */
	}
}

/* One of the adapter's descriptors is readable: drain. */
static inline int pktstore_epoll_handle(struct pktstore_epoll *a)
{
	uint64_t v;

	if (read(a->kickfd, &v, sizeof(v)) < 0) {
		/* Nothing was kicked: the store's fd woke us. */
	}
	int ret = pktstore_loop_drain(&a->l);

	if (ret == 1)
		pktstore_epoll_kick(a);
	else if (ret == PKTSTORE_EBROKEN)
		pktstore__epoll_unwatch(a); /* the store is done (loop.h) */
	return ret < 0 ? ret : 0;
}

/* Before pktstore_close(): it asks the store for its fd. */
static inline void pktstore_epoll_fini(struct pktstore_epoll *a)
{
	pktstore__epoll_unwatch(a);
	close(a->kickfd);
}

#endif
