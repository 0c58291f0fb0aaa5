/* SPDX-License-Identifier: MIT */
/*
 * pktstore_send(): replies through the store. Echoed records come back
 * whole and in order, with PKTSTORE_SEND_MORE (submitted by the next
 * receive call) and without; a reply larger than the socket buffers goes
 * out while the loop waits on pktstore_fd(); a reply sent just before
 * detach reaches the peer; a peer that reset the connection gets an error
 * back, not a hang; bad arguments are refused. On every receive path.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(send, .fini = cleanup);

struct reader {
	int fd;
	uint64_t stream, want, got;
	int ok;
	pthread_t t;
};

/* Read `want` bytes of the stream back, checking them. */
static void *read_back(void *arg)
{
	struct reader *r = arg;
	static __thread uint8_t buf[64 << 10];

	r->ok = 1;
	while (r->got < r->want) {
		size_t ask = r->want - r->got < sizeof(buf) ? r->want - r->got : sizeof(buf);
		ssize_t n = recv(r->fd, buf, ask, 0);

		if (n <= 0)
			break;
		if (!check_stream(r->stream, r->got, buf, (size_t)n))
			r->ok = 0;
		r->got += (uint64_t)n;
	}
	return NULL;
}

/* Read `want` bytes, whatever they are. */
static void *drain_all(void *arg)
{
	struct reader *r = arg;
	static __thread uint8_t buf[64 << 10];

	while (r->got < r->want) {
		ssize_t n = recv(r->fd, buf, sizeof(buf), 0);

		if (n <= 0)
			break;
		r->got += (uint64_t)n;
	}
	return NULL;
}

