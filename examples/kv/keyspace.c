/* SPDX-License-Identifier: MIT */
/*
 * keyspace.c - key -> value version. Keys are copied (they are short and
 * must be hashed); values stay in the arena, described by a pin.
 */
#include <stdlib.h>
#include <string.h>

#include "kv.h"

static uint32_t hash(const char *k, uint32_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)k[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

int ks_init(struct keyspace *ks)
{
	ks->nb = 1024;
	ks->n = 0;
	ks->b = calloc(ks->nb, sizeof(*ks->b));
	return ks->b ? 0 : -1;
}

/* Shutdown: drop the index without releasing anything in the arena. */
void ks_free(struct kv_server *s)
{
	for (uint64_t i = 0; i < s->ks.nb; i++)
		for (struct kentry *e = s->ks.b[i], *n; e; e = n) {
			n = e->next;
			free(e->ver);
			free(e);
		}
	free(s->ks.b);
	s->ks.b = NULL;
}

static struct kentry **find(struct keyspace *ks, const char *key, uint32_t klen, uint32_t h)
{
	struct kentry **e = &ks->b[h & (ks->nb - 1)];
	for (; *e; e = &(*e)->next)
		if ((*e)->hash == h && (*e)->klen == klen && !memcmp((*e)->key, key, klen))
			break;
	return e;
}

struct kentry *ks_get(struct keyspace *ks, const char *key, uint32_t klen)
{
	return *find(ks, key, klen, hash(key, klen));
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

uint64_t ks_charge_of(struct kv_server *s, const char *key, uint32_t klen)
{
	struct kentry *e = ks_get(&s->ks, key, klen);
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

/* A write that adds `add` and frees `sub` leaves room for the cleaner. It
 * depends only on the keyspace, so replay takes every decision again the
 * same way. */
int ks_fits(const struct kv_server *s, uint64_t add, uint64_t sub)
{
	return add <= sub || s->live_charge + (add - sub) <= s->limit;
}

int ks_set(struct kv_server *s, const char *key, uint32_t klen, struct pin *ver)
{
	struct keyspace *ks = &s->ks;
	uint32_t h = hash(key, klen);
	struct kentry **e = find(ks, key, klen, h);
	if (*e) {
		struct pin *old = (*e)->ver;
		ks_account(s, *e, -1);
		(*e)->ver = ver;
		ks_account(s, *e, 1);
		pin_drop(s, old);
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
	if (++ks->n > ks->nb)
		grow(ks);
	return 0;
}

int ks_del(struct kv_server *s, const char *key, uint32_t klen)
{
	struct kentry **e = find(&s->ks, key, klen, hash(key, klen));
	struct kentry *d = *e;
	if (!d)
		return 0;
	*e = d->next;
	s->ks.n--;
	ks_account(s, d, -1);
	pin_drop(s, d->ver);
	free(d);
	return 1;
}

void ks_flush(struct kv_server *s)
{
	for (uint64_t i = 0; i < s->ks.nb; i++) {
		for (struct kentry *e = s->ks.b[i], *n; e; e = n) {
			n = e->next;
			pin_drop(s, e->ver);
			free(e);
		}
		s->ks.b[i] = NULL;
	}
	s->ks.n = 0;
	s->live_charge = s->conn_charge = 0;
}
