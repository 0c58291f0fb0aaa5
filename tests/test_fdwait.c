/* SPDX-License-Identifier: MIT */
/*
 * pktstore_fd() as an event loop uses it: bytes sent to an attached socket
 * make the descriptor readable, so a loop waiting on it wakes for them
 * instead of on its own timeout. Counted here: waits (poll with a timeout
 * far above any delivery time) that end in the timeout although data had
 * been sent. On Linux 6.12 a ring with deferred task running posted its
 * completions, and signalled its eventfd, only inside io_uring_enter: every
 * such wait timed out and a server moved only on its own timer. On every
 * receive path, with the bytes sent before the wait and during it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

#define ROUNDS 40
#define CHUNK 1000
#define WAIT_MS 2000      /* a wait that ends here saw no readiness at all */
#define GIVE_UP 3         /* timeouts before the test stops waiting */

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(fdwait, .fini = cleanup);

struct run {
	struct pktstore *ps;
	uint64_t flow;
	int client;
	uint64_t sent, received;
};

/* What an event loop does once the fd is readable: call in until -EAGAIN,
 * here releasing each record after checking it. */
static void drain(struct run *r)
{
	struct pktstore_rec rec[64];
	int n;

	while ((n = pktstore_recv_persist_any(r->ps, rec, 64, PKTSTORE_NONBLOCK)) > 0) {
		for (int i = 0; i < n; i++) {
			cr_assert_eq(rec[i].flow, r->flow);
			cr_assert_eq(rec[i].seq, r->received, "record at %llu, expected %llu",
				     (unsigned long long)rec[i].seq,
				     (unsigned long long)r->received);
			cr_assert(check_stream(0, rec[i].seq, rec[i].data, rec[i].len));
			r->received += rec[i].len;
			cr_assert_eq(pktstore_release(r->ps, rec[i].id), 0);
		}
	}
	cr_assert_eq(n, -EAGAIN, "%s", pktstore_strerror(n));
}

struct during {
	struct run *r;
	sem_t go;
	unsigned rounds;
};

/* Sends a chunk each time the loop is about to wait, a moment later, so the
 * bytes mostly arrive while it waits (either way the wait must end). */
static void *send_during(void *arg)
{
	struct during *d = arg;

	for (unsigned i = 0; i < d->rounds; i++) {
		sem_wait(&d->go);
		usleep(2000);
		send_stream(d->r->client, 0, d->r->sent, CHUNK);
		__atomic_add_fetch(&d->r->sent, CHUNK, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* With `late`, the store is first driven by its own blocking calls, and
 * pktstore_fd() asked for only then (the io_uring paths leave the eventfd
 * alone until it is). */
static void waits_see_data_as(enum pktstore_recv_path rp, bool from_thread, bool late)
{
	struct run r = { 0 };
	int server, fd = -1;

	arena_path(MEDIUM_TMPFS, "fdwait", path, sizeof(path));
	r.ps = store_open(path, 16 << 20, rp);
	if (!late) {
		fd = pktstore_fd(r.ps);
		cr_assert_geq(fd, 0, "%s", pktstore_strerror(fd));
	}
	tcp_pair(&r.client, &server);
	cr_assert_eq(pktstore_attach(r.ps, server, 0, &r.flow), 0);
	for (int i = 0; late && i < 5; i++) {
		send_stream(r.client, 0, r.sent, CHUNK);
		r.sent += CHUNK;
		recv_expect(r.ps, r.flow, 0, r.received, CHUNK);
		r.received += CHUNK;
	}
	if (late) {
		fd = pktstore_fd(r.ps);
		cr_assert_geq(fd, 0, "%s", pktstore_strerror(fd));
	}
	drain(&r);

	struct during d = { .r = &r, .rounds = ROUNDS };
	pthread_t t;

	if (from_thread) {
		cr_assert_eq(sem_init(&d.go, 0, 0), 0);
		cr_assert_eq(pthread_create(&t, NULL, send_during, &d), 0);
	}
	unsigned timeouts = 0, rounds = 0;

	while (rounds < ROUNDS && timeouts < GIVE_UP) {
		if (from_thread) {
			sem_post(&d.go);
		} else {
			send_stream(r.client, 0, r.sent, CHUNK);
			r.sent += CHUNK;
		}
		rounds++;
		/* Wait as the loop would, until this round's bytes are in. */
		uint64_t want = r.received + CHUNK;

		while (r.received < want && timeouts < GIVE_UP) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			int n = poll(&p, 1, WAIT_MS);

			cr_assert_geq(n, 0, "poll: %s", strerror(errno));
			if (n == 0)
				timeouts++;
			drain(&r);
		}
	}
	if (from_thread) {
		/* Let the sender finish its rounds whatever happened here. */
		for (unsigned i = rounds; i < ROUNDS; i++)
			sem_post(&d.go);
		pthread_join(t, NULL);
		sem_destroy(&d.go);
	}
	cr_assert_eq(timeouts, 0,
		     "%u of the waits on pktstore_fd() ended in their %d ms timeout although "
		     "data had been sent (%u rounds of %d bytes)",
		     timeouts, WAIT_MS, rounds, CHUNK);
	/* Everything sent arrives, in order (bounded: the sender is done). */
	uint64_t sent = __atomic_load_n(&r.sent, __ATOMIC_ACQUIRE);

	for (int i = 0; i < 100 && r.received < sent; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		poll(&p, 1, 100);
		drain(&r);
	}
	cr_assert_eq(r.received, sent);
	close(r.client);
	cr_assert_eq(pktstore_close(r.ps), 0);
	unlink(path);
}

static void waits_see_data(enum pktstore_recv_path rp, bool from_thread)
{
	waits_see_data_as(rp, from_thread, false);
}

Test(fdwait, uring_inc_sent_before_wait)
{
	waits_see_data(PKTSTORE_PATH_URING_INC, false);
}

Test(fdwait, uring_inc_sent_during_wait)
{
	waits_see_data(PKTSTORE_PATH_URING_INC, true);
}

Test(fdwait, uring_fixed_sent_before_wait)
{
	waits_see_data(PKTSTORE_PATH_URING_FIXED, false);
}

Test(fdwait, uring_fixed_sent_during_wait)
{
	waits_see_data(PKTSTORE_PATH_URING_FIXED, true);
}

Test(fdwait, recv_sent_before_wait)
{
	waits_see_data(PKTSTORE_PATH_RECV, false);
}

Test(fdwait, recv_sent_during_wait)
{
	waits_see_data(PKTSTORE_PATH_RECV, true);
}

/* Whatever path PKTSTORE_RECV_PATH (or the automatic choice) gives. */
Test(fdwait, chosen_path)
{
	waits_see_data(PKTSTORE_PATH_AUTO, true);
}

/* pktstore_fd() asked for after the store has been receiving. */
Test(fdwait, uring_inc_fd_asked_late)
{
	waits_see_data_as(PKTSTORE_PATH_URING_INC, true, true);
}

Test(fdwait, uring_fixed_fd_asked_late)
{
	waits_see_data_as(PKTSTORE_PATH_URING_FIXED, true, true);
}
