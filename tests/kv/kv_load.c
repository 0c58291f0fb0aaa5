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
 *       flight when the server died: a SET's value, a DEL, an INCR, a
 *       MULTI/EXEC of a SET and an INCR (all of it or none of it), a SET
 *       with PX (gone once its time is surely up, there with its time
 *       while surely not), a PERSIST. Then those commands (SET of 1 B to
 *       300 KiB) on 4 connections, each owning its keys, one command in
 *       flight each, until the server dies or SECONDS pass; the model goes
 *       back to STATEFILE (what is in flight at SECONDS is seen answered
 *       first). A reply that takes over 10 s is a wedge: exit 3.
 *       SECONDS 0 only checks.
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

/* One reply line into buf (NUL-terminated, LF kept); -1 on error. */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t h = 0;
	while (h < cap - 1) {
		if (recv(fd, buf + h, 1, 0) != 1)
			return -1;
		if (buf[h++] == '\n')
			break;
	}
	buf[h] = 0;
	return 0;
}

/* Read one bulk reply into buf; returns length, -1 for nil, -2 on error. */
static long get_value(int fd, const char *key, char *buf, size_t cap)
{
	char cmd[256];
	int n = snprintf(cmd, sizeof(cmd), "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
	if (send_all(fd, cmd, (size_t)n))
		return -2;
	char hdr[64];
	if (read_line(fd, hdr, sizeof(hdr)) || hdr[0] != '$')
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
#define C_KEYS 56 /* 40 strings, 8 counters, 8 strings with expiry */
#define C_STR 40
#define C_CTR 48
#define C_MAXV (300u << 10)
#define C_TIMEOUT (10.0 * (double)time_scale())
/* Slack between the client's clock and the record times the server uses. */
#define C_SLACK_MS 200

enum { P_NONE, P_SET, P_DEL, P_INCR, P_TXN, P_SETPX, P_PERSIST };

struct mkey {
	int present;      /* acknowledged state */
	unsigned gen;
	unsigned size;
	long long count;
	long long exp_lo, exp_hi; /* expiry within [lo, hi] (wall ms), 0: none */
	int pend;         /* command in flight when the server died */
	unsigned pgen, psize;
	long long pexp_lo; /* P_SETPX: expiry no earlier than this */
	int ptx;          /* in flight as part of transaction ptx (0: none) */
};

static struct mkey model[C_KEYS];
static long c_checked, c_acked, c_oom, c_txn, c_expired;

static int kind(int k)
{
	return k < C_STR ? 's' : k < C_CTR ? 'c' : 'e';
}

static void mkey_name(char *b, size_t n, int k)
{
	snprintf(b, n, "c%c:%d", kind(k), k);
}

static long long wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	memset(model, 0, sizeof(model));
	if (!f)
		return 0;
	int k, present, pend, ptx;
	unsigned gen, size, pgen, psize;
	long long count, lo, hi, plo;
	while (fscanf(f, "%d %d %u %u %lld %lld %lld %d %u %u %lld %d", &k, &present, &gen, &size,
		      &count, &lo, &hi, &pend, &pgen, &psize, &plo, &ptx) == 12)
		if (k >= 0 && k < C_KEYS)
			model[k] = (struct mkey){ present, gen, size, count, lo, hi, pend, pgen, psize,
						  plo, ptx };
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
		fprintf(f, "%d %d %u %u %lld %lld %lld %d %u %u %lld %d\n", k, m->present, m->gen,
			m->size, m->count, m->exp_lo, m->exp_hi, m->pend, m->pgen, m->psize, m->pexp_lo,
			m->ptx);
	}
	return fclose(f);
}

/* PTTL of a key, or -3 on a failed request. */
static long long pttl(int fd, const char *key)
{
	char cmd[128], r[64];
	int n = snprintf(cmd, sizeof(cmd), "*2\r\n$4\r\nPTTL\r\n$%zu\r\n%s\r\n", strlen(key), key);
	if (send_all(fd, cmd, (size_t)n))
		return -3;
	if (read_line(fd, r, sizeof(r)))
		return -3;
	return r[0] == ':' ? atoll(r + 1) : -3;
}

/* Whether a string key's value is (present, gen, size). */
static int value_is(const char *got, long len, int k, int present, unsigned gen, unsigned size)
{
	static char want[C_MAXV + 16];
	if (!present)
		return len == -1;
	if (len != (long)size)
		return 0;
	c_value(want, size, k, gen);
	return !memcmp(got, want, size);
}

/*
 * Every key holds its acknowledged state or its in-flight command's; a key
 * with a time holds it within the time's bounds (a key whose time is
 * surely up is gone, one whose time is surely not up is there, with the
 * time it had); the keys of one transaction are all at their acknowledged
 * state or all at the transaction's. The model then takes what the server
 * holds.
 */
