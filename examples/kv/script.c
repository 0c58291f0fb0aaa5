/* SPDX-License-Identifier: MIT */
/*
 * script.c - EVAL, EVALSHA and SCRIPT for the scripts clients send
 * unasked. pktstore-kv runs no Lua: redis-py's Lock releases, extends and
 * reacquires itself with three fixed scripts, so those three are
 * recognised (by their text, whitespace aside) and run natively, as the
 * compare-and-delete and compare-and-expire they are. Any other script is
 * refused with an error that says so. Like Redis's script cache, the cache
 * of loaded scripts is not durable; what the scripts change is (they are
 * recorded units).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

enum { S_RELEASE = 1, S_EXTEND, S_REACQUIRE };

/* redis-py's texts (redis/lock.py), with runs of white space made one. */
static const struct {
	int kind;
	const char *text;
} known[] = {
	{ S_RELEASE, "local token = redis.call('get', KEYS[1]) if not token or token ~= ARGV[1] "
		     "then return 0 end redis.call('del', KEYS[1]) return 1" },
	{ S_EXTEND, "local token = redis.call('get', KEYS[1]) if not token or token ~= ARGV[1] "
		    "then return 0 end local expiration = redis.call('pttl', KEYS[1]) if not "
		    "expiration then expiration = 0 end if expiration < 0 then return 0 end local "
		    "newttl = ARGV[2] if ARGV[3] == \"0\" then newttl = ARGV[2] + expiration end "
		    "redis.call('pexpire', KEYS[1], newttl) return 1" },
	{ S_REACQUIRE, "local token = redis.call('get', KEYS[1]) if not token or token ~= "
		       "ARGV[1] then return 0 end redis.call('pexpire', KEYS[1], ARGV[2]) "
		       "return 1" },
};

/* The texts are recognised whitespace aside but named by the SHA-1 of the
 * text as sent, so a client can load without end scripts that differ only
 * in spaces. The cache keeps the newest SCRIPT_CACHE_MAX; an older one
 * answers NOSCRIPT, and clients load it again (redis-py's Script does). */
#define SCRIPT_CACHE_MAX 500

struct script_cache {
	uint32_t n, cap;
	struct {
		char sha[41];
		int kind;
	} *e;
};

/* SHA-1 (FIPS 180-4), for script ids. */
static uint32_t rol(uint32_t v, int n)
{
	return (v << n) | (v >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20)
			f = (b & c) | (~b & d), k = 0x5a827999;
		else if (i < 40)
			f = b ^ c ^ d, k = 0x6ed9eba1;
		else if (i < 60)
			f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
		else
			f = b ^ c ^ d, k = 0xca62c1d6;
		uint32_t t = rol(a, 5) + f + e + k + w[i];
		e = d, d = c, c = rol(b, 30), b = a, a = t;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

static void sha1_hex(const char *data, size_t n, char out[41])
{
	uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
	uint8_t blk[64];
	size_t i = 0;
	for (; i + 64 <= n; i += 64)
		sha1_block(h, (const uint8_t *)data + i);
	size_t rest = n - i;
	memset(blk, 0, sizeof(blk));
	memcpy(blk, data + i, rest);
	blk[rest] = 0x80;
	if (rest >= 56) {
		sha1_block(h, blk);
		memset(blk, 0, sizeof(blk));
	}
	uint64_t bits = (uint64_t)n * 8;
	for (int k = 0; k < 8; k++)
		blk[63 - k] = (uint8_t)(bits >> (8 * k));
	sha1_block(h, blk);
	for (int k = 0; k < 5; k++)
		snprintf(out + 8 * k, 9, "%08" PRIx32, h[k]);
}

/* Which known script this text is, whitespace runs aside; 0: none. */
static int recognise(const char *t, size_t n)
{
	char *norm = malloc(n + 1);
	if (!norm)
		return 0;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (isspace((unsigned char)t[i])) {
			if (o && norm[o - 1] != ' ')
				norm[o++] = ' ';
		} else {
			norm[o++] = t[i];
		}
	}
	while (o && norm[o - 1] == ' ')
		o--;
	norm[o] = 0;
	int kind = 0;
	for (size_t k = 0; k < sizeof(known) / sizeof(known[0]) && !kind; k++)
		if (!strcmp(norm, known[k].text))
			kind = known[k].kind;
	free(norm);
	return kind;
}

static int cache_find(const struct kv_server *s, const char *sha, uint32_t n)
{
	const struct script_cache *c = s->scripts;
	for (uint32_t i = 0; c && n == 40 && i < c->n; i++)
		if (!strncasecmp(c->e[i].sha, sha, 40))
			return c->e[i].kind;
	return 0;
}

