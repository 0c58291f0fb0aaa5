/* SPDX-License-Identifier: MIT */
/*
 * pktstore-demo: stream bytes over loopback TCP into an arena, kill the
 * receiving server with SIGKILL mid-stream, reopen the arena and check that
 * every byte the server acknowledged is there, in order, intact.
 *
 * The server is a child process: an epoll loop on pktstore_fd() that calls
 * pktstore_recv_persist_any() and, after each batch, acknowledges to each
 * client the stream offset up to which its bytes are durable (8 bytes, on
 * the same TCP connection). Clients are threads of the parent that send a
 * known byte pattern and remember the highest acknowledgement they read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pktstore.h>

#include "cliutil.h"

#define MAX_FLOWS 64

struct client {
	pthread_t th;
	int fd;
	unsigned idx;
	atomic_int *stop;
	uint64_t sent, acked;
	uint64_t limit;
};

static uint8_t pattern(unsigned idx, uint64_t off)
{
	uint64_t x = (off >> 9) * 0x9E3779B97F4A7C15ull + idx * 0xBF58476D1CE4E5B9ull;

	return (uint8_t)((x >> 29) ^ off);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "pktstore-demo: %s: %s\n", what, pktstore_strerror(err));
	exit(1);
}

/* ------------------------------------------------------------ the server */

static void server(const char *arena, uint64_t size, int lfd, unsigned nflows, int ready)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = size };
	struct pktstore *ps;
	int ret = pktstore_open(arena, &o, &ps);

	if (ret) {
		open_error("pktstore-demo", arena, ret, &o);
		_exit(1);
	}

	int fds[MAX_FLOWS];

	for (unsigned i = 0; i < nflows; i++) {
		uint64_t flow;

		fds[i] = accept(lfd, NULL, NULL);
		if (fds[i] < 0)
			die("accept", -errno);
		/* The client says which stream it is, so the checker can
		 * match flows to streams after the crash; every record comes
		 * back with its socket in rec.user. */
		ret = pktstore_attach(ps, fds[i], i, &flow);
		if (ret || (ret = pktstore_flow_set_user(ps, flow, &fds[i])))
			die("attach", ret);
	}

	if (write(ready, "", 1) != 1)
		die("ready", -errno);

	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN };

	epoll_ctl(ep, EPOLL_CTL_ADD, pktstore_fd(ps), &ev);
	for (;;) {
		struct pktstore_rec r[256];
		int n = pktstore_recv_persist_any(ps, r, 256, PKTSTORE_NONBLOCK);

		if (n == -EAGAIN) {
			epoll_wait(ep, &ev, 1, 1000);
			continue;
		}
		if (n == -ENOSPC) {
			fprintf(stderr, "pktstore-demo: arena full; use a larger --size\n");
			pause(); /* wait for the kill: nothing acknowledged is lost */
		}
		if (n <= 0)
			break;
		/* Everything returned is durable: acknowledge each flow's end. */
		for (int i = 0; i < n; i++) {
			if (r[i].flags & (PKTSTORE_REC_END | PKTSTORE_REC_HANGUP) ||
			    (i + 1 < n && r[i + 1].flow == r[i].flow))
				continue;
			uint64_t acked = r[i].seq + r[i].len;

			if (send(*(int *)r[i].user, &acked, sizeof(acked), MSG_NOSIGNAL) < 0)
				break;
		}
	}
	pktstore_close(ps);
	_exit(0);
}

/* ------------------------------------------------------------ the clients */

/* Acks are 8 bytes each and only grow; the last whole one read is the
 * highest. A split ack is rare on loopback and only makes the count lower. */
static void read_acks(struct client *c, int flags)
{
	uint64_t acks[64];
	ssize_t r;

	while ((r = recv(c->fd, acks, sizeof(acks), flags)) >= 8) {
		uint64_t a = acks[r / 8 - 1];

		if (a > c->acked)
			__atomic_store_n(&c->acked, a, __ATOMIC_RELAXED);
		flags |= MSG_DONTWAIT;
	}
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	uint8_t buf[16384];
	unsigned seed = c->idx * 7919 + 1;

	while (!atomic_load(c->stop) && c->sent < c->limit) {
		size_t n = 64 + (size_t)rand_r(&seed) % (sizeof(buf) - 64);

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(c->idx, c->sent + i);
		ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);

		if (w <= 0)
			break;
		__atomic_store_n(&c->sent, c->sent + (uint64_t)w, __ATOMIC_RELAXED);
		read_acks(c, MSG_DONTWAIT);
	}
	/* Everything is sent: keep collecting acks until the kill. */
	while (!atomic_load(c->stop) && c->acked < c->sent) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };

		if (poll(&p, 1, 10) > 0) {
			if (p.revents & (POLLHUP | POLLERR))
				break;
			read_acks(c, MSG_DONTWAIT);
		}
	}
	return NULL;
}

