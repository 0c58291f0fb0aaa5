/* SPDX-License-Identifier: MIT */
/*
 * util.c - numbers and patterns the way Redis reads and writes them.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* Decimal digits only, an optional '-', no leading zero (but "0" itself),
 * no "-0", and within int64: what Redis accepts as an integer. */
int str_to_i64(const char *s, size_t n, int64_t *out)
{
	if (!n || n > 20)
		return -1;
	if (n == 1 && s[0] == '0') {
		*out = 0;
		return 0;
	}
	size_t i = s[0] == '-';
	if (i == n || s[i] < '1' || s[i] > '9')
		return -1;
	uint64_t v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (s[0] == '-') {
		if (v > (uint64_t)INT64_MAX + 1)
			return -1;
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return -1;
		*out = (int64_t)v;
	}
	return 0;
}

/* What strtold reads, all of it, with no leading space, no NaN and no
 * overflow to infinity. */
int str_to_ld(const char *s, size_t n, long double *out)
{
	char buf[KV_LONG_DOUBLE_MAX_CHARS];
	if (!n || n >= sizeof(buf) || isspace((unsigned char)s[0]))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (memchr(buf, 0, n))
		return -1;
	char *end;
	errno = 0;
	long double v = strtold(buf, &end);
	if (end != buf + n || isnan(v) || errno == EINVAL ||
	    (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || v == 0)))
		return -1;
	*out = v;
	return 0;
}

/* Seventeen decimals, then the trailing zeros (and a bare '.') dropped:
 * small decimals read back as the user wrote them. */
int ld_to_str(char *buf, size_t len, long double v)
{
	if (isinf(v))
		return snprintf(buf, len, "%s", v > 0 ? "inf" : "-inf");
	int n = snprintf(buf, len, "%.17Lf", v);
	if (n < 0 || (size_t)n >= len)
		return -1;
	if (strchr(buf, '.')) {
		while (n > 0 && buf[n - 1] == '0')
			n--;
		if (n > 0 && buf[n - 1] == '.')
			n--;
	}
	if (n == 2 && buf[0] == '-' && buf[1] == '0')
		buf[0] = '0', n = 1;
	buf[n] = 0;
	return n;
}

static int fold(int c, int nocase)
{
	return nocase ? tolower(c) : c;
}

/* One pattern element at *pi against character c; *pi moves past it. */
static int element(const char *p, size_t plen, size_t *pi, unsigned char c, int nocase)
{
	size_t i = *pi;
	if (p[i] == '?') {
		*pi = i + 1;
		return 1;
	}
	if (p[i] == '[') {
		i++;
		int neg = i < plen && p[i] == '^', match = 0;
		i += (size_t)neg;
		while (i < plen && p[i] != ']') {
			if (p[i] == '\\' && i + 1 < plen) {
				match |= (unsigned char)p[i + 1] == c;
				i += 2;
			} else if (i + 2 < plen && p[i + 1] == '-') {
				int lo = fold((unsigned char)p[i], nocase);
				int hi = fold((unsigned char)p[i + 2], nocase);
				int x = fold(c, nocase);
				if (lo > hi) {
					int t = lo;
					lo = hi;
					hi = t;
				}
				match |= x >= lo && x <= hi;
				i += 3;
			} else {
				match |= fold((unsigned char)p[i], nocase) == fold(c, nocase);
				i++;
			}
		}
		*pi = i < plen ? i + 1 : i;
		return neg ? !match : match;
	}
	if (p[i] == '\\' && i + 1 < plen)
		i++;
	*pi = i + 1;
	return fold((unsigned char)p[i], nocase) == fold(c, nocase);
}

/*
 * Glob-style match: *, ?, [abc], [^a-z], backslash escapes. Every element
 * but '*' takes exactly one character, so on a mismatch only the most
 * recent '*' needs to take one more: linear in the string for each star,
 * never exponential (KEYS a*a*a*...b on a long key).
 */
int glob_match(const char *pat, size_t plen, const char *s, size_t slen, int nocase)
{
	size_t pi = 0, si = 0, star = SIZE_MAX, star_si = 0;
	while (si < slen) {
		if (pi < plen && pat[pi] == '*') {
			while (pi < plen && pat[pi] == '*')
				pi++;
			if (pi == plen)
				return 1;
			star = pi;
			star_si = si;
			continue;
		}
		size_t next = pi;
		if (pi < plen && element(pat, plen, &next, (unsigned char)s[si], nocase)) {
			pi = next;
			si++;
			continue;
		}
		if (star == SIZE_MAX)
			return 0;
		pi = star;
		si = ++star_si;
	}
	while (pi < plen && pat[pi] == '*')
		pi++;
	return pi == plen;
}

/*
 * SipHash-1-3 (Aumasson and Bernstein's keyed hash; one round per word,
 * three to finish) under a key drawn at start. Keys come from the network:
 * a hash anyone can compute lets one client send keys that all share a
 * bucket and make every insert walk them all. An unkeyed multiply-mix hash
 * fell to solving for one word; seeding it did not help, as a flipped top
 * bit passes its multiply unchanged and the next word cancels it.
 */
static uint64_t sip_k0, sip_k1;

void kv_hash_init(void)
{
	uint64_t k[2];

	if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
		/* No entropy source: still unpredictable from outside. */
		struct timespec t;

		clock_gettime(CLOCK_MONOTONIC, &t);
		k[0] = (uint64_t)t.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
		k[1] = (uint64_t)t.tv_sec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)(uintptr_t)&t;
	}
	sip_k0 = k[0];
	sip_k1 = k[1];
}

static inline uint64_t rotl(uint64_t x, int b)
{
	return x << b | x >> (64 - b);
}

#define SIPROUND                                                                            \
	do {                                                                                \
		v0 += v1, v1 = rotl(v1, 13), v1 ^= v0, v0 = rotl(v0, 32);                   \
		v2 += v3, v3 = rotl(v3, 16), v3 ^= v2;                                      \
		v0 += v3, v3 = rotl(v3, 21), v3 ^= v0;                                      \
		v2 += v1, v1 = rotl(v1, 17), v1 ^= v2, v2 = rotl(v2, 32);                   \
	} while (0)

uint64_t kv_siphash13(uint64_t k0, uint64_t k1, const char *k, uint32_t n)
{
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	uint64_t last = (uint64_t)n << 56, m;
	uint32_t left = n;

	for (; left >= 8; k += 8, left -= 8) {
		memcpy(&m, k, 8); /* little-endian words, as the algorithm reads them */
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for (uint32_t i = 0; i < left; i++)
		last |= (uint64_t)(uint8_t)k[i] << (8 * i);
	v3 ^= last;
	SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

uint32_t kv_hash(const char *k, uint32_t n)
{
	uint64_t h = kv_siphash13(sip_k0, sip_k1, k, n);

	return (uint32_t)(h ^ (h >> 32));
}
