/* SPDX-License-Identifier: MIT */
/*
 * loadgen.c - closed-loop load generator: N persistent connections, each
 * sends one request of S bytes (frame.h), waits for its ack, checks the
 * acked stream position, and sends the next. One thread, epoll. Runs for a
 * warm-up, then a measured interval (or a fixed number of requests), and
 * prints one line: req/s, payload MB/s, and latency mean, p50, p99, p99.9.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
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

struct conn {
	int fd;
	size_t sent;      /* bytes of the current request written */
	uint8_t ack[FRAME_ACK];
	size_t ack_have;
	uint64_t stream;  /* bytes written on this connection */
	uint64_t t_start; /* when the current request began */
	int want_out;
};

struct gen {
	const uint8_t *req;
	size_t req_len;
	uint64_t warm_end, end, max_requests;
	uint64_t done, measured, measured_bytes, bad_acks;
	uint32_t *lat; /* ns, measured requests */
	size_t nlat, cap;
	int ep;
};

static int dial(const char *hostport, int wait_ms)
{
	char host[256];
	const char *port = split_hostport(hostport, host, sizeof(host));

	if (!port)
		return -EINVAL;

	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;

	if (getaddrinfo(host, port, &hints, &ai))
		return -EINVAL;
	uint64_t give_up = now_ns() + (uint64_t)wait_ms * 1000000ull;
	int fd;

	for (;;) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && !connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		int err = errno;

		if (fd >= 0)
			close(fd);
		if (now_ns() > give_up) {
			freeaddrinfo(ai);
			return -err;
		}
		usleep(20000);
	}
	freeaddrinfo(ai);

	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	set_nonblock(fd);
	return fd;
}

