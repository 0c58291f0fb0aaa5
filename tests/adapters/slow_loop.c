/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD for the adapter tests: every epoll_wait and epoll_pwait sleeps
 * 20 ms in user space first, with the caller's signal mask, as a loop on a
 * slow or busy machine spends time between its last check and the wait
 * (a QEMU guest under TCG, where ingest-epoll once missed a signal).
 * A loop that checks a signal handler's flag and then waits with signals
 * unblocked loses a signal that lands in between: it waits until the next
 * event, which may never come. epoll_pwait with the signals blocked
 * outside the wait has no such window.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>

static void pause_a_little(void)
{
	struct timespec d = { 0, 20 * 1000 * 1000 };

	nanosleep(&d, NULL); /* a signal ends it early: that is the window */
}

int epoll_wait(int fd, struct epoll_event *ev, int n, int timeout)
{
	static int (*real)(int, struct epoll_event *, int, int);

	if (!real)
		real = (int (*)(int, struct epoll_event *, int, int))dlsym(RTLD_NEXT, "epoll_wait");
	pause_a_little();
	return real(fd, ev, n, timeout);
}

int epoll_pwait(int fd, struct epoll_event *ev, int n, int timeout, const sigset_t *mask)
{
	static int (*real)(int, struct epoll_event *, int, int, const sigset_t *);

	if (!real)
		real = (int (*)(int, struct epoll_event *, int, int, const sigset_t *))dlsym(
			RTLD_NEXT, "epoll_pwait");
	pause_a_little();
	return real(fd, ev, n, timeout, mask);
}
