/* SPDX-License-Identifier: MIT */
/*
 * watch.c - other file descriptors a receive call waits for along with the
 * flows (pktstore_watch(3)): a listening socket, a timerfd, an eventfd that
 * another thread writes. A server that drives the store itself then waits
 * for everything in the store's one wait, with no event loop around it.
 *
 * The backend waits for each watched fd once at a time and reports it;
 * the report becomes an event record of pktstore_recv_persist_any() and,
 * once handed out, the backend waits again: a fd still readable is reported
 * again by the next call, as epoll reports a level.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int find(const struct pktstore *ps, int fd)
{
	for (unsigned i = 0; i < ps->nwatch; i++)
		if (ps->watch[i].fd == fd)
			return (int)i;
	return -1;
}

/* Ask the backend to wait for watch i (again). */
static void arm(struct pktstore *ps, unsigned i)
{
	struct ps_watch *w = &ps->watch[i];
	int ret = ps->be->watch(ps, i, w->fd, true);

	w->armed = !ret;
	if (ret)
		ps_watch_fired(ps, i, ret); /* reported, not lost */
}

static void disarm(struct pktstore *ps, unsigned i)
{
	struct ps_watch *w = &ps->watch[i];

	if (w->armed)
		ps->be->watch(ps, i, w->fd, false);
	w->armed = false;
}

int ps_watch_add(struct pktstore *ps, int fd, void *user)
{
	if (find(ps, fd) >= 0)
		return -EEXIST;
	if (ps->nwatch == PS_WATCH_MAX)
		return -ENOSPC;
	if (!ps->watch) {
		ps->watch = calloc(PS_WATCH_MAX, sizeof(*ps->watch));
		if (!ps->watch)
			return -ENOMEM;
	}
	unsigned i = ps->nwatch;
	int ret = ps->be->watch(ps, i, fd, true);

	if (ret)
		return ret;
	ps->watch[i] = (struct ps_watch){ .fd = fd, .user = user, .armed = true };
	ps->nwatch++;
	return 0;
}

int ps_watch_remove(struct pktstore *ps, int fd)
{
	int i = find(ps, fd);

	if (i < 0)
		return -ENOENT;
	disarm(ps, (unsigned)i);
	if (ps->watch[i].fired)
		ps->nfired--;
	/* The last one takes its place, and is waited for under its new
	 * number from now on. */
	unsigned last = --ps->nwatch;

	if ((unsigned)i != last) {
		bool was_armed = ps->watch[last].armed;

		disarm(ps, last);
		ps->watch[i] = ps->watch[last];
		if (was_armed)
			arm(ps, (unsigned)i);
	}
	return 0;
}

void ps_watch_fired(struct pktstore *ps, unsigned i, int status)
{
	struct ps_watch *w = &ps->watch[i];

	if (i >= ps->nwatch || w->fired)
		return;
	w->armed = false; /* each wait reports once */
	w->fired = true;
	w->status = status;
	ps->nfired++;
}

unsigned ps_watch_deliver(struct pktstore *ps, struct pktstore_rec *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < ps->nwatch && ps->nfired && n < max; i++) {
		struct ps_watch *w = &ps->watch[i];

		if (!w->fired)
			continue;
		out[n++] = (struct pktstore_rec){ .flags = PKTSTORE_REC_READABLE,
						  .status = w->status,
						  .user = w->user };
		w->fired = false;
		ps->nfired--;
		/* A failed wait is not tried again: the application hears of
		 * it once, and unwatches. */
		if (!w->status)
			arm(ps, i);
	}
	return n;
}
