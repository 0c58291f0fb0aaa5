/* SPDX-License-Identifier: MIT */
/*
 * meta.c - the format of the server's own flow ("meta").
 *
 * A meta record is self-contained (it never continues in the next one), so
 * meta records can be released in any order, and one record is appended
 * atomically: a unit's effects (unit.c) are all in one record or none are.
 * A record holds entries, each a header (magic, type, length) and a body;
 * meta.h lists the types. Integers are in host byte order: an arena is not
 * portable across endianness anyway.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

#define META_MAGIC 0x4d564b50u /* "PKVM" */

struct meta_hdr {
	uint32_t magic, type, len, reserved;
};

struct meta_val {
	uint64_t pos;
	uint32_t klen, vlen;
};

struct meta_val2 {
	uint64_t pos, expire;
	uint32_t db, klen, vlen, reserved;
};

_Static_assert(sizeof(struct meta_hdr) + sizeof(struct meta_val2) == KV_META_ENTRY,
	       "KV_META_ENTRY is what a value costs besides its key and bytes");

struct meta_setref {
	uint64_t pos, expire, flow, seq;
	uint32_t db, klen, vlen, reserved;
};

struct meta_key {  /* DEL, FLUSH (klen 0) */
	uint64_t pos;
	uint32_t db, klen;
};

struct meta_expire {
	uint64_t pos, expire;
	uint32_t db, klen;
};

struct meta_fstate {
	uint64_t pos, flow, seq;
	uint32_t db, authed;
};

struct meta_ckpt {
	uint64_t hpos;
	uint32_t n, reserved;
};

struct meta_sum {
	uint64_t meta_records, meta_next_seq;
	uint32_t n, reserved;
};

_Static_assert(sizeof(struct kv_flow_state) == 24, "checkpoint entries are packed");

int meta_open(struct kv_server *s)
{
	int rc = pktstore_flow_create(s->ps, KV_TAG_META, &s->meta_flow);
	if (rc < 0)
		return rc;
	return flow_add(s, s->meta_flow, KV_META) ? 0 : -ENOMEM;
}

int meta_append(struct kv_server *s, const void *buf, uint32_t len, struct krec **out)
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

