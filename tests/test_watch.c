/* SPDX-License-Identifier: MIT */
/* pktstore_watch(): a server that drives the store itself waits for its
 * listening socket, and for a wake-up from another thread, in the store's
 * own blocking receive, on every receive path. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(watch, .fini = cleanup);

static int listener(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	cr_assert_geq(l, 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(l, 16), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return l;
}

static int dial(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(c, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	return c;
}

struct later {
	pthread_t t;
	uint16_t port; /* dial it, or */
	int efd;       /* write this eventfd */
	int fd;        /* the client socket dialled */
};

static void *later_run(void *arg)
{
	struct later *l = arg;
	struct timespec d = { 0, 100 * 1000 * 1000 };

	nanosleep(&d, NULL);
	if (l->efd >= 0) {
		uint64_t one = 1;

		if (write(l->efd, &one, sizeof(one)) != sizeof(one))
			abort();
	} else {
		l->fd = dial(l->port);
	}
	return NULL;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Nothing attached, only a listening socket watched: the blocking receive
 * waits for the client, hands out the event, and then the client's bytes. */
static void accept_in_the_wait(enum pktstore_recv_path rp)
{
	uint16_t port;
	int l = listener(&port);
	int tag;
	struct pktstore_rec r[8];

	arena_path(MEDIUM_TMPFS, "watch", path, sizeof(path));
	struct pktstore *ps = store_open(path, 16 << 20, rp);

	cr_assert_eq(pktstore_watch(ps, l, &tag), 0);
	struct later lt = { .port = port, .efd = -1 };

	cr_assert_eq(pthread_create(&lt.t, NULL, later_run, &lt), 0);
	uint64_t t0 = mono_ms();
	int n = pktstore_recv_persist_any(ps, r, 8, 0);

	cr_assert_eq(n, 1, "%d: %s", n, n < 0 ? pktstore_strerror(n) : "");
	cr_assert_geq(mono_ms() - t0, 50, "returned before the client came");
	cr_assert_eq(r[0].flags, PKTSTORE_REC_READABLE);
	cr_assert_eq(r[0].user, &tag);
	cr_assert_eq(r[0].status, 0);
	cr_assert_eq(r[0].id, 0);
	cr_assert_null(r[0].data);
	pthread_join(lt.t, NULL);

	/* Level: not accepted yet, so it is reported again. */
	n = pktstore_recv_persist_any(ps, r, 8, PKTSTORE_NONBLOCK);
	cr_assert_eq(n, 1, "%d", n);
	cr_assert_eq(r[0].flags, PKTSTORE_REC_READABLE);

	int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	uint64_t flow;

	cr_assert_geq(s, 0);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	/* Accepted: the listener is quiet, and the flow's bytes come. */
	send_stream(lt.fd, 9, 0, 3000);
	uint64_t got = 0;

	while (got < 3000) {
		n = pktstore_recv_persist_any(ps, r, 8, 0);
		cr_assert_gt(n, 0, "%d", n);
		for (int i = 0; i < n; i++) {
			cr_assert_neq(r[i].flags, PKTSTORE_REC_READABLE, "an accepted listener fired");
			cr_assert(check_stream(9, r[i].seq, r[i].data, r[i].len));
			got += r[i].len;
			cr_assert_eq(pktstore_release(ps, r[i].id), 0);
		}
	}
	cr_assert_eq(got, 3000);

	/* Unwatched: a waiting client is no longer reported. */
	cr_assert_eq(pktstore_unwatch(ps, l), 0);
	int c2 = dial(port);

	n = pktstore_recv_persist_any(ps, r, 8, PKTSTORE_NONBLOCK);
	cr_assert_eq(n, -EAGAIN, "%d", n);
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	/* Nothing attached, nothing watched: nothing can come. */
	cr_assert_eq(pktstore_recv_persist_any(ps, r, 8, 0), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	close(c2);
	close(s);
	close(lt.fd);
	close(l);
}

Test(watch, accept_in_the_wait_recv)
{
	accept_in_the_wait(PKTSTORE_PATH_RECV);
}

Test(watch, accept_in_the_wait_uring_fixed)
{
	accept_in_the_wait(PKTSTORE_PATH_URING_FIXED);
}

Test(watch, accept_in_the_wait_uring_inc)
{
	accept_in_the_wait(PKTSTORE_PATH_URING_INC);
}

/* Another thread wakes the store's thread out of a blocking receive with
 * an eventfd, while a flow is attached and idle; pktstore_fd() says so too. */
static void wake_from_a_thread(enum pktstore_recv_path rp)
{
	int c, s, efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	uint64_t flow, v;
	struct pktstore_rec r[4];

	cr_assert_geq(efd, 0);
	arena_path(MEDIUM_TMPFS, "wake", path, sizeof(path));
	struct pktstore *ps = store_open(path, 16 << 20, rp);

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	cr_assert_eq(pktstore_watch(ps, efd, &flow), 0);
	struct later lt = { .efd = efd };

	cr_assert_eq(pthread_create(&lt.t, NULL, later_run, &lt), 0);
	int n = pktstore_recv_persist_any(ps, r, 4, 0);

	cr_assert_eq(n, 1, "%d", n);
	cr_assert_eq(r[0].flags, PKTSTORE_REC_READABLE);
	cr_assert_eq(r[0].user, &flow);
	pthread_join(lt.t, NULL);
	cr_assert_eq(read(efd, &v, sizeof(v)), (ssize_t)sizeof(v));

	/* Through pktstore_fd(), for a foreign event loop. */
	struct pollfd p = { .fd = pktstore_fd(ps), .events = POLLIN };

	cr_assert_geq(p.fd, 0);
	while (pktstore_recv_persist_any(ps, r, 4, PKTSTORE_NONBLOCK) > 0)
		;
	v = 1;
	cr_assert_eq(write(efd, &v, sizeof(v)), (ssize_t)sizeof(v));
	cr_assert_eq(poll(&p, 1, 5000), 1, "pktstore_fd() stayed quiet");
	n = pktstore_recv_persist_any(ps, r, 4, PKTSTORE_NONBLOCK);
	cr_assert_eq(n, 1, "%d", n);
	cr_assert_eq(r[0].flags, PKTSTORE_REC_READABLE);
	cr_assert_eq(pktstore_close(ps), 0);
	close(c);
	close(s);
	close(efd);
}

Test(watch, wake_from_a_thread_recv)
{
	wake_from_a_thread(PKTSTORE_PATH_RECV);
}

Test(watch, wake_from_a_thread_uring_fixed)
{
	wake_from_a_thread(PKTSTORE_PATH_URING_FIXED);
}

Test(watch, wake_from_a_thread_uring_inc)
{
	wake_from_a_thread(PKTSTORE_PATH_URING_INC);
}

Test(watch, bad_calls)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	int file;
	char fpath[300];

	arena_path(MEDIUM_TMPFS, "watchbad", path, sizeof(path));
	struct pktstore *ps = store_open(path, 16 << 20, PKTSTORE_PATH_AUTO);

	snprintf(fpath, sizeof(fpath), "%s.plain", path);
	file = open(fpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	cr_assert_geq(file, 0);
	cr_assert_eq(pktstore_watch(NULL, efd, NULL), -EINVAL);
	cr_assert_eq(pktstore_watch(ps, -1, NULL), -EINVAL);
	cr_assert_eq(pktstore_watch(ps, 1000000, NULL), -EBADF);
	cr_assert_eq(pktstore_watch(ps, file, NULL), -EPERM, "a regular file cannot be polled");
	cr_assert_eq(pktstore_unwatch(ps, efd), -ENOENT);
	cr_assert_eq(pktstore_watch(ps, efd, NULL), 0);
	cr_assert_eq(pktstore_watch(ps, efd, NULL), -EEXIST);
	cr_assert_eq(pktstore_unwatch(ps, efd), 0);
	cr_assert_eq(pktstore_unwatch(ps, efd), -ENOENT);

	/* As many as it takes, then a clear refusal; each still reported. */
	int fds[80];
	int n = 0, ret = 0;

	for (; n < 80; n++) {
		fds[n] = eventfd(1, EFD_CLOEXEC);
		cr_assert_geq(fds[n], 0);
		if ((ret = pktstore_watch(ps, fds[n], &fds[n])))
			break;
	}
	cr_assert_eq(ret, -ENOSPC);
	cr_assert_geq(n, 16);
	/* Removing one from the middle keeps the others reported. */
	cr_assert_eq(pktstore_unwatch(ps, fds[3]), 0);
	struct pktstore_rec r[128];
	bool seen[80] = { false };
	int got = pktstore_recv_persist_any(ps, r, 128, PKTSTORE_NONBLOCK);

	cr_assert_eq(got, n - 1, "%d events for %d readable watches", got, n - 1);
	for (int i = 0; i < got; i++)
		seen[(int *)r[i].user - fds] = true;
	for (int i = 0; i < n; i++)
		cr_assert_eq(seen[i], i != 3, "watch %d", i);
	cr_assert_eq(pktstore_close(ps), 0);
	for (int i = 0; i <= n; i++)
		close(fds[i]);

	/* A read-only store receives nothing, so it waits for nothing. */
	struct pktstore_opts ro = { .flags = PKTSTORE_RDONLY };

	cr_assert_eq(pktstore_open(path, &ro, &ps), 0);
	cr_assert_eq(pktstore_watch(ps, efd, NULL), -EROFS);
	cr_assert_eq(pktstore_close(ps), 0);
	close(efd);
	close(file);
	unlink(fpath);
}
