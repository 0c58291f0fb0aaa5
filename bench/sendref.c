/* SPDX-License-Identifier: MIT */
/*
 * sendref.c - what sending stored bytes back costs, by size: a client
 * process sends --messages messages of --size bytes over loopback TCP, one
 * at a time; the server receives each into the arena and sends the
 * record's bytes back from it with pktstore_send() (PKTSTORE_SEND_MORE),
 * then releases it. Whether the library copies them or sends them from the
 * arena depends on the size and on the library's PS_SEND_REF_MIN:
 * bench/sendref.sh builds it with several values and counts the server's
 * instructions under callgrind to find where sending from the arena pays.
 *
 *   sendref --path ARENA --size BYTES --messages N
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pktstore.h>

#include "frame.h"

/* The client: each message, then its echo read back whole. */
static int client(int fd, uint32_t size, uint64_t n)
{
	char *out = malloc(size), *in = malloc(size);

	if (!out || !in)
		return 1;
	memset(out, 0x5a, size);
	for (uint64_t i = 0; i < n; i++) {
		if (send(fd, out, size, 0) != (ssize_t)size)
			return 1;
		for (uint32_t got = 0; got < size;) {
			ssize_t r = recv(fd, in + got, size - got, 0);

			if (r <= 0)
				return 1;
			got += (uint32_t)r;
		}
		if (memcmp(in, out, size))
			return 2;
	}
	shutdown(fd, SHUT_WR);
	return 0;
}

static int pair(int *c, int *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		return -1;
	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c < 0 || connect(*c, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	*s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	close(l);
	setsockopt(*c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return *s < 0 ? -1 : 0;
}

static const char usage[] = "usage: %s --path ARENA --size BYTES --messages N\n"
			    "       %s --help | --version\n";

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "path", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },
		{ "messages", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *path = NULL;
	uint64_t size = 1024, n = 1000;
	int opt, c, s;

	while ((opt = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (opt) {
		case 'p': path = optarg; break;
		case 's':
			if (parse_size(optarg, 1u << 20, &size) || !size)
				goto bad;
			break;
		case 'n':
			if (parse_size(optarg, UINT32_MAX, &n) || !n)
				goto bad;
			break;
		case 'h': printf(usage, argv[0], argv[0]); return 0;
		case 'V': print_version(argv[0]); return 0;
		default: goto bad;
		}
	}
	if (!path)
		goto bad;
	if (pair(&c, &s)) {
		perror("sendref: loopback pair");
		return 1;
	}
	pid_t pid = fork();

	if (pid == 0) {
		close(s);
		_exit(client(c, (uint32_t)size, n));
	}
	close(c);

	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 256 << 20 };
	struct pktstore *ps;
	uint64_t flow, echoed = 0;
	int ret, status;

	unlink(path);
	if ((ret = pktstore_open(path, &o, &ps)) || (ret = pktstore_attach(ps, s, 0, &flow))) {
		fprintf(stderr, "sendref: %s\n", pktstore_strerror(ret));
		return 1;
	}
	for (;;) {
		struct pktstore_rec r[16];
		int k = pktstore_recv_persist(ps, flow, r, 16, 0);

		if (k <= 0) {
			ret = k;
			break;
		}
		for (int i = 0; i < k; i++) {
			struct iovec v = { (void *)r[i].data, r[i].len };

			if ((ret = pktstore_send(ps, flow, &v, 1, PKTSTORE_SEND_MORE)) < 0 ||
			    (ret = pktstore_release(ps, r[i].id)))
				goto out;
			echoed += r[i].len;
		}
	}
out:
	if (ret < 0)
		fprintf(stderr, "sendref: %s\n", pktstore_strerror(ret));
	pktstore_detach(ps, flow);
	close(s);
	pktstore_close(ps);
	unlink(path);
	waitpid(pid, &status, 0);
	printf("sendref size=%" PRIu64 " messages=%" PRIu64 " echoed=%" PRIu64 " client=%d\n", size,
	       n, echoed, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return ret < 0 || echoed != size * n || !WIFEXITED(status) || WEXITSTATUS(status);
bad:
	fprintf(stderr, usage, argv[0], argv[0]);
	return 2;
}
