/* SPDX-License-Identifier: MIT */
/*
 * keyspace.c - per database, key -> value version. Keys are copied (they
 * are short and must be hashed); values stay in the arena, described by a
 * pin. Every change of a live key goes through ks_put/ks_remove/ks_flush:
 * they keep the space charges, tell WATCHers, and journal the old version
 * when the unit doing it may still roll back (unit.c).
 */
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "unit.h"
#include "util.h"
#include "watch.h"

int ks_init(struct kv_server *s)
{
	for (int d = 0; d < KV_DBS; d++) {
		struct keyspace *ks = &s->ks[d];
		ks->nb = d == 0 ? 1024 : 16;
		ks->b = calloc(ks->nb, sizeof(*ks->b));
		if (!ks->b)
			return -1;
	}
	return 0;
}

/* Shutdown: drop the index without releasing anything in the arena. */
void ks_free(struct kv_server *s)
{
	for (int d = 0; d < KV_DBS; d++) {
		struct keyspace *ks = &s->ks[d];
		for (uint64_t i = 0; ks->b && i < ks->nb; i++)
			for (struct kentry *e = ks->b[i], *n; e; e = n) {
				n = e->next;
				free(e->ver->heap);
				free(e->ver);
				free(e);
			}
		free(ks->b);
		ks->b = NULL;
	}
}

uint64_t ks_keys(const struct kv_server *s)
{
	uint64_t n = 0;
	for (int d = 0; d < KV_DBS; d++)
		n += s->ks[d].n;
	return n;
}

static struct kentry **find(struct keyspace *ks, const char *key, uint32_t klen, uint32_t h)
{
	struct kentry **e = &ks->b[h & (ks->nb - 1)];
	for (; *e; e = &(*e)->next)
		if ((*e)->hash == h && (*e)->klen == klen && !memcmp((*e)->key, key, klen))
			break;
	return e;
}

/* The entry as it is, expired or not. */
struct kentry *ks_find(struct kv_server *s, int db, const char *key, uint32_t klen)
{
	return *find(&s->ks[db], key, klen, kv_hash(key, klen));
}

int ks_expired(const struct pin *v, uint64_t now_ms)
{
	return v->expire_ms && v->expire_ms <= now_ms;
}

static void unlink_entry(struct kv_server *s, int db, struct kentry *d)
{
	struct kentry **e = find(&s->ks[db], d->key, d->klen, d->hash);
	*e = d->next;
	s->ks[db].n--;
	if (d->ver->expire_ms)
		s->ks[db].nexpires--;
	ks_account(s, d, -1);
}

/*
 * The key's time is up. Its version becomes a tombstone until the next
 * pass: an older version of the key may survive in a record that cannot go
 * yet, and replay must meet this one (and see it expire) after it.
 */
void ks_expire_now(struct kv_server *s, int db, struct kentry *e)
{
	unlink_entry(s, db, e);
	s->st.expired_keys++;
	if (s->watches && !s->replaying)
		watch_touch(s, db, e->key, e->klen);
	tomb_add(s, e->ver);
	free(e);
}

/* The entry if it holds a live value at now_ms; an expired one goes. */
struct kentry *ks_lookup(struct kv_server *s, int db, const char *key, uint32_t klen,
			 uint64_t now_ms)
{
	struct kentry *e = ks_find(s, db, key, klen);
	if (e && ks_expired(e->ver, now_ms)) {
		ks_expire_now(s, db, e);
		return NULL;
	}
	return e;
}

