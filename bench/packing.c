/* SPDX-License-Identifier: MIT */
/*
 * packing.c - arena bytes per small received record, per receive path: a
 * small arena is filled with messages of one size sent over loopback TCP
 * one at a time (each received, so each becomes a record of its own) until
 * receiving reports -ENOSPC; then data region bytes / records held. A path
 * that gives every small receive a whole buffer shows it here as kilobytes
 * per record. The same measure as tests/test_packing.c, as a figure.
 *
 *   packing path=P msg=M records=N data_bytes=D bytes_per_record=X
 *   packing path=P unavailable reason="..."
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
#include <unistd.h>

#include <pktstore.h>

#include "frame.h"

static const struct {
	const char *name;
	enum pktstore_recv_path path;
} paths[] = {
	{ "uring-inc", PKTSTORE_PATH_URING_INC },
	{ "uring-fixed", PKTSTORE_PATH_URING_FIXED },
	{ "recv", PKTSTORE_PATH_RECV },
};

/* A connected loopback TCP pair, blocking. */
static int tcp_pair(int *client, int *server)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int one = 1, l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		goto fail;
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&a, sizeof(a)))
		goto fail;
	*server = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (*server < 0)
		goto fail;
	setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(l);
	return 0;
fail:
	if (l >= 0)
		close(l);
	return -errno;
}

static int pack(const char *arena, int pi, uint32_t msg, uint64_t size)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | PKTSTORE_EXCL, .size = size,
				   .segment_size = 64 << 10, .bytes_per_record = 96,
				   .recv_path = paths[pi].path };
	struct pktstore_rec recs[16];
	struct pktstore_stats st;
	struct pktstore *ps;
	uint64_t flow, sent = 0, got = 0, records = 0, deadline = now_ns() + 60000000000ull;
	uint8_t *buf = calloc(1, msg);
	int cfd = -1, sfd = -1, k = 0, ret;

	unlink(arena);
	ret = buf ? pktstore_open(arena, &o, &ps) : -ENOMEM;
	if (ret) {
		printf("packing path=%s unavailable reason=\"%s\"\n", paths[pi].name,
		       pktstore_strerror(ret));
		free(buf);
		return 0;
	}
	if ((ret = tcp_pair(&cfd, &sfd)) || (ret = pktstore_attach(ps, sfd, 0, &flow))) {
		fprintf(stderr, "packing: %s: %s\n", paths[pi].name, strerror(-ret));
		goto out;
	}
	/* One message at a time, each received before the next is sent; the
	 * count and the clock both bound the loop. */
	while (records < 1000000 && now_ns() < deadline) {
		if (send_all(cfd, buf, msg)) {
			ret = -errno;
			break;
		}
		sent += msg;
		while (got < sent && (k = pktstore_recv_persist(ps, flow, recs, 16, 0)) > 0) {
			for (int i = 0; i < k; i++)
				got += recs[i].len;
			records += (uint64_t)k;
		}
		if (k <= 0)
			break;
	}
	if (k != -ENOSPC) {
		fprintf(stderr, "packing: %s: stopped after %" PRIu64 " records without -ENOSPC (%s)\n",
			paths[pi].name, records, k < 0 ? pktstore_strerror(k) : "bound reached");
		ret = -EIO;
		goto out;
	}
	pktstore_stats(ps, &st);
	printf("packing path=%s msg=%" PRIu32 " records=%" PRIu64 " data_bytes=%" PRIu64
	       " bytes_per_record=%.1f active_path=%s\n",
	       paths[pi].name, msg, st.records, st.data_bytes,
	       (double)st.data_bytes / (double)st.records, st.recv_path_name);
	ret = 0;
out:
	if (cfd >= 0)
		close(cfd);
	pktstore_close(ps);
	if (sfd >= 0)
		close(sfd);
	unlink(arena);
	free(buf);
	return ret ? 1 : 0;
}

static const char usage[] =
	"usage: packing --path ARENA [--msg BYTES] [--size BYTES]\n"
	"       packing --help | --version\n"
	"  fills ARENA (a scratch file, made and removed) through each receive path\n";

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "path", required_argument, NULL, 'p' },
		{ "msg", required_argument, NULL, 'm' },
		{ "size", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *arena = NULL;
	uint64_t msg = 100, size = 4 << 20;
	int c, ret = 0;

	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (c) {
		case 'p': arena = optarg; break;
		case 'm':
		case 's': {
			uint64_t *v = c == 'm' ? &msg : &size;
			int r = parse_size(optarg, c == 'm' ? 1u << 20 : INT64_MAX, v);

			if (r) {
				size_error("packing", c == 'm' ? "--msg" : "--size", optarg, r,
					   c == 'm' ? 1u << 20 : INT64_MAX);
				return 2;
			}
			break;
		}
		case 'h': fputs(usage, stdout); return 0;
		case 'V': print_version(argv[0]); return 0;
		default: goto bad;
		}
	}
	if (!arena || !msg || optind != argc)
		goto bad;
	for (int i = 0; i < (int)(sizeof(paths) / sizeof(paths[0])); i++)
		ret |= pack(arena, i, (uint32_t)msg, size);
	return ret;
bad:
	fputs(usage, stderr);
	return 2;
}
