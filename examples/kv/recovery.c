/* SPDX-License-Identifier: MIT */
/*
 * recovery.c - rebuild the index from the arena after a restart or crash.
 *
 * Replay walks every surviving record in id order (global persist order)
 * and feeds each to its flow's parser exactly as the live server did, so a
 * command applies at the record that completed it. Values the server wrote
 * itself (relocated or computed) carry their position and are merged into
 * that order. The newest checkpoint says which positions are already
 * superseded and where each flow's parsing restarts. A command cut short by
 * the crash never completes, so it is never applied.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

struct val {
	uint64_t pos;
	struct krec *r;
	uint32_t koff, klen, voff, vlen;
};

static struct {
	struct val *v;
	size_t n, cap;
	struct krec *best;
	uint64_t hpos;
	uint64_t *pairs;
	uint32_t npairs;
	struct krec **meta;
	size_t nmeta, metacap;
	size_t vi;              /* next server value to apply, in position order */
	uint64_t *refused;      /* positions of writes refused with OOM, sorted */
	size_t nrefused, refcap;
	struct kv_summary sum;  /* the newest closing summary */
	uint64_t last_meta;     /* the newest server flow: the last session's */
} rc;

static void on_val(struct kv_server *s, struct krec *r, uint64_t pos, uint32_t koff,
		   uint32_t klen, uint32_t voff, uint32_t vlen)
{
	(void)s;
	if (rc.n == rc.cap) {
		size_t cap = rc.cap ? rc.cap * 2 : 256;
		struct val *v = realloc(rc.v, cap * sizeof(*v));
		if (!v)
			return;
		rc.v = v;
		rc.cap = cap;
	}
	rc.v[rc.n++] = (struct val){ pos, r, koff, klen, voff, vlen };
}

static void on_ckpt(struct kv_server *s, struct krec *r, uint64_t hpos, uint32_t n,
		    const uint64_t *pairs)
{
	(void)s;
	if (rc.best && rc.best->id > r->id)
		return;
	uint64_t *p = malloc((size_t)n * 16 + 1);
	if (!p)
		return;
	memcpy(p, pairs, (size_t)n * 16);
	free(rc.pairs);
	rc.pairs = p;
	rc.npairs = n;
	rc.best = r;
	rc.hpos = hpos;
}

static void on_summary(struct kv_server *s, struct krec *r, struct kv_summary *sum)
{
	(void)s;
	(void)r;
	if (rc.sum.rec_id > sum->rec_id) {
		free(sum->flows);
		return;
	}
	free(rc.sum.flows);
	rc.sum = *sum;
}

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

static void apply_val(struct kv_server *s, const struct val *v)
{
	struct pin *p = pin_meta(v->r, v->pos, v->voff, v->vlen);
	if (p)
		ks_set(s, v->r->data + v->koff, v->klen, p);
}

static void on_refused(struct kv_server *s, struct krec *r, uint64_t pos, uint32_t off)
{
	if (rc.nrefused == rc.refcap) {
		size_t cap = rc.refcap ? rc.refcap * 2 : 64;
		uint64_t *n = realloc(rc.refused, cap * sizeof(*n));
		if (!n)
			return;
		rc.refused = n;
		rc.refcap = cap;
	}
	rc.refused[rc.nrefused++] = pos;
	/* Kept until a pass puts it below its horizon, as a tombstone is. */
	struct pin *p = pin_meta(r, pos, off, 0);
	if (p)
		tomb_add(s, p);
}

static const struct meta_sink sink = { on_val, on_ckpt, on_summary, on_refused };

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Replay: the live server refused the write at pos (OOM). Replay never
 * decides that again: what it would compute from the records that survive
 * is not what the live server saw. */
int replay_refused(struct kv_server *s, uint64_t pos)
{
	(void)s;
	return rc.nrefused && bsearch(&pos, rc.refused, rc.nrefused, sizeof(pos), cmp_u64);
}

/* Replay: server values (INCR results, copies) apply at their position,
 * which may lie between two commands of one record. */
void replay_vals_before(struct kv_server *s, uint64_t pos)
{
	while (rc.vi < rc.n && rc.v[rc.vi].pos < pos)
		apply_val(s, &rc.v[rc.vi++]);
}

static int by_pos(const void *a, const void *b)
{
	const struct val *x = a, *y = b;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int load_meta(struct kv_server *s, struct kflow *f)
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
			if (rc.nmeta == rc.metacap) {
				rc.metacap = rc.metacap ? rc.metacap * 2 : 64;
				struct krec **m = realloc(rc.meta, rc.metacap * sizeof(*m));
				if (!m)
					return -ENOMEM;
				rc.meta = m;
			}
			rc.meta[rc.nmeta++] = r;
			if (meta_parse(s, r, &sink) < 0) {
				/* Its checksum holds, so the server wrote it so: a bug, not rot. */
				kv_log("meta record %llu is malformed; using what precedes the damage",
				       (unsigned long long)r->id);
			}
			lo = recs[i].seq + recs[i].len;
		}
	}
}

