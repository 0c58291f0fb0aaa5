/* SPDX-License-Identifier: MIT */
/* ingest-libuv: the ingest server (ingest.h) on libuv, through
 * <pktstore/adapters/libuv.h>. usage: ingest-libuv ARENA [PORT] [BYTES] */
#include <signal.h>

#include <pktstore/adapters/libuv.h>
#include <uv.h>

#include "ingest.h"

static struct ingest in;
static struct pktstore_libuv a;
static uv_poll_t acc;
static uv_signal_t usr, term, intr;

static void kick(void *arg)
{
	pktstore_libuv_kick(arg);
}

/* A broken store ends the program (the adapter stopped watching it). */
static void on_status(struct pktstore *ps, int status, void *arg)
{
	ingest_status(ps, status, arg);
	if (ingest_stop_wanted)
		uv_stop(uv_default_loop());
}

static void on_accept(uv_poll_t *h, int status, int events)
{
	(void)h;
	(void)status;
	(void)events;
	ingest_accept(&in);
}

static void on_signal(uv_signal_t *h, int sig)
{
	if (sig == SIGUSR1) {
		ingest_report(&in);
		return;
	}
	uv_stop(h->loop);
}

int main(int argc, char **argv)
{
	int ret = ingest_setup(&in, argc, argv);

	if (ret)
		return ret < 0 ? 0 : ret;
	uv_loop_t *loop = uv_default_loop();

	if (pktstore_libuv_init(&a, loop, in.ps, ingest_records, on_status, &in) ||
	    uv_poll_init(loop, &acc, in.lfd) || uv_poll_start(&acc, UV_READABLE, on_accept) ||
	    uv_signal_init(loop, &usr) || uv_signal_start(&usr, on_signal, SIGUSR1) ||
	    uv_signal_init(loop, &term) || uv_signal_start(&term, on_signal, SIGTERM) ||
	    uv_signal_init(loop, &intr) || uv_signal_start(&intr, on_signal, SIGINT))
		return 1;
	in.kick = kick;
	in.kick_arg = &a;
	in.drains = &a.l.drains;
	uv_run(loop, UV_RUN_DEFAULT);
	pktstore_libuv_close(&a, NULL);
	uv_close((uv_handle_t *)&acc, NULL);
	uv_close((uv_handle_t *)&usr, NULL);
	uv_close((uv_handle_t *)&term, NULL);
	uv_close((uv_handle_t *)&intr, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	ingest_finish(&in);
	uv_loop_close(loop);
	return 0;
}
