/* SPDX-License-Identifier: MIT */
/*
 * srv_pktstore.c - the libpktstore server: sockets are attached to the store,
 * and pktstore_recv_persist_any() hands back records that are already
 * durable. Requests are parsed across record boundaries (a request may span
 * records, a record may end several requests); a request is acked once the
 * records covering its last byte came back, and a record is released once
 * every request it touches has been acked, so the arena never fills.
 *
 * The server drives the store itself, with no event loop: the listening
 * socket is watched by the store (pktstore_watch), acks go out through it
 * (pktstore_send, PKTSTORE_SEND_MORE) and releases ride on its next commit,
 * so on the io_uring paths one blocking pktstore_recv_persist_any() is the
 * one system call of a request: it submits the acks and the buffer refills,
 * waits, and reaps.
 *
 * Built twice: against the release library, and against pktstore_prof
 * (PKTSTORE_PROFILE), which adds the per-stage cycle counters, the measured
 * TSC frequency and the cost of each release to the exit report.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <pktstore.h>
#ifdef PKTSTORE_PROFILE
#include <profile.h>
#include <x86intrin.h>
#endif

#include "frame.h"

#define MAX_RECS 64

struct held {
	uint64_t id, end;
};

struct conn {
	int fd;
	uint64_t flow;
	struct frame_stream fs;
	uint64_t done; /* stream position just past the last acked request */
	uint8_t *out;  /* acks waiting to be sent */
	size_t out_len, out_cap;
	struct held *held; /* records not yet released, in seq order (a ring) */
	size_t h_head, h_n, h_cap;
	struct conn *next_dirty;
	int dirty;
};

struct server {
	struct pktstore *ps;
	int release;
	struct conn *dirty;
	uint64_t requests, release_calls, release_cycles;
};

static int stop;
static int sigfd = -1; /* SIGINT and SIGTERM, watched by the store too */

