/* SPDX-License-Identifier: MIT */
/*
 * srv_uring.c - networking only, on io_uring: the floor the durable servers
 * are measured against when they use io_uring themselves. One thread, one
 * ring; a multishot accept, a multishot recv per connection into a ring of
 * provided DRAM buffers, each buffer handed back as soon as its bytes are
 * parsed (the bytes are discarded, as in bench-netonly); the acks of every
 * request completed by one batch of completions are sent through the same
 * ring, and submitted by the io_uring_enter that waits for the next batch.
 * A server on io_uring that persists nothing pays exactly this, so a
 * durable server's extra cost over it is the cost of storing.
 *
 * Each connection has two ack buffers: one owned by the send in flight,
 * one filling; a send that took only part of its bytes is sent on from
 * where it stopped, so acks leave in stream order.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"

#define RING_ENTRIES 1024
#define BGID 1
/* 64 KiB requests arrive in many pieces: enough buffers that a burst on
 * 100 connections does not run the ring dry (a dry ring ends a multishot
 * recv with -ENOBUFS, and it is armed again, which costs a round). */
#define NBUFS 1024
#define BUF_SIZE (16u << 10)

enum { OP_ACCEPT = 0, OP_RECV = 1, OP_SEND = 2, OP_MASK = 3 };

struct ackbuf {
	uint8_t *p;
	size_t len, cap, off; /* off: bytes of an in-flight buffer already sent */
};

struct conn {
	int fd;
	struct frame_stream fs;
	struct ackbuf fill, flight; /* flight.len != 0 while a send is in flight */
	int recv_armed, closing;
	struct conn *next_dirty;
	int dirty;
};

struct server {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	int lfd, live;
	struct conn *dirty;
	unsigned fresh_sends; /* sends queued since the last enter */
	uint64_t requests, bytes, batches, enobufs;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* An SQE, submitting what is queued if the ring is full (rare: a batch of
 * completions queues at most one send per connection). */
static struct io_uring_sqe *sqe_get(struct server *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

	if (!sqe) {
		io_uring_submit(&s->ring);
		sqe = io_uring_get_sqe(&s->ring);
	}
	return sqe;
}

static void arm_accept(struct server *s)
{
	struct io_uring_sqe *sqe = sqe_get(s);

	io_uring_prep_multishot_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

static void arm_recv(struct server *s, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(s);

	io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
	c->recv_armed = 1;
}

static void send_flight(struct server *s, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get(s);

	io_uring_prep_send(sqe, c->fd, c->flight.p + c->flight.off, c->flight.len - c->flight.off,
			   MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
	s->fresh_sends++;
}

/* Start sending what has filled, unless a send is already in flight. */
static void flush_acks(struct server *s, struct conn *c)
{
	if (c->flight.len || !c->fill.len || c->closing)
		return;
	struct ackbuf t = c->flight;

	c->flight = c->fill;
	c->fill = t;
	c->fill.len = 0;
	c->flight.off = 0;
	send_flight(s, c);
}

static void conn_maybe_free(struct server *s, struct conn *c)
{
	if (!c->closing || c->recv_armed || c->flight.len || c->dirty)
		return;
	close(c->fd);
	free(c->fill.p);
	free(c->flight.p);
	free(c);
	s->live--;
}

/* Stop the connection: shutdown ends its multishot recv with a last
 * completion, and the conn is freed once nothing of it is in flight. */
static void conn_fail(struct conn *c)
{
	if (!c->closing) {
		c->closing = 1;
		shutdown(c->fd, SHUT_RDWR);
	}
}

static void on_request_end(void *arg, uint64_t end)
{
	struct conn *c = arg;

	if (c->fill.len + FRAME_ACK > c->fill.cap) {
		size_t cap = c->fill.cap ? 2 * c->fill.cap : 64 * FRAME_ACK;
		uint8_t *p = realloc(c->fill.p, cap);

		if (!p) {
			conn_fail(c);
			return;
		}
		c->fill.p = p;
		c->fill.cap = cap;
	}
	put_le64(c->fill.p + c->fill.len, end);
	c->fill.len += FRAME_ACK;
}

static void give_back(struct server *s, unsigned bid)
{
	io_uring_buf_ring_add(s->br, s->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(NBUFS), 0);
	io_uring_buf_ring_advance(s->br, 1);
}

static void on_recv(struct server *s, struct conn *c, const struct io_uring_cqe *cqe)
{
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		if (cqe->res > 0 && !c->closing) {
			size_t before = c->fill.len;

			if (frame_stream_feed(&c->fs, s->bufs + (size_t)bid * BUF_SIZE,
					      (size_t)cqe->res, on_request_end, c))
				conn_fail(c);
			s->requests += (c->fill.len - before) / FRAME_ACK;
			s->bytes += (uint64_t)cqe->res;
			if (c->fill.len && !c->dirty) {
				c->dirty = 1;
				c->next_dirty = s->dirty;
				s->dirty = c;
			}
		}
		give_back(s, bid);
	}
	if (cqe->flags & IORING_CQE_F_MORE)
		return;
	c->recv_armed = 0;
	if (cqe->res == -ENOBUFS && !c->closing) {
		/* The buffers ran out; they are back now that this batch is parsed. */
		s->enobufs++;
		arm_recv(s, c);
		return;
	}
	/* EOF, an error, or the end our shutdown asked for. */
	conn_fail(c);
	conn_maybe_free(s, c);
}

static void on_send(struct server *s, struct conn *c, int res)
{
	if (res > 0 && !c->closing) {
		c->flight.off += (size_t)res;
		if (c->flight.off < c->flight.len) {
			send_flight(s, c);
			return;
		}
	} else if (res <= 0) {
		conn_fail(c);
	}
	c->flight.len = 0;
	flush_acks(s, c);
	conn_maybe_free(s, c);
}

static void on_accept(struct server *s, const struct io_uring_cqe *cqe)
{
	if (cqe->res >= 0) {
		int one = 1, fd = cqe->res;
		struct conn *c = calloc(1, sizeof(*c));

		if (!c) {
			close(fd);
		} else {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			c->fd = fd;
			s->live++;
			arm_recv(s, c);
		}
	}
	if (!(cqe->flags & IORING_CQE_F_MORE) && !stop)
		arm_accept(s); /* the kernel ended the multishot (e.g. EMFILE) */
}

static int run(struct server *s)
{
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100000000 };

	arm_accept(s);
	while (!stop) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		/*
		 * Submits the acks of the last batch and waits, in one enter.
		 * A send to a socket with room completes while it is
		 * submitted, and its completion alone must not end the wait:
		 * waiting for one event more than the sends just queued makes
		 * a request cost one enter, not two. (Should a send have to
		 * wait for room, any later event still ends the wait.)
		 */
		unsigned want = 1 + s->fresh_sends;

		s->fresh_sends = 0;
		int ret = io_uring_submit_and_wait_timeout(&s->ring, &cqe, want, &ts, NULL);

		if (ret < 0 && ret != -ETIME && ret != -EINTR) {
			fprintf(stderr, "netonly-uring: io_uring_enter: %s\n", strerror(-ret));
			return ret;
		}
		io_uring_for_each_cqe(&s->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);
			struct conn *c = (struct conn *)(uintptr_t)(ud & ~(uint64_t)OP_MASK);

			switch (ud & OP_MASK) {
			case OP_ACCEPT: on_accept(s, cqe); break;
			case OP_RECV: on_recv(s, c, cqe); break;
			case OP_SEND: on_send(s, c, cqe->res); break;
			}
			seen++;
		}
		io_uring_cq_advance(&s->ring, seen);
		if (!seen)
			continue;
		s->batches++;
		for (struct conn *c = s->dirty, *next; c; c = next) {
			next = c->next_dirty;
			c->dirty = 0;
			flush_acks(s, c);
			conn_maybe_free(s, c);
		}
		s->dirty = NULL;
	}
	return 0;
}

