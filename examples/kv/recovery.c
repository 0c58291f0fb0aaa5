/* SPDX-License-Identifier: MIT */
/*
 * recovery.c - rebuild the index from the arena after a restart or crash.
 *
 * Replay walks every surviving record in id order (global persist order)
 * and feeds each to its flow's parser exactly as the live server did, so a
 * command applies at the record that completed it, at that record's time.
 * What the server wrote itself (copies, recorded units, connection states)
 * carries its position and is merged into that order. The newest
 * checkpoint says which positions are already superseded and where, and in
 * which state, each flow's parsing restarts. A command cut short by the
 * crash never completes, so it is never applied; a recorded unit whose
 * record was not appended never happened.
 *
 * The replay context (struct replay) lives for one recover() call and is
 * passed to whatever needs it; live code gets NULL.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

/* An entry of a meta record that applies at pos. */
struct eff {
	uint64_t pos;
	struct krec *r;
	uint32_t off;
};

struct replay {
	struct eff *v;
	size_t n, cap;
	size_t vi;                    /* next entry to apply, in position order */
	struct krec *best;            /* the newest checkpoint */
	uint64_t hpos;
	struct kv_flow_state *states;
	uint32_t nstates;
	struct krec **meta;
	size_t nmeta, metacap;
	uint64_t *refused;            /* positions of writes refused with OOM, sorted */
	size_t nrefused, refcap;
	struct kv_summary sum;        /* the newest closing summary */
	uint64_t last_meta;           /* the newest server flow: the last session's */
};

static void on_effect(struct kv_server *s, struct krec *r, uint64_t pos, uint32_t off, void *arg)
{
	(void)s;
	struct replay *rp = arg;
	if (rp->n == rp->cap) {
		size_t cap = rp->cap ? rp->cap * 2 : 256;
		struct eff *v = realloc(rp->v, cap * sizeof(*v));
		if (!v)
			return;
		rp->v = v;
		rp->cap = cap;
	}
	rp->v[rp->n++] = (struct eff){ pos, r, off };
}

static void on_ckpt(struct kv_server *s, struct krec *r, uint64_t hpos, uint32_t n,
		    const struct kv_flow_state *states, void *arg)
{
	(void)s;
	struct replay *rp = arg;
	if (rp->best && rp->best->id > r->id)
		return;
	struct kv_flow_state *p = malloc((size_t)n * sizeof(*p) + 1);
	if (!p)
		return;
	memcpy(p, states, (size_t)n * sizeof(*p));
	free(rp->states);
	rp->states = p;
	rp->nstates = n;
	rp->best = r;
	rp->hpos = hpos;
}

static void on_summary(struct kv_server *s, struct krec *r, struct kv_summary *sum, void *arg)
{
	(void)s;
	(void)r;
	struct replay *rp = arg;
	if (rp->sum.rec_id > sum->rec_id) {
		free(sum->flows);
		return;
	}
	free(rp->sum.flows);
	rp->sum = *sum;
}

static void on_refused(struct kv_server *s, struct krec *r, uint64_t pos, uint32_t off, void *arg)
{
	struct replay *rp = arg;
	if (rp->nrefused == rp->refcap) {
		size_t cap = rp->refcap ? rp->refcap * 2 : 64;
		uint64_t *n = realloc(rp->refused, cap * sizeof(*n));
		if (!n)
			return;
		rp->refused = n;
		rp->refcap = cap;
	}
	rp->refused[rp->nrefused++] = pos;
	/* Kept until a pass puts it below its horizon, as a tombstone is. */
	struct pin *p = pin_meta(s, r, pos, off, 0);
	if (p)
		tomb_add(s, p);
}

static const struct meta_sink sink = { on_effect, on_ckpt, on_summary, on_refused };

/* A server flow of an earlier session that holds nothing goes, so that
 * restarts never fill the flow table. */
static void meta_delete(struct kv_server *s, struct kflow *f)
{
	int rc = pktstore_flow_delete(s->ps, f->id);
	if (rc < 0)
		kv_log("cannot delete empty server flow %llu: %s", (unsigned long long)f->id,
		       pktstore_strerror(rc));
	else
		flow_forget(s, f);
}

static void tomb_of(struct kv_server *s, struct krec *r, uint64_t pos)
{
	struct pin *t = pin_meta(s, r, pos, 0, 0);
	if (t)
		tomb_add(s, t);
}