int recover(struct kv_server *s, uint64_t *keys, uint64_t *ns)
{
	uint64_t t0 = now_ns();
	int err = 0;
	memset(&rc, 0, sizeof(rc));
	s->replaying = 1;

	/* 1. Flows of earlier sessions; the server's own ones are read first. */
	struct pktstore_flow_info info[64];
	uint64_t after = 0;
	for (;;) {
		int n = pktstore_flows(s->ps, after, info, 64);
		if (n < 0) {
			err = n;
			goto out;
		}
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			after = info[i].id;
			int proto = info[i].tag == KV_TAG_RESP   ? KV_RESP
				    : info[i].tag == KV_TAG_HTTP ? KV_HTTP
				    : info[i].tag == KV_TAG_META ? KV_META
								 : 0;
			if (!proto || flow_get(s, info[i].id))
				continue;
			struct kflow *f = flow_add(s, info[i].id, proto);
			if (!f) {
				err = -ENOMEM;
				goto out;
			}
			f->closed = 1;
			if (proto == KV_META && info[i].id > rc.last_meta)
				rc.last_meta = info[i].id;
			if (proto == KV_META && (err = load_meta(s, f)) < 0)
				goto out;
		}
	}

	/* 2. Nothing is replayed, nor released, over damage unless asked to. */
	struct pktstore_stats st;
	if ((err = pktstore_stats(s->ps, &st)) < 0)
		goto out;
	int damage = damage_scan(s, &st, rc.last_meta, rc.sum.rec_id ? &rc.sum : NULL);
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

	/* 3. The newest checkpoint. */
	s->hpos = rc.hpos;
	for (uint32_t i = 0; i < rc.npairs; i++) {
		struct kflow *f = flow_get(s, rc.pairs[2 * i]);
		if (f)
			f->skip_to = f->release_limit = rc.pairs[2 * i + 1];
	}
	if (rc.n)
		qsort(rc.v, rc.n, sizeof(*rc.v), by_pos);
	if (rc.nrefused)
		qsort(rc.refused, rc.nrefused, sizeof(*rc.refused), cmp_u64);
	while (rc.vi < rc.n && rc.v[rc.vi].pos < s->hpos)
		rc.vi++;

	/* 4. Every connection record in persist order, server values merged in. */
	struct pktstore_rec recs[256];
	uint64_t lo = 0;
	for (;;) {
		struct pktstore_query q = { PKTSTORE_BY_ID, 0, lo, UINT64_MAX };
		int n = pktstore_range(s->ps, &q, recs, 256);
		if (n < 0) {
			err = n;
			goto out;
		}
		if (n == 0)
			break;
		for (int i = 0; i < n; i++) {
			const struct pktstore_rec *pr = &recs[i];
			lo = pr->id + 1;
			struct kflow *f = flow_get(s, pr->flow);
			if (!f || f->proto == KV_META || !pr->len)
				continue;
			replay_vals_before(s, KV_POS(pr->id, 0));
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
			if (!r) {
				err = -ENOMEM;
				goto out;
			}
			flow_feed(s, f, r);
			if (pr->id > s->last_id)
				s->last_id = pr->id;
		}
	}
	replay_vals_before(s, UINT64_MAX);

out:
	/* 5. Release what replay found unreferenced; after a failure, nothing:
	 *    what was not replayed is not unreferenced. */
	if (err)
		goto done;
	s->replaying = 0;
	if (rc.best) {
		rc.best->refs++;
		s->ckpt = rc.best;
	}
	for (size_t i = 0; i < rc.nmeta; i++)
		if (!rc.meta[i]->refs) {
			rc.meta[i]->refs = 1;
			rec_unref(s, rc.meta[i]);
		}
	for (uint64_t b = 0; s->fh && b < 4096; b++)
		for (struct kflow *f = s->fh[b], *next; f; f = next) {
			next = f->hnext;
			if (f->proto != KV_META)
				flow_try_release(s, f);
			else if (!f->head)
				meta_delete(s, f);
		}
done:
	s->replaying = 0;
	damage_free();
	free(rc.sum.flows);
	free(rc.refused);
	free(rc.v);
	free(rc.pairs);
	free(rc.meta);
	memset(&rc, 0, sizeof(rc));
	*keys = s->ks.n;
	*ns = now_ns() - t0;
	return err;
}