static int held_push(struct conn *c, uint64_t id, uint64_t end)
{
	if (c->h_n == c->h_cap) {
		size_t cap = c->h_cap ? 2 * c->h_cap : 16;
		struct held *h = malloc(cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		for (size_t i = 0; i < c->h_n; i++)
			h[i] = c->held[(c->h_head + i) % c->h_cap];
		free(c->held);
		c->held = h;
		c->h_cap = cap;
		c->h_head = 0;
	}
	c->held[(c->h_head + c->h_n++) % c->h_cap] = (struct held){ id, end };
	return 0;
}

static void release_one(struct server *s, uint64_t id)
{
#ifdef PKTSTORE_PROFILE
	uint64_t t = __rdtsc();
#endif
	int ret = pktstore_release(s->ps, id);
#ifdef PKTSTORE_PROFILE
	s->release_cycles += __rdtsc() - t;
#endif
	s->release_calls++;
	if (ret)
		fprintf(stderr, "pktstore_release: %s\n", pktstore_strerror(ret));
}

/* Release the records whose bytes all belong to acked requests (or all). */
static void release_done(struct server *s, struct conn *c, int all)
{
	while (c->h_n) {
		struct held *h = &c->held[c->h_head];

		if (!all && h->end > c->done)
			break;
		if (s->release)
			release_one(s, h->id);
		c->h_head = (c->h_head + 1) % c->h_cap;
		c->h_n--;
	}
}

static void on_request_end(void *arg, uint64_t end)
{
	struct conn *c = arg;

	if (c->out_len + FRAME_ACK > c->out_cap) {
		size_t cap = c->out_cap ? 2 * c->out_cap : 64 * FRAME_ACK;
		uint8_t *o = realloc(c->out, cap);

		if (!o)
			abort();
		c->out = o;
		c->out_cap = cap;
	}
	put_le64(c->out + c->out_len, end);
	c->out_len += FRAME_ACK;
	c->done = end;
}

static void conn_close(struct server *s, struct conn *c)
{
	if (c->dirty) {
		struct conn **pp = &s->dirty;
		struct iovec v = { c->out, c->out_len };

		while (*pp != c)
			pp = &(*pp)->next_dirty;
		*pp = c->next_dirty;
		pktstore_send(s->ps, c->flow, &v, 1, 0);
	}
	release_done(s, c, 1);
	/* Bytes still waiting for a descriptor come back later without it. */
	pktstore_flow_set_user(s->ps, c->flow, NULL);
	pktstore_detach(s->ps, c->flow);
	close(c->fd);
	free(c->out);
	free(c->held);
	free(c);
}

static int accept_all(struct server *s, int lfd)
{
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		int one = 1;
		struct conn *c = calloc(1, sizeof(*c));
		int ret = c ? pktstore_attach(s->ps, fd, 0, &c->flow) : -ENOMEM;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (ret) {
			fprintf(stderr, "pktstore_attach: %s\n", pktstore_strerror(ret));
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		pktstore_flow_set_user(s->ps, c->flow, c); /* back in every rec.user */
	}
	return errno == EAGAIN ? 0 : -errno;
}

/* Wait for durable records (and clients), parse, ack, release; one call
 * of the store per round. */
static int serve_round(struct server *s, int lfd)
{
	struct pktstore_rec r[MAX_RECS];
	int n = pktstore_recv_persist_any(s->ps, r, MAX_RECS, 0);

	if (n == -EINTR)
		return 0;
	if (n > 0) {
		for (int i = 0; i < n; i++) {
			struct conn *c = r[i].user;

			if (r[i].flags & PKTSTORE_REC_READABLE) {
				if (r[i].user == &sigfd)
					stop = 1;
				else if (accept_all(s, lfd))
					fprintf(stderr, "accept: %s\n", strerror(errno));
				continue;
			}
			if (!c) {
				/* A connection closed here: nobody wants its bytes. */
				if (r[i].id && s->release)
					release_one(s, r[i].id);
				continue;
			}
			if (r[i].flags & (PKTSTORE_REC_END | PKTSTORE_REC_HANGUP)) {
				conn_close(s, c);
				continue;
			}
			size_t before = c->out_len;

			if (frame_stream_feed(&c->fs, r[i].data, r[i].len, on_request_end, c) ||
			    held_push(c, r[i].id, r[i].seq + r[i].len)) {
				shutdown(c->fd, SHUT_RDWR);
				continue;
			}
			s->requests += (c->out_len - before) / FRAME_ACK;
			if (c->out_len && !c->dirty) {
				c->dirty = 1;
				c->next_dirty = s->dirty;
				s->dirty = c;
			}
		}
		for (struct conn *c = s->dirty, *next; c; c = next) {
			struct iovec v = { c->out, c->out_len };

			next = c->next_dirty;
			if (pktstore_send(s->ps, c->flow, &v, 1, PKTSTORE_SEND_MORE) < 0)
				shutdown(c->fd, SHUT_RDWR);
			c->out_len = 0;
			c->dirty = 0;
			release_done(s, c, 0);
		}
		s->dirty = NULL;
	}
	return n < 0 ? n : 0;
}

#ifdef PKTSTORE_PROFILE
/* TSC ticks per second, against CLOCK_MONOTONIC over 200 ms. */
static double tsc_hz(void)
{
	uint64_t t0 = now_ns(), c0 = __rdtsc();
	struct timespec d = { 0, 200000000 };

	nanosleep(&d, NULL);
	uint64_t t1 = now_ns(), c1 = __rdtsc();

	return (double)(c1 - c0) * 1e9 / (double)(t1 - t0);
}

static void report_profile(struct server *s, double hz)
{
	struct pktstore_profile p;

	if (pktstore_profile(s->ps, &p))
		return;
	printf("profile tsc_hz=%.0f records=%" PRIu64 " commits=%" PRIu64 " crc=%" PRIu64
	       " desc=%" PRIu64 " index=%" PRIu64 " flush=%" PRIu64 " drain=%" PRIu64
	       " release_calls=%" PRIu64 " release=%" PRIu64 "\n",
	       hz, p.records, p.commits, p.crc, p.desc, p.index, p.flush, p.drain,
	       s->release_calls, s->release_cycles);
}
#endif

static const char usage[] =
	"usage: %s --path ARENA [--listen HOST:PORT] [--size BYTES] [--no-release]\n"
	"          [--zcrx IF:QUEUE]\n"
	"       %s --help | --version\n"
	"  one thread; acks each request once durable; stops on SIGINT/SIGTERM\n";

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "path", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },
		{ "no-release", no_argument, NULL, 'n' },
		{ "zcrx", required_argument, NULL, 'z' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *listen_at = "127.0.0.1:7600", *path = NULL;
	static struct server s = { .release = 1 };
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 1ull << 30 };
	int c;

	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (c) {
		case 'l': listen_at = optarg; break;
		case 'p': path = optarg; break;
		case 's': {
			int ret = parse_size(optarg, INT64_MAX, &o.size);

			if (ret) {
				size_error(argv[0], "--size", optarg, ret, INT64_MAX);
				return 2;
			}
			break;
		}
		case 'n': s.release = 0; break;
		case 'z': o.zcrx = optarg; break;
		case 'h': printf(usage, argv[0], argv[0]); return 0;
		case 'V': print_version(argv[0]); return 0;
		default: goto bad;
		}
	}
	if (!path)
		goto bad;

	/* The signals that stop the server arrive as a readable signalfd in
	 * the store's own wait. */
	sigset_t sigs;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	signal(SIGPIPE, SIG_IGN);
#ifdef PKTSTORE_PROFILE
	double hz = tsc_hz();
#endif
	unlink(path);
	int ret = pktstore_open(path, &o, &s.ps);

	if (ret) {
		fprintf(stderr, "pktstore_open %s: %s\n", path, pktstore_strerror(ret));
		return 1;
	}
	int lfd = tcp_listen(listen_at);

	if (sigfd < 0 || (ret = pktstore_watch(s.ps, sigfd, &sigfd))) {
		fprintf(stderr, "signalfd: %s\n", sigfd < 0 ? strerror(errno) : pktstore_strerror(ret));
		return 1;
	}
	if (lfd < 0 || (ret = pktstore_watch(s.ps, lfd, NULL))) {
		fprintf(stderr, "listen %s failed: %s\n", listen_at,
			lfd < 0 ? strerror(-lfd) : pktstore_strerror(ret));
		return 1;
	}
	while (!stop) {
		ret = serve_round(&s, lfd);
		if (ret) {
			fprintf(stderr, "pktstore_recv_persist_any: %s\n", pktstore_strerror(ret));
			break;
		}
	}

	struct pktstore_stats st;

	pktstore_stats(s.ps, &st);
	printf("server=pktstore requests=%" PRIu64 " records=%" PRIu64 " batches=%" PRIu64
	       " recv_path=%s granularity=%d release=%d\n",
	       s.requests, st.records_persisted, st.batches, st.recv_path_name,
	       (int)st.granularity, s.release);
#ifdef PKTSTORE_PROFILE
	report_profile(&s, hz);
#endif
	fflush(stdout);
	pktstore_close(s.ps);
	return ret ? 1 : 0;
bad:
	fprintf(stderr, usage, argv[0], argv[0]);
	return 2;
}
