/* SPDX-License-Identifier: MIT */
/* ingest.c - see ingest.h. */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cliutil.h"
#include "ingest.h"

#define MAX_MESSAGE (256u * 1024)

volatile int ingest_report_wanted, ingest_stop_wanted;

struct conn {
	struct ingest *in;
	int fd;
	uint64_t flow;
	uint64_t pos; /* where the next message starts in the stream */
	uint64_t end; /* bytes received so far */
};

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		ingest_report_wanted = 1;
	else
		ingest_stop_wanted = 1;
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f, "usage: %s ARENA [PORT] [ARENA_BYTES]\n"
		"       %s --help | --version\n"
		"  a durable framed-message ingest server on 127.0.0.1: PORT 0 (the\n"
		"  default) takes any free port; ARENA_BYTES (default 64M, decimal with an\n"
		"  optional K, M or G) sizes an arena that does not exist yet;\n"
		"  SIGUSR1 prints counters, SIGTERM ends it\n", prog, prog);
}

int ingest_setup(struct ingest *in, int argc, char **argv)
{
	const char *prog = argv[0];
	uint64_t port = 0, size = 64u << 20;
	int ret;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		usage(stdout, prog);
		return -1;
	}
	if (argc == 2 && (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))) {
		print_version(prog);
		return -1;
	}
	if (argc < 2 || argc > 4) {
		usage(stderr, prog);
		return 2;
	}
	/* An option is never taken for an arena path: "--verbose" would
	 * otherwise become a 64 MiB file of that name. */
	if (argv[1][0] == '-') {
		fprintf(stderr, "%s: unknown option '%s'; it takes ARENA [PORT] [ARENA_BYTES], "
			"--help or --version\n", prog, argv[1]);
		return 2;
	}
	/* Digits only: parse_size() would also take "8K". */
	if (argc > 2 && (argv[2][strspn(argv[2], "0123456789")] ||
			 parse_size(argv[2], 65535, &port))) {
		fprintf(stderr, "%s: PORT '%s' is not a port: decimal digits, 0 to 65535 "
			"(0: any free port)\n", prog, argv[2]);
		return 2;
	}
	if (argc > 3 && (ret = parse_size(argv[3], INT64_MAX, &size))) {
		size_error(prog, "ARENA_BYTES", argv[3], ret, INT64_MAX);
		return 2;
	}
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = size,
				   .segment_size = 64 << 10 };

	ret = pktstore_open(argv[1], &o, &in->ps);
	if (ret) {
		open_error(prog, argv[1], ret, &o);
		return 1;
	}
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)port) };
	socklen_t al = sizeof(a);
	int one = 1;

	in->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (in->lfd < 0 || setsockopt(in->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(in->lfd, (struct sockaddr *)&a, sizeof(a)) || listen(in->lfd, 128) ||
	    getsockname(in->lfd, (struct sockaddr *)&a, &al)) {
		fprintf(stderr, "%s: cannot listen on 127.0.0.1:%u: %s%s\n", prog, (unsigned)port,
			strerror(errno), errno == EADDRINUSE ? " (choose another PORT, or 0)" : "");
		return 1;
	}
	signal(SIGUSR1, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	printf("listening on %u\n", ntohs(a.sin_port));
	fflush(stdout);
	return 0;
}

void ingest_accept(struct ingest *in)
{
	for (;;) {
		int fd = accept4(in->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			return;
		struct conn *c = calloc(1, sizeof(*c));
		int ret = c ? pktstore_attach(in->ps, fd, 0, &c->flow) : -ENOMEM;

		if (ret) {
			fprintf(stderr, "ingest: attach: %s\n", pktstore_strerror(ret));
			free(c);
			close(fd);
			continue;
		}
		c->in = in;
		c->fd = fd;
		/* The store hands this back with every record: no flow map. */
		pktstore_flow_set_user(in->ps, c->flow, c);
	}
}

static void conn_close(struct conn *c)
{
	struct ingest *in = c->in;

	/* Bytes it sent that still wait for a descriptor become records of a
	 * detached flow later: they must not carry a freed pointer. */
	pktstore_flow_set_user(in->ps, c->flow, NULL);
	pktstore_detach(in->ps, c->flow);
	close(c->fd);
	/* What is left of an unfinished message goes too; the flow may be gone
	 * already (no records left). */
	pktstore_flow_delete(in->ps, c->flow);
	in->closed++;
	free(c);
	in->kick(in->kick_arg);
}

/* Acknowledge and drop every complete message the stream now holds. */
static int conn_consume(struct conn *c)
{
	struct ingest *in = c->in;
	uint64_t done = c->pos;

	for (;;) {
		uint32_t be;

		if (c->end - c->pos < 4 || pktstore_read(in->ps, c->flow, c->pos, &be, 4) != 4)
			break;
		uint32_t len = ntohl(be);

		if (len > MAX_MESSAGE)
			return -EMSGSIZE;
		if (c->end - c->pos < 4 + (uint64_t)len)
			break;
		c->pos += 4 + (uint64_t)len;
		in->messages++;
	}
	if (c->pos == done)
		return 0;
	uint64_t ack = htobe64(c->pos);

	send(c->fd, &ack, sizeof(ack), MSG_DONTWAIT | MSG_NOSIGNAL);
	pktstore_trim(in->ps, c->flow, c->pos);
	in->kick(in->kick_arg);
	return 0;
}

/* The batch was filled before c closed: its later elements still carry c. */
static void forget_conn(struct pktstore_rec *recs, int from, int n, const struct conn *c)
{
	for (int j = from; j < n; j++)
		if (recs[j].user == c)
			recs[j].user = NULL;
}

void ingest_records(struct pktstore *ps, struct pktstore_rec *recs, int n, void *arg)
{
	(void)arg;
	for (int i = 0; i < n; i++) {
		struct conn *c = recs[i].user;

		if (!c) {
			/* Bytes of a client already closed, which waited for a
			 * descriptor when it closed: nobody wants them, nor its
			 * older records. The delete failed then (-EBUSY) and
			 * succeeds once the last of them is a record. */
			if (recs[i].id) {
				pktstore_release(ps, recs[i].id);
				pktstore_flow_delete(ps, recs[i].flow);
			}
			continue;
		}
		if (recs[i].flags & (PKTSTORE_REC_END | PKTSTORE_REC_HANGUP)) {
			/* Gone, or gone with its last bytes unread while the
			 * arena is full: nothing it sent can be acknowledged. */
			forget_conn(recs, i + 1, n, c);
			conn_close(c);
			continue;
		}
		if (recs[i].flags & (PKTSTORE_REC_WRITABLE | PKTSTORE_REC_READABLE))
			continue; /* never asked for: no pktstore_send(), no watch */
		c->end = recs[i].seq + recs[i].len;
		if (conn_consume(c)) {
			forget_conn(recs, i + 1, n, c);
			conn_close(c);
		}
	}
}

void ingest_status(struct pktstore *ps, int status, void *arg)
{
	struct ingest *in = arg;

	(void)ps;
	if (status == -ENOSPC) {
		in->fulls++; /* clients' unfinished messages fill it; wait for them */
		return;
	}
	fprintf(stderr, "ingest: %s\n", pktstore_strerror(status));
	if (status == PKTSTORE_EBROKEN)
		ingest_stop_wanted = 1;
}

void ingest_report(const struct ingest *in)
{
	printf("messages %lu closed %lu fulls %lu drains %lu\n", in->messages, in->closed,
	       in->fulls, *in->drains);
	fflush(stdout);
}

void ingest_finish(struct ingest *in)
{
	ingest_report(in);
	close(in->lfd);
	pktstore_close(in->ps);
}
