/* SPDX-License-Identifier: MIT */
/*
 * watch.c - which connections' EXEC a change of a key aborts, with Redis's
 * rules for keys that were already expired when watched (a stale key that
 * goes is no change). A change costs a look at its own key's pairs, however
 * many keys are watched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "watch.h"

/* The keyspace's keyed hash (keys come from clients), the database mixed in. */
static uint32_t hash(int db, const char *key, uint32_t klen)
{
	return kv_hash(key, klen) ^ (uint32_t)db * 0x9e3779b9u;
}

static int same(const struct watch *w, int db, const char *key, uint32_t klen, uint32_t h)
{
	return w->hash == h && w->db == db && w->klen == klen && !memcmp(w->key, key, klen);
}

static void grow(struct watch_table *t)
{
	uint64_t nb = t->nb ? t->nb * 2 : 64;
	struct watch **b = calloc(nb, sizeof(*b));
	if (!b)
		return; /* longer chains, still correct */
	for (uint64_t i = 0; i < t->nb; i++)
		for (struct watch *w = t->b[i], *n; w; w = n) {
			n = w->next;
			w->next = b[w->hash & (nb - 1)];
			b[w->hash & (nb - 1)] = w;
		}
	free(t->b);
	t->b = b;
	t->nb = nb;
}

int watch_add(struct kv_server *s, struct conn *c, int db, const char *key, uint32_t klen,
	      uint64_t now_ms)
{
	if (!s->watches && !(s->watches = calloc(1, sizeof(*s->watches))))
		return -ENOMEM;
	struct watch_table *t = s->watches;
	if (t->n >= t->nb)
		grow(t);
	if (!t->nb)
		return -ENOMEM;
	uint32_t h = hash(db, key, klen);
	for (struct watch *w = t->b[h & (t->nb - 1)]; w; w = w->next)
		if (w->conn == c && same(w, db, key, klen, h))
			return 0; /* already watched */
	if (kv_grow(&c->watched, &c->watchcap, c->nwatched, sizeof(*c->watched)))
		return -ENOMEM;
	struct watch *w = malloc(sizeof(*w) + klen);
	if (!w)
		return -ENOMEM;
	struct kentry *e = ks_find(s, db, key, klen);
	*w = (struct watch){ .conn = c, .hash = h, .klen = klen, .db = (uint8_t)db,
			     .expired = e && ks_expired(e->ver, now_ms) };
	memcpy(w->key, key, klen);
	w->next = t->b[h & (t->nb - 1)];
	t->b[h & (t->nb - 1)] = w;
	t->n++;
	c->watched[c->nwatched++] = w;
	return 0;
}

void watch_clear(struct kv_server *s, struct conn *c)
{
	struct watch_table *t = s->watches;
	for (uint32_t i = 0; i < c->nwatched; i++) {
		struct watch *w = c->watched[i];
		struct watch **pp = &t->b[w->hash & (t->nb - 1)];
		while (*pp != w)
			pp = &(*pp)->next;
		*pp = w->next;
		t->n--;
		free(w);
	}
	free(c->watched);
	c->watched = NULL;
	c->nwatched = c->watchcap = 0;
	if (t && !t->n) {
		free(t->b);
		free(t);
		s->watches = NULL;
	}
}

/* key is about to change: its watchers' EXEC fails. A key watched while
 * already expired is Redis's exception: its going counts as no change. */
void watch_touch(struct kv_server *s, int db, const char *key, uint32_t klen)
{
	struct watch_table *t = s->watches;
	uint32_t h = hash(db, key, klen);
	for (struct watch *w = t->b[h & (t->nb - 1)]; w; w = w->next)
		if (same(w, db, key, klen, h) && !w->expired)
			w->conn->watch_dirty = 1;
}

/* Every key of db is about to go: watchers of the keys there are touched,
 * except for keys that were already stale when watched. */
void watch_flushed(struct kv_server *s, int db)
{
	struct watch_table *t = s->watches;
	for (uint64_t b = 0; b < t->nb; b++)
		for (struct watch *w = t->b[b]; w; w = w->next) {
			if (w->db != db || !ks_find(s, db, w->key, w->klen))
				continue;
			if (w->expired)
				w->expired = 0;
			else
				w->conn->watch_dirty = 1;
		}
}

/* A watched key that was live when watched has expired by now. */
int watch_expired_since(struct kv_server *s, const struct conn *c, uint64_t now_ms)
{
	for (uint32_t i = 0; i < c->nwatched; i++) {
		const struct watch *w = c->watched[i];
		if (w->expired)
			continue;
		struct kentry *e = ks_find(s, w->db, w->key, w->klen);
		if (e && ks_expired(e->ver, now_ms))
			return 1;
	}
	return 0;
}