static int c_verify(int port)
{
	int fd = dial(port), bad = 0;
	static char got[C_MAXV + 16];
	/* Keys of each in-flight transaction (one per connection at most). */
	struct {
		int id, acked, pend;
	} tx[C_CONNS * 2] = { { 0 } };
	long long now = wall_ms();
	for (int k = 0; k < C_KEYS; k++) {
		struct mkey *m = &model[k];
		char name[32];
		mkey_name(name, sizeof(name), k);
		now = wall_ms(); /* before the requests; `after` once answered */
		long len = get_value(fd, name, got, sizeof(got));
		if (len == -2) {
			fprintf(stderr, "campaign: GET %s failed or took over 10 s\n", name);
			close(fd);
			return 3;
		}
		int is_acked = 0, is_pend = 0;
		if (kind(k) == 'c') {
			long long v = len < 0 ? 0 : (got[len] = 0, atoll(got));
			is_acked = v == m->count;
			is_pend = (m->pend == P_INCR || m->pend == P_TXN) && v == m->count + 1;
			if (is_pend && !is_acked)
				m->count = v;
			m->present = len >= 0;
		} else if (kind(k) == 's') {
			is_acked = value_is(got, len, k, m->present, m->gen, m->size);
			if (m->pend == P_DEL)
				is_pend = len == -1;
			else if (m->pend == P_SET || m->pend == P_TXN)
				is_pend = value_is(got, len, k, 1, m->pgen, m->psize);
			if (is_pend && !is_acked) {
				m->present = m->pend != P_DEL;
				m->gen = m->pgen;
				m->size = m->psize;
			}
		} else {
			/* Expiring strings: which states the clock allows. */
			long long t = len >= 0 ? pttl(fd, name) : -2, after = wall_ms();
			/* PTTL is -1 for a key without a time and -2 for one that
			 * is gone (its time came between the GET and the PTTL):
			 * neither is a time, however near the bounds come to 0. */
			if (t == -2)
				len = -1;
			int gone = m->exp_hi && now > m->exp_hi + C_SLACK_MS;
			int there = !m->exp_lo || after < m->exp_lo - C_SLACK_MS;
			int acked_val = value_is(got, len, k, 1, m->gen, m->size);
			if (!m->present || gone)
				is_acked = len == -1;
			else if (there)
				is_acked = acked_val;
			else
				is_acked = len == -1 || acked_val;
			/* With the time it had: none, or within its bounds. */
			if (is_acked && len >= 0)
				is_acked = !m->exp_lo ? t == -1
					   : t >= 0 && t >= m->exp_lo - after - C_SLACK_MS &&
					     t <= m->exp_hi - now + C_SLACK_MS;
			if (m->pend == P_SETPX)
				is_pend = len == -1 || (value_is(got, len, k, 1, m->pgen, m->psize) &&
							t >= 0 && t >= m->pexp_lo - after - C_SLACK_MS);
			else if (m->pend == P_PERSIST)
				is_pend = acked_val && m->present && t == -1;
			if (is_pend && !is_acked) {
				if (m->pend == P_SETPX) {
					m->present = len >= 0;
					m->gen = m->pgen;
					m->size = m->psize;
					m->exp_lo = m->pexp_lo;
					m->exp_hi = now + t + C_SLACK_MS;
				} else {
					m->exp_lo = m->exp_hi = 0;
				}
			}
			if (len == -1 && m->present) {
				c_expired++;
				m->present = 0;
				m->exp_lo = m->exp_hi = 0;
			}
		}
		if (!is_acked && !is_pend && bad++ < 10)
			fprintf(stderr, "campaign: %s: got %ld bytes '%.20s'; acknowledged %s gen %u "
				"(%u bytes, count %lld, expiry %lld..%lld, now %lld), in flight %d\n",
				name, len, len > 0 ? got : "", m->present ? "value" : "absent", m->gen,
				m->size, m->count, m->exp_lo, m->exp_hi, now, m->pend);
		if (!is_acked && !is_pend && kind(k) == 'e')
			fprintf(stderr, "campaign: %s: PTTL %lld\n", name, pttl(fd, name));
		if (m->ptx) {
			int t = 0;
			while (t < C_CONNS * 2 - 1 && tx[t].id && tx[t].id != m->ptx)
				t++;
			tx[t].id = m->ptx;
			/* Counted only where the two states differ. */
			tx[t].acked += is_acked && !is_pend;
			tx[t].pend += is_pend && !is_acked;
		}
		m->pend = P_NONE;
		m->ptx = 0;
		c_checked++;
	}
	close(fd);
	for (int t = 0; t < C_CONNS * 2; t++)
		if (tx[t].acked && tx[t].pend) {
			fprintf(stderr, "campaign: transaction %d applied in part: %d keys without it, "
				"%d with it\n", tx[t].id, tx[t].acked, tx[t].pend);
			bad++;
		}
	return bad ? 1 : 0;
}