static void grow(struct keyspace *ks)
{
	uint64_t nb = ks->nb * 2;
	struct kentry **b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (uint64_t i = 0; i < ks->nb; i++)
		for (struct kentry *e = ks->b[i], *n; e; e = n) {
			n = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(ks->b);
	ks->b = b;
	ks->nb = nb;
}

/*
 * What a value would take once a cleaning pass copies it into a meta
 * record, packing waste included: a record never spans segments, so the
 * unused tail of a segment is at most one record. Values up to stage_cap
 * share records of at most stage_cap bytes, which waste less than 1/7 of
 * what they hold; a larger value is a record of its own, and the tail
 * wasted before it can be as long as it is.
 */
uint64_t ks_charge(const struct kv_server *s, uint32_t klen, uint64_t vlen)
{
	uint64_t n = KV_META_ENTRY + klen + vlen;
	return n <= s->stage_cap ? n + n / 7 + 1 : 2 * n;
}

uint64_t ks_charge_of(struct kv_server *s, int db, const char *key, uint32_t klen)
{
	struct kentry *e = ks_find(s, db, key, klen);
	return e ? ks_charge(s, e->klen, e->ver->vlen) : 0;
}

void ks_account(struct kv_server *s, const struct kentry *e, int sign)
{
	uint64_t c = ks_charge(s, e->klen, e->ver->vlen);
	if (sign > 0) {
		s->live_charge += c;
		if (!pin_in_meta(e->ver))
			s->conn_charge += c;
	} else {
		s->live_charge -= c;
		if (!pin_in_meta(e->ver))
			s->conn_charge -= c;
	}
}

/* A write that adds `add` and frees `sub` leaves room for the cleaner. */
int ks_fits(const struct kv_server *s, uint64_t add, uint64_t sub)
{
	return add <= sub || s->live_charge + (add - sub) <= s->limit;
}

/* Not even an empty value would fit: Redis's "used memory > maxmemory",
 * which refuses whatever a transaction would queue. */
int ks_full(const struct kv_server *s)
{
	return !ks_fits(s, ks_charge(s, 0, 0), 0);
}

static void release_old(struct kv_server *s, struct unit *u, int db, const char *key,
			uint32_t klen, struct pin *old)
{
	if (u && unit_journals(u))
		unit_journal(s, u, db, key, klen, old);
	else
		pin_drop(s, old);
}

/* key := ver (which the keyspace now owns). */
int ks_put(struct kv_server *s, struct unit *u, int db, const char *key, uint32_t klen,
	   struct pin *ver)
{
	struct keyspace *ks = &s->ks[db];
	uint32_t h = kv_hash(key, klen);
	struct kentry **e = find(ks, key, klen, h);
	if (s->watches && !s->replaying)
		watch_touch(s, db, key, klen);
	if (*e) {
		struct pin *old = (*e)->ver;
		ks_account(s, *e, -1);
		ks->nexpires += (ver->expire_ms != 0) - (old->expire_ms != 0);
		(*e)->ver = ver;
		ks_account(s, *e, 1);
		release_old(s, u, db, key, klen, old);
		return 0;
	}
	struct kentry *n = malloc(sizeof(*n) + klen);
	if (!n) {
		pin_drop(s, ver);
		return -1;
	}
	n->hash = h;
	n->klen = klen;
	n->ver = ver;
	memcpy(n->key, key, klen);
	n->next = NULL;
	*e = n;
	ks_account(s, n, 1);
	ks->nexpires += ver->expire_ms != 0;
	if (u && unit_journals(u))
		unit_journal(s, u, db, key, klen, NULL);
	if (++ks->n > ks->nb)
		grow(ks);
	return 0;
}

/* 1 if the key was there (expired or not) and is gone. */
int ks_remove(struct kv_server *s, struct unit *u, int db, const char *key, uint32_t klen)
{
	struct kentry *d = ks_find(s, db, key, klen);
	if (!d)
		return 0;
	if (s->watches && !s->replaying)
		watch_touch(s, db, key, klen);
	unlink_entry(s, db, d);
	release_old(s, u, db, d->key, d->klen, d->ver);
	free(d);
	return 1;
}

/* Every key of db goes; returns how many. */
uint64_t ks_flush(struct kv_server *s, struct unit *u, int db)
{
	struct keyspace *ks = &s->ks[db];
	uint64_t n = ks->n;
	if (s->watches && !s->replaying)
		watch_flushed(s, db);
	for (uint64_t i = 0; i < ks->nb; i++) {
		for (struct kentry *e = ks->b[i], *next; e; e = next) {
			next = e->next;
			ks_account(s, e, -1);
			release_old(s, u, db, e->key, e->klen, e->ver);
			free(e);
		}
		ks->b[i] = NULL;
	}
	ks->n = ks->nexpires = 0;
	return n;
}

/*
 * Active expiry: a bounded walk over the buckets of every database that has
 * keys with a time, at the time of the newest record applied. Every command
 * from now on carries a time at least as late (the library's record times
 * never go back), so these keys are gone for all of them, and replay, which
 * decides expiry with the same times, agrees.
 *
 * The walk is bounded in keys looked at and in buckets visited (four
 * per key): the table keeps its size after its keys go, and a million
 * empty buckets around a few keys with a time would otherwise be walked
 * whole after every batch.
 */
#define EXPIRE_BUCKETS_PER_KEY 4

void ks_active_expire(struct kv_server *s, uint32_t budget)
{
	uint64_t buckets = (uint64_t)budget * EXPIRE_BUCKETS_PER_KEY;
	for (int d = 0; d < KV_DBS && budget && buckets; d++) {
		struct keyspace *ks = &s->ks[d];
		if (!ks->nexpires)
			continue;
		uint64_t walked = 0;
		while (budget && buckets && walked < ks->nb && ks->nexpires) {
			buckets--;
			uint64_t b = ks->expire_cursor++ & (ks->nb - 1);
			walked++;
			for (struct kentry *e = ks->b[b], *next; e; e = next) {
				next = e->next;
				budget = budget ? budget - 1 : 0;
				if (ks_expired(e->ver, s->now_ms))
					ks_expire_now(s, d, e);
			}
		}
	}
}

/* Every key expired at now_ms goes; returns how many. */
uint64_t ks_purge_expired(struct kv_server *s, uint64_t now_ms)
{
	uint64_t n = 0;
	for (int d = 0; d < KV_DBS; d++) {
		struct keyspace *ks = &s->ks[d];
		for (uint64_t b = 0; ks->nexpires && b < ks->nb; b++)
			for (struct kentry *e = ks->b[b], *next; e; e = next) {
				next = e->next;
				if (ks_expired(e->ver, now_ms)) {
					ks_expire_now(s, d, e);
					n++;
				}
			}
	}
	return n;
}

static uint64_t rev(uint64_t v)
{
	uint64_t r = 0;
	for (int i = 0; i < 64; i++, v >>= 1)
		r = (r << 1) | (v & 1);
	return r;
}

/*
 * SCAN: buckets in reverse-binary order of their index, as Redis's dictScan
 * does, so that a key present for the whole scan is returned at least once
 * even if the table grows between calls. Visits buckets until count keys
 * were seen or ten times count buckets were empty; returns the next cursor
 * (0: done).
 */
uint64_t ks_scan(struct kv_server *s, int db, uint64_t cursor, uint64_t count,
		 void (*fn)(void *, struct kentry *), void *arg)
{
	struct keyspace *ks = &s->ks[db];
	uint64_t m = ks->nb - 1, seen = 0, empty = 0, v = cursor;
	if (!count)
		count = 1;
	do {
		struct kentry *e = ks->b[v & m];
		if (!e)
			empty++;
		for (; e; e = e->next) {
			fn(arg, e);
			seen++;
		}
		v |= ~m;
		v = rev(v);
		v++;
		v = rev(v);
	} while (v && seen < count && empty < count * 10);
	return v;
}

struct kentry *ks_random(struct kv_server *s, int db, uint64_t now_ms)
{
	struct keyspace *ks = &s->ks[db];
	for (int tries = 0; ks->n && tries < 100; tries++) {
		struct kentry *e = NULL;
		while (!e)
			e = ks->b[((uint64_t)random() << 31 ^ (uint64_t)random()) & (ks->nb - 1)];
		uint32_t len = 0;
		for (struct kentry *x = e; x; x = x->next)
			len++;
		for (long k = random() % len; k > 0; k--)
			e = e->next;
		if (!ks_expired(e->ver, now_ms))
			return e;
	}
	/* Mostly expired keys: take the first live one in order. */
	for (uint64_t b = 0; ks->n && b < ks->nb; b++)
		for (struct kentry *e = ks->b[b]; e; e = e->next)
			if (!ks_expired(e->ver, now_ms))
				return e;
	return NULL;
}
