/* SPDX-License-Identifier: MIT */
/*
 * t_keys.c - commands on keys whatever they hold: existence, expiry,
 * renaming, iteration, databases. DEL, UNLINK and FLUSH* are replayed
 * (their effect follows from their bytes); the expiry commands, PERSIST,
 * RENAME and COPY are recorded (they carry what the key held).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "util.h"

/* Every argument from 1 on is a key of an acceptable length. */
static int keys_ok(struct cmdctx *x)
{
	for (uint32_t i = 1; i < x->argc; i++)
		if (arg_key(x, i))
			return 0;
	return 1;
}

/* DEL, UNLINK: both free at once. */
void c_del(struct cmdctx *x)
{
	if (!keys_ok(x))
		return;
	int64_t n = 0;
	for (uint32_t i = 1; i < x->argc; i++)
		if (lookup(x, x->db, i))
			n += eff_del(x->u, x->db, arg(x, i), x->argv[i].len) > 0;
	r_int(x, n);
}

/* EXISTS, TOUCH: there is no access time to touch. */
void c_exists(struct cmdctx *x)
{
	if (!keys_ok(x))
		return;
	int64_t n = 0;
	for (uint32_t i = 1; i < x->argc; i++)
		n += lookup(x, x->db, i) != NULL;
	r_int(x, n);
}

void c_type(struct cmdctx *x)
{
	if (arg_key(x, 1))
		return;
	r_status(x, lookup(x, x->db, 1) ? "string" : "none");
}

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

static int expire_flags(struct cmdctx *x, unsigned *fl)
{
	*fl = 0;
	for (uint32_t j = 3; j < x->argc; j++) {
		if (arg_is(x, j, "NX"))
			*fl |= EXP_NX;
		else if (arg_is(x, j, "XX"))
			*fl |= EXP_XX;
		else if (arg_is(x, j, "GT"))
			*fl |= EXP_GT;
		else if (arg_is(x, j, "LT"))
			*fl |= EXP_LT;
		else {
			r_errf(x, "ERR Unsupported option %.*s", (int)(x->argv[j].len < 128 ? x->argv[j].len : 128),
			       arg(x, j));
			return -1;
		}
	}
	if ((*fl & EXP_NX) && (*fl & (EXP_XX | EXP_GT | EXP_LT))) {
		r_err(x, "ERR NX and XX, GT or LT options at the same time are not compatible");
		return -1;
	}
	if ((*fl & EXP_GT) && (*fl & EXP_LT)) {
		r_err(x, "ERR GT and LT options at the same time are not compatible");
		return -1;
	}
	return 0;
}

/*
 * EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: the new time is absolute in the
 * record, so replay sets the same; a time already past deletes the key.
 */
