/* SPDX-License-Identifier: MIT */
/*
 * compact.c - the server's own flow ("meta") and the cleaning pass.
 *
 * A meta record is self-contained (it never continues in the next one), so
 * meta records can be released in any order. It holds entries:
 *   VAL  pos, key, value  - key had this value at position pos
 *   CKPT hpos, (flow, offset)... - replay ignores positions below hpos and
 *                               starts each listed flow at its offset
 *   SUM  (flow, first_seq, next_seq, records)... - written last before a
 *                               clean close: what the next start must find
 *   REF  pos                  - the write at pos was refused (OOM)
 * Integers are in host byte order: an arena is not portable across
 * endianness anyway.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

#define META_MAGIC 0x4d564b50u /* "PKVM" */

enum { META_VAL = 1, META_CKPT = 2, META_SUM = 3, META_REF = 4 };

struct meta_hdr {
	uint32_t magic, type, len, reserved;
};

struct meta_val {
	uint64_t pos;
	uint32_t klen, vlen;
};

_Static_assert(sizeof(struct meta_hdr) + sizeof(struct meta_val) == KV_META_ENTRY,
	       "KV_META_ENTRY is what a value costs besides its key and bytes");

struct meta_ckpt {
	uint64_t hpos;
	uint32_t n, reserved;
};

struct meta_sum {
	uint64_t meta_records, meta_next_seq;
	uint32_t n, reserved;
};

int meta_open(struct kv_server *s)
{
	int rc = pktstore_flow_create(s->ps, KV_TAG_META, &s->meta_flow);
	if (rc < 0)
		return rc;
	return flow_add(s, s->meta_flow, KV_META) ? 0 : -ENOMEM;
}

static int meta_append(struct kv_server *s, const void *buf, uint32_t len, struct krec **out)
{
	struct pktstore_rec pr;
	int rc = pktstore_append(s->ps, s->meta_flow, buf, len, &pr);
	if (rc < 0)
		return rc;
	struct krec *r = rec_add(s, flow_get(s, s->meta_flow), &pr);
	if (!r)
		return -ENOMEM;
	r->parsed = r->ends_clean = 1;
	*out = r;
	return 0;
}

static uint32_t put_val(char *b, uint64_t pos, const char *key, uint32_t klen, uint32_t vlen)
{
	struct meta_hdr h = { META_MAGIC, META_VAL, (uint32_t)sizeof(struct meta_val) + klen + vlen, 0 };
	struct meta_val v = { pos, klen, vlen };
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), &v, sizeof(v));
	memcpy(b + sizeof(h) + sizeof(v), key, klen);
	return (uint32_t)(sizeof(h) + sizeof(v) + klen); /* offset of the value */
}

