/* SPDX-License-Identifier: MIT */
/*
 * compact.c - the cleaning pass: values older than a horizon are copied
 * into the server's own flow, a checkpoint says where replay restarts each
 * connection and in which state, and what lies before those points goes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

struct staged {
	struct kentry *e;
	uint32_t voff;
};

struct stage {
	struct mbuf mb;
	uint32_t cap;
	struct staged *v;
	uint32_t n, vcap;
	uint64_t pos;
};

static int stage_flush(struct kv_server *s, struct stage *st)
{
	if (!st->n)
		return 0;
	struct krec *r;
	int rc = meta_append(s, st->mb.p, st->mb.len, &r);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < st->n; i++) {
		struct kentry *e = st->v[i].e;
		struct pin *p = pin_meta(s, r, st->pos, st->v[i].voff, e->ver->vlen);
		if (!p)
			continue; /* the old version stays; still correct */
		struct pin *old = e->ver;
		p->expire_ms = old->expire_ms;
		p->vid = old->vid; /* the same version, moved: WATCH sees no change */
		ks_account(s, e, -1);
		e->ver = p;
		ks_account(s, e, 1);
		s->relocated_bytes += p->vlen;
		pin_drop(s, old);
	}
	st->n = 0;
	st->mb.len = 0;
	if (!r->refs) {
		rec_ref(r);
		rec_unref(s, r);
	}
	return 0;
}

