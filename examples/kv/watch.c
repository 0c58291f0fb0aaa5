/* SPDX-License-Identifier: MIT */
/*
 * watch.c - which connections' EXEC a change of a key aborts, with Redis's
 * rules for keys that were already expired when watched (a stale key that
 * goes is no change).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "watch.h"

static uint32_t slot_of(int db, const char *key, uint32_t klen)
{
	uint32_t h = 2166136261u ^ (uint32_t)db;
	for (uint32_t i = 0; i < klen; i++)
		h = (h ^ (uint8_t)key[i]) * 16777619u;
	return h % 1024;
}

static int same(const struct watch *w, int db, const char *key, uint32_t klen)
{
	return w->db == db && w->klen == klen && !memcmp(w->key, key, klen);
}

int watch_add(struct kv_server *s, struct conn *c, int db, const char *key, uint32_t klen,
	      uint64_t now_ms)
{
	for (uint32_t i = 0; i < c->nwatched; i++)
		if (same(&c->watched[i], db, key, klen))
			return 0;
	if (!s->watches && !(s->watches = calloc(1, sizeof(*s->watches))))
		return -ENOMEM;
	if (c->nwatched == c->watchcap) {
		uint32_t cap = c->watchcap ? 2 * c->watchcap : 8;
		struct watch *n = realloc(c->watched, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->watched = n;
		c->watchcap = cap;
	}
	char *k = malloc(klen ? klen : 1);
	if (!k)
		return -ENOMEM;
	memcpy(k, key, klen);
	struct kentry *e = ks_find(s, db, key, klen);
	c->watched[c->nwatched++] = (struct watch){ (uint8_t)db, e && ks_expired(e->ver, now_ms),
						    klen, k };
	s->watches->slot[slot_of(db, key, klen)]++;
	s->watches->total++;
	return 0;
}

void watch_clear(struct kv_server *s, struct conn *c)
{
	for (uint32_t i = 0; i < c->nwatched; i++) {
		struct watch *w = &c->watched[i];
		s->watches->slot[slot_of(w->db, w->key, w->klen)]--;
		s->watches->total--;
		free(w->key);
	}
	free(c->watched);
	c->watched = NULL;
	c->nwatched = c->watchcap = 0;
	if (s->watches && !s->watches->total) {
		free(s->watches);
		s->watches = NULL;
	}
}

/* key changed (before the change: a stale key counts as there). */
void watch_touch(struct kv_server *s, int db, const char *key, uint32_t klen)
{
	if (!s->watches->slot[slot_of(db, key, klen)])
		return;
	for (struct conn *c = s->conns; c; c = c->next)
		for (uint32_t i = 0; i < c->nwatched && !c->watch_dirty; i++) {
			struct watch *w = &c->watched[i];
			if (!same(w, db, key, klen))
				continue;
			/* Watched while already expired: Redis counts its
			 * disappearance as no change, and so does this. */
			if (w->expired)
				continue;
			c->watch_dirty = 1;
		}
}

/* Every key of db is about to go: watchers of the keys there are touched,
 * except for keys that were already stale when watched. */
void watch_flushed(struct kv_server *s, int db)
{
	for (struct conn *c = s->conns; c; c = c->next)
		for (uint32_t i = 0; i < c->nwatched; i++) {
			struct watch *w = &c->watched[i];
			if (w->db != db || !ks_find(s, db, w->key, w->klen))
				continue;
			if (w->expired)
				w->expired = 0;
			else
				c->watch_dirty = 1;
		}
}

/* A watched key that was live when watched has expired by now. */
int watch_expired_since(struct kv_server *s, const struct conn *c, uint64_t now_ms)
{
	for (uint32_t i = 0; i < c->nwatched; i++) {
		const struct watch *w = &c->watched[i];
		if (w->expired)
			continue;
		struct kentry *e = ks_find(s, w->db, w->key, w->klen);
		if (e && ks_expired(e->ver, now_ms))
			return 1;
	}
	return 0;
}