struct cconn {
	int fd, key, op, k2;
	unsigned gen, size;
	long long exp_lo;
	double sent;
	int lines;        /* reply lines expected */
	char in[512];
	size_t have;
};

static size_t bulk(char *out, const char *s, size_t n)
{
	size_t h = (size_t)sprintf(out, "$%zu\r\n", n);
	memcpy(out + h, s, n);
	memcpy(out + h + n, "\r\n", 2);
	return h + n + 2;
}

static int digits(long long v)
{
	int n = 1;
	while (v >= 10)
		v /= 10, n++;
	return n;
}

/*
 * A transaction the server can only apply whole or refuse whole: neither
 * command needs more room than the value it replaces (a SET no longer than
 * the key's value, an INCR that adds no digit), so no command inside EXEC
 * is refused for room while another applies. Only then is "all or nothing"
 * a property of recovery alone.
 */
static int txn_fits(const struct mkey *m, int counter)
{
	long long n = model[counter].count;
	return m->present && m->size > 0 && model[counter].present && n > 0 &&
	       digits(n + 1) == digits(n);
}

static int c_send(struct cconn *c, unsigned r)
{
	static char cmd[C_MAXV + 512], val[C_MAXV];
	char name[32], name2[32], num[24];
	/* Connection i owns keys i, i + C_CONNS, ...: one command per key in
	 * flight, so the order of a key's commands is the order sent. */
	int k = (int)(r % (C_KEYS / C_CONNS)) * C_CONNS + c->key;
	struct mkey *m = &model[k];
	mkey_name(name, sizeof(name), k);
	size_t n;
	r /= C_KEYS;
	c->lines = 1;
	c->k2 = -1;
	if (kind(k) == 'c') {
		c->op = P_INCR;
		n = (size_t)sprintf(cmd, "*2\r\n$4\r\nINCR\r\n$%zu\r\n%s\r\n", strlen(name), name);
	} else if (kind(k) == 'e') {
		c->gen = m->gen + 1;
		c->size = 1 + r % 200;
		if (r % 4 == 0 && m->present) {
			c->op = P_PERSIST;
			n = (size_t)sprintf(cmd, "*2\r\n$7\r\nPERSIST\r\n$%zu\r\n%s\r\n", strlen(name), name);
		} else {
			/* Times from 50 ms (expired by the next check) to 5 s. */
			unsigned ttl = r % 3 ? 2000 + r % 3000 : 50 + r % 400;
			c->op = P_SETPX;
			c->exp_lo = wall_ms() + ttl;
			c_value(val, c->size, k, c->gen);
			snprintf(num, sizeof(num), "%u", ttl);
			n = (size_t)sprintf(cmd, "*5\r\n$3\r\nSET\r\n");
			n += bulk(cmd + n, name, strlen(name));
			n += bulk(cmd + n, val, c->size);
			n += bulk(cmd + n, "PX", 2);
			n += bulk(cmd + n, num, strlen(num));
		}
	} else if (r % 7 == 0) {
		c->op = P_DEL;
		n = (size_t)sprintf(cmd, "*2\r\n$3\r\nDEL\r\n$%zu\r\n%s\r\n", strlen(name), name);
	} else if (r % 7 == 1 && txn_fits(m, C_STR + c->key + C_CONNS * (int)(r % 2))) {
		/* A transaction: a SET of this key and an INCR of one of the
		 * connection's counters, in one write. */
		c->op = P_TXN;
		c->gen = m->gen + 1;
		c->size = 1 + r % (m->size < 100 ? m->size : 100);
		c->k2 = C_STR + c->key + C_CONNS * (int)(r % 2);
		c->lines = 6;
		mkey_name(name2, sizeof(name2), c->k2);
		c_value(val, c->size, k, c->gen);
		n = (size_t)sprintf(cmd, "*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n");
		n += bulk(cmd + n, name, strlen(name));
		n += bulk(cmd + n, val, c->size);
		n += (size_t)sprintf(cmd + n, "*2\r\n$4\r\nINCR\r\n");
		n += bulk(cmd + n, name2, strlen(name2));
		n += (size_t)sprintf(cmd + n, "*1\r\n$4\r\nEXEC\r\n");
		static int txid;
		txid++;
		model[c->k2].pend = P_TXN;
		model[c->k2].ptx = txid;
		m->ptx = txid;
	} else {
		c->op = P_SET;
		c->gen = m->gen + 1;
		c->size = c_size(r / 7);
		c_value(val, c->size, k, c->gen);
		n = set_cmd(cmd, name, val, c->size);
	}
	m->pend = c->op;
	m->pgen = c->gen;
	m->psize = c->size;
	m->pexp_lo = c->exp_lo;
	c->sent = now();
	c->have = 0;
	c->op |= k << 8;
	if (send_all(c->fd, cmd, n) == 0)
		return 0;
	return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
}

