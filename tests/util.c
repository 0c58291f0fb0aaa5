/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

void arena_path(enum medium m, const char *name, char *buf, size_t n)
{
	const char *dir = m == MEDIUM_TMPFS ? "/dev/shm" : getenv("PKTSTORE_TEST_DIR");

	if (!dir)
		dir = "/var/tmp";
	snprintf(buf, n, "%s/pktstore-test-%d-%s.arena", dir, (int)getpid(), name);
	unlink(buf);
}

void tcp_pair(int *client, int *server)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int one = 1;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(l >= 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(l, 4), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
	*client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(*client >= 0);
	cr_assert_eq(connect(*client, (struct sockaddr *)&a, sizeof(a)), 0);
	*server = accept(l, NULL, NULL);
	cr_assert(*server >= 0);
	setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(l);
}

struct pktstore *store_open(const char *path, uint64_t size, enum pktstore_recv_path rp)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = size, .recv_path = rp };
	struct pktstore *ps = NULL;
	int ret = pktstore_open(path, &o, &ps);

	cr_assert_eq(ret, 0, "pktstore_open(%s): %s", path, pktstore_strerror(ret));
	return ps;
}

void fill_stream(uint64_t stream, uint64_t off, uint8_t *buf, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = stream_byte(stream, off + i);
}

void send_stream(int fd, uint64_t stream, uint64_t off, size_t n)
{
	uint8_t buf[16384];

	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);

		fill_stream(stream, off, buf, k);
		for (size_t done = 0; done < k;) {
			ssize_t w = send(fd, buf + done, k - done, MSG_NOSIGNAL);

			cr_assert(w > 0, "send: %s", strerror(errno));
			done += (size_t)w;
		}
		off += k;
		n -= k;
	}
}

int check_stream(uint64_t stream, uint64_t off, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < n; i++)
		if (p[i] != stream_byte(stream, off + i))
			return 0;
	return 1;
}

unsigned recv_expect(struct pktstore *ps, uint64_t flow, uint64_t stream, uint64_t from,
		     uint64_t bytes)
{
	struct pktstore_rec r[64];
	uint64_t seq = from;
	unsigned records = 0;

	while (seq < from + bytes) {
		int n = pktstore_recv_persist(ps, flow, r, 64, 0);

		cr_assert(n > 0, "recv_persist: %d %s", n, pktstore_strerror(n));
		for (int i = 0; i < n; i++) {
			cr_assert_eq(r[i].flow, flow);
			cr_assert_eq(r[i].seq, seq, "seq %lu expected %lu", (unsigned long)r[i].seq,
				     (unsigned long)seq);
			cr_assert(r[i].len > 0);
			cr_assert(check_stream(stream, r[i].seq, r[i].data, r[i].len));
			cr_assert_eq(r[i].crc32c, pktstore_crc32c(0, r[i].data, r[i].len));
			seq += r[i].len;
			records++;
		}
	}
	cr_assert_eq(seq, from + bytes);
	return records;
}

struct sender {
	pthread_t th;
	int fd, shut;
	uint64_t stream, off;
	size_t n;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	send_stream(s->fd, s->stream, s->off, s->n);
	if (s->shut)
		shutdown(s->fd, SHUT_WR);
	return NULL;
}

struct sender *sender_start(int fd, uint64_t stream, uint64_t off, size_t n, int shut)
{
	struct sender *s = calloc(1, sizeof(*s));

	cr_assert(s);
	*s = (struct sender){ .fd = fd, .stream = stream, .off = off, .n = n, .shut = shut };
	cr_assert_eq(pthread_create(&s->th, NULL, sender_main, s), 0);
	return s;
}

void sender_join(struct sender *s)
{
	pthread_join(s->th, NULL);
	free(s);
}
