/* SPDX-License-Identifier: MIT */
/*
 * pktstore/adapters/libuv.h - drive a store from a libuv loop.
 *
 *   struct pktstore_libuv a;
 *   pktstore_libuv_init(&a, loop, ps, on_records, on_status, arg);
 *   ...after releasing or trimming records: pktstore_libuv_kick(&a);
 *   pktstore_libuv_close(&a, on_closed);   (both handles closed, then on_closed)
 *
 * A uv_poll_t on pktstore_fd() and a uv_idle_t for kicks: pktstore_fd() is
 * quiet while the arena is full and stays so when space returns, and a
 * drain that had to stop early kicks itself.
 */
#ifndef PKTSTORE_ADAPTERS_LIBUV_H
#define PKTSTORE_ADAPTERS_LIBUV_H

#include <uv.h>

#include "loop.h"

struct pktstore_libuv {
	struct pktstore_loop l;
	uv_poll_t poll;
	uv_idle_t idle;
	int open_handles;
	void (*on_closed)(struct pktstore_libuv *a);
};

static inline void pktstore__libuv_idle(uv_idle_t *h)
{
	struct pktstore_libuv *a = (struct pktstore_libuv *)h->data;

	uv_idle_stop(h);
	int ret = pktstore_loop_drain(&a->l);

	if (ret == 1)
		uv_idle_start(h, pktstore__libuv_idle);
	else if (ret == PKTSTORE_EBROKEN)
		uv_poll_stop(&a->poll); /* the store is done (loop.h) */
}

static inline void pktstore__libuv_poll(uv_poll_t *h, int status, int events)
{
	struct pktstore_libuv *a = (struct pktstore_libuv *)h->data;

	(void)events;
	if (status < 0) {
		if (a->l.on_status)
			a->l.on_status(a->l.ps, status, a->l.arg);
		return;
	}
	int ret = pktstore_loop_drain(&a->l);

	if (ret == 1)
		uv_idle_start(&a->idle, pktstore__libuv_idle);
	else if (ret == PKTSTORE_EBROKEN)
		uv_poll_stop(h); /* the store is done (loop.h) */
}

/* Ask for a drain at the next turn of the loop. */
static inline void pktstore_libuv_kick(struct pktstore_libuv *a)
{
	uv_idle_start(&a->idle, pktstore__libuv_idle);
}

static inline int pktstore_libuv_init(struct pktstore_libuv *a, uv_loop_t *loop,
				      struct pktstore *ps, pktstore_loop_records_fn on_records,
				      pktstore_loop_status_fn on_status, void *arg)
{
	int fd = pktstore_fd(ps), ret;

	if (fd < 0)
		return fd;
	a->l = (struct pktstore_loop){ .ps = ps, .on_records = on_records,
				       .on_status = on_status, .arg = arg };
	a->open_handles = 0;
	a->on_closed = 0;
	ret = uv_poll_init(loop, &a->poll, fd);
	if (ret)
		return ret;
	a->open_handles++;
	a->poll.data = a;
	ret = uv_idle_init(loop, &a->idle);
	if (ret)
		return ret;
	a->open_handles++;
	a->idle.data = a;
	return uv_poll_start(&a->poll, UV_READABLE, pktstore__libuv_poll);
}

static inline void pktstore__libuv_closed(uv_handle_t *h)
{
	struct pktstore_libuv *a = (struct pktstore_libuv *)h->data;

	if (--a->open_handles == 0 && a->on_closed)
		a->on_closed(a);
}

static inline void pktstore_libuv_close(struct pktstore_libuv *a,
					void (*on_closed)(struct pktstore_libuv *a))
{
	a->on_closed = on_closed;
	uv_poll_stop(&a->poll);
	uv_idle_stop(&a->idle);
	uv_close((uv_handle_t *)&a->poll, pktstore__libuv_closed);
	uv_close((uv_handle_t *)&a->idle, pktstore__libuv_closed);
}

#endif
