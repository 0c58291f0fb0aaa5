/* SPDX-License-Identifier: MIT */
/* ingest-epoll: the ingest server (ingest.h) on a plain epoll loop, through
 * <pktstore/adapters/epoll.h>. usage: ingest-epoll ARENA [PORT] [BYTES] */
#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>

#include <pktstore/adapters/epoll.h>

#include "ingest.h"

static void kick(void *arg)
{
	pktstore_epoll_kick(arg);
}

int main(int argc, char **argv)
{
	struct ingest in = { 0 };
	struct pktstore_epoll a;
	int ret = ingest_setup(&in, argc, argv);

	if (ret)
		return ret < 0 ? 0 : ret;
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &in };

	if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, in.lfd, &ev) ||
	    pktstore_epoll_init(&a, epfd, in.ps, ingest_records, ingest_status, &in))
		return 1;
	in.kick = kick;
	in.kick_arg = &a;
	in.drains = &a.l.drains;
	/* The signals that set ingest.c's flags arrive only inside the wait:
	 * one that landed after the checks below and before epoll_wait would
	 * be lost until the next event, perhaps for ever. */
	sigset_t flags, wait_mask;

	sigemptyset(&flags);
	sigaddset(&flags, SIGUSR1);
	sigaddset(&flags, SIGTERM);
	sigaddset(&flags, SIGINT);
	sigprocmask(SIG_BLOCK, &flags, &wait_mask);
	while (!ingest_stop_wanted) {
		struct epoll_event evs[64];
		int n = epoll_pwait(epfd, evs, 64, -1, &wait_mask);

		if (ingest_report_wanted) {
			ingest_report_wanted = 0;
			ingest_report(&in);
		}
		if (n < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			if (pktstore_epoll_owns(&a, &evs[i]))
				pktstore_epoll_handle(&a);
			else
				ingest_accept(&in);
		}
	}
	pktstore_epoll_fini(&a);
	ingest_finish(&in);
	return 0;
}
