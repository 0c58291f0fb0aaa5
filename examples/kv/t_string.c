/* SPDX-License-Identifier: MIT */
/*
 * t_string.c - the string commands. Those whose effect follows from their
 * own bytes (SET, MSET, GETSET, GETDEL, SETEX) are replayed; those that
 * read what the key held first (INCR, APPEND, SET NX...) are recorded
 * (unit.h). Every key holds a string, so WRONGTYPE never happens.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

enum {
	SET_NX = 1 << 0,
	SET_XX = 1 << 1,
	SET_GET = 1 << 2,
	SET_KEEPTTL = 1 << 3,
	SET_PERSIST = 1 << 4,
	SET_EX = 1 << 5,
	SET_PX = 1 << 6,
	SET_EXAT = 1 << 7,
	SET_PXAT = 1 << 8,
};

#define SET_EXPIRES (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

static void invalid_expire(struct cmdctx *x)
{
	r_errf(x, "ERR invalid expire time in '%s' command", x->cmd->name);
}

/*
 * An expiry argument in `unit` (1000: seconds, 1: ms), relative to the
 * command's time unless absolute: the absolute time in ms, or -1 after
 * replying Redis's error. Relative times resolve against the time of the
 * record that completed the command, so replay resolves them the same.
 */
static int64_t expire_arg(struct cmdctx *x, uint32_t i, int64_t unit, int absolute)
{
	int64_t v;
	if (arg_i64(x, i, &v))
		return -1;
	if (v <= 0 || (unit == 1000 && v > INT64_MAX / 1000)) {
		invalid_expire(x);
		return -1;
	}
	v *= unit;
	if (!absolute) {
		if (v > INT64_MAX - (int64_t)x->now_ms) {
			invalid_expire(x);
			return -1;
		}
		v += (int64_t)x->now_ms;
	}
	return v;
}

/*
 * SET and GETEX options, as Redis reads them; -1 after the error reply.
 * *exp_arg is the expiry's argument (0: none); SET checks it at once,
 * GETEX only once the key is found (expiry_of()), as Redis does.
 */
static int parse_opts(struct cmdctx *x, uint32_t from, int is_set, unsigned *flags,
		      uint32_t *exp_arg)
{
	*flags = 0;
	*exp_arg = 0;
	for (uint32_t j = from; j < x->argc; j++) {
		int more = j + 1 < x->argc;
		unsigned f = *flags;
		if (arg_is(x, j, "NX") && !(f & SET_XX) && is_set) {
			*flags |= SET_NX;
		} else if (arg_is(x, j, "XX") && !(f & SET_NX) && is_set) {
			*flags |= SET_XX;
		} else if (arg_is(x, j, "GET") && is_set) {
			*flags |= SET_GET;
		} else if (arg_is(x, j, "KEEPTTL") && !(f & (SET_PERSIST | SET_EXPIRES)) && is_set) {
			*flags |= SET_KEEPTTL;
		} else if (arg_is(x, j, "PERSIST") && !(f & SET_EXPIRES) && !is_set) {
			*flags |= SET_PERSIST;
		} else if (more && arg_is(x, j, "EX") &&
			   !(f & (SET_KEEPTTL | SET_PERSIST | SET_EXAT | SET_PX | SET_PXAT))) {
			*flags |= SET_EX;
			*exp_arg = ++j;
		} else if (more && arg_is(x, j, "PX") &&
			   !(f & (SET_KEEPTTL | SET_PERSIST | SET_EX | SET_EXAT | SET_PXAT))) {
			*flags |= SET_PX;
			*exp_arg = ++j;
		} else if (more && arg_is(x, j, "EXAT") &&
			   !(f & (SET_KEEPTTL | SET_PERSIST | SET_EX | SET_PX | SET_PXAT))) {
			*flags |= SET_EXAT;
			*exp_arg = ++j;
		} else if (more && arg_is(x, j, "PXAT") &&
			   !(f & (SET_KEEPTTL | SET_PERSIST | SET_EX | SET_EXAT | SET_PX))) {
			*flags |= SET_PXAT;
			*exp_arg = ++j;
		} else {
			r_syntax(x);
			return -1;
		}
	}
	return 0;
}

/* The absolute expiry the options ask for (0: none), or -1 after the error. */
static int64_t expiry_of(struct cmdctx *x, unsigned flags, uint32_t exp_arg)
{
	if (!(flags & SET_EXPIRES))
		return 0;
	int64_t unit = flags & (SET_EX | SET_EXAT) ? 1000 : 1;
	return expire_arg(x, exp_arg, unit, !!(flags & (SET_EXAT | SET_PXAT)));
}

