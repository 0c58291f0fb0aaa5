/* SPDX-License-Identifier: MIT */
/*
 * unit.c - changes of one command or transaction: replayed or recorded,
 * kept or undone (unit.h says which and why).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

void unit_begin(struct unit *u, struct kv_server *s, struct kflow *f, uint64_t pos,
		uint64_t cstart, uint64_t cend)
{
	memset(u, 0, sizeof(*u));
	u->s = s;
	u->f = f;
	u->pos = pos;
	u->cstart = cstart;
	u->cend = cend;
	/* Its record is one append: no larger than a segment (pktstore_append
	 * refuses more with EMSGSIZE). */
	u->mb.max = s->segment_size;
}

void unit_set_recorded(struct unit *u)
{
	u->record = 1;
}

int unit_journals(const struct unit *u)
{
	return u->record && !u->s->replaying;
}

void unit_journal(struct kv_server *s, struct unit *u, int db, const char *key, uint32_t klen,
		  struct pin *old)
{
	static struct kv_ratelimit rl;
	char *k = kv_grow(&u->undo, &u->undocap, u->nundo, sizeof(*u->undo)) ? NULL
										  : malloc(klen ? klen : 1);
	if (!k)
		goto fail;
	memcpy(k, key, klen);
	u->undo[u->nundo++] = (struct undo){ (uint8_t)db, klen, k, old };
	return;
fail:
	/* Without its journal entry this change cannot be undone; it stays, and
	 * so would a failed append's: logged, as nothing else can be done. */
	kv_log_limited(&rl, "out of memory for a transaction's journal");
	pin_drop(s, old);
}

static int add_made(struct unit *u, struct pin *p, int32_t heap_off, int expiry)
{
	if (kv_grow(&u->made, &u->madecap, u->nmade, sizeof(*u->made)))
		return -ENOMEM;
	u->made[u->nmade++] = (struct made){ p, heap_off, (uint8_t)expiry };
	return 0;
}

static int32_t heap_off_of(const struct unit *u, const struct pin *p)
{
	for (uint32_t i = u->nmade; i-- > 0;)
		if (u->made[i].p == p)
			return u->made[i].heap_off;
	return -1;
}

static void unit_free(struct unit *u)
{
	free(u->undo);
	free(u->made);
	mbuf_free(&u->mb);
	u->undo = NULL;
	u->made = NULL;
	u->nundo = u->nmade = 0;
}

static void rollback(struct unit *u)
{
	struct kv_server *s = u->s;
	for (uint32_t i = u->nundo; i-- > 0;) {
		struct undo *d = &u->undo[i];
		if (d->old)
			ks_put(s, NULL, d->db, d->key, d->klen, d->old);
		else
			ks_remove(s, NULL, d->db, d->key, d->klen);
		free(d->key);
	}
	/* Versions it made that ended as tombstones (expired within it) stay
	 * tombstones; they keep their bytes in DRAM until the next pass. */
}

static void commit_journal(struct unit *u)
{
	for (uint32_t i = 0; i < u->nundo; i++) {
		pin_drop(u->s, u->undo[i].old);
		free(u->undo[i].key);
	}
}

int unit_end(struct unit *u)
{
	struct kv_server *s = u->s;
	if (!u->record) {
		/* Replayed: a delete pins the command so that replay meets it
		 * after any older version that survives. */
		if (u->deleted) {
			struct pin *t = pin_command(s, u->f, u->pos, u->cstart, UINT64_MAX, 0, 0);
			if (t)
				tomb_add(s, t);
		}
		unit_free(u);
		return 0;
	}
	if (!u->mb.len && !u->mb.err) {
		commit_journal(u);
		unit_free(u);
		return 0;
	}
	struct krec *r;
	int rc = u->mb.err ? u->mb.err : meta_append(s, u->mb.p, u->mb.len, &r);
	if (rc < 0) {
		rollback(u);
		if (u->state)
			u->f->db = u->db, u->f->authed = u->authed; /* the state before */
		unit_free(u);
		return rc;
	}
	rec_ref(r); /* held while the versions take it */
	for (uint32_t i = 0; i < u->nmade; i++) {
		struct made *m = &u->made[i];
		struct pin *p = m->p;
		if (m->heap_off >= 0 && p->heap) {
			p->s[0] = (struct span){ r, (uint32_t)m->heap_off, p->vlen };
			p->n = 1;
			rec_ref(r);
			free(p->heap);
			p->heap = NULL;
		}
		if (p->pending) {
			p->pending = 0;
			if (p->urec)
				rec_unref(s, p->urec);
			rec_hold(&p->urec, r);
		}
		if (m->expiry) {
			if (p->xrec)
				rec_unref(s, p->xrec);
			rec_hold(&p->xrec, r);
		}
	}
	if (u->deleted) {
		struct pin *t = pin_meta(s, r, u->pos, 0, 0);
		if (t)
			tomb_add(s, t);
	}
	if (u->state)
		flow_set_state(u->f, u->f->db, u->f->authed, r, u->cend);
	commit_journal(u);
	unit_free(u);
	rec_unref(s, r);
	return 0;
}