/*
 * How to run the pktstore tool from here: "pktstore" when it is installed
 * next to this program, else the build tree's tools/pktstore (this program
 * is examples/demo/pktstore-demo there), relative to the working directory
 * when it lies below it.
 */
static const char *tool_path(void)
{
	static char buf[PATH_MAX + 32];
	char self[PATH_MAX], cwd[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return "pktstore";
	self[n] = '\0';
	if (!(slash = strrchr(self, '/')))
		return "pktstore";
	*slash = '\0';
	if (snprintf(buf, sizeof(buf), "%s/pktstore", self) >= (int)sizeof(buf))
		return "pktstore";
	if (!access(buf, X_OK))
		return "pktstore"; /* installed side by side: on the PATH */
	if (snprintf(buf, sizeof(buf), "%s/../../tools/pktstore", self) >= (int)sizeof(buf) ||
	    access(buf, X_OK) || !realpath(buf, self))
		return "pktstore";
	size_t len = getcwd(cwd, sizeof(cwd)) ? strlen(cwd) : 0;

	if (len && !strncmp(self, cwd, len) && self[len] == '/')
		snprintf(buf, sizeof(buf), "%s", self + len + 1);
	else
		snprintf(buf, sizeof(buf), "%s", self);
	return buf;
}

/* ------------------------------------------------------------ the check */

struct verdict {
	uint64_t bytes, records, bad;
};

static struct verdict verify(struct pktstore *ps, uint64_t flow, unsigned idx)
{
	struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = flow, .hi = UINT64_MAX };
	struct pktstore_rec r[256];
	struct verdict v = { 0 };
	int n;

	while ((n = pktstore_range(ps, &q, r, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			const uint8_t *d = r[i].data;

			if (r[i].seq != v.bytes)
				v.bad++; /* a gap */
			for (uint32_t k = 0; k < r[i].len; k++)
				if (d[k] != pattern(idx, r[i].seq + k)) {
					v.bad++;
					break;
				}
			v.bytes = r[i].seq + r[i].len;
			v.records++;
		}
		q.lo = v.bytes;
	}
	return v;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pktstore-demo [--arena PATH] [--size BYTES] [--flows N] [--ms MILLIS]\n"
		   "       pktstore-demo --help | --version\n"
		   "  Streams bytes over loopback into an arena, kills the receiving\n"
		   "  server mid-stream, reopens the arena and verifies every\n"
		   "  acknowledged byte. Defaults: /dev/shm/pktstore-demo.arena,\n"
		   "  256M (at least 4M; K, M, G suffixes), 8 flows (1 to %d), kill at\n"
		   "  half the stream or after 1500 ms. The arena is replaced if it\n"
		   "  exists and left in place for 'pktstore info PATH'.\n", MAX_FLOWS);
}