int meta_set_value(struct kv_server *s, uint64_t pos, const char *key, uint32_t klen,
		   const char *val, uint32_t vlen, struct pin **out)
{
	char buf[sizeof(struct meta_hdr) + sizeof(struct meta_val) + KV_MAX_KEY + 32];
	if (vlen > 32)
		return -EINVAL;
	uint32_t off = put_val(buf, pos, key, klen, vlen);
	memcpy(buf + off, val, vlen);
	struct krec *r;
	int rc = meta_append(s, buf, off + vlen, &r);
	if (rc < 0)
		return rc;
	*out = pin_meta(r, pos, off, vlen);
	if (!*out) {
		r->refs = 1;
		rec_unref(s, r);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Before an OOM reply: the refusal is durable, so replay skips exactly the
 * writes the live server refused instead of deciding again from what is
 * left in the arena. It stays, as a tombstone does, until a pass puts it
 * below the horizon.
 */
int meta_refuse(struct kv_server *s, uint64_t pos)
{
	char buf[sizeof(struct meta_hdr) + sizeof(pos)];
	struct meta_hdr h = { META_MAGIC, META_REF, sizeof(pos), 0 };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &pos, sizeof(pos));
	struct krec *r;
	int rc = meta_append(s, buf, sizeof(buf), &r);
	if (rc < 0)
		return rc;
	struct pin *p = pin_meta(r, pos, sizeof(h), 0);
	if (!p) {
		r->refs = 1;
		rec_unref(s, r);
		return -ENOMEM;
	}
	tomb_add(s, p);
	return 0;
}

int meta_parse(struct kv_server *s, struct krec *r, const struct meta_sink *sink)
{
	uint32_t off = 0;
	while (off + sizeof(struct meta_hdr) <= r->len) {
		struct meta_hdr h;
		memcpy(&h, r->data + off, sizeof(h));
		off += (uint32_t)sizeof(h);
		if (h.magic != META_MAGIC || h.len > r->len - off)
			return -EBADMSG;
		if (h.type == META_VAL && h.len >= sizeof(struct meta_val)) {
			struct meta_val v;
			memcpy(&v, r->data + off, sizeof(v));
			if ((uint64_t)v.klen + v.vlen != h.len - sizeof(v) || v.klen > KV_MAX_KEY)
				return -EBADMSG;
			uint32_t koff = off + (uint32_t)sizeof(v);
			sink->val(s, r, v.pos, koff, v.klen, koff + v.klen, v.vlen);
		} else if (h.type == META_CKPT && h.len >= sizeof(struct meta_ckpt)) {
			struct meta_ckpt c;
			memcpy(&c, r->data + off, sizeof(c));
			if ((uint64_t)c.n * 16 != h.len - sizeof(c))
				return -EBADMSG;
			uint64_t *pairs = malloc((size_t)c.n * 16 + 1);
			if (!pairs)
				return -ENOMEM;
			memcpy(pairs, r->data + off + sizeof(c), (size_t)c.n * 16);
			sink->ckpt(s, r, c.hpos, c.n, pairs);
			free(pairs);
		} else if (h.type == META_REF && h.len == sizeof(uint64_t)) {
			uint64_t pos;
			memcpy(&pos, r->data + off, sizeof(pos));
			sink->refused(s, r, pos, off);
		} else if (h.type == META_SUM && h.len >= sizeof(struct meta_sum)) {
			struct meta_sum m;
			memcpy(&m, r->data + off, sizeof(m));
			if ((uint64_t)m.n * sizeof(struct kv_sum_flow) != h.len - sizeof(m))
				return -EBADMSG;
			struct kv_summary sum = { .rec_id = r->id, .meta_records = m.meta_records,
						  .meta_next_seq = m.meta_next_seq, .n = m.n };
			sum.flows = malloc((size_t)m.n * sizeof(*sum.flows) + 1);
			if (!sum.flows)
				return -ENOMEM;
			memcpy(sum.flows, r->data + off + sizeof(m), (size_t)m.n * sizeof(*sum.flows));
			sink->summary(s, r, &sum); /* takes sum.flows */
		}
		off += h.len;
	}
	return 0;
}

/*
 * Before a clean close: every flow's extent as the library reports it, and
 * the server's own flow just before this record. Nothing is released after
 * it, so the next start must find exactly this, and anything else is damage
 * (records lost at a stream's end or front leave no gap to see).
 */
int meta_write_summary(struct kv_server *s)
{
	struct pktstore_flow_info info[64], self;
	size_t n = 0, cap = 64;
	struct kv_sum_flow *fl = malloc(cap * sizeof(*fl));
	int rc = pktstore_flow_info(s->ps, s->meta_flow, &self);
	uint64_t after = 0;
	while (fl && rc >= 0 && (rc = pktstore_flows(s->ps, after, info, 64)) > 0) {
		for (int i = 0; i < rc; i++) {
			after = info[i].id;
			if (info[i].id == s->meta_flow)
				continue;
			if (n == cap) {
				struct kv_sum_flow *m = realloc(fl, 2 * cap * sizeof(*fl));
				if (!m) {
					free(fl);
					return -ENOMEM;
				}
				fl = m;
				cap *= 2;
			}
			int e = flow_extent(s->ps, info[i].id, &fl[n]);
			if (e < 0) {
				free(fl);
				return e;
			}
			n++;
		}
	}
	if (!fl)
		return -ENOMEM;
	if (rc < 0) {
		free(fl);
		return rc;
	}
	size_t len = sizeof(struct meta_hdr) + sizeof(struct meta_sum) + n * sizeof(*fl);
	char *buf = len <= UINT32_MAX ? malloc(len) : NULL;
	if (!buf) {
		free(fl);
		return -ENOMEM;
	}
	struct meta_hdr h = { META_MAGIC, META_SUM, (uint32_t)(len - sizeof(h)), 0 };
	struct meta_sum m = { self.records, self.next_seq, (uint32_t)n, 0 };
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &m, sizeof(m));
	memcpy(buf + sizeof(h) + sizeof(m), fl, n * sizeof(*fl));
	struct pktstore_rec pr;
	rc = pktstore_append(s->ps, s->meta_flow, buf, (uint32_t)len, &pr);
	free(buf);
	free(fl);
	return rc < 0 ? rc : 0;
}