/* Line i (from 0) of a reply, or NULL. */
static const char *line_of(const char *r, int i)
{
	for (; i > 0 && r; i--) {
		r = strchr(r, '\n');
		r = r ? r + 1 : NULL;
	}
	return r;
}

static int counter_reply(int k, const char *r)
{
	struct mkey *m = &model[k];
	long long v = atoll(r + 1);
	if (v != m->count + 1) {
		fprintf(stderr, "campaign: INCR cc:%d gave %lld, the model says %lld\n", k, v,
			m->count + 1);
		return -1;
	}
	m->count = v;
	m->present = 1;
	m->pend = P_NONE;
	m->ptx = 0;
	return 0;
}

/* The reply to c's command is in c->in: apply it to the model. */
static int c_reply(struct cconn *c)
{
	int k = c->op >> 8, op = c->op & 0xff;
	struct mkey *m = &model[k];
	const char *r = c->in;
	m->pend = P_NONE;
	m->ptx = 0;
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
		return counter_reply(k, r) ? -1 : (c_acked++, 0);
	} else if (op == P_SETPX && !strncmp(r, "+OK", 3)) {
		m->present = 1;
		m->gen = c->gen;
		m->size = c->size;
		m->exp_lo = c->exp_lo;
		/* Sent at exp_lo - ttl, applied by now: the time is within these. */
		m->exp_hi = c->exp_lo + (long long)((now() - c->sent) * 1000) + 1;
	} else if (op == P_PERSIST && r[0] == ':') {
		/* 0: no time to remove (none, or the key is gone). */
		if (atoi(r + 1) == 1) {
			m->exp_lo = m->exp_hi = 0;
		} else if (m->present && m->exp_lo && wall_ms() < m->exp_lo - C_SLACK_MS) {
			fprintf(stderr, "campaign: PERSIST ce:%d answered 0 while its time was not up\n", k);
			return -1;
		} else if (m->exp_lo) {
			m->present = 0; /* it had expired */
			m->exp_lo = m->exp_hi = 0;
		}
	} else if (op == P_TXN && r[0] == '+') {
		const char *set = line_of(r, 4), *incr = line_of(r, 5), *hdr = line_of(r, 3);
		struct mkey *m2 = &model[c->k2];
		m2->pend = P_NONE;
		m2->ptx = 0;
		if (hdr && !strncmp(hdr, "-EXECABORT", 10)) {
			c_oom++; /* refused while queueing: memory was full */
			return 0;
		}
		if (!hdr || strncmp(hdr, "*2", 2)) {
			fprintf(stderr, "campaign: EXEC answered %.60s\n", hdr ? hdr : r);
			return -1;
		}
		if (!strncmp(set, "+OK", 3)) {
			m->present = 1;
			m->gen = c->gen;
			m->size = c->size;
		} else if (!strncmp(set, "-OOM ", 5)) {
			c_oom++;
		} else {
			fprintf(stderr, "campaign: SET in EXEC answered %.60s\n", set);
			return -1;
		}
		if (incr[0] == ':' && counter_reply(c->k2, incr))
			return -1;
		if (!strncmp(incr, "-OOM ", 5))
			c_oom++;
		c_txn++;
	} else {
		fprintf(stderr, "campaign: unexpected reply to %d on key %d: %.60s\n", op, k, r);
		return -1;
	}
	c_acked++;
	return 0;
}

/* Whether c->in holds the whole reply: one line, or a transaction's six
 * (four when EXEC refuses it). */
static int reply_complete(const struct cconn *c)
{
	int n = 0;
	for (size_t i = 0; i < c->have; i++)
		n += c->in[i] == '\n';
	if (c->lines == 1 || n >= c->lines)
		return n >= 1;
	const char *exec = line_of(c->in, 3);
	return n >= 4 && exec && exec[0] == '-';
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
	/* Past SECONDS nothing more is sent, but what is in flight is seen
	 * answered (or the server dies): a command on a connection closed
	 * unanswered may still apply after the next check has begun, even
	 * after that check's own requests (nothing orders two connections, and
	 * a connection the arena's room starved is received when room comes
	 * back), so that check could not tell its state from a later one. */
	double end = now() + secs;
	while (alive) {
		int stopping = now() >= end;
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
			if (!reply_complete(c) && c->have < sizeof(c->in) - 1)
				continue;
			if (c_reply(c) < 0) {
				save_model(path);
				return 1;
			}
			if (stopping) {
				pf[i].fd = -1;
				alive--;
				continue;
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
	printf("campaign: %ld writes acknowledged, %ld refused (OOM), %ld transactions, %ld keys "
	       "seen expired\n",
	       c_acked, c_oom, c_txn, c_expired);
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