static uint64_t number(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	uint64_t v;
	int ret = parse_size(s, max, &v);

	if (ret) {
		size_error("pktstore-demo", opt, s, ret, max);
		exit(2);
	}
	if (v < min) {
		fprintf(stderr, "pktstore-demo: %s '%s' is too small: at least %" PRIu64 "\n", opt, s,
			min);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *arena = "/dev/shm/pktstore-demo.arena";
	uint64_t size = 256ull << 20;
	unsigned nflows = 8;
	long ms = 1500;
	static const struct option opts[] = {
		{ "arena", required_argument, NULL, 'a' }, { "size", required_argument, NULL, 's' },
		{ "flows", required_argument, NULL, 'f' }, { "ms", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },        { "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "a:s:f:m:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'a': arena = optarg; break;
		case 's': size = number("--size", optarg, 4u << 20, INT64_MAX); break;
		case 'f': nflows = (unsigned)number("--flows", optarg, 1, MAX_FLOWS); break;
		case 'm': ms = (long)number("--ms", optarg, 1, 3600000); break;
		case 'h': usage(stdout); return 0;
		case 'V': print_version("pktstore-demo"); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pktstore-demo: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	unlink(arena); /* a fresh arena, so flow i is stream i */

	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, MAX_FLOWS) ||
	    getsockname(lfd, (struct sockaddr *)&a, &al))
		die("listen", -errno);

	int ready[2];

	if (pipe(ready))
		die("pipe", -errno);
	pid_t pid = fork();

	if (pid == 0)
		server(arena, size, lfd, nflows, ready[1]);
	close(lfd);
	close(ready[1]);

	struct client cl[MAX_FLOWS];
	atomic_int stop = 0;
	/* Stop sending before the arena could fill: the demo is about crashes. */
	uint64_t limit = size / 2 / nflows;

	for (unsigned i = 0; i < nflows; i++) {
		int one = 1;

		cl[i] = (struct client){ .idx = i, .stop = &stop, .limit = limit };
		cl[i].fd = socket(AF_INET, SOCK_STREAM, 0);
		if (cl[i].fd < 0 || connect(cl[i].fd, (struct sockaddr *)&a, sizeof(a)))
			die("connect", -errno);
		setsockopt(cl[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	/* Start streaming once the server has adopted every connection. */
	char c;

	if (read(ready[0], &c, 1) != 1) {
		fprintf(stderr, "pktstore-demo: the server did not start\n");
		return 1;
	}
	for (unsigned i = 0; i < nflows; i++)
		pthread_create(&cl[i].th, NULL, client_main, &cl[i]);
	char sz[32];

	printf("pktstore-demo: %u flows streaming into %s (%s); SIGKILL at half the stream or "
	       "after %ld ms\n", nflows, arena, size_text(size, sz), ms);
	fflush(stdout); /* before the wait, also when stdout is a pipe */
	/* Kill mid-stream: once half of what the clients will send is out and
	 * the server has acknowledged something. */
	double deadline = now_s() + (double)ms / 1e3;

	for (;;) {
		uint64_t out = 0, acks = 0;

		for (unsigned i = 0; i < nflows; i++) {
			out += __atomic_load_n(&cl[i].sent, __ATOMIC_RELAXED);
			acks += __atomic_load_n(&cl[i].acked, __ATOMIC_RELAXED);
		}
		if ((out >= limit * nflows / 2 && acks) || now_s() >= deadline)
			break;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < nflows; i++) {
		shutdown(cl[i].fd, SHUT_RDWR);
		pthread_join(cl[i].th, NULL);
		close(cl[i].fd);
	}

	struct pktstore *ps;
	double t0 = now_s();
	int ret = pktstore_open(arena, NULL, &ps);
	double open_s = now_s() - t0;

	if (ret) {
		open_error("pktstore-demo", arena, ret, NULL);
		return 1;
	}
	struct pktstore_stats st;
	struct pktstore_flow_info fi[MAX_FLOWS];
	int nf = pktstore_flows(ps, 0, fi, MAX_FLOWS);
	uint64_t sent = 0, acked = 0, recovered = 0, records = 0, bad = 0, short_flows = 0;

	pktstore_stats(ps, &st);
	if (nf < 0)
		die("flows", nf);
	/* A flow that had no record yet when the server died holds nothing to
	 * recover, and the store drops such entries at open. */
	for (unsigned idx = 0; idx < nflows; idx++) {
		struct verdict v = { 0 };

		for (int i = 0; i < nf; i++)
			if (fi[i].tag == idx)
				v = verify(ps, fi[i].id, idx);
		sent += cl[idx].sent;
		acked += cl[idx].acked;
		recovered += v.bytes;
		records += v.records;
		bad += v.bad;
		short_flows += v.bytes < cl[idx].acked;
	}
	static const char *const gran[] = { "byte", "cache line", "page" };

	printf("receive path        %s%s%s\n", st.recv_path_name, st.fallback_reason[0] ? " — " : "",
	       st.fallback_reason);
	printf("granularity         %s\n", gran[st.granularity]);
	printf("dirty shutdown      %s\n", st.dirty_shutdown ? "detected" : "no");
	printf("bytes sent          %lu\n", (unsigned long)sent);
	printf("bytes acknowledged  %lu\n", (unsigned long)acked);
	printf("bytes recovered     %lu in %lu records\n", (unsigned long)recovered,
	       (unsigned long)records);
	printf("reopen + recovery   %.1f ms (index rebuild %.1f ms)\n", open_s * 1e3,
	       (double)st.recovery_ns / 1e6);
	printf("damaged/invalid     %lu/%lu\n", (unsigned long)st.damaged_records,
	       (unsigned long)st.invalid_descriptors);
	pktstore_close(ps);

	bool ok = !bad && !short_flows && acked > 0 && !st.damaged_records;

	printf("verdict             %s\n",
	       ok ? "OK: every acknowledged byte recovered, in order, intact"
		  : "FAILED: acknowledged bytes missing or damaged");
	printf("arena               %s, %s, left in place: %s info %s\n", arena,
	       size_text(size, sz), tool_path(), arena);
	return ok ? 0 : 1;
}