struct stage {
	char *buf;
	uint32_t len, cap;
	struct kentry **keys;
	uint32_t *voff;
	uint32_t n, kcap;
	uint64_t pos;
};

static int stage_flush(struct kv_server *s, struct stage *st)
{
	if (!st->n)
		return 0;
	struct krec *r;
	int rc = meta_append(s, st->buf, st->len, &r);
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < st->n; i++) {
		struct kentry *e = st->keys[i];
		struct pin *p = pin_meta(r, st->pos, st->voff[i], e->ver->vlen);
		if (!p)
			continue; /* the old version stays; still correct */
		struct pin *old = e->ver;
		ks_account(s, e, -1);
		e->ver = p;
		ks_account(s, e, 1);
		s->relocated_bytes += p->vlen;
		pin_drop(s, old);
	}
	st->n = 0;
	st->len = 0;
	if (!r->refs) {
		r->refs = 1;
		rec_unref(s, r);
	}
	return 0;
}

static int stage_add(struct kv_server *s, struct stage *st, struct kentry *e)
{
	uint32_t need = (uint32_t)(sizeof(struct meta_hdr) + sizeof(struct meta_val)) + e->klen +
			e->ver->vlen;
	if (st->len + need > st->cap) {
		int rc = stage_flush(s, st);
		if (rc < 0)
			return rc;
		if (need > st->cap) {
			char *b = realloc(st->buf, need);
			if (!b)
				return -ENOMEM;
			st->buf = b;
			st->cap = need;
		}
	}
	if (st->n == st->kcap) {
		uint32_t cap = st->kcap ? st->kcap * 2 : 256;
		struct kentry **k = realloc(st->keys, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		st->keys = k;
		uint32_t *v = realloc(st->voff, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		st->voff = v;
		st->kcap = cap;
	}
	uint32_t off = st->len + put_val(st->buf + st->len, st->pos, e->key, e->klen, e->ver->vlen);
	uint32_t o = off;
	for (uint32_t i = 0; i < e->ver->n; i++) {
		const struct span *sp = &e->ver->s[i];
		memcpy(st->buf + o, sp->rec->data + sp->off, sp->len);
		o += sp->len;
	}
	st->keys[st->n] = e;
	st->voff[st->n++] = off;
	st->len = o;
	return 0;
}

/*
 * Where replay must start flow f for a horizon at record id h: the first
 * command that completes at or after the horizon. For a flow whose parsing
 * stopped (protocol error, QUIT, Connection: close) replay must stop at the
 * same byte, which it does by itself when it starts before that point;
 * otherwise there is nothing left to replay.
 */
static uint64_t restart_offset(struct kflow *f, uint64_t h)
{
	for (struct krec *r = f->head; r; r = r->next)
		if (r->id >= h)
			return f->broken && r->cstart >= f->broken_at ? f->next_seq : r->cstart;
	if (f->broken)
		return f->next_seq;
	int busy = f->proto == KV_RESP ? resp_busy(&f->resp) : http_busy(&f->http);
	if (busy)
		return f->proto == KV_RESP ? f->resp.cmd_start : f->http.req_start;
	return f->next_seq;
}

struct moving {
	struct kentry *e;
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

/* 1. Values older than the horizon move to the meta flow, at the horizon. */
static int relocate(struct kv_server *s, uint64_t hpos, uint64_t at_pos)
{
	struct moving *mv = malloc((s->ks.n ? s->ks.n : 1) * sizeof(*mv));
	size_t n = 0;
	if (!mv)
		return -ENOMEM;
	for (uint64_t b = 0; b < s->ks.nb; b++)
		for (struct kentry *e = s->ks.b[b]; e; e = e->next)
			if (e->ver->pos < hpos)
				mv[n++] = (struct moving){ e, e->ver->n ? e->ver->s[0].rec->id : 0,
							   pin_in_meta(e->ver) };
	qsort(mv, n, sizeof(*mv), by_where);
	struct stage st = { .cap = s->stage_cap, .pos = at_pos };
	int rc = 0;
	st.buf = malloc(st.cap);
	if (!st.buf)
		rc = -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = stage_add(s, &st, mv[i].e);
	if (rc == 0)
		rc = stage_flush(s, &st);
	free(st.buf);
	free(st.keys);
	free(st.voff);
	free(mv);
	return rc;
}

int compact_pass(struct kv_server *s)
{
	static struct kv_ratelimit rl_reloc, rl_ckpt;
	uint64_t h = s->last_id;
	if (!h)
		return 0;
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

	/* 2. The checkpoint: restart offsets for every flow that still has records. */
	uint32_t n = 0, ncap = 64;
	uint64_t *pairs = malloc(ncap * 16);
	for (uint64_t b = 0; pairs && b < 4096; b++)
		for (struct kflow *f = s->fh[b]; f && pairs; f = f->hnext) {
			if (f->proto == KV_META || !f->head)
				continue;
			if (n == ncap) {
				ncap *= 2;
				uint64_t *p = realloc(pairs, ncap * 16);
				if (!p) {
					free(pairs);
					pairs = NULL;
					break;
				}
				pairs = p;
			}
			pairs[2 * n] = f->id;
			pairs[2 * n + 1] = restart_offset(f, h + 1);
			n++;
		}
	if (!pairs)
		return -ENOMEM;
	size_t clen = sizeof(struct meta_hdr) + sizeof(struct meta_ckpt) + (size_t)n * 16;
	char *cbuf = malloc(clen);
	if (!cbuf) {
		free(pairs);
		return -ENOMEM;
	}
	struct meta_hdr mh = { META_MAGIC, META_CKPT, (uint32_t)(clen - sizeof(mh)), 0 };
	struct meta_ckpt mc = { hpos, n, 0 };
	memcpy(cbuf, &mh, sizeof(mh));
	memcpy(cbuf + sizeof(mh), &mc, sizeof(mc));
	memcpy(cbuf + sizeof(mh) + sizeof(mc), pairs, (size_t)n * 16);
	struct krec *cr;
	rc = meta_append(s, cbuf, (uint32_t)clen, &cr);
	free(cbuf);
	if (rc < 0) {
		free(pairs);
		kv_log_limited(&rl_ckpt, "cleaning pass: checkpoint failed: %s", pktstore_strerror(rc));
		return rc;
	}

	/* 3. The checkpoint is durable: below the horizon nothing is replayed. */
	cr->refs++;
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
		struct kflow *f = flow_get(s, pairs[2 * i]);
		if (f) {
			f->release_limit = pairs[2 * i + 1];
			flow_try_release(s, f);
		}
	}
	free(pairs);
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
	s->limit = st->data_bytes > s->reserve ? (st->data_bytes - s->reserve) / 2 : 0;
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
