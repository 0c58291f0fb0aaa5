/* SPDX-License-Identifier: MIT */
/*
 * kv_load - a small RESP client for the end-to-end tests.
 *
 *   kv_load crash PORT CONNS SECONDS ACKFILE
 *       SET load on CONNS connections, one write in flight per connection;
 *       every acknowledged write is appended to ACKFILE as "key gen".
 *       Stops at SECONDS, after 200000 writes, or when the server dies.
 *   kv_load verify PORT ACKFILE
 *       every acknowledged key holds its last acknowledged value (or the
 *       one write that was in flight when the server died).
 *   kv_load overwrite PORT KEYS VALUE_BYTES TOTAL_BYTES SECONDS
 *       pipelined overwrites of KEYS keys until TOTAL_BYTES were written,
 *       then every key must read back its last value; more than SECONDS
 *       (times PKTSTORE_TEST_TIME_SCALE) is a failure.
 *   kv_load check PORT KEYS VALUE_BYTES
 *       after an overwrite run and a restart: every key holds a value of
 *       the expected shape whose round is the newest one.
 *   kv_load halfclose PORT
 *       send two commands, shut down the write side, print every reply
 *       byte until the server closes.
 *   kv_load campaign PORT SECONDS STATEFILE SEED
 *       one round of a kill -9 campaign. First every key of STATEFILE (the
 *       model the previous rounds left; none at first) must hold its last
 *       acknowledged state, or the state of the one command that was in
 *       flight when the server died: a SET's value, a DEL, an INCR. Then
 *       SET (1 B to 300 KiB), DEL and INCR on 4 connections, each owning its
 *       keys, one command in flight each, until the server dies or SECONDS
 *       pass; the model goes back to STATEFILE. A reply that takes over 10 s
 *       is a wedge: exit 3. SECONDS 0 only checks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64
#define MAX_KEYS 100000

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* PKTSTORE_TEST_TIME_SCALE (tests/kv/lib.sh): every time limit is
 * multiplied by it, for runs on slow emulated machines. */