static void reader_start(struct reader *r, int fd, uint64_t stream, uint64_t want)
{
	*r = (struct reader){ .fd = fd, .stream = stream, .want = want };
	/* A reply read back must not block forever if it never comes. */
	struct timeval tv = { .tv_sec = 20 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(pthread_create(&r->t, NULL, read_back, r), 0);
}

static void reader_join(struct reader *r)
{
	pthread_join(r->t, NULL);
	cr_assert_eq(r->got, r->want, "%llu of %llu bytes came back",
		     (unsigned long long)r->got, (unsigned long long)r->want);
	cr_assert(r->ok, "the bytes that came back differ from those sent");
}

/*
 * What the store's event loop does while replies wait for room in the
 * socket: wait on pktstore_fd(), call in. The kernel sends on in work that
 * runs when the store enters it, so the loop must keep running until the
 * peer has everything. A stall is a wait that ended in its timeout while the
 * peer got nothing more: a send the fd did not announce.
 */
static void pump(struct pktstore *ps, struct reader *rd)
{
	unsigned stalls = 0;

	for (int i = 0; i < 5000 && stalls < 3; i++) {
		uint64_t before = __atomic_load_n(&rd->got, __ATOMIC_ACQUIRE);

		if (before >= rd->want)
			break;
		struct pollfd p = { .fd = pktstore_fd(ps), .events = POLLIN };
		struct pktstore_rec r[4];
		int woke = poll(&p, 1, 2000);

		if (!woke && __atomic_load_n(&rd->got, __ATOMIC_ACQUIRE) == before)
			stalls++;
		int n = pktstore_recv_persist_any(ps, r, 4, PKTSTORE_NONBLOCK);

		cr_assert(n == -EAGAIN, "%s", pktstore_strerror(n));
	}
	cr_assert_eq(stalls, 0, "%u waits on pktstore_fd() timed out while replies waited "
				"and the peer got nothing", stalls);
}

static struct pktstore *open_path(enum pktstore_recv_path rp)
{
	arena_path(MEDIUM_TMPFS, "send", path, sizeof(path));
	return store_open(path, 16 << 20, rp);
}

/* Every record echoed as it arrives: odd ones with PKTSTORE_SEND_MORE. */
static void echo(enum pktstore_recv_path rp)
{
	struct pktstore *ps = open_path(rp);
	int c, s;
	uint64_t flow, total = 300000, in = 0;
	struct reader rd;
	unsigned k = 0;

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	reader_start(&rd, c, 3, total);
	struct sender *tx = sender_start(c, 3, 0, total, 0);

	while (in < total) {
		struct pktstore_rec r[16];
		int n = pktstore_recv_persist(ps, flow, r, 16, 0);

		cr_assert_gt(n, 0, "%s", pktstore_strerror(n));
		for (int i = 0; i < n; i++, k++) {
			struct iovec v[2] = { { (void *)r[i].data, r[i].len / 2 },
					      { (char *)r[i].data + r[i].len / 2,
						r[i].len - r[i].len / 2 } };
			int ret = pktstore_send(ps, flow, v, 2, k & 1 ? PKTSTORE_SEND_MORE : 0);

			cr_assert_eq(ret, (int)r[i].len, "%s", pktstore_strerror(ret));
			in += r[i].len;
			cr_assert_eq(pktstore_release(ps, r[i].id), 0);
		}
	}
	sender_join(tx);
	/* A last reply sent with MORE goes with the next receive call. */
	pump(ps, &rd);
	reader_join(&rd);
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(send, echo_uring_inc) { echo(PKTSTORE_PATH_URING_INC); }
Test(send, echo_uring_fixed) { echo(PKTSTORE_PATH_URING_FIXED); }
Test(send, echo_recv) { echo(PKTSTORE_PATH_RECV); }

/* A reply larger than the socket buffers: the rest goes out as the peer
 * reads, while the store's loop waits on pktstore_fd(). */
static void big_reply(enum pktstore_recv_path rp)
{
	struct pktstore *ps = open_path(rp);
	int c, s;
	uint64_t flow;
	const size_t len = 1 << 20;
	uint8_t *b = malloc(len);
	struct reader rd;

	cr_assert(b);
	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	fill_stream(5, 0, b, len);
	reader_start(&rd, c, 5, len);
	if (rp == PKTSTORE_PATH_RECV) {
		/* sendmsg(2) on a blocking socket: all of it, here. */
		struct iovec v = { b, len };

		cr_assert_eq(pktstore_send(ps, flow, &v, 1, 0), (int)len);
	} else {
		struct iovec v = { b, len };

		cr_assert_eq(pktstore_send(ps, flow, &v, 1, 0), (int)len);
		free(b); /* copied: the caller's memory is free at once */
		b = NULL;
		pump(ps, &rd);
	}
	reader_join(&rd);
	free(b);
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(send, big_reply_uring_inc) { big_reply(PKTSTORE_PATH_URING_INC); }
Test(send, big_reply_uring_fixed) { big_reply(PKTSTORE_PATH_URING_FIXED); }
Test(send, big_reply_recv) { big_reply(PKTSTORE_PATH_RECV); }

/* Replies sent just before detach, queued with MORE too, reach the peer. */
static void reply_then_detach(enum pktstore_recv_path rp)
{
	struct pktstore *ps = open_path(rp);
	int c, s;
	uint64_t flow;
	uint8_t b[3000];

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	fill_stream(6, 0, b, sizeof(b));
	for (int i = 0; i < 3; i++) {
		struct iovec v = { b + i * 1000, 1000 };

		cr_assert_eq(pktstore_send(ps, flow, &v, 1, PKTSTORE_SEND_MORE), 1000);
	}
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	close(s);
	struct reader rd;

	reader_start(&rd, c, 6, sizeof(b));
	reader_join(&rd);
	close(c);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(send, reply_then_detach_uring_inc) { reply_then_detach(PKTSTORE_PATH_URING_INC); }
Test(send, reply_then_detach_uring_fixed) { reply_then_detach(PKTSTORE_PATH_URING_FIXED); }
Test(send, reply_then_detach_recv) { reply_then_detach(PKTSTORE_PATH_RECV); }

/* The peer reset the connection: a send fails (now or at a later call),
 * within a bounded number of tries, and nothing hangs. */
static void peer_reset(enum pktstore_recv_path rp)
{
	struct pktstore *ps = open_path(rp);
	int c, s;
	uint64_t flow;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char b[512] = { 0 };
	struct iovec v = { b, sizeof(b) };
	int ret = 0;

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	cr_assert_eq(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(c); /* RST */
	for (int i = 0; i < 200 && ret >= 0; i++) {
		struct pktstore_rec r[4];

		ret = pktstore_send(ps, flow, &v, 1, 0);
		if (ret >= 0)
			pktstore_recv_persist_any(ps, r, 4, PKTSTORE_NONBLOCK);
	}
	cr_assert(ret == -ECONNRESET || ret == -EPIPE, "last send: %d %s", ret,
		  pktstore_strerror(ret));
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(send, peer_reset_uring_inc) { peer_reset(PKTSTORE_PATH_URING_INC); }
Test(send, peer_reset_uring_fixed) { peer_reset(PKTSTORE_PATH_URING_FIXED); }
Test(send, peer_reset_recv) { peer_reset(PKTSTORE_PATH_RECV); }

Test(send, bad_arguments)
{
	struct pktstore *ps = open_path(PKTSTORE_PATH_AUTO);
	uint64_t local, flow;
	int c, s;
	char b[4];
	struct iovec v = { b, sizeof(b) };
	static char huge[(1 << 20) + 1];
	struct iovec big = { huge, sizeof(huge) };

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	cr_assert_eq(pktstore_flow_create(ps, 0, &local), 0);
	cr_assert_eq(pktstore_send(NULL, flow, &v, 1, 0), -EINVAL);
	cr_assert_eq(pktstore_send(ps, flow, NULL, 1, 0), -EINVAL);
	cr_assert_eq(pktstore_send(ps, flow, &v, 1, 1u << 7), -EINVAL, "unknown flag");
	cr_assert_eq(pktstore_send(ps, local, &v, 1, 0), -EINVAL, "a local flow has no socket");
	cr_assert_eq(pktstore_send(ps, 999999, &v, 1, 0), -ENOENT);
	cr_assert_eq(pktstore_send(ps, flow, &big, 1, 0), -EMSGSIZE);
	cr_assert_eq(pktstore_send(ps, flow, &v, 0, 0), 0);
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	int ret = pktstore_send(ps, flow, &v, 1, 0);

	/* Detached: no socket, or no flow at all once it was reclaimed. */
	cr_assert(ret == -EINVAL || ret == -ENOENT, "%s", pktstore_strerror(ret));
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

/*
 * Stored bytes sent back are sent from the arena, not copied (large
 * pieces), and the arena must not reuse them before they are sent: the
 * peer reads nothing at first, so the sends wait in flight while every
 * record is released and another client's stream streams through the
 * small arena; then what the peer reads must still be its own bytes.
 */
static void held_until_sent(enum pktstore_recv_path rp)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 2 << 20,
				   .segment_size = 64 << 10, .recv_path = rp };
	struct pktstore *ps;
	int c1, s1, c2, s2, small = 4096;
	uint64_t f1, f2, echo = 256 << 10, flood = 8 << 20, in1 = 0, in2 = 0;
	struct reader rd;

	arena_path(MEDIUM_TMPFS, "sendheld", path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	skip_if_path_missing(rp, ret, path);
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	tcp_pair(&c1, &s1);
	tcp_pair(&c2, &s2);
	setsockopt(c1, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	setsockopt(s1, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	cr_assert_eq(pktstore_attach(ps, s1, 1, &f1), 0);
	cr_assert_eq(pktstore_attach(ps, s2, 2, &f2), 0);
	send_stream(c1, 5, 0, echo);
	struct sender *tx = sender_start(c2, 6, 0, flood, 0);

	/* Echo flow 1 from the arena, release at once; flow 2 is received
	 * and released, reusing the arena as it goes. */
	for (int rounds = 0; (in1 < echo || in2 < flood) && rounds < 100000; rounds++) {
		struct pktstore_rec r[16];
		int n = pktstore_recv_persist_any(ps, r, 16, 0);

		cr_assert_gt(n, 0, "%s", pktstore_strerror(n));
		for (int i = 0; i < n; i++) {
			if (r[i].flow == f1) {
				struct iovec v = { (void *)r[i].data, r[i].len };

				cr_assert_eq(pktstore_send(ps, f1, &v, 1, 0), (int)r[i].len);
				in1 += r[i].len;
			} else {
				cr_assert(check_stream(6, r[i].seq, r[i].data, r[i].len));
				in2 += r[i].len;
			}
			cr_assert_eq(pktstore_release(ps, r[i].id), 0);
		}
	}
	sender_join(tx);
	cr_assert_eq(in1, echo);
	cr_assert_eq(in2, flood, "the arena jammed: %llu of %llu bytes", (unsigned long long)in2,
		     (unsigned long long)flood);
	/* Only now does the peer read what was echoed. */
	reader_start(&rd, c1, 5, echo);
	pump(ps, &rd);
	reader_join(&rd);
	cr_assert_eq(pktstore_detach(ps, f1), 0);
	cr_assert_eq(pktstore_detach(ps, f2), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	close(c1);
	close(s1);
	close(c2);
	close(s2);
}

Test(send, held_until_sent_uring_inc) { held_until_sent(PKTSTORE_PATH_URING_INC); }
Test(send, held_until_sent_uring_fixed) { held_until_sent(PKTSTORE_PATH_URING_FIXED); }

/*
 * A server that drives the store itself learns when a flow whose send was
 * refused (its peer reads slowly) can take more: a PKTSTORE_REC_WRITABLE
 * event, once per refusal, from the same receive call that waits for
 * everything else. Nothing else happens meanwhile: without the event the
 * server would wait forever with replies unsent.
 */
static void writable_after_refusal(enum pktstore_recv_path rp)
{
	struct pktstore *ps = open_path(rp);
	/* Small buffers, so the store's own queue fills soon; the reader's
	 * stays above a segment (64 KiB on loopback), or TCP would trickle. */
	int c, s, small = 4096, rbuf = 256 << 10;
	uint64_t flow;
	static char chunk[256 << 10];
	struct iovec v = { chunk, sizeof(chunk) };
	uint64_t queued = 0;
	int ret;

	tcp_pair(&c, &s);
	setsockopt(c, SOL_SOCKET, SO_RCVBUF, &rbuf, sizeof(rbuf));
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	/* Non-blocking, as event-driven servers keep their sockets: a send
	 * to a full one must wait for room, not fail. */
	fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	fill_stream(4, 0, (uint8_t *)chunk, sizeof(chunk)); /* one chunk, repeated */
	/* Fill what the store (or the socket) takes, until it refuses. */
	for (int i = 0; i < 1000; i++) {
		ret = pktstore_send(ps, flow, &v, 1, 0);
		if (ret == -EAGAIN)
			break;
		cr_assert_gt(ret, 0, "%s", pktstore_strerror(ret));
		queued += (uint64_t)ret;
		if ((size_t)ret < sizeof(chunk))
			break; /* the recv path: a short count */
	}
	cr_assert(ret == -EAGAIN || (ret > 0 && (size_t)ret < sizeof(chunk)),
		  "never refused: %d", ret);
	struct pktstore_rec r[4];

	/* The store's own queue is full until the peer reads (the recv path
	 * reports what epoll says of the socket, which may be room at once). */
	if (rp != PKTSTORE_PATH_RECV)
		cr_assert_eq(pktstore_recv_persist_any(ps, r, 4, PKTSTORE_NONBLOCK), -EAGAIN,
			     "writable before the peer read anything");
	/* The peer drains it all; the store's own wait hears that the flow
	 * can take more. */
	struct reader rd = { 0 };

	rd.fd = c;
	rd.want = queued;
	cr_assert_eq(pthread_create(&rd.t, NULL, drain_all, &rd), 0);
	int n = pktstore_recv_persist_any(ps, r, 4, 0);

	cr_assert_eq(n, 1, "%d", n);
	cr_assert_eq(r[0].flags, PKTSTORE_REC_WRITABLE);
	cr_assert_eq(r[0].flow, flow);
	/* The rest goes out as the store keeps being called; once per
	 * refusal: no second event. */
	for (int i = 0; i < 2000 && __atomic_load_n(&rd.got, __ATOMIC_ACQUIRE) < queued; i++) {
		struct pollfd p = { .fd = pktstore_fd(ps), .events = POLLIN };

		poll(&p, 1, 10);
		cr_assert_eq(pktstore_recv_persist_any(ps, r, 4, PKTSTORE_NONBLOCK), -EAGAIN);
	}
	pthread_join(rd.t, NULL);
	cr_assert_eq(rd.got, queued);
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(send, writable_after_refusal_uring_inc) { writable_after_refusal(PKTSTORE_PATH_URING_INC); }
Test(send, writable_after_refusal_uring_fixed) { writable_after_refusal(PKTSTORE_PATH_URING_FIXED); }
Test(send, writable_after_refusal_recv) { writable_after_refusal(PKTSTORE_PATH_RECV); }

/* A peer that shut down its sending side still reads: what the store takes
 * for it must reach it whole, on a non-blocking socket too. (The io_uring
 * paths once took the -EAGAIN such a send can complete with for the end of
 * the flow's output and dropped what they held.) */
/* The store hears flow's stream end; whether it said the flow can take
 * more meanwhile. */
static bool await_end(struct pktstore *ps, uint64_t flow)
{
	struct pktstore_rec r[4];
	bool writable = false;

	for (int i = 0; i < 200; i++) {
		int n = pktstore_recv_persist_any(ps, r, 4, PKTSTORE_NONBLOCK);

		cr_assert(n == -EAGAIN || n >= 0, "%s", pktstore_strerror(n));
		for (int k = 0; k < n; k++) {
			if (r[k].flags & PKTSTORE_REC_WRITABLE && r[k].flow == flow)
				writable = true;
			if (r[k].flags & PKTSTORE_REC_END && r[k].flow == flow)
				return writable;
		}
		usleep(10000);
	}
	cr_assert_fail("no end of stream in 2 s");
	return writable;
}

/* shut_first: the peer shuts down its side before the sends, or only once
 * the store has refused one (its end then comes while a send waits). */
static void half_closed_round(struct pktstore *ps, bool shut_first)
{
	int c, s, ret, n;
	uint64_t flow, queued = 0;
	static char chunk[256 << 10];
	struct iovec v = { chunk, sizeof(chunk) };
	struct pktstore_rec r[4];
	bool reading = false, refused = false;
	const uint64_t total = 16u << 20;
	struct reader rd;

	tcp_pair(&c, &s);
	fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	if (shut_first) {
		cr_assert_eq(shutdown(c, SHUT_WR), 0);
		await_end(ps, flow);
	}
	/* 16 MiB, more than the socket and the store's queue hold: the peer
	 * starts reading once the store has refused more. Sent as an event
	 * loop sends: after a refusal (-EAGAIN, or a short count on the recv
	 * path), only once PKTSTORE_REC_WRITABLE says so, waiting on
	 * pktstore_fd() meanwhile; within 20 s. */
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (t = t0; t.tv_sec - t0.tv_sec < 20; clock_gettime(CLOCK_MONOTONIC, &t)) {
		if (reading && __atomic_load_n(&rd.got, __ATOMIC_ACQUIRE) == total)
			break;
		if (queued < total && !refused) {
			size_t len = total - queued < sizeof(chunk) ? total - queued : sizeof(chunk);

			fill_stream(5, queued, (uint8_t *)chunk, len);
			v.iov_len = len;
			ret = pktstore_send(ps, flow, &v, 1, 0);
			if (ret > 0)
				queued += (uint64_t)ret;
			if (ret == (int)len)
				continue;
			cr_assert(ret > 0 || ret == -EAGAIN, "after %llu bytes: %s",
				  (unsigned long long)queued, pktstore_strerror(ret));
			refused = true;
			if (!reading && !shut_first) {
				cr_assert_eq(shutdown(c, SHUT_WR), 0);
				if (await_end(ps, flow))
					refused = false;
			}
			if (!reading) {
				reader_start(&rd, c, 5, total);
				reading = true;
			}
		}
		struct pollfd p = { .fd = pktstore_fd(ps), .events = POLLIN };

		poll(&p, 1, 10);
		n = pktstore_recv_persist_any(ps, r, 4, PKTSTORE_NONBLOCK);
		cr_assert(n == -EAGAIN || n >= 0, "%s", pktstore_strerror(n));
		for (int k = 0; k < n; k++)
			if (r[k].flags & PKTSTORE_REC_WRITABLE && r[k].flow == flow)
				refused = false;
	}
	cr_assert(reading, "16 MiB taken without a refusal");
	cr_assert(!refused, "no PKTSTORE_REC_WRITABLE after a refusal (%llu bytes taken, %llu read)",
		  (unsigned long long)queued, (unsigned long long)rd.got);
	cr_assert_eq(queued, total, "only %llu bytes taken", (unsigned long long)queued);
	reader_join(&rd);
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	close(s);
	close(c);
}

/* The -EAGAIN comes with some wake-ups only: a few rounds. */
static void half_closed_reader(enum pktstore_recv_path rp)
{
	struct pktstore *ps = open_path(rp);

	for (int i = 0; i < 30; i++)
		half_closed_round(ps, i % 2);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(send, half_closed_reader_uring_inc) { half_closed_reader(PKTSTORE_PATH_URING_INC); }
Test(send, half_closed_reader_uring_fixed) { half_closed_reader(PKTSTORE_PATH_URING_FIXED); }
Test(send, half_closed_reader_recv) { half_closed_reader(PKTSTORE_PATH_RECV); }