static void set_interest(struct gen *g, struct conn *c, int out)
{
	struct epoll_event ev = { .events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c };

	if (c->want_out != out) {
		c->want_out = out;
		epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

/* Write what the socket takes of the current request. */
static int pump_send(struct gen *g, struct conn *c)
{
	while (c->sent < g->req_len) {
		ssize_t n = send(c->fd, g->req + c->sent, g->req_len - c->sent, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN) {
				set_interest(g, c, 1);
				return 0;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->sent += (size_t)n;
	}
	c->stream += g->req_len;
	set_interest(g, c, 0);
	return 0;
}

static int start_request(struct gen *g, struct conn *c, uint64_t now)
{
	c->sent = 0;
	c->ack_have = 0;
	c->t_start = now;
	return pump_send(g, c);
}

static void record(struct gen *g, uint64_t t0, uint64_t t1)
{
	if (t0 < g->warm_end || t1 > g->end)
		return;
	if (g->nlat == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 1 << 16;
		uint32_t *l = realloc(g->lat, cap * sizeof(*l));

		if (!l)
			return;
		g->lat = l;
		g->cap = cap;
	}
	uint64_t d = t1 - t0;

	g->lat[g->nlat++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
	g->measured++;
	g->measured_bytes += g->req_len - FRAME_HDR;
}

/* 1: the connection is finished with this run. */
static int on_readable(struct gen *g, struct conn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->ack + c->ack_have, FRAME_ACK - c->ack_have, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		c->ack_have += (size_t)n;
		if (c->ack_have < FRAME_ACK)
			continue;

		uint64_t now = now_ns();

		if (get_le64(c->ack) != c->stream)
			g->bad_acks++;
		record(g, c->t_start, now);
		g->done++;
		if (now >= g->end || (g->max_requests && g->done >= g->max_requests))
			return 1;
		int ret = start_request(g, c, now);

		return ret ? ret : 0;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint32_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return v[i] / 1e3;
}

static const char usage[] =
	"usage: loadgen [--connect HOST:PORT] [--conns N] [--size BYTES]\n"
	"               [--duration SEC] [--warmup SEC] [--requests N] [--wait-ms MS]\n"
	"  --size is the payload; each request adds a 4-byte header\n"
	"  --requests N stops after N acks in total (then --duration is the bound)\n"
	"usage: loadgen --help | --version\n";

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "conns", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "requests", required_argument, NULL, 'r' },
		{ "wait-ms", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *target = "127.0.0.1:7600";
	uint64_t size = 1024, max_requests = 0;
	double duration = 3, warmup = 0.5;
	int nconns = 1, wait_ms = 5000, c;

	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (c) {
		case 'c': target = optarg; break;
		case 'n': nconns = atoi(optarg); break;
		case 's': {
			int ret = parse_size(optarg, FRAME_MAX_PAYLOAD, &size);

			if (ret) {
				size_error("loadgen", "--size", optarg, ret, FRAME_MAX_PAYLOAD);
				return 2;
			}
			break;
		}
		case 'd': duration = atof(optarg); break;
		case 'w': warmup = atof(optarg); break;
		case 'r': max_requests = strtoull(optarg, NULL, 10); break;
		case 'W': wait_ms = atoi(optarg); break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': print_version(argv[0]); return 0;
		default: goto bad;
		}
	}
	if (nconns < 1 || duration <= 0 || warmup < 0)
		goto bad;
	signal(SIGPIPE, SIG_IGN);

	struct gen g = { .req_len = FRAME_HDR + size };
	uint8_t *req = malloc(g.req_len);

	if (!req)
		return 1;
	put_le32(req, (uint32_t)size);
	srand(42);
	for (size_t i = FRAME_HDR; i < g.req_len; i++)
		req[i] = (uint8_t)rand();
	g.req = req;
	g.ep = epoll_create1(EPOLL_CLOEXEC);

	struct conn *conns = calloc((size_t)nconns, sizeof(*conns));

	for (int i = 0; i < nconns; i++) {
		conns[i].fd = dial(target, i ? 1000 : wait_ms);
		if (conns[i].fd < 0) {
			fprintf(stderr, "loadgen: connect %s: %s\n", target,
				strerror(-conns[i].fd));
			return 1;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &conns[i] };

		epoll_ctl(g.ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
	}

	uint64_t t0 = now_ns();

	g.warm_end = max_requests ? t0 : t0 + (uint64_t)(warmup * 1e9);
	g.end = g.warm_end + (uint64_t)(duration * 1e9);
	if (max_requests)
		g.max_requests = max_requests;
	for (int i = 0; i < nconns; i++)
		if (start_request(&g, &conns[i], t0))
			return 1;

	int active = nconns, err = 0;
	struct epoll_event evs[128];

	while (active > 0) {
		int n = epoll_wait(g.ep, evs, 128, 200);
		uint64_t now = now_ns();

		if (now > g.end + 2000000000ull) {
			fprintf(stderr, "loadgen: %d connections got no ack in 2 s\n", active);
			err = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			struct conn *cn = evs[i].data.ptr;
			int ret = evs[i].events & EPOLLOUT ? pump_send(&g, cn) : on_readable(&g, cn);

			if (ret == 0)
				continue;
			if (ret < 0) {
				fprintf(stderr, "loadgen: %s\n", strerror(-ret));
				err = 1;
			}
			epoll_ctl(g.ep, EPOLL_CTL_DEL, cn->fd, NULL);
			active--;
		}
		/* With a request budget, idle connections stop once it is spent. */
		if (g.max_requests && g.done >= g.max_requests)
			break;
	}
	uint64_t t_end = now_ns();
	double secs = (double)((t_end < g.end ? t_end : g.end) - g.warm_end) / 1e9;

	for (int i = 0; i < nconns; i++)
		close(conns[i].fd);
	qsort(g.lat, g.nlat, sizeof(*g.lat), cmp_u32);

	double sum = 0;

	for (size_t i = 0; i < g.nlat; i++)
		sum += g.lat[i];
	printf("conns=%d size=%" PRIu64 " requests=%" PRIu64 " secs=%.3f rps=%.1f mbps=%.2f"
	       " mean_us=%.2f p50_us=%.2f p99_us=%.2f p999_us=%.2f bad_acks=%" PRIu64 "\n",
	       nconns, size, g.measured, secs, g.measured / secs, g.measured_bytes / secs / 1e6,
	       g.nlat ? sum / (double)g.nlat / 1e3 : 0, pct_us(g.lat, g.nlat, 0.50),
	       pct_us(g.lat, g.nlat, 0.99), pct_us(g.lat, g.nlat, 0.999), g.bad_acks);
	free(g.lat);
	free(conns);
	free(req);
	return err || g.bad_acks || !g.measured;
bad:
	fprintf(stderr, "%s", usage);
	return 2;
}