void c_expire(struct cmdctx *x)
{
	unsigned fl;
	int64_t when, unit = x->cmd->variant & V_MS ? 1 : 1000;
	if (arg_key(x, 1) || expire_flags(x, &fl) || arg_i64(x, 2, &when))
		return;
	if (unit == 1000 && (when > INT64_MAX / 1000 || when < INT64_MIN / 1000))
		return r_errf(x, "ERR invalid expire time in '%s' command", x->cmd->name);
	when *= unit;
	int64_t base = x->cmd->variant & V_ABS ? 0 : (int64_t)x->now_ms;
	if (when > INT64_MAX - base)
		return r_errf(x, "ERR invalid expire time in '%s' command", x->cmd->name);
	when += base;
	if (!recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (!e)
		return r_int(x, 0);
	int64_t cur = e->ver->expire_ms ? (int64_t)e->ver->expire_ms : -1;
	if (((fl & EXP_NX) && cur != -1) || ((fl & EXP_XX) && cur == -1) ||
	    ((fl & EXP_GT) && (when <= cur || cur == -1)) ||
	    ((fl & EXP_LT) && cur != -1 && when >= cur))
		return r_int(x, 0);
	int rc = when <= (int64_t)x->now_ms ? eff_del(x->u, x->db, e->key, e->klen)
					    : eff_expire(x->u, x->db, e, (uint64_t)when);
	if (rc < 0)
		return r_persist_failed(x, rc);
	r_int(x, 1);
}

/* TTL, PTTL, EXPIRETIME, PEXPIRETIME. */
void c_ttl(struct cmdctx *x)
{
	if (arg_key(x, 1))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (!e)
		return r_int(x, -2);
	if (!e->ver->expire_ms)
		return r_int(x, -1);
	int64_t t = x->cmd->variant & V_ABS ? (int64_t)e->ver->expire_ms
					    : (int64_t)e->ver->expire_ms - (int64_t)x->now_ms;
	if (t < 0)
		t = 0;
	r_int(x, x->cmd->variant & V_MS ? t : (t + 500) / 1000);
}

void c_persist(struct cmdctx *x)
{
	if (arg_key(x, 1) || !recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (!e || !e->ver->expire_ms)
		return r_int(x, 0);
	int rc = eff_expire(x->u, x->db, e, 0);
	if (rc < 0)
		return r_persist_failed(x, rc);
	r_int(x, 1);
}

/* RENAME, RENAMENX. */
void c_rename(struct cmdctx *x)
{
	int nx = x->cmd->variant & V_NX;
	if (arg_key(x, 1) || arg_key(x, 2) || !recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (!e)
		return r_err(x, "ERR no such key");
	if (x->argv[1].len == x->argv[2].len && !memcmp(arg(x, 1), arg(x, 2), x->argv[1].len))
		return nx ? r_int(x, 0) : r_ok(x);
	if (nx && lookup(x, x->db, 2))
		return r_int(x, 0);
	struct pin *v = e->ver;
	int rc = eff_set_copy(x->u, x->db, arg(x, 2), x->argv[2].len, v, v->expire_ms);
	if (rc == 0)
		rc = eff_del(x->u, x->db, arg(x, 1), x->argv[1].len);
	if (rc < 0)
		return r_persist_failed(x, rc);
	nx ? r_int(x, 1) : r_ok(x);
}

/* A database number argument; -1 after the error reply. */
static int db_arg(struct cmdctx *x, uint32_t i)
{
	int64_t db;
	if (arg_i64(x, i, &db))
		return -1;
	if (db < 0 || db >= KV_DBS) {
		r_err(x, "ERR DB index is out of range");
		return -1;
	}
	return (int)db;
}

void c_copy(struct cmdctx *x)
{
	int dst = x->db, replace = 0;
	if (arg_key(x, 1) || arg_key(x, 2))
		return;
	for (uint32_t j = 3; j < x->argc; j++) {
		if (arg_is(x, j, "REPLACE")) {
			replace = 1;
		} else if (arg_is(x, j, "DB") && j + 1 < x->argc) {
			if ((dst = db_arg(x, ++j)) < 0)
				return;
		} else {
			return r_syntax(x);
		}
	}
	if (dst == x->db && x->argv[1].len == x->argv[2].len &&
	    !memcmp(arg(x, 1), arg(x, 2), x->argv[1].len))
		return r_err(x, "ERR source and destination objects are the same");
	if (!recorded(x))
		return;
	struct kentry *e = lookup(x, x->db, 1);
	if (!e)
		return r_int(x, 0);
	struct kentry *d = lookup(x, dst, 2);
	if (d && !replace)
		return r_int(x, 0);
	struct kv_server *s = x->s;
	if (refused(x, ks_charge(s, x->argv[2].len, e->ver->vlen), d ? ks_charge(s, d->klen, d->ver->vlen) : 0))
		return;
	int rc = eff_set_copy(x->u, dst, arg(x, 2), x->argv[2].len, e->ver, e->ver->expire_ms);
	if (rc < 0)
		return r_persist_failed(x, rc);
	r_int(x, 1);
}

struct collect {
	struct cmdctx *x;
	const char *pat;
	uint32_t plen;
	int type_ok;          /* TYPE asked for strings, or for nothing */
	struct kentry **keys;
	uint64_t n, cap;
};

static void collect_one(void *arg, struct kentry *e)
{
	struct collect *c = arg;
	if (!c->type_ok || ks_expired(e->ver, c->x->now_ms))
		return;
	if (c->pat && !glob_match(c->pat, c->plen, e->key, e->klen, 0))
		return;
	if (c->n == c->cap) {
		uint64_t cap = c->cap ? 2 * c->cap : 64;
		struct kentry **k = realloc(c->keys, cap * sizeof(*k));
		if (!k)
			return;
		c->keys = k;
		c->cap = cap;
	}
	c->keys[c->n++] = e;
}

static void reply_keys(struct cmdctx *x, struct collect *c)
{
	r_array(x, c->n);
	for (uint64_t i = 0; i < c->n; i++)
		r_bulk(x, c->keys[i]->key, c->keys[i]->klen);
	free(c->keys);
}

void c_keys(struct cmdctx *x)
{
	struct collect c = { .x = x, .pat = arg(x, 1), .plen = x->argv[1].len, .type_ok = 1 };
	if (c.plen == 1 && c.pat[0] == '*')
		c.pat = NULL;
	struct keyspace *ks = &x->s->ks[x->db];
	for (uint64_t b = 0; b < ks->nb; b++)
		for (struct kentry *e = ks->b[b]; e; e = e->next)
			collect_one(&c, e);
	reply_keys(x, &c);
}

void c_scan(struct cmdctx *x)
{
	const char *cs = arg(x, 1);
	char buf[32], *end;
	uint32_t cl = x->argv[1].len;
	if (!cl || cl >= sizeof(buf) || cs[0] == ' ' || cs[0] == '-')
		return r_err(x, "ERR invalid cursor");
	memcpy(buf, cs, cl);
	buf[cl] = 0;
	errno = 0;
	unsigned long long cursor = strtoull(buf, &end, 10);
	if (*end || errno == ERANGE)
		return r_err(x, "ERR invalid cursor");
	int64_t count = 10;
	struct collect c = { .x = x, .type_ok = 1 };
	for (uint32_t i = 2; i < x->argc; i += 2) {
		if (i + 1 >= x->argc)
			return r_syntax(x);
		if (arg_is(x, i, "COUNT")) {
			if (arg_i64(x, i + 1, &count))
				return;
			if (count < 1)
				return r_syntax(x);
		} else if (arg_is(x, i, "MATCH")) {
			c.pat = arg(x, i + 1);
			c.plen = x->argv[i + 1].len;
			if (c.plen == 1 && c.pat[0] == '*')
				c.pat = NULL;
		} else if (arg_is(x, i, "TYPE")) {
			c.type_ok = arg_is(x, i + 1, "string");
		} else {
			return r_syntax(x);
		}
	}
	uint64_t next = ks_scan(x->s, x->db, cursor, (uint64_t)count, collect_one, &c);
	r_array(x, 2);
	int n = snprintf(buf, sizeof(buf), "%" PRIu64, next);
	r_bulk(x, buf, (size_t)n);
	reply_keys(x, &c);
}

void c_randomkey(struct cmdctx *x)
{
	struct kentry *e = ks_random(x->s, x->db, x->now_ms);
	if (e)
		r_bulk(x, e->key, e->klen);
	else
		r_nil(x);
}

void c_dbsize(struct cmdctx *x)
{
	r_int(x, (int64_t)x->s->ks[x->db].n);
}

/* FLUSHALL / FLUSHDB [ASYNC|SYNC]: anything else is a syntax error, and
 * writes nothing. */
static int flush_args(struct cmdctx *x)
{
	if (x->argc > 2 || (x->argc == 2 && !arg_is(x, 1, "ASYNC") && !arg_is(x, 1, "SYNC"))) {
		r_syntax(x);
		return -1;
	}
	return 0;
}

void c_flushall(struct cmdctx *x)
{
	if (flush_args(x))
		return;
	for (int d = 0; d < KV_DBS; d++)
		eff_flush(x->u, d);
	r_ok(x);
}

void c_flushdb(struct cmdctx *x)
{
	if (flush_args(x))
		return;
	eff_flush(x->u, x->db);
	r_ok(x);
}
