/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static const char *kernel_release(void)
{
	static struct utsname u;

	return uname(&u) ? "?" : u.release;
}

void arena_path(enum medium m, const char *name, char *buf, size_t n)
{
	const char *dir = getenv(m == MEDIUM_TMPFS ? "PKTSTORE_TEST_PM_DIR" : "PKTSTORE_TEST_DIR");

	if (!dir || !*dir)
		dir = m == MEDIUM_TMPFS ? "/dev/shm" : "/var/tmp";
	snprintf(buf, n, "%s/pktstore-test-%d-%s.arena", dir, (int)getpid(), name);
	unlink(buf);
}

enum pktstore_granularity medium_granularity(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED_VALIDATE | MAP_SYNC, fd, 0);

	close(fd);
	if (p == MAP_FAILED)
		return PKTSTORE_GRAN_PAGE;
	munmap(p, 4096);

	/* libpmem2's rule: eADR only if every region says cpu_cache. */
	DIR *d = opendir("/sys/bus/nd/devices");
	struct dirent *e;
	int regions = 0, cpu_cache = 0;

	while (d && (e = readdir(d))) {
		char f[512], v[32] = "";

		if (strncmp(e->d_name, "region", 6) != 0)
			continue;
		snprintf(f, sizeof(f), "/sys/bus/nd/devices/%s/persistence_domain", e->d_name);
		FILE *fp = fopen(f, "r");

		regions++;
		if (fp) {
			if (fgets(v, sizeof(v), fp) && strncmp(v, "cpu_cache", 9) == 0)
				cpu_cache++;
			fclose(fp);
		}
	}
	if (d)
		closedir(d);
	return regions && cpu_cache == regions ? PKTSTORE_GRAN_BYTE : PKTSTORE_GRAN_CACHE_LINE;
}

void skip_if_path_missing(enum pktstore_recv_path rp, int ret, const char *created)
{
	static const char *const names[] = { "auto", "uring-inc", "uring-fixed", "recv", "zcrx" };

	if (!ret || (rp != PKTSTORE_PATH_URING_INC && rp != PKTSTORE_PATH_URING_FIXED))
		return;
	/* The automatic choice, free of PKTSTORE_RECV_PATH, tells whether rp
	 * is missing: it takes rp or a better path whenever rp works. */
	char probe[256], env[64] = "";
	const char *e = getenv("PKTSTORE_RECV_PATH");
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 2 << 20,
				   .segment_size = 64 << 10 };
	struct pktstore *ps;
	struct pktstore_stats st;

	if (e)
		snprintf(env, sizeof(env), "%s", e);
	unsetenv("PKTSTORE_RECV_PATH");
	arena_path(MEDIUM_TMPFS, "probe", probe, sizeof(probe));
	int pret = pktstore_open(probe, &o, &ps);

	if (env[0])
		setenv("PKTSTORE_RECV_PATH", env, 1);
	if (pret) {
		unlink(probe);
		return;
	}
	int got = pktstore_stats(ps, &st);

	pktstore_close(ps);
	unlink(probe);
	if (got || st.recv_path <= rp || st.recv_path > PKTSTORE_PATH_RECV)
		return;
	if (created)
		unlink(created);
	cr_skip_test("receive path %s unavailable here (Linux %s; open: %s), the automatic choice "
		     "is %s, because %s",
		     names[rp], kernel_release(), pktstore_strerror(ret), names[st.recv_path],
		     st.fallback_reason[0] ? st.fallback_reason : "(no reason given)");
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

	skip_if_path_missing(rp, ret, size ? path : NULL);
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