static int too_big(struct cmdctx *x, uint64_t len)
{
	if (len <= x->s->cfg.max_value)
		return 0;
	r_err(x, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
	return 1;
}

static int fits_value(struct cmdctx *x, uint32_t keyarg, uint64_t vlen)
{
	struct kv_server *s = x->s;
	const char *k = arg(x, keyarg);
	uint32_t kl = x->argv[keyarg].len;
	return !refused(x, ks_charge(s, kl, vlen), ks_charge_of(s, x->db, k, kl));
}

/*
 * Whether a value argument is not a slice of the stream (an inline command
 * unescaped it): the version cannot point at its bytes, so the command's
 * effect is recorded with the bytes in it.
 */
static int synthetic(struct cmdctx *x, uint32_t from, uint32_t step)
{
	for (uint32_t i = from; i < x->argc; i += step)
		if (x->argv[i].seq == KV_ARG_SYNTHETIC)
			return 1;
	return 0;
}

/* key := argument vi, expiring at expire_ms (0: never). */
static int set_arg(struct cmdctx *x, uint32_t keyarg, uint32_t vi, uint64_t expire_ms)
{
	const char *k = arg(x, keyarg);
	uint32_t kl = x->argv[keyarg].len;
	int rc = x->argv[vi].seq == KV_ARG_SYNTHETIC
			 ? eff_set_bytes(x->u, x->db, k, kl, arg(x, vi), x->argv[vi].len, expire_ms)
			 : eff_set_stream(x->u, x->db, k, kl, x->argv[vi].seq, x->argv[vi].len,
					  expire_ms);
	if (rc < 0)
		r_persist_failed(x, rc);
	return rc;
}

void c_get(struct cmdctx *x)
{
	if (arg_key(x, 1))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (e)
		r_value(x, e->ver);
	else
		r_nil(x);
}

void c_set(struct cmdctx *x)
{
	unsigned fl;
	uint32_t ea;
	int64_t expire;
	if (parse_opts(x, 3, 1, &fl, &ea) || (expire = expiry_of(x, fl, ea)) < 0 || arg_key(x, 1))
		return;
	/* What these decide depends on what the key held. */
	if (((fl & (SET_NX | SET_XX | SET_KEEPTTL)) || synthetic(x, 2, x->argc)) && !recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (((fl & SET_NX) && e) || ((fl & SET_XX) && !e)) {
		if (!(fl & SET_GET))
			r_nil(x);
		else if (e)
			r_value(x, e->ver);
		else
			r_nil(x);
		return;
	}
	if (fl & SET_KEEPTTL)
		expire = e ? (int64_t)e->ver->expire_ms : 0;
	if (!fits_value(x, 1, x->argv[2].len))
		return;
	if (fl & SET_GET) {
		if (e)
			r_value(x, e->ver); /* the reply holds its records */
		else
			r_nil(x);
	}
	if (set_arg(x, 1, 2, (uint64_t)expire) == 0 && !(fl & SET_GET))
		r_ok(x);
}

void c_setnx(struct cmdctx *x)
{
	if (arg_key(x, 1) || !recorded(x))
		return;
	if (lookup(x, x->db, 1))
		return r_int(x, 0);
	if (fits_value(x, 1, x->argv[2].len) && set_arg(x, 1, 2, 0) == 0)
		r_int(x, 1);
}

/* SETEX, PSETEX. */
void c_setex(struct cmdctx *x)
{
	if (arg_key(x, 1))
		return;
	int64_t expire = expire_arg(x, 2, x->cmd->variant & V_MS ? 1 : 1000, 0);
	if (expire < 0 || (synthetic(x, 3, x->argc) && !recorded(x)) ||
	    !fits_value(x, 1, x->argv[3].len))
		return;
	if (set_arg(x, 1, 3, (uint64_t)expire) == 0)
		r_ok(x);
}

void c_getset(struct cmdctx *x)
{
	if (arg_key(x, 1) || (synthetic(x, 2, x->argc) && !recorded(x)))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (!fits_value(x, 1, x->argv[2].len))
		return;
	if (e)
		r_value(x, e->ver);
	else
		r_nil(x);
	set_arg(x, 1, 2, 0);
}

void c_getdel(struct cmdctx *x)
{
	if (arg_key(x, 1))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (!e)
		return r_nil(x);
	r_value(x, e->ver);
	eff_del(x->u, x->db, arg(x, 1), x->argv[1].len);
}

void c_getex(struct cmdctx *x)
{
	unsigned fl;
	uint32_t ea;
	if (parse_opts(x, 2, 0, &fl, &ea) || arg_key(x, 1))
		return;
	/* Without options it only reads; with them it changes the expiry of
	 * what is there, which replay cannot know. */
	if (fl && !recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (!e)
		return r_nil(x);
	int64_t expire = expiry_of(x, fl, ea);
	if (expire < 0)
		return;
	r_value(x, e->ver);
	int rc = 0;
	if ((fl & (SET_EXAT | SET_PXAT)) && (uint64_t)expire <= x->now_ms)
		rc = eff_del(x->u, x->db, e->key, e->klen); /* already past: Redis deletes it */
	else if (fl & SET_EXPIRES)
		rc = eff_expire(x->u, x->db, e, (uint64_t)expire);
	else if ((fl & SET_PERSIST) && e->ver->expire_ms)
		rc = eff_expire(x->u, x->db, e, 0);
	if (rc < 0)
		r_persist_failed(x, rc);
}

void c_mget(struct cmdctx *x)
{
	r_array(x, x->argc - 1);
	for (uint32_t i = 1; i < x->argc; i++) {
		struct kentry *e = x->argv[i].len <= KV_MAX_KEY ? lookup(x, x->db, i) : NULL;
		if (e)
			r_value(x, e->ver);
		else
			r_nil(x);
	}
}

/* MSET: the last value given for a key is the one that stays, so what the
 * command adds is counted from the last pair back, each key once, found
 * repeated through a table of the keys seen (MSET of 100,000 keys is a bulk
 * load, not a reason to compare every key with every other). */
static int mset_fits(struct cmdctx *x)
{
	struct kv_server *s = x->s;
	uint32_t pairs = (x->argc - 1) / 2, nb = 16;
	while (nb < 2 * pairs)
		nb <<= 1;
	uint32_t *seen = calloc(nb, sizeof(*seen)); /* argument index of a key, 0: empty */
	const char **key = malloc(pairs * sizeof(*key));
	if (!seen || !key) {
		free(seen);
		free(key);
		r_oom(x);
		return 0;
	}
	uint64_t add = 0, sub = 0;
	for (uint32_t p = pairs; p > 0; p--) {
		uint32_t i = 2 * p - 1, len = x->argv[i].len;
		const char *k = key[p - 1] = arg(x, i);
		uint32_t h = kv_hash(k, len) & (nb - 1);
		int later = 0;
		for (; seen[h] && !later; h = (h + 1) & (nb - 1))
			later = x->argv[seen[h]].len == len &&
				!memcmp(key[(seen[h] - 1) / 2], k, len);
		if (later)
			continue;
		seen[h] = i;
		add += ks_charge(s, len, x->argv[i + 1].len);
		sub += ks_charge_of(s, x->db, k, len);
	}
	free(seen);
	free(key);
	return !refused(x, add, sub);
}

static int mset_args_ok(struct cmdctx *x)
{
	if (x->argc % 2 == 0) {
		r_arity(x);
		return 0;
	}
	for (uint32_t i = 1; i < x->argc; i += 2)
		if (arg_key(x, i))
			return 0;
	return 1;
}

static void mset_all(struct cmdctx *x)
{
	for (uint32_t i = 1; i < x->argc; i += 2)
		if (set_arg(x, i, i + 1, 0) < 0)
			return;
}

void c_mset(struct cmdctx *x)
{
	if (!mset_args_ok(x) || (synthetic(x, 2, 2) && !recorded(x)) || !mset_fits(x))
		return;
	mset_all(x);
	r_ok(x);
}

void c_msetnx(struct cmdctx *x)
{
	if (!mset_args_ok(x) || !recorded(x))
		return;
	for (uint32_t i = 1; i < x->argc; i += 2)
		if (lookup(x, x->db, i))
			return r_int(x, 0);
	if (!mset_fits(x))
		return;
	mset_all(x);
	r_int(x, 1);
}

void c_strlen(struct cmdctx *x)
{
	if (arg_key(x, 1))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	r_int(x, e ? e->ver->vlen : 0);
}

void c_getrange(struct cmdctx *x)
{
	int64_t start, end;
	if (arg_key(x, 1) || arg_i64(x, 2, &start) || arg_i64(x, 3, &end))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	int64_t len = e ? e->ver->vlen : 0;
	if (start < 0 && end < 0 && start > end)
		return r_bulk(x, "", 0);
	if (start < 0)
		start = len + start;
	if (end < 0)
		end = len + end;
	if (start < 0)
		start = 0;
	if (end < 0)
		end = 0;
	if (end >= len)
		end = len - 1;
	if (!e || start > end || len == 0)
		return r_bulk(x, "", 0);
	if (!x->c)
		return;
	out_num(x->c, '$', end - start + 1);
	out_pin_range(x->c, e->ver, (uint32_t)start, (uint32_t)(end - start + 1));
	out_lit(x->c, "\r\n");
}

/* key := bytes, keeping the key's expiry; a recorded unit only. */
static int set_bytes(struct cmdctx *x, const char *val, uint32_t vlen, uint64_t expire)
{
	int rc = eff_set_bytes(x->u, x->db, arg(x, 1), x->argv[1].len, val, vlen, expire);
	if (rc < 0)
		r_persist_failed(x, rc);
	return rc;
}

void c_append(struct cmdctx *x)
{
	if (arg_key(x, 1) || !recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	uint64_t old = e ? e->ver->vlen : 0, len = old + x->argv[2].len;
	if (too_big(x, len) || !fits_value(x, 1, len))
		return;
	char *buf = malloc(len ? len : 1);
	if (!buf)
		return r_err(x, "ERR out of memory");
	if (e)
		pin_copy(e->ver, 0, buf, (uint32_t)old);
	memcpy(buf + old, arg(x, 2), x->argv[2].len);
	if (set_bytes(x, buf, (uint32_t)len, e ? e->ver->expire_ms : 0) == 0)
		r_int(x, (int64_t)len);
	free(buf);
}

void c_setrange(struct cmdctx *x)
{
	int64_t off;
	if (arg_key(x, 1) || arg_i64(x, 2, &off))
		return;
	if (off < 0)
		return r_err(x, "ERR offset is out of range");
	if (!recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	uint64_t old = e ? e->ver->vlen : 0;
	uint32_t n = x->argv[3].len;
	if (!n)
		return r_int(x, (int64_t)old); /* nothing written, nothing created */
	if ((uint64_t)off > x->s->cfg.max_value || too_big(x, (uint64_t)off + n))
		return (void)((uint64_t)off > x->s->cfg.max_value ? too_big(x, (uint64_t)off + n) : 0);
	uint64_t len = (uint64_t)off + n > old ? (uint64_t)off + n : old;
	if (!fits_value(x, 1, len))
		return;
	char *buf = calloc(1, len);
	if (!buf)
		return r_err(x, "ERR out of memory");
	if (e)
		pin_copy(e->ver, 0, buf, (uint32_t)old);
	memcpy(buf + off, arg(x, 3), n);
	if (set_bytes(x, buf, (uint32_t)len, e ? e->ver->expire_ms : 0) == 0)
		r_int(x, (int64_t)len);
	free(buf);
}

/* The key's value as an integer; -1 after the error reply. */
static int value_i64(struct cmdctx *x, struct kentry *e, int64_t *v)
{
	*v = 0;
	if (!e)
		return 0;
	char buf[24];
	if (e->ver->vlen >= sizeof(buf) ||
	    str_to_i64(buf, pin_copy(e->ver, 0, buf, sizeof(buf)), v)) {
		r_not_int(x);
		return -1;
	}
	return 0;
}

static void incr_by(struct cmdctx *x, int64_t by)
{
	if (arg_key(x, 1) || !recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	int64_t v;
	if (value_i64(x, e, &v))
		return;
	if ((by < 0 && v < 0 && by < INT64_MIN - v) || (by > 0 && v > 0 && by > INT64_MAX - v))
		return r_err(x, "ERR increment or decrement would overflow");
	v += by;
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);
	if (fits_value(x, 1, (uint64_t)n) &&
	    set_bytes(x, num, (uint32_t)n, e ? e->ver->expire_ms : 0) == 0)
		r_int(x, v);
}

/* INCR, DECR. */
void c_incr(struct cmdctx *x)
{
	incr_by(x, x->cmd->variant & V_NEG ? -1 : 1);
}

/* INCRBY, DECRBY. */
void c_incrby(struct cmdctx *x)
{
	int64_t by;
	if (arg_i64(x, 2, &by))
		return;
	if (x->cmd->variant & V_NEG) {
		if (by == INT64_MIN)
			return r_err(x, "ERR decrement would overflow");
		by = -by;
	}
	incr_by(x, by);
}

void c_incrbyfloat(struct cmdctx *x)
{
	long double by, v = 0;
	if (arg_key(x, 1))
		return;
	if (str_to_ld(arg(x, 2), x->argv[2].len, &by))
		return r_err(x, "ERR value is not a valid float");
	if (!recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (e) {
		char *buf = malloc(e->ver->vlen + 1);
		int bad = !buf || e->ver->vlen >= KV_LONG_DOUBLE_MAX_CHARS ||
			  str_to_ld(buf, pin_copy(e->ver, 0, buf, e->ver->vlen), &v);
		free(buf);
		if (bad)
			return r_err(x, "ERR value is not a valid float");
	}
	v += by;
	if (isnan(v) || isinf(v))
		return r_err(x, "ERR increment would produce NaN or Infinity");
	char num[KV_LONG_DOUBLE_MAX_CHARS];
	int n = ld_to_str(num, sizeof(num), v);
	if (n < 0)
		return r_err(x, "ERR value is not a valid float");
	if (fits_value(x, 1, (uint64_t)n) &&
	    set_bytes(x, num, (uint32_t)n, e ? e->ver->expire_ms : 0) == 0)
		r_bulk(x, num, (size_t)n);
}