static int cache_add(struct kv_server *s, const char *sha, int kind)
{
	if (cache_find(s, sha, 40))
		return 0;
	if (!s->scripts && !(s->scripts = calloc(1, sizeof(*s->scripts))))
		return -ENOMEM;
	struct script_cache *c = s->scripts;
	if (c->n == SCRIPT_CACHE_MAX) {
		memmove(&c->e[0], &c->e[1], (c->n - 1) * sizeof(*c->e));
		c->n--;
	}
	if (c->n == c->cap) {
		uint32_t cap = c->cap ? 2 * c->cap : 4;
		void *e = realloc(c->e, cap * sizeof(*c->e));
		if (!e)
			return -ENOMEM;
		c->e = e;
		c->cap = cap;
	}
	memcpy(c->e[c->n].sha, sha, 41);
	c->e[c->n++].kind = kind;
	return 0;
}

static int load(struct cmdctx *x, uint32_t i, char sha[41])
{
	int kind = recognise(arg(x, i), x->argv[i].len);
	if (!kind) {
		r_err(x, "ERR pktstore-kv runs no Lua: only redis-py's Lock scripts are recognised "
			 "(see its README)");
		return 0;
	}
	sha1_hex(arg(x, i), x->argv[i].len, sha);
	cache_add(x->s, sha, kind);
	return kind;
}

/* The token in ARGV[1] is the key's value. */
static struct kentry *owned(struct cmdctx *x, uint32_t key, uint32_t token)
{
	struct kentry *e = lookup(x, x->db, key);
	if (!e || e->ver->vlen != x->argv[token].len)
		return NULL;
	char *buf = malloc(e->ver->vlen + 1);
	int same = buf && pin_copy(e->ver, 0, buf, e->ver->vlen) == e->ver->vlen &&
		   !memcmp(buf, arg(x, token), e->ver->vlen);
	free(buf);
	return same ? e : NULL;
}

static void run(struct cmdctx *x, int kind, uint32_t first)
{
	int64_t nkeys;
	if (arg_i64(x, first, &nkeys))
		return;
	if (nkeys < 0)
		return r_err(x, "ERR Number of keys can't be negative");
	if ((uint64_t)nkeys > x->argc - first - 1)
		return r_err(x, "ERR Number of keys can't be greater than number of args");
	uint32_t key = first + 1, argv1 = first + 1 + (uint32_t)nkeys;
	uint32_t nargs = x->argc - argv1;
	if (nkeys < 1 || nargs < (kind == S_RELEASE ? 1u : kind == S_EXTEND ? 3u : 2u))
		return r_err(x, "ERR the script needs KEYS[1] and its ARGV");
	if (arg_key(x, key) || !recorded(x))
		return;
	struct kentry *e = owned(x, key, argv1);
	if (!e)
		return r_int(x, 0);
	int64_t ms, now = (int64_t)x->now_ms;
	int rc;
	if (kind == S_RELEASE) {
		rc = eff_del(x->u, x->db, e->key, e->klen);
	} else {
		if (arg_i64(x, argv1 + 1, &ms))
			return;
		if (kind == S_EXTEND && !arg_is(x, argv1 + 2, "1")) {
			if (!e->ver->expire_ms)
				return r_int(x, 0); /* pttl -1: the script returns 0 */
			int64_t left = (int64_t)e->ver->expire_ms - now;
			ms += left > 0 ? left : 0;
		}
		rc = ms <= 0 ? eff_del(x->u, x->db, e->key, e->klen)
			     : eff_expire(x->u, x->db, e, (uint64_t)(now + ms));
	}
	if (rc < 0)
		return r_persist_failed(x, rc);
	r_int(x, 1);
}

void c_eval(struct cmdctx *x)
{
	char sha[41];
	int kind = load(x, 1, sha);
	if (kind)
		run(x, kind, 2);
}

void c_evalsha(struct cmdctx *x)
{
	int kind = cache_find(x->s, arg(x, 1), x->argv[1].len);
	if (!kind)
		return r_err(x, "NOSCRIPT No matching script. Please use EVAL.");
	run(x, kind, 2);
}

void c_script_load(struct cmdctx *x)
{
	char sha[41];
	if (load(x, 2, sha))
		r_bulk(x, sha, 40);
}

void c_script_exists(struct cmdctx *x)
{
	r_array(x, x->argc - 2);
	for (uint32_t i = 2; i < x->argc; i++)
		r_int(x, cache_find(x->s, arg(x, i), x->argv[i].len) != 0);
}

uint32_t script_cached(const struct kv_server *s)
{
	return s->scripts ? s->scripts->n : 0;
}

void script_free(struct kv_server *s)
{
	struct script_cache *c = s->scripts;
	if (c) {
		free(c->e);
		free(c);
		s->scripts = NULL;
	}
}

void c_script_flush(struct cmdctx *x)
{
	script_free(x->s);
	r_ok(x);
}
