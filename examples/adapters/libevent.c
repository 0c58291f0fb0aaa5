/* SPDX-License-Identifier: MIT */
/* ingest-libevent: the ingest server (ingest.h) on libevent, through
 * <pktstore/adapters/libevent.h>. usage: ingest-libevent ARENA [PORT] [BYTES] */
#include <signal.h>

#include <event2/event.h>
#include <pktstore/adapters/libevent.h>

#include "ingest.h"

static struct event_base *base;

static void kick(void *arg)
{
	pktstore_libevent_kick(arg);
}

/* A broken store ends the program (the adapter stopped watching it). */
static void on_status(struct pktstore *ps, int status, void *arg)
{
	ingest_status(ps, status, arg);
	if (ingest_stop_wanted)
		event_base_loopbreak(base);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	ingest_accept(arg);
}

/* libevent's own signal events: the handlers run inside the loop. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	if (sig == SIGUSR1) {
		ingest_report(arg);
		return;
	}
	event_base_loopbreak(base);
}

int main(int argc, char **argv)
{
	struct ingest in = { 0 };
	int ret = ingest_setup(&in, argc, argv);

	if (ret)
		return ret < 0 ? 0 : ret;
	base = event_base_new();

	struct pktstore_libevent *a =
		base ? pktstore_libevent_new(base, in.ps, ingest_records, on_status, &in) : NULL;
	struct event *acc = a ? event_new(base, in.lfd, EV_READ | EV_PERSIST, on_accept, &in) : NULL;
	struct event *usr = evsignal_new(base, SIGUSR1, on_signal, &in);
	struct event *term = evsignal_new(base, SIGTERM, on_signal, &in);
	struct event *intr = evsignal_new(base, SIGINT, on_signal, &in);

	if (!acc || event_add(acc, NULL) || event_add(usr, NULL) || event_add(term, NULL) ||
	    event_add(intr, NULL))
		return 1;
	in.kick = kick;
	in.kick_arg = a;
	in.drains = &a->l.drains;
	event_base_dispatch(base);
	event_free(acc);
	event_free(usr);
	event_free(term);
	event_free(intr);
	ingest_finish(&in); /* reads the adapter's drain count: free it after */
	pktstore_libevent_free(a);
	event_base_free(base);
	return 0;
}
