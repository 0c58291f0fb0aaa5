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

int ks_set(struct kv_server *s, const char *key, uint32_t klen, struct pin *ver)
{
	struct keyspace *ks = &s->ks;
	uint32_t h = hash(key, klen);
	struct kentry **e = find(ks, key, klen, h);
	if (*e) {
		struct pin *old = (*e)->ver;
		(*e)->ver = ver;
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
}