int eff_set_stream(struct unit *u, int db, const char *key, uint32_t klen, uint64_t seq,
		   uint32_t vlen, uint64_t expire_ms)
{
	struct kv_server *s = u->s;
	struct pin *p;
	if (!unit_journals(u)) {
		p = pin_command(s, u->f, u->pos, u->cstart, UINT64_MAX, seq, vlen);
		if (!p)
			return -ENOMEM;
		p->expire_ms = expire_ms;
		return ks_put(s, u, db, key, klen, p) ? -ENOMEM : 0;
	}
	/* Recorded: only the value's bytes, and the entry that names them. */
	p = pin_range(s, u->f, u->pos, seq, vlen);
	if (!p)
		return -ENOMEM;
	p->expire_ms = expire_ms;
	p->pending = 1;
	if (mbuf_setref(&u->mb, u->pos, (uint32_t)db, expire_ms, key, klen, u->f->id, seq, vlen) < 0 ||
	    add_made(u, p, -1, 0) < 0) {
		pin_drop(s, p);
		return -ENOMEM;
	}
	return ks_put(s, u, db, key, klen, p) ? -ENOMEM : 0;
}

int eff_set_bytes(struct unit *u, int db, const char *key, uint32_t klen, const char *val,
		  uint32_t vlen, uint64_t expire_ms)
{
	struct kv_server *s = u->s;
	struct pin *p = pin_alloc(1);
	if (!p)
		return -ENOMEM;
	p->n = 0; /* the span comes with the record */
	p->pos = u->pos;
	p->vid = ++s->next_vid;
	p->vlen = vlen;
	p->expire_ms = expire_ms;
	p->pending = 1;
	p->heap = malloc(vlen ? vlen : 1);
	int off = p->heap ? mbuf_val2(&u->mb, u->pos, (uint32_t)db, expire_ms, key, klen, val, vlen)
			  : -ENOMEM;
	if (off < 0 || add_made(u, p, off, 0) < 0) {
		free(p->heap);
		free(p);
		return -ENOMEM;
	}
	memcpy(p->heap, val, vlen);
	return ks_put(s, u, db, key, klen, p) ? -ENOMEM : 0;
}

/* RENAME, COPY: key takes src's value, with its own expiry. */
int eff_set_copy(struct unit *u, int db, const char *key, uint32_t klen, const struct pin *src,
		 uint64_t expire_ms)
{
	struct kv_server *s = u->s;
	if (src->heap)
		return eff_set_bytes(u, db, key, klen, src->heap, src->vlen, expire_ms);
	uint32_t n = 0;
	for (uint32_t i = 0; i < src->n; i++)
		n += src->s[i].len > 0;
	struct pin *p = pin_alloc(n);
	if (!p)
		return -ENOMEM;
	p->pos = u->pos;
	p->vid = ++s->next_vid;
	p->vlen = src->vlen;
	p->expire_ms = expire_ms;
	p->pending = 1;
	for (uint32_t i = 0, j = 0; i < src->n; i++)
		if (src->s[i].len) {
			p->s[j++] = src->s[i];
			rec_ref(src->s[i].rec);
		}
	uint64_t flow = n ? p->s[0].rec->flow->id : 0;
	uint64_t seq = n ? p->s[0].rec->seq + p->s[0].off : 0;
	if (mbuf_setref(&u->mb, u->pos, (uint32_t)db, expire_ms, key, klen, flow, seq, p->vlen) < 0 ||
	    add_made(u, p, -1, 0) < 0) {
		pin_drop(s, p);
		return -ENOMEM;
	}
	return ks_put(s, u, db, key, klen, p) ? -ENOMEM : 0;
}

/* The same value with another expiry (0: none). */
int eff_expire(struct unit *u, int db, struct kentry *e, uint64_t expire_ms)
{
	struct kv_server *s = u->s;
	struct pin *p = pin_clone(s, e->ver);
	if (!p)
		return -ENOMEM;
	p->expire_ms = expire_ms;
	int32_t heap_off = p->heap ? heap_off_of(u, e->ver) : -1;
	if (mbuf_expire(&u->mb, u->pos, (uint32_t)db, expire_ms, e->key, e->klen) < 0 ||
	    add_made(u, p, heap_off, 1) < 0) {
		pin_drop(s, p);
		return -ENOMEM;
	}
	return ks_put(s, u, db, e->key, e->klen, p) ? -ENOMEM : 0;
}

/* key may be the entry's own copy, which goes with it: staged first. */
int eff_del(struct unit *u, int db, const char *key, uint32_t klen)
{
	if (!ks_find(u->s, db, key, klen))
		return 0;
	if (unit_journals(u) && mbuf_del(&u->mb, u->pos, (uint32_t)db, key, klen) < 0)
		return -ENOMEM;
	ks_remove(u->s, u, db, key, klen);
	u->deleted = 1;
	return 1;
}

uint64_t eff_flush(struct unit *u, int db)
{
	uint64_t n = ks_flush(u->s, u, db);
	if (unit_journals(u))
		mbuf_flush(&u->mb, u->pos, (uint32_t)db);
	if (n)
		u->deleted = 1;
	return n;
}

/* The connection's database and AUTH state; held by the connection's flow
 * once recorded, so that replay starting past this command still knows. */
int eff_state(struct unit *u, int db, int authed)
{
	struct kflow *f = u->f;
	if (mbuf_fstate(&u->mb, u->pos, f->id, u->cend, (uint32_t)db, (uint32_t)authed) < 0)
		return -ENOMEM;
	if (!u->state) {
		u->state = 1;
		u->db = f->db;
		u->authed = f->authed;
	}
	f->db = (uint8_t)db;
	f->authed = (uint8_t)authed;
	return 0;
}
