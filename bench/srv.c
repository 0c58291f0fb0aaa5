/* SPDX-License-Identifier: MIT */
/*
 * srv.c - the recv(2) event loop behind the networking-only, Linux baseline,
 * libpmemlog and LevelDB servers.
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "frame.h"
#include "srv.h"

#define BUF_INIT (256u << 10)
#define MAX_EVENTS 128

struct conn {
	int fd;
	uint8_t *buf;
	size_t cap, len, used; /* used: parsed, kept until after commit */
	uint64_t pos;          /* stream bytes parsed */
	uint64_t *acks;        /* stream positions to acknowledge */
	size_t nacks, acks_cap;
	struct conn *next_dirty;
	int dirty, closing;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static struct conn *conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c || !(c->buf = malloc(BUF_INIT))) {
		free(c);
		return NULL;
	}
	c->fd = fd;
	c->cap = BUF_INIT;
	return c;
}

static void conn_free(struct conn *c)
{
	close(c->fd);
	free(c->buf);
	free(c->acks);
	free(c);
}

static int push_ack(struct conn *c, uint64_t pos)
{
	if (c->nacks == c->acks_cap) {
		size_t cap = c->acks_cap ? 2 * c->acks_cap : 16;
		uint64_t *a = realloc(c->acks, cap * sizeof(*a));

		if (!a)
			return -ENOMEM;
		c->acks = a;
		c->acks_cap = cap;
	}
	c->acks[c->nacks++] = pos;
	return 0;
}

struct loop {
	const struct backend *be;
	void *st;
	int http;
	struct conn *dirty;
	uint64_t requests, bytes, commits;
};

/* Receive what the socket has and stage every complete request. */
static void conn_read(struct loop *lp, struct conn *c)
{
	for (;;) {
		if (c->len == c->cap) {
			/* Staged payloads point into buf: never move it before
			 * commit; the level-triggered loop calls back later. */
			if (c->used)
				break;
			size_t cap = 2 * c->cap;
			uint8_t *b = cap <= 2 * FRAME_MAX_PAYLOAD ? realloc(c->buf, cap) : NULL;

			if (!b) {
				c->closing = 1;
				break;
			}
			c->buf = b;
			c->cap = cap;
		}
		ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			c->closing = 1;
			break;
		}
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			continue;
		}
		c->len += (size_t)n;
		for (;;) {
			const uint8_t *payload;
			size_t plen;
			long r = (lp->http ? http_next : frame_next)(c->buf + c->used,
								       c->len - c->used, &payload,
								       &plen);
			if (r < 0 || (r > 0 && lp->be->append(lp->st, payload, plen))) {
				c->closing = 1;
				break;
			}
			if (!r)
				break;
			c->used += (size_t)r;
			c->pos += (uint64_t)r;
			lp->requests++;
			lp->bytes += plen;
			if (push_ack(c, c->pos)) {
				c->closing = 1;
				break;
			}
		}
		if (c->closing)
			break;
	}
	if ((c->nacks || c->closing) && !c->dirty) {
		c->dirty = 1;
		c->next_dirty = lp->dirty;
		lp->dirty = c;
	}
}

/* After the commit: acknowledge, compact, close what ended. */
static void conn_settle(struct loop *lp, struct conn *c)
{
	uint8_t out[64 * FRAME_ACK];
	size_t o = 0;

	for (size_t i = 0; i < c->nacks; i++) {
		size_t n = lp->http ? http_reply_len : FRAME_ACK;

		if (o + n > sizeof(out)) {
			if (send_all(c->fd, out, o))
				c->closing = 1;
			o = 0;
		}
		if (lp->http)
			memcpy(out + o, http_reply, n);
		else
			put_le64(out + o, c->acks[i]);
		o += n;
	}
	if (o && send_all(c->fd, out, o))
		c->closing = 1;
	c->nacks = 0;
	memmove(c->buf, c->buf + c->used, c->len - c->used);
	c->len -= c->used;
	c->used = 0;
	c->dirty = 0;
	if (c->closing)
		conn_free(c);
}

static int run(struct loop *lp, int lfd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[MAX_EVENTS];

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		return -errno;
	while (!stop) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, 100);

		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c) {
				conn_read(lp, c);
				continue;
			}
			int fd;

			while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
				int one = 1;

				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				struct conn *nc = conn_new(fd);
				struct epoll_event cev = { .events = EPOLLIN, .data.ptr = nc };

				if (!nc || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev)) {
					if (nc)
						conn_free(nc);
					else
						close(fd);
				}
			}
		}
		if (!lp->dirty)
			continue;
		if (lp->be->commit(lp->st)) {
			fprintf(stderr, "%s: commit failed\n", lp->be->name);
			return -EIO;
		}
		lp->commits++;
		for (struct conn *c = lp->dirty, *next; c; c = next) {
			next = c->next_dirty;
			conn_settle(lp, c);
		}
		lp->dirty = NULL;
	}
	close(ep);
	return 0;
}

static const char usage[] =
	"usage: %s [--listen HOST:PORT] [--path PATH] [--size BYTES] [--http]\n"
	"       %s --help | --version\n"
	"  one thread; acks each request once durable; stops on SIGINT/SIGTERM\n";

int srv_main(int argc, char **argv, const struct backend *be)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "path", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },
		{ "http", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct srv_opts o = { .listen = "127.0.0.1:7600", .size = 1ull << 30 };
	int c;

	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (c) {
		case 'l': o.listen = optarg; break;
		case 'p': o.path = optarg; break;
		case 's': {
			int ret = parse_size(optarg, INT64_MAX, &o.size);

			if (ret) {
				size_error(be->name, "--size", optarg, ret, INT64_MAX);
				return 2;
			}
			break;
		}
		case 'H': o.http = 1; break;
		case 'h': printf(usage, argv[0], argv[0]); return 0;
		case 'V': print_version(argv[0]); return 0;
		default: goto bad;
		}
	}
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct loop lp = { .be = be, .http = o.http };

	/* Listening is the readiness signal: open the store first. */
	if (be->open(&o, &lp.st)) {
		fprintf(stderr, "%s: cannot open %s\n", be->name, o.path ? o.path : "(none)");
		return 1;
	}
	int lfd = tcp_listen(o.listen);

	if (lfd < 0) {
		fprintf(stderr, "%s: listen %s: %s\n", be->name, o.listen, strerror(-lfd));
		return 1;
	}
	int ret = run(&lp, lfd);

	be->close(lp.st);
	printf("server=%s requests=%" PRIu64 " payload_bytes=%" PRIu64 " commits=%" PRIu64 "\n",
	       be->name, lp.requests, lp.bytes, lp.commits);
	fflush(stdout);
	return ret ? 1 : 0;
bad:
	fprintf(stderr, usage, argv[0], argv[0]);
	return 2;
}