void mbuf_free(struct mbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* Room for an entry of `body` bytes; returns the offset of its body. */
static int entry(struct mbuf *b, uint32_t type, uint64_t body)
{
	uint64_t need = (uint64_t)b->len + sizeof(struct meta_hdr) + body;
	if (b->err)
		return b->err;
	if (b->max && need > b->max)
		return b->err = -EMSGSIZE;
	if (need > UINT32_MAX)
		return -ENOMEM;
	if (need > b->cap) {
		uint64_t cap = b->cap ? b->cap : 256;
		while (cap < need)
			cap *= 2;
		char *p = realloc(b->p, cap > UINT32_MAX ? UINT32_MAX : cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	}
	struct meta_hdr h = { META_MAGIC, type, (uint32_t)body, 0 };
	memcpy(b->p + b->len, &h, sizeof(h));
	uint32_t off = b->len + (uint32_t)sizeof(h);
	b->len = (uint32_t)need;
	return (int)off;
}

int mbuf_val2_room(struct mbuf *b, uint64_t pos, uint32_t db, uint64_t expire_ms,
		   const char *key, uint32_t klen, uint32_t vlen)
{
	struct meta_val2 v = { pos, expire_ms, db, klen, vlen, 0 };
	int off = entry(b, META_VAL2, sizeof(v) + (uint64_t)klen + vlen);
	if (off < 0)
		return off;
	memcpy(b->p + off, &v, sizeof(v));
	memcpy(b->p + off + sizeof(v), key, klen);
	return off + (int)sizeof(v) + (int)klen;
}

int mbuf_val2(struct mbuf *b, uint64_t pos, uint32_t db, uint64_t expire_ms, const char *key,
	      uint32_t klen, const char *val, uint32_t vlen)
{
	int off = mbuf_val2_room(b, pos, db, expire_ms, key, klen, vlen);
	if (off >= 0 && vlen)
		memcpy(b->p + off, val, vlen);
	return off;
}

int mbuf_setref(struct mbuf *b, uint64_t pos, uint32_t db, uint64_t expire_ms, const char *key,
		uint32_t klen, uint64_t flow, uint64_t seq, uint32_t vlen)
{
	struct meta_setref v = { pos, expire_ms, flow, seq, db, klen, vlen, 0 };
	int off = entry(b, META_SETREF, sizeof(v) + (uint64_t)klen);
	if (off < 0)
		return off;
	memcpy(b->p + off, &v, sizeof(v));
	memcpy(b->p + off + sizeof(v), key, klen);
	return off;
}

static int put_key(struct mbuf *b, uint32_t type, uint64_t pos, uint32_t db, const char *key,
		   uint32_t klen)
{
	struct meta_key v = { pos, db, klen };
	int off = entry(b, type, sizeof(v) + (uint64_t)klen);
	if (off < 0)
		return off;
	memcpy(b->p + off, &v, sizeof(v));
	if (klen)
		memcpy(b->p + off + sizeof(v), key, klen);
	return off;
}

int mbuf_del(struct mbuf *b, uint64_t pos, uint32_t db, const char *key, uint32_t klen)
{
	return put_key(b, META_DEL, pos, db, key, klen);
}

int mbuf_flush(struct mbuf *b, uint64_t pos, uint32_t db)
{
	return put_key(b, META_FLUSH, pos, db, NULL, 0);
}

int mbuf_expire(struct mbuf *b, uint64_t pos, uint32_t db, uint64_t expire_ms, const char *key,
		uint32_t klen)
{
	struct meta_expire v = { pos, expire_ms, db, klen };
	int off = entry(b, META_EXPIRE, sizeof(v) + (uint64_t)klen);
	if (off < 0)
		return off;
	memcpy(b->p + off, &v, sizeof(v));
	memcpy(b->p + off + sizeof(v), key, klen);
	return off;
}

int mbuf_fstate(struct mbuf *b, uint64_t pos, uint64_t flow, uint64_t from_seq, uint32_t db,
		uint32_t authed)
{
	struct meta_fstate v = { pos, flow, from_seq, db, authed };
	int off = entry(b, META_FSTATE, sizeof(v));
	if (off >= 0)
		memcpy(b->p + off, &v, sizeof(v));
	return off;
}

int mbuf_ckpt2(struct mbuf *b, uint64_t hpos, uint32_t n, const struct kv_flow_state *st)
{
	struct meta_ckpt c = { hpos, n, 0 };
	int off = entry(b, META_CKPT2, sizeof(c) + (uint64_t)n * sizeof(*st));
	if (off < 0)
		return off;
	memcpy(b->p + off, &c, sizeof(c));
	if (n)
		memcpy(b->p + off + sizeof(c), st, (size_t)n * sizeof(*st));
	return off;
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
	struct pin *p = pin_meta(s, r, pos, sizeof(h), 0);
	if (!p) {
		rec_ref(r);
		rec_unref(s, r);
		return -ENOMEM;
	}
	tomb_add(s, p);
	return 0;
}

/* The key after an entry's fixed fields, with rest more bytes after it. */
static int keyed(struct meta_eff *e, const char *b, size_t fixed, uint32_t body, uint32_t db,
		 uint32_t klen, uint64_t rest)
{
	if (body < fixed || (uint64_t)klen + rest != body - fixed || klen > KV_MAX_KEY ||
	    (db >= KV_DBS && !(e->type == META_FLUSH && db == META_ALL_DBS)))
		return -EBADMSG;
	e->db = db;
	e->key = b + fixed;
	e->klen = klen;
	return 0;
}

/* A positioned entry at off (its body); -EBADMSG when it does not hold. */
int meta_decode(const struct krec *r, uint32_t off, struct meta_eff *e)
{
	struct meta_hdr h;
	if (off < sizeof(h) || off > r->len)
		return -EBADMSG;
	memcpy(&h, r->data + off - sizeof(h), sizeof(h));
	const char *b = r->data + off;
	memset(e, 0, sizeof(*e));
	e->type = (int)h.type;
	switch (h.type) {
	case META_VAL: {
		struct meta_val v = { 0 };
		memcpy(&v, b, h.len < sizeof(v) ? 0 : sizeof(v));
		e->pos = v.pos;
		e->voff = off + (uint32_t)sizeof(v) + v.klen;
		e->vlen = v.vlen;
		return keyed(e, b, sizeof(v), h.len, 0, v.klen, v.vlen);
	}
	case META_VAL2: {
		struct meta_val2 v = { 0 };
		memcpy(&v, b, h.len < sizeof(v) ? 0 : sizeof(v));
		e->pos = v.pos;
		e->expire_ms = v.expire;
		e->voff = off + (uint32_t)sizeof(v) + v.klen;
		e->vlen = v.vlen;
		return keyed(e, b, sizeof(v), h.len, v.db, v.klen, v.vlen);
	}
	case META_SETREF: {
		struct meta_setref v = { 0 };
		memcpy(&v, b, h.len < sizeof(v) ? 0 : sizeof(v));
		e->pos = v.pos;
		e->expire_ms = v.expire;
		e->flow = v.flow;
		e->seq = v.seq;
		e->vlen = v.vlen;
		return keyed(e, b, sizeof(v), h.len, v.db, v.klen, 0);
	}
	case META_DEL:
	case META_FLUSH: {
		struct meta_key v = { 0 };
		memcpy(&v, b, h.len < sizeof(v) ? 0 : sizeof(v));
		e->pos = v.pos;
		return keyed(e, b, sizeof(v), h.len, v.db, v.klen, 0);
	}
	case META_EXPIRE: {
		struct meta_expire v = { 0 };
		memcpy(&v, b, h.len < sizeof(v) ? 0 : sizeof(v));
		e->pos = v.pos;
		e->expire_ms = v.expire;
		return keyed(e, b, sizeof(v), h.len, v.db, v.klen, 0);
	}
	case META_FSTATE: {
		struct meta_fstate v;
		if (h.len != sizeof(v))
			return -EBADMSG;
		memcpy(&v, b, sizeof(v));
		e->pos = v.pos;
		e->flow = v.flow;
		e->seq = v.seq;
		e->authed = v.authed;
		return keyed(e, b, sizeof(v), h.len, v.db, 0, 0);
	}
	default:
		return -EBADMSG;
	}
}

static int parse_ckpt(struct kv_server *s, struct krec *r, const struct meta_hdr *h,
		      const char *b, const struct meta_sink *sink, void *arg)
{
	struct meta_ckpt c;
	if (h->len < sizeof(c))
		return -EBADMSG;
	memcpy(&c, b, sizeof(c));
	size_t each = h->type == META_CKPT ? 16 : sizeof(struct kv_flow_state);
	if ((uint64_t)c.n * each != h->len - sizeof(c))
		return -EBADMSG;
	struct kv_flow_state *st = malloc((size_t)c.n * sizeof(*st) + 1);
	if (!st)
		return -ENOMEM;
	for (uint32_t i = 0; i < c.n; i++) {
		const char *p = b + sizeof(c) + i * each;
		if (h->type == META_CKPT) {
			/* (flow, offset): written before databases and AUTH. */
			memcpy(&st[i].flow, p, 8);
			memcpy(&st[i].offset, p + 8, 8);
			st[i].db = 0;
			st[i].authed = 1;
		} else {
			memcpy(&st[i], p, sizeof(*st));
		}
	}
	sink->ckpt(s, r, c.hpos, c.n, st, arg);
	free(st);
	return 0;
}

int meta_parse(struct kv_server *s, struct krec *r, const struct meta_sink *sink, void *arg)
{
	uint32_t off = 0;
	while (off + sizeof(struct meta_hdr) <= r->len) {
		struct meta_hdr h;
		memcpy(&h, r->data + off, sizeof(h));
		off += (uint32_t)sizeof(h);
		if (h.magic != META_MAGIC || h.len > r->len - off)
			return -EBADMSG;
		const char *b = r->data + off;
		struct meta_eff e;
		int rc = 0;
		switch (h.type) {
		case META_VAL:
		case META_VAL2:
		case META_SETREF:
		case META_DEL:
		case META_FLUSH:
		case META_EXPIRE:
		case META_FSTATE:
			if ((rc = meta_decode(r, off, &e)) == 0)
				sink->effect(s, r, e.pos, off, arg);
			break;
		case META_CKPT:
		case META_CKPT2:
			rc = parse_ckpt(s, r, &h, b, sink, arg);
			break;
		case META_REF: {
			uint64_t pos;
			if (h.len != sizeof(pos))
				return -EBADMSG;
			memcpy(&pos, b, sizeof(pos));
			sink->refused(s, r, pos, off, arg);
			break;
		}
		case META_SUM: {
			struct meta_sum m;
			if (h.len < sizeof(m))
				return -EBADMSG;
			memcpy(&m, b, sizeof(m));
			if ((uint64_t)m.n * sizeof(struct kv_sum_flow) != h.len - sizeof(m))
				return -EBADMSG;
			struct kv_summary sum = { .rec_id = r->id, .meta_records = m.meta_records,
						  .meta_next_seq = m.meta_next_seq, .n = m.n };
			sum.flows = malloc((size_t)m.n * sizeof(*sum.flows) + 1);
			if (!sum.flows)
				return -ENOMEM;
			memcpy(sum.flows, b + sizeof(m), (size_t)m.n * sizeof(*sum.flows));
			sink->summary(s, r, &sum, arg); /* takes sum.flows */
			break;
		}
		default:
			break; /* a type this version does not know: skipped whole */
		}
		if (rc < 0)
			return rc;
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
/*
 * A session's first record: its time, later than every record before it
 * (the library's record times never go back), is the server's "now" until
 * a client's record comes. Nothing refers to it, so it goes at once.
 */
int meta_mark_start(struct kv_server *s)
{
	struct mbuf b = { 0 };
	struct krec *r;
	int rc = entry(&b, META_START, 0);
	if (rc >= 0)
		rc = meta_append(s, b.p, b.len, &r);
	mbuf_free(&b);
	if (rc < 0)
		return rc;
	if (r->ts_ms > s->now_ms)
		s->now_ms = r->ts_ms;
	rec_ref(r);
	rec_unref(s, r);
	return 0;
}

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