/* What the entry says happened at its position, done again. */
static void apply(struct kv_server *s, const struct eff *x)
{
	struct meta_eff m;
	if (meta_decode(x->r, x->off, &m) < 0)
		return;
	struct pin *p = NULL;
	switch (m.type) {
	case META_VAL:
	case META_VAL2:
		if ((p = pin_meta(s, x->r, m.pos, m.voff, m.vlen))) {
			p->expire_ms = m.expire_ms;
			ks_put(s, NULL, (int)m.db, m.key, m.klen, p);
		}
		return;
	case META_SETREF: {
		struct kflow *f = m.vlen ? flow_get(s, m.flow) : NULL;
		if (m.vlen && !f)
			return; /* the bytes are gone: this version was overwritten since */
		p = m.vlen ? pin_range(s, f, m.pos, m.seq, m.vlen) : pin_alloc(0);
		if (!p)
			return;
		if (!m.vlen)
			p->pos = m.pos, p->vid = ++s->next_vid;
		p->expire_ms = m.expire_ms;
		rec_hold(&p->urec, x->r);
		ks_put(s, NULL, (int)m.db, m.key, m.klen, p);
		return;
	}
	case META_DEL:
		ks_remove(s, NULL, (int)m.db, m.key, m.klen);
		tomb_of(s, x->r, m.pos);
		return;
	case META_FLUSH:
		for (int d = 0; d < KV_DBS; d++)
			if (m.db == META_ALL_DBS || m.db == (uint32_t)d)
				ks_flush(s, NULL, d);
		tomb_of(s, x->r, m.pos);
		return;
	case META_EXPIRE: {
		struct kentry *e = ks_find(s, (int)m.db, m.key, m.klen);
		if (!e || !(p = pin_clone(s, e->ver)))
			return;
		p->expire_ms = m.expire_ms;
		if (p->xrec)
			rec_unref(s, p->xrec);
		rec_hold(&p->xrec, x->r);
		ks_put(s, NULL, (int)m.db, e->key, e->klen, p);
		return;
	}
	case META_FSTATE: {
		struct kflow *f = flow_get(s, m.flow);
		if (f)
			flow_set_state(f, (int)m.db, (int)m.authed, x->r, m.seq);
		return;
	}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Replay: the live server refused the write at pos (OOM). Replay never
 * decides that again: what it would compute from the records that survive
 * is not what the live server saw. */
int replay_refused(const struct replay *rp, uint64_t pos)
{
	return rp->nrefused && bsearch(&pos, rp->refused, rp->nrefused, sizeof(pos), cmp_u64);
}

/* Replay: what the server recorded applies at its position, which may lie
 * between two commands of one record. */
void replay_effects_before(struct kv_server *s, struct replay *rp, uint64_t pos)
{
	while (rp->vi < rp->n && rp->v[rp->vi].pos < pos)
		apply(s, &rp->v[rp->vi++]);
}

/* Position order; within one position, the order the server wrote them. */
static int by_pos(const void *a, const void *b)
{
	const struct eff *x = a, *y = b;
	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	if (x->r->id != y->r->id)
		return x->r->id < y->r->id ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int load_meta(struct kv_server *s, struct replay *rp, struct kflow *f)
{
	struct pktstore_rec recs[64];
	uint64_t lo = 0;
	for (;;) {
		struct pktstore_query q = { PKTSTORE_BY_SEQ, f->id, lo, UINT64_MAX };
		int n = pktstore_range(s->ps, &q, recs, 64);
		if (n < 0)
			return n;
		if (n == 0)
			return 0;
		for (int i = 0; i < n; i++) {
			struct krec *r = rec_add(s, f, &recs[i]);
			if (!r)
				return -ENOMEM;
			r->parsed = r->ends_clean = 1;
			if (r->ts_ms > s->now_ms)
				s->now_ms = r->ts_ms;
			if (rp->nmeta == rp->metacap) {
				rp->metacap = rp->metacap ? rp->metacap * 2 : 64;
				struct krec **m = realloc(rp->meta, rp->metacap * sizeof(*m));
				if (!m)
					return -ENOMEM;
				rp->meta = m;
			}
			rp->meta[rp->nmeta++] = r;
			if (meta_parse(s, r, &sink, rp) < 0) {
				/* Its checksum holds, so the server wrote it so: a bug, not rot. */
				kv_log("meta record %llu is malformed; using what precedes the damage",
				       (unsigned long long)r->id);
			}
			lo = recs[i].seq + recs[i].len;
		}
	}
}

/* 1. Flows of earlier sessions; the server's own ones are read first. */
static int load_flows(struct kv_server *s, struct replay *rp)
{
	struct pktstore_flow_info info[64];
	uint64_t after = 0;
	for (;;) {
		int n = pktstore_flows(s->ps, after, info, 64);
		if (n <= 0)
			return n;
		for (int i = 0; i < n; i++) {
			after = info[i].id;
			int need_auth;
			int proto = kv_proto_of_tag(info[i].tag, &need_auth);
			if (!proto || flow_get(s, info[i].id))
				continue;
			struct kflow *f = flow_add(s, info[i].id, proto);
			if (!f)
				return -ENOMEM;
			f->closed = 1;
			f->need_auth = (uint8_t)need_auth;
			f->authed = !need_auth;
			if (proto == KV_META && info[i].id > rp->last_meta)
				rp->last_meta = info[i].id;
			int rc = proto == KV_META ? load_meta(s, rp, f) : 0;
			if (rc < 0)
				return rc;
		}
	}
}

/* 4. Every connection record in persist order, recorded entries merged in. */
static int replay_records(struct kv_server *s, struct replay *rp)
{
	struct pktstore_rec recs[256];
	uint64_t lo = 0;
	for (;;) {
		struct pktstore_query q = { PKTSTORE_BY_ID, 0, lo, UINT64_MAX };
		int n = pktstore_range(s->ps, &q, recs, 256);
		if (n <= 0)
			return n;
		for (int i = 0; i < n; i++) {
			const struct pktstore_rec *pr = &recs[i];
			lo = pr->id + 1;
			struct kflow *f = flow_get(s, pr->flow);
			if (!f || f->proto == KV_META || !pr->len)
				continue;
			replay_effects_before(s, rp, KV_POS(pr->id, 0));
			if (f->started && pr->seq != f->next_seq) {
				if (pr->seq < f->next_seq)
					continue;
				kv_log("flow %llu: bytes %llu..%llu are missing; ignoring the rest",
				       (unsigned long long)f->id, (unsigned long long)f->next_seq,
				       (unsigned long long)pr->seq);
				f->broken = 1;
			}
			f->started = 1;
			struct krec *r = rec_add(s, f, pr);
			if (!r)
				return -ENOMEM;
			flow_feed(s, f, r, rp);
			if (pr->id > s->last_id)
				s->last_id = pr->id;
		}
	}
}

/* 5. Release what replay found unreferenced. */
static void release_unreferenced(struct kv_server *s, struct replay *rp)
{
	if (rp->best) {
		rec_ref(rp->best);
		s->ckpt = rp->best;
	}
	for (size_t i = 0; i < rp->nmeta; i++)
		if (!rp->meta[i]->refs) {
			rec_ref(rp->meta[i]);
			rec_unref(s, rp->meta[i]);
		}
	for (uint64_t b = 0; s->fh && b < KV_FLOW_BUCKETS; b++)
		for (struct kflow *f = s->fh[b], *next; f; f = next) {
			next = f->hnext;
			if (f->proto != KV_META)
				flow_try_release(s, f);
			else if (!f->head)
				meta_delete(s, f);
		}
}

int recover(struct kv_server *s, uint64_t *keys, uint64_t *ns)
{
	uint64_t t0 = now_ns();
	struct replay *rp = calloc(1, sizeof(*rp));
	int err = rp ? 0 : -ENOMEM;
	s->replaying = 1;
	if (err || (err = load_flows(s, rp)) < 0)
		goto out;

	/* 2. Nothing is replayed, nor released, over damage unless asked to. */
	struct pktstore_stats st;
	if ((err = pktstore_stats(s->ps, &st)) < 0)
		goto out;
	int damage = damage_scan(s, &st, rp->last_meta, rp->sum.rec_id ? &rp->sum : NULL);
	if (damage < 0) {
		err = damage;
		goto out;
	}
	if (damage > 0 && !s->cfg.repair) {
		damage_report(s);
		err = KV_EDAMAGED;
		goto done;
	}
	if (damage > 0 && (err = damage_repair(s)) < 0)
		goto out;

	/* 3. The newest checkpoint: where, and in which state, flows restart. */
	s->hpos = rp->hpos;
	for (uint32_t i = 0; i < rp->nstates; i++) {
		struct kflow *f = flow_get(s, rp->states[i].flow);
		if (!f)
			continue;
		f->skip_to = f->release_limit = rp->states[i].offset;
		f->db = (uint8_t)(rp->states[i].db < KV_DBS ? rp->states[i].db : 0);
		f->authed = (uint8_t)(rp->states[i].authed || !f->need_auth);
	}
	if (rp->n)
		qsort(rp->v, rp->n, sizeof(*rp->v), by_pos);
	if (rp->nrefused)
		qsort(rp->refused, rp->nrefused, sizeof(*rp->refused), cmp_u64);
	while (rp->vi < rp->n && rp->v[rp->vi].pos < s->hpos)
		rp->vi++;

	if ((err = replay_records(s, rp)) < 0)
		goto out;
	replay_effects_before(s, rp, UINT64_MAX);

out:
	/* After a failure, nothing is released: what was not replayed is not
	 * unreferenced. */
	s->replaying = 0;
	if (!err)
		release_unreferenced(s, rp);
done:
	s->replaying = 0;
	damage_free();
	if (rp) {
		free(rp->sum.flows);
		free(rp->refused);
		free(rp->v);
		free(rp->states);
		free(rp->meta);
		free(rp);
	}
	*keys = ks_keys(s);
	*ns = now_ns() - t0;
	return err;
}