static long time_scale(void)
{
	const char *e = getenv("PKTSTORE_TEST_TIME_SCALE");
	char *end;
	long v = e && *e ? strtol(e, &end, 10) : 1;
	if (e && *e && (*end || v < 1 || v > 1000)) {
		fprintf(stderr, "PKTSTORE_TEST_TIME_SCALE='%s' is not an integer from 1 to 1000\n", e);
		exit(2);
	}
	return v;
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct timeval tv = { .tv_sec = 10 * time_scale() };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Value for (key, gen): self-describing so a torn or misplaced value shows. */
static size_t make_value(char *buf, size_t size, const char *key, unsigned gen)
{
	int n = snprintf(buf, size, "%s@%u:", key, gen);
	for (size_t i = (size_t)n; i < size; i++)
		buf[i] = (char)('a' + (i * 7 + gen) % 26);
	return size;
}

static size_t set_cmd(char *out, const char *key, const char *val, size_t vlen)
{
	size_t n = (size_t)sprintf(out, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(key), key,
				   vlen);
	memcpy(out + n, val, vlen);
	memcpy(out + n + vlen, "\r\n", 2);
	return n + vlen + 2;
}

/* Read one bulk reply into buf; returns length, -1 for nil, -2 on error. */
static long get_value(int fd, const char *key, char *buf, size_t cap)
{
	char cmd[256];
	int n = snprintf(cmd, sizeof(cmd), "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
	if (send_all(fd, cmd, (size_t)n))
		return -2;
	char hdr[64];
	size_t h = 0;
	while (h < sizeof(hdr) - 1) {
		if (recv(fd, hdr + h, 1, 0) != 1)
			return -2;
		if (hdr[h++] == '\n')
			break;
	}
	hdr[h] = 0;
	if (hdr[0] != '$')
		return -2;
	long len = atol(hdr + 1);
	if (len < 0)
		return -1;
	if ((size_t)len + 2 > cap)
		return -2;
	size_t got = 0;
	while (got < (size_t)len + 2) {
		ssize_t r = recv(fd, buf + got, (size_t)len + 2 - got, 0);
		if (r <= 0)
			return -2;
		got += (size_t)r;
	}
	return len;
}

static size_t crash_vsize(unsigned gen)
{
	return 100 + (gen * 997) % 3000; /* values of 100..3099 bytes */
}

static int crash(int port, int conns, double secs, const char *ackfile)
{
	FILE *acks = fopen(ackfile, "w");
	if (!acks)
		return perror(ackfile), 1;
	struct pollfd pf[MAX_CONNS];
	unsigned gen[MAX_CONNS], key[MAX_CONNS];
	static char cmd[8192], val[4096];
	char keyname[64];
	if (conns > MAX_CONNS)
		conns = MAX_CONNS;
	long total = 0;
	for (int c = 0; c < conns; c++) {
		pf[c] = (struct pollfd){ .fd = dial(port), .events = POLLIN };
		gen[c] = 0;
		key[c] = 0;
	}
	double end = now() + secs;
	int alive = conns;
	for (int c = 0; c < conns; c++) {
		snprintf(keyname, sizeof(keyname), "crash:%d:%u", c, key[c]);
		size_t vl = make_value(val, crash_vsize(gen[c]), keyname, gen[c]);
		send_all(pf[c].fd, cmd, set_cmd(cmd, keyname, val, vl));
	}
	while (alive && now() < end && total < 200000) {
		int n = poll(pf, (nfds_t)conns, 1000);
		if (n <= 0)
			continue;
		for (int c = 0; c < conns; c++) {
			if (pf[c].fd < 0 || !pf[c].revents)
				continue;
			char r[5];
			size_t got = 0;
			while (got < 5) {
				ssize_t k = recv(pf[c].fd, r + got, 5 - got, 0);
				if (k <= 0)
					break;
				got += (size_t)k;
			}
			if (got < 5 || memcmp(r, "+OK\r\n", 5)) {
				close(pf[c].fd);
				pf[c].fd = -1;
				alive--;
				continue;
			}
			snprintf(keyname, sizeof(keyname), "crash:%d:%u", c, key[c]);
			fprintf(acks, "%s %u\n", keyname, gen[c]);
			fflush(acks);
			total++;
			/* 20 keys per connection, rewritten in turn. */
			key[c] = (key[c] + 1) % 20;
			if (key[c] == 0)
				gen[c]++;
			snprintf(keyname, sizeof(keyname), "crash:%d:%u", c, key[c]);
			size_t vl = make_value(val, crash_vsize(gen[c]), keyname, gen[c]);
			if (send_all(pf[c].fd, cmd, set_cmd(cmd, keyname, val, vl))) {
				close(pf[c].fd);
				pf[c].fd = -1;
				alive--;
			}
		}
	}
	fclose(acks);
	printf("crash load: %ld acknowledged writes\n", total);
	return 0;
}

struct ack {
	char key[64];
	unsigned gen;
};

static int verify(int port, const char *ackfile)
{
	FILE *f = fopen(ackfile, "r");
	if (!f)
		return perror(ackfile), 1;
	static struct ack a[MAX_KEYS];
	size_t n = 0;
	char k[64];
	unsigned g;
	while (fscanf(f, "%63s %u", k, &g) == 2) {
		size_t i;
		for (i = 0; i < n && strcmp(a[i].key, k); i++)
			;
		if (i == n) {
			if (n == MAX_KEYS)
				break;
			strcpy(a[n++].key, k);
		}
		a[i].gen = g;
	}
	fclose(f);
	int fd = dial(port), bad = 0;
	static char got[8192], want[8192];
	for (size_t i = 0; i < n; i++) {
		long len = get_value(fd, a[i].key, got, sizeof(got));
		int ok = 0;
		for (unsigned gen = a[i].gen; gen <= a[i].gen + 1 && !ok; gen++) {
			size_t wl = make_value(want, crash_vsize(gen), a[i].key, gen);
			ok = len == (long)wl && !memcmp(got, want, wl);
		}
		if (!ok && bad++ < 10)
			fprintf(stderr, "%s: want generation %u, got %ld bytes '%.40s'\n", a[i].key,
				a[i].gen, len, len > 0 ? got : "");
	}
	close(fd);
	printf("verify: %zu keys, %d wrong\n", n, bad);
	return bad ? 1 : 0;
}

static int read_oks(int fd, int count)
{
	static char buf[65536];
	int seen = 0;
	size_t have = 0;
	while (seen < count) {
		ssize_t r = recv(fd, buf + have, sizeof(buf) - have, 0);
		if (r <= 0)
			return -1;
		have += (size_t)r;
		size_t off = 0;
		while (have - off >= 5 && seen < count) {
			if (memcmp(buf + off, "+OK\r\n", 5)) {
				fprintf(stderr, "unexpected reply: %.60s\n", buf + off);
				return -1;
			}
			off += 5;
			seen++;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	return 0;
}

static int overwrite(int port, int keys, size_t vsize, double total, double secs)
{
	int fd = dial(port);
	static char cmd[16 * 70000], val[65536];
	char keyname[64];
	if (vsize > sizeof(val) || keys > MAX_KEYS)
		return 2;
	/* A limit, not a duration: the bytes are fixed, a slow machine gets
	 * longer to write them. */
	double written = 0, end = now() + secs * (double)time_scale();
	unsigned round = 0;
	while (written < total) {
		if (now() > end) {
			fprintf(stderr, "overwrite: time limit after %.0f bytes\n", written);
			return 1;
		}
		for (int k = 0; k < keys; k += 16) {
			size_t n = 0;
			int batch = keys - k < 16 ? keys - k : 16;
			for (int j = 0; j < batch; j++) {
				snprintf(keyname, sizeof(keyname), "ow:%d", k + j);
				make_value(val, vsize, keyname, round);
				n += set_cmd(cmd + n, keyname, val, vsize);
			}
			if (send_all(fd, cmd, n) || read_oks(fd, batch)) {
				fprintf(stderr, "overwrite: write failed after %.0f bytes\n", written);
				return 1;
			}
			written += (double)(batch * vsize);
		}
		round++;
	}
	close(fd);
	printf("overwrite: %u rounds, %.0f bytes\n", round, written);
	return 0;
}

static int check(int port, int keys, size_t vsize)
{
	int fd = dial(port), bad = 0;
	static char got[65536], want[65536];
	unsigned newest = 0;
	for (int k = 0; k < keys; k++) {
		char keyname[64];
		snprintf(keyname, sizeof(keyname), "ow:%d", k);
		long len = get_value(fd, keyname, got, sizeof(got));
		unsigned gen = 0;
		char *at = len > 0 ? memchr(got, '@', (size_t)len) : NULL;
		if (at)
			gen = (unsigned)atoi(at + 1);
		if (k == 0)
			newest = gen;
		make_value(want, vsize, keyname, newest);
		/* Keys are written in order, so later keys may be one round behind. */
		int ok = len == (long)vsize && !memcmp(got, want, vsize);
		if (!ok && newest > 0) {
			make_value(want, vsize, keyname, newest - 1);
			ok = len == (long)vsize && !memcmp(got, want, vsize);
		}
		if (!ok && bad++ < 10)
			fprintf(stderr, "%s: got %ld bytes '%.30s'\n", keyname, len, len > 0 ? got : "");
	}
	close(fd);
	printf("check: %d keys, %d wrong (round %u)\n", keys, bad, newest);
	return bad ? 1 : 0;
}

static int halfclose(int port)
{
	int fd = dial(port);
	static const char cmd[] = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$2\r\nhc\r\n*1\r\n$4\r\nPI";
	if (send_all(fd, cmd, sizeof(cmd) - 1) || shutdown(fd, SHUT_WR))
		return 1;
	char buf[256];
	ssize_t r;
	while ((r = recv(fd, buf, sizeof(buf), 0)) > 0)
		fwrite(buf, 1, (size_t)r, stdout);
	close(fd);
	return r < 0 ? 1 : 0;
}

/* --- campaign --- */

#define C_CONNS 4
#define C_KEYS 48 /* 40 strings, 8 counters */
#define C_MAXV (300u << 10)
#define C_TIMEOUT (10.0 * (double)time_scale())

enum { P_NONE, P_SET, P_DEL, P_INCR };

struct mkey {
	int counter;
	int present;      /* acknowledged state */
	unsigned gen;
	unsigned size;
	long long count;
	int pend;         /* command in flight when the server died */
	unsigned pgen, psize;
};

static struct mkey model[C_KEYS];
static long c_checked, c_acked, c_oom;

static void mkey_name(char *b, size_t n, int k)
{
	snprintf(b, n, "%s:%d", k < 40 ? "cs" : "cc", k);
}

/* Bytes that name their key, generation and size, so a stale, torn or
 * misplaced value cannot pass for the right one. */
static void c_value(char *buf, unsigned size, int k, unsigned gen)
{
	uint32_t h = 2166136261u ^ (uint32_t)k * 16777619u ^ gen * 2654435761u ^ size;
	for (unsigned i = 0; i < size; i++) {
		h ^= h << 13;
		h ^= h >> 17;
		h ^= h << 5;
		buf[i] = (char)('a' + h % 26);
	}
	char tag[48];
	int n = snprintf(tag, sizeof(tag), "%d@%u/%u:", k, gen, size);
	memcpy(buf, tag, (size_t)n < size ? (size_t)n : size);
}

static unsigned c_size(unsigned r)
{
	unsigned p = r % 100;
	r /= 100;
	if (p < 35)
		return 1 + r % 100;
	if (p < 60)
		return 100 + r % 4000;
	if (p < 75)
		return 4096 + r % 61440;
	return 65536 + r % (C_MAXV - 65536 + 1);
}

static int load_model(const char *path)
{
	FILE *f = fopen(path, "r");
	for (int k = 0; k < C_KEYS; k++)
		model[k] = (struct mkey){ .counter = k >= 40 };
	if (!f)
		return 0;
	int k, ctr, present, pend;
	unsigned gen, size, pgen, psize;
	long long count;
	while (fscanf(f, "%d %d %d %u %u %lld %d %u %u", &k, &ctr, &present, &gen, &size, &count,
		      &pend, &pgen, &psize) == 9)
		if (k >= 0 && k < C_KEYS)
			model[k] = (struct mkey){ ctr, present, gen, size, count, pend, pgen, psize };
	fclose(f);
	return 0;
}

static int save_model(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return perror(path), -1;
	for (int k = 0; k < C_KEYS; k++) {
		const struct mkey *m = &model[k];
		fprintf(f, "%d %d %d %u %u %lld %d %u %u\n", k, m->counter, m->present, m->gen,
			m->size, m->count, m->pend, m->pgen, m->psize);
	}
	return fclose(f);
}

/* Every key holds its acknowledged state or its in-flight command's; the
 * model then takes what the server holds. */
static int c_verify(int port)
{
	int fd = dial(port), bad = 0;
	static char got[C_MAXV + 16], want[C_MAXV + 16];
	for (int k = 0; k < C_KEYS; k++) {
		struct mkey *m = &model[k];
		char name[32];
		mkey_name(name, sizeof(name), k);
		long len = get_value(fd, name, got, sizeof(got));
		if (len == -2) {
			fprintf(stderr, "campaign: GET %s failed or took over 10 s\n", name);
			close(fd);
			return 3;
		}
		int ok = 0;
		if (m->counter) {
			long long v = len < 0 ? 0 : (got[len] = 0, atoll(got));
			if (v == m->count || (m->pend == P_INCR && v == m->count + 1)) {
				ok = 1;
				m->count = v;
				m->present = len >= 0;
			} else if (bad++ < 10) {
				fprintf(stderr, "campaign: %s = %lld, acknowledged %lld%s\n", name, v,
					m->count, m->pend == P_INCR ? " (+1 in flight)" : "");
			}
		} else {
			int is_acked = 0, is_pend = 0;
			if (!m->present)
				is_acked = len == -1;
			else if (len == (long)m->size) {
				c_value(want, m->size, k, m->gen);
				is_acked = !memcmp(got, want, m->size);
			}
			if (m->pend == P_DEL)
				is_pend = len == -1;
			else if (m->pend == P_SET && len == (long)m->psize) {
				c_value(want, m->psize, k, m->pgen);
				is_pend = !memcmp(got, want, m->psize);
			}
			ok = is_acked || is_pend;
			if (!ok && bad++ < 10)
				fprintf(stderr, "campaign: %s: got %ld bytes '%.20s', acknowledged %s gen %u "
					"(%u bytes), in flight %d\n", name, len, len > 0 ? got : "",
					m->present ? "value" : "deleted", m->gen, m->size, m->pend);
			if (is_pend && !is_acked) {
				m->present = m->pend == P_SET;
				m->gen = m->pgen;
				m->size = m->psize;
			}
		}
		m->pend = P_NONE;
		c_checked++;
	}
	close(fd);
	return bad ? 1 : 0;
}

struct cconn {
	int fd, key, op;
	unsigned gen, size;
	double sent;
	char in[256];
	size_t have;
};

static int c_send(struct cconn *c, unsigned r)
{
	static char cmd[C_MAXV + 256], val[C_MAXV];
	char name[32];
	/* Connection i owns keys i, i + C_CONNS, ...: one command per key in
	 * flight, so the order of a key's commands is the order sent. */
	int k = (int)(r % (C_KEYS / C_CONNS)) * C_CONNS + c->key;
	struct mkey *m = &model[k];
	mkey_name(name, sizeof(name), k);
	size_t n;
	r /= C_KEYS;
	if (m->counter) {
		c->op = P_INCR;
		n = (size_t)sprintf(cmd, "*2\r\n$4\r\nINCR\r\n$%zu\r\n%s\r\n", strlen(name), name);
	} else if (r % 5 == 0) {
		c->op = P_DEL;
		n = (size_t)sprintf(cmd, "*2\r\n$3\r\nDEL\r\n$%zu\r\n%s\r\n", strlen(name), name);
	} else {
		c->op = P_SET;
		c->gen = m->gen + 1;
		c->size = c_size(r / 5);
		c_value(val, c->size, k, c->gen);
		n = set_cmd(cmd, name, val, c->size);
	}
	m->pend = c->op;
	m->pgen = c->gen;
	m->psize = c->size;
	c->sent = now();
	c->have = 0;
	c->op |= k << 8;
	if (send_all(c->fd, cmd, n) == 0)
		return 0;
	return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
}

/* The reply to c's command is in c->in: apply it to the model. */
static int c_reply(struct cconn *c)
{
	int k = c->op >> 8, op = c->op & 0xff;
	struct mkey *m = &model[k];
	const char *r = c->in;
	m->pend = P_NONE;
	if (!strncmp(r, "-OOM ", 5)) {
		c_oom++;
		return 0; /* refused: nothing changed */
	}
	if (op == P_SET && !strncmp(r, "+OK", 3)) {
		m->present = 1;
		m->gen = c->gen;
		m->size = c->size;
	} else if (op == P_DEL && r[0] == ':') {
		if (m->present != (atoi(r + 1) == 1)) {
			fprintf(stderr, "campaign: DEL cs:%d answered %s, the model says %s\n", k, r,
				m->present ? "present" : "absent");
			return -1;
		}
		m->present = 0;
	} else if (op == P_INCR && r[0] == ':') {
		long long v = atoll(r + 1);
		if (v != m->count + 1) {
			fprintf(stderr, "campaign: INCR cc:%d gave %lld, the model says %lld\n", k, v,
				m->count + 1);
			return -1;
		}
		m->count = v;
		m->present = 1;
	} else {
		fprintf(stderr, "campaign: unexpected reply to %d on key %d: %.60s\n", op, k, r);
		return -1;
	}
	c_acked++;
	return 0;
}

static int campaign(int port, double secs, const char *path, unsigned seed)
{
	load_model(path);
	int rc = c_verify(port);
	printf("campaign: %ld keys checked against the model\n", c_checked);
	fflush(stdout); /* the driver waits for this line before it kills */
	if (rc || secs <= 0) {
		save_model(path);
		return rc;
	}
	srand(seed);
	struct cconn cs[C_CONNS];
	struct pollfd pf[C_CONNS];
	int alive = 0;
	for (int i = 0; i < C_CONNS; i++) {
		cs[i] = (struct cconn){ .fd = dial(port), .key = i };
		struct timeval tv = { .tv_sec = (long)C_TIMEOUT };
		setsockopt(cs[i].fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		pf[i] = (struct pollfd){ .fd = cs[i].fd, .events = POLLIN };
		int sent = c_send(&cs[i], (unsigned)rand() * 65536u + (unsigned)rand());
		if (sent == -2)
			return save_model(path),
			       fprintf(stderr, "campaign: send blocked %.0f s (wedged)\n", C_TIMEOUT), 3;
		if (sent == 0)
			alive++;
		else
			pf[i].fd = -1;
	}
	double end = now() + secs;
	while (alive && now() < end) {
		poll(pf, C_CONNS, 200);
		for (int i = 0; i < C_CONNS; i++) {
			struct cconn *c = &cs[i];
			if (pf[i].fd < 0)
				continue;
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) {
				if (now() - c->sent > C_TIMEOUT) {
					fprintf(stderr, "campaign: no reply within %.0f s (wedged)\n",
						C_TIMEOUT);
					save_model(path);
					return 3;
				}
				continue;
			}
			ssize_t got = recv(c->fd, c->in + c->have, sizeof(c->in) - 1 - c->have, 0);
			if (got <= 0) { /* the server died: the command stays in flight */
				pf[i].fd = -1;
				alive--;
				continue;
			}
			c->have += (size_t)got;
			c->in[c->have] = 0;
			if (!memchr(c->in, '\n', c->have))
				continue;
			if (c_reply(c) < 0) {
				save_model(path);
				return 1;
			}
			int sent = c_send(c, (unsigned)rand() * 65536u + (unsigned)rand());
			if (sent == -2) {
				fprintf(stderr, "campaign: send blocked %.0f s (wedged)\n", C_TIMEOUT);
				save_model(path);
				return 3;
			}
			if (sent) {
				pf[i].fd = -1;
				alive--;
			}
		}
	}
	for (int i = 0; i < C_CONNS; i++)
		close(cs[i].fd);
	printf("campaign: %ld writes acknowledged, %ld refused (OOM)\n", c_acked, c_oom);
	return save_model(path) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "campaign"))
		return campaign(atoi(argv[2]), atof(argv[3]), argv[4], (unsigned)atol(argv[5]));
	if (argc == 3 && !strcmp(argv[1], "halfclose"))
		return halfclose(atoi(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "crash"))
		return crash(atoi(argv[2]), atoi(argv[3]), atof(argv[4]), argv[5]);
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return verify(atoi(argv[2]), argv[3]);
	if (argc == 7 && !strcmp(argv[1], "overwrite"))
		return overwrite(atoi(argv[2]), atoi(argv[3]), (size_t)atol(argv[4]), atof(argv[5]),
				 atof(argv[6]));
	if (argc == 5 && !strcmp(argv[1], "check"))
		return check(atoi(argv[2]), atoi(argv[3]), (size_t)atol(argv[4]));
	fprintf(stderr, "usage: see the comment at the top of kv_load.c\n");
	return 2;
}