/* The fewest-work ring the kernel accepts: one submitter, task work run
 * only when this thread enters to wait (6.1+), else the plain ring. */
static int ring_init(struct io_uring *ring)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		ret = io_uring_queue_init(RING_ENTRIES, ring, tries[i]);
		if (ret != -EINVAL)
			break;
	}
	return ret;
}

static int bufs_init(struct server *s)
{
	size_t ring_bytes = NBUFS * sizeof(struct io_uring_buf);
	struct io_uring_buf_reg reg = { .ring_entries = NBUFS, .bgid = BGID };

	s->br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	s->bufs = malloc((size_t)NBUFS * BUF_SIZE);
	if (s->br == MAP_FAILED || !s->bufs)
		return -ENOMEM;
	reg.ring_addr = (uint64_t)(uintptr_t)s->br;
	int ret = io_uring_register_buf_ring(&s->ring, &reg, 0);

	if (ret)
		return ret;
	io_uring_buf_ring_init(s->br);
	for (unsigned i = 0; i < NBUFS; i++)
		io_uring_buf_ring_add(s->br, s->bufs + (size_t)i * BUF_SIZE, BUF_SIZE,
				      (unsigned short)i, io_uring_buf_ring_mask(NBUFS), (int)i);
	io_uring_buf_ring_advance(s->br, NBUFS);
	return 0;
}

static const char usage[] =
	"usage: %s [--listen HOST:PORT]\n"
	"       %s --help | --version\n"
	"  networking only on io_uring: multishot recv into provided DRAM buffers,\n"
	"  bytes discarded, acks sent through the ring; one thread; stops on\n"
	"  SIGINT/SIGTERM\n";

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *listen_at = "127.0.0.1:7600";
	static struct server s;
	int c;

	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (c) {
		case 'l': listen_at = optarg; break;
		case 'h': printf(usage, argv[0], argv[0]); return 0;
		case 'V': print_version(argv[0]); return 0;
		default: goto bad;
		}
	}
	if (optind != argc)
		goto bad;

	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int ret = ring_init(&s.ring);

	if (ret) {
		fprintf(stderr, "netonly-uring: io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	ret = bufs_init(&s);
	if (ret) {
		fprintf(stderr, "netonly-uring: provided buffer ring: %s\n", strerror(-ret));
		return 1;
	}
	s.lfd = tcp_listen(listen_at);
	if (s.lfd < 0) {
		fprintf(stderr, "netonly-uring: listen %s: %s\n", listen_at, strerror(-s.lfd));
		return 1;
	}
	ret = run(&s);
	printf("server=netonly-uring requests=%" PRIu64 " stream_bytes=%" PRIu64
	       " batches=%" PRIu64 " enobufs=%" PRIu64 " ring_flags=0x%x\n",
	       s.requests, s.bytes, s.batches, s.enobufs, s.ring.flags);
	fflush(stdout);
	/* The ring's accept holds the listening socket until the kernel
	 * tears the ring down, after this process has gone: stop listening
	 * now, so the next server can bind the port and no client connects
	 * to a socket about to be reset. */
	shutdown(s.lfd, SHUT_RDWR);
	close(s.lfd);
	io_uring_queue_exit(&s.ring);
	return ret ? 1 : 0;
bad:
	fprintf(stderr, usage, argv[0], argv[0]);
	return 2;
}