static int stage_add(struct kv_server *s, struct stage *st, int db, struct kentry *e)
{
	uint32_t need = KV_META_ENTRY + e->klen + e->ver->vlen;
	if (st->mb.len + need > st->cap) {
		int rc = stage_flush(s, st);
		if (rc < 0)
			return rc;
	}
	if (st->n == st->vcap) {
		uint32_t cap = st->vcap ? st->vcap * 2 : 256;
		struct staged *v = realloc(st->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		st->v = v;
		st->vcap = cap;
	}
	int off = mbuf_val2_room(&st->mb, st->pos, (uint32_t)db, e->ver->expire_ms, e->key, e->klen,
				 e->ver->vlen);
	if (off < 0)
		return off;
	pin_copy(e->ver, 0, st->mb.p + off, e->ver->vlen);
	st->v[st->n++] = (struct staged){ e, (uint32_t)off };
	return 0;
}

/*
 * Where replay must start flow f for a horizon at record id h: the first
 * command that completes at or after the horizon, or the MULTI of the
 * transaction being queued. For a flow whose parsing stopped (protocol
 * error, QUIT, Connection: close) replay must stop at the same byte, which
 * it does by itself when it starts before that point; otherwise there is
 * nothing left to replay.
 */
static uint64_t restart_offset(struct kflow *f, uint64_t h)
{
	if (f->in_multi && !f->broken)
		return f->multi_start;
	for (struct krec *r = f->head; r; r = r->next)
		if (r->id >= h)
			return f->broken && r->cstart >= f->broken_at ? f->next_seq : r->cstart;
	if (f->broken)
		return f->next_seq;
	return flow_busy(f) ? flow_cmd_start(f) : f->next_seq;
}

struct moving {
	struct kentry *e;
	int db;
	uint64_t first_id; /* the oldest record holding the value */
	int in_meta;
};

/* Values in meta records first, oldest record first: each old record goes
 * as soon as its last value has moved, so that part of a pass pays for
 * itself as it goes. Connections' records can only go once the checkpoint
 * is durable; the trigger keeps room for them. */
static int by_where(const void *a, const void *b)
{
	const struct moving *x = a, *y = b;
	if (x->in_meta != y->in_meta)
		return x->in_meta ? -1 : 1;
	return x->first_id < y->first_id ? -1 : x->first_id > y->first_id;
}

/* 1. Values defined below the horizon move to the meta flow, at the horizon. */
static int relocate(struct kv_server *s, uint64_t hpos, uint64_t at_pos)
{
	uint64_t total = ks_keys(s);
	struct moving *mv = malloc((total ? total : 1) * sizeof(*mv));
	size_t n = 0;
	if (!mv)
		return -ENOMEM;
	for (int d = 0; d < KV_DBS; d++)
		for (uint64_t b = 0; b < s->ks[d].nb; b++)
			for (struct kentry *e = s->ks[d].b[b]; e; e = e->next)
				if (e->ver->pos < hpos)
					mv[n++] = (struct moving){
						e, d, e->ver->n ? e->ver->s[0].rec->id : 0,
						pin_in_meta(e->ver)
					};
	qsort(mv, n, sizeof(*mv), by_where);
	struct stage st = { .cap = s->stage_cap, .pos = at_pos };
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = stage_add(s, &st, mv[i].db, mv[i].e);
	if (rc == 0)
		rc = stage_flush(s, &st);
	mbuf_free(&st.mb);
	free(st.v);
	free(mv);
	return rc;
}

/* 2. The checkpoint: where and in which state replay restarts every
 * connection that still has records or is still open. */
static int checkpoint(struct kv_server *s, uint64_t h, uint64_t hpos, struct krec **out,
		      struct kv_flow_state **states, uint32_t *count)
{
	uint32_t n = 0, cap = 64;
	struct kv_flow_state *st = malloc(cap * sizeof(*st));
	for (uint64_t b = 0; st && b < KV_FLOW_BUCKETS; b++)
		for (struct kflow *f = s->fh[b]; f; f = f->hnext) {
			if (f->proto == KV_META || (!f->head && !f->conn))
				continue;
			if (n == cap) {
				struct kv_flow_state *m = realloc(st, 2 * cap * sizeof(*st));
				if (!m) {
					free(st);
					return -ENOMEM;
				}
				st = m;
				cap *= 2;
			}
			st[n++] = (struct kv_flow_state){ f->id, restart_offset(f, h + 1), f->db,
							  f->authed };
		}
	if (!st)
		return -ENOMEM;
	struct mbuf mb = { 0 };
	int rc = mbuf_ckpt2(&mb, hpos, n, st);
	if (rc >= 0)
		rc = meta_append(s, mb.p, mb.len, out);
	mbuf_free(&mb);
	if (rc < 0) {
		free(st);
		return rc;
	}
	*states = st;
	*count = n;
	return 0;
}

int compact_pass(struct kv_server *s)
{
	static struct kv_ratelimit rl_reloc, rl_ckpt;
	uint64_t h = s->last_id;
	if (!h)
		return 0;
	/* Keys whose time is up go first: every command from now on sees them
	 * expired, and replay from this checkpoint never sees them at all. */
	ks_purge_expired(s, s->now_ms);
	/* The horizon lies after every command applied so far, and the copies
	 * sit at it: replay then starts from exactly the state the live server
	 * had, so it takes every later decision (OOM included) the same way. */
	uint64_t hpos = KV_POS_AFTER(h);
	int rc = relocate(s, hpos, hpos);
	if (rc < 0) {
		struct pktstore_stats st;
		pktstore_stats(s->ps, &st);
		kv_log_limited(&rl_reloc,
			       "cleaning pass: relocation failed: %s (%" PRIu64 " segments free, %" PRIu64
			       " records hold %" PRIu64 " bytes; live values charged %" PRIu64
			       ", %" PRIu64 " of it in connections)",
			       pktstore_strerror(rc), st.segments_free, st.records, st.record_bytes,
			       s->live_charge, s->conn_charge);
		return rc;
	}
	struct krec *cr;
	struct kv_flow_state *st;
	uint32_t n;
	rc = checkpoint(s, h, hpos, &cr, &st, &n);
	if (rc < 0) {
		kv_log_limited(&rl_ckpt, "cleaning pass: checkpoint failed: %s", pktstore_strerror(rc));
		return rc;
	}

	/* 3. The checkpoint is durable: below the horizon nothing is replayed. */
	rec_ref(cr);
	struct krec *old = s->ckpt;
	s->ckpt = cr;
	s->hpos = hpos;
	if (old)
		rec_unref(s, old);
	log_trim(s, hpos);
	uint64_t keep = 0;
	for (uint64_t i = 0; i < s->ntombs; i++) {
		if (s->tombs[i]->pos < hpos)
			pin_drop(s, s->tombs[i]);
		else
			s->tombs[keep++] = s->tombs[i];
	}
	s->ntombs = keep;
	for (uint32_t i = 0; i < n; i++) {
		struct kflow *f = flow_get(s, st[i].flow);
		if (!f)
			continue;
		/* The checkpoint carries its state now. */
		flow_drop_states(s, f, UINT64_MAX);
		f->release_limit = st[i].offset;
		flow_try_release(s, f);
	}
	free(st);
	s->passes++;
	return 0;
}

/*
 * The space rules. Free segments are what matters: the library reuses a
 * segment only once every record in it is gone. The reserve is what
 * receiving may hold outside the server's control (the buffers lent to the
 * kernel, at most 4 segments) plus two segments and two staged records of
 * working room for a pass. A pass copies every live value once; the meta
 * values' old records go as it goes, but until its checkpoint is durable the
 * connections' records stay, so it needs free room for those values. The
 * limit keeps that true whatever the workload: with all live values charged
 * at most half of what the reserve leaves, a pass always finds its room.
 */
void space_init(struct kv_server *s, const struct pktstore_stats *st)
{
	uint64_t seg = st->segment_size;
	uint64_t lent = st->segments / 4 < 4 ? (st->segments / 4 ? st->segments / 4 : 1) : 4;
	s->stage_cap = (uint32_t)(seg / 8);
	s->reserve = (lent + 2) * seg + 2 * (uint64_t)s->stage_cap;
	s->arena_limit = st->data_bytes > s->reserve ? (st->data_bytes - s->reserve) / 2 : 0;
	s->limit = s->cfg.maxmemory && s->cfg.maxmemory < s->arena_limit ? s->cfg.maxmemory
									  : s->arena_limit;
}

/*
 * Run a pass while free space could not take the values a pass must move
 * plus the reserve, or descriptors run low, but spend at most half the time
 * in passes unless space is short (free space could hardly take those
 * values). Nothing runs again until a record arrived or went (so a full,
 * idle server sleeps), and a failed pass backs off.
 */
void compact_maybe(struct kv_server *s)
{
	uint64_t now = now_ns();
	struct pktstore_stats st;
	if (now < s->retry_ns || pktstore_stats(s->ps, &st) < 0)
		return;
	if (st.records_persisted + s->released == s->pass_stamp)
		return;
	uint64_t free_bytes = st.segments_free * st.segment_size;
	int must = free_bytes < s->conn_charge + 2 * st.segment_size ||
		   st.descriptors_free * 8 < st.descriptors;
	int want = free_bytes < s->conn_charge + s->reserve || st.descriptors_free * 4 < st.descriptors;
	if (!must && (!want || now < s->next_pass_ns))
		return;
	int rc = compact_pass(s);
	uint64_t end = now_ns();
	if (pktstore_stats(s->ps, &st) == 0)
		s->pass_stamp = st.records_persisted + s->released;
	s->next_pass_ns = end + (end - now);
	if (rc < 0) {
		s->pass_backoff_ns = s->pass_backoff_ns ? 2 * s->pass_backoff_ns : 1000000ull;
		if (s->pass_backoff_ns > 100000000ull)
			s->pass_backoff_ns = 100000000ull;
		s->retry_ns = end + s->pass_backoff_ns;
	} else {
		s->pass_backoff_ns = 0;
	}
}
