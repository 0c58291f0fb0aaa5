/* SPDX-License-Identifier: MIT */
/*
 * index.c - the DRAM index and the read calls (get, range).
 *
 * Each flow keeps its records as an array in seq order, and the store keeps
 * every record in id order. Records are appended in both orders at once
 * (seq, id and time all grow together), so lookups are binary searches and
 * inserts are appends. A released record leaves a dead entry that is
 * squeezed out once dead entries are the majority; liveness is checked
 * against the descriptor slot, so a dead entry is never served.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "internal.h"

int ps_index_reserve(struct ps_index *ix, size_t n)
{
	if (n <= ix->cap)
		return 0;

	struct ps_ent *e = realloc(ix->e, n * sizeof(*e));

	if (!e)
		return -ENOMEM;
	ix->e = e;
	ix->cap = n;
	return 0;
}

int ps_index_push(struct ps_index *ix, uint64_t id, uint64_t seq, uint64_t ts)
{
	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 64;
		struct ps_ent *e = realloc(ix->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		ix->e = e;
		ix->cap = cap;
	}
	ix->e[ix->n++] = (struct ps_ent){ .id = id, .seq = seq, .ts = ts };
	return 0;
}

bool ps_record_live(const struct pktstore *ps, uint64_t id)
{
	return ps->desc_state[id % ps->ndesc] == PS_D_LIVE && ps_desc_slot(ps, id)->id == id;
}

void ps_index_squeeze(struct pktstore *ps, struct ps_index *ix)
{
	if (ix->dead < 64 || ix->dead * 2 < ix->n)
		return;
	size_t j = 0;

	for (size_t i = 0; i < ix->n; i++)
		if (ps_record_live(ps, ix->e[i].id))
			ix->e[j++] = ix->e[i];
	ix->n = j;
	ix->dead = 0;
}

/* First entry whose field (seq, id or ts: all grow along the array) is >= key. */
static size_t lower_bound(const struct ps_index *ix, size_t field, uint64_t key)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v;

		memcpy(&v, (const char *)&ix->e[mid] + field, sizeof(v));
		if (v < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t ps_index_lower_seq(const struct ps_index *ix, uint64_t key)
{
	return lower_bound(ix, offsetof(struct ps_ent, seq), key);
}

void ps_rec_fill(const struct pktstore *ps, const struct ps_desc *d, struct pktstore_rec *r)
{
	r->id = d->id;
	r->flow = d->flow;
	r->seq = d->seq;
	r->ts_ns = d->ts_ns;
	r->data = ps_ptr(ps, d->data_off);
	r->len = d->len;
	r->crc32c = d->data_crc;
	r->flags = d->flags;
	r->status = 0;

	const struct ps_flow *f = ps_flow_get((struct pktstore *)ps, d->flow);

	r->user = f ? f->user : NULL;
	memset(r->reserved, 0, sizeof(r->reserved));
}

int pktstore_get(struct pktstore *ps, uint64_t id, struct pktstore_rec *rec, unsigned flags)
{
	if (!ps || !rec || !id || flags & ~PKTSTORE_NO_VERIFY)
		return -EINVAL;
	if (ps->broken)
		return PKTSTORE_EBROKEN; /* the last batch may not be durable */

	const struct ps_desc *d = ps_desc_slot(ps, id);
	uint8_t state = ps->desc_state[id % ps->ndesc];

	if (state == PS_D_FREE || d->id != id)
		return -ENOENT;
	if (state == PS_D_DAMAGED)
		return -EBADMSG;
	/* The media can rot after open: re-check what is about to be served. */
	if (ps_desc_decode(d, id % ps->ndesc, ps->ndesc) != PS_DK_LIVE ||
	    !ps_desc_extent_ok(ps, d))
		return -EBADMSG;
	if (!(flags & PKTSTORE_NO_VERIFY) &&
	    ps_crc32c(ps_ptr(ps, d->data_off), d->len) != d->data_crc) {
		ps_note_damage(ps, id);
		return -EBADMSG;
	}
	ps_rec_fill(ps, d, rec);
	return 0;
}

/* Emit live entries from position i while they satisfy the query. */
static int emit(struct pktstore *ps, const struct ps_index *ix, size_t i,
		const struct pktstore_query *q, struct pktstore_rec *out, unsigned max)
{
	unsigned n = 0;

	for (; i < ix->n && n < max; i++) {
		const struct ps_ent *e = &ix->e[i];
		uint64_t key = q->kind == PKTSTORE_BY_SEQ ? e->seq
			       : q->kind == PKTSTORE_BY_ID ? e->id
							   : e->ts;

		if (key >= q->hi)
			break;
		if (!ps_record_live(ps, e->id))
			continue;

		const struct ps_desc *d = ps_desc_slot(ps, e->id);

		if (q->flow && d->flow != q->flow)
			continue;
		if (q->kind == PKTSTORE_BY_SEQ && d->seq + d->len <= q->lo)
			continue;
		ps_rec_fill(ps, d, &out[n++]);
	}
	return (int)n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Damaged records live in no index (they must never be served as data):
 * find them in the descriptor log itself. A rare, diagnostic query. */
static int damaged(struct pktstore *ps, const struct pktstore_query *q, struct pktstore_rec *out,
		   unsigned max)
{
	uint64_t *ids = malloc(ps->st.damaged_records * sizeof(*ids) + 1);
	size_t n = 0;

	if (!ids)
		return -ENOMEM;
	for (uint64_t slot = 0; slot < ps->ndesc && n < ps->st.damaged_records; slot++) {
		const struct ps_desc *d = &ps->a.descs_pm[slot];

		if (ps->desc_state[slot] == PS_D_DAMAGED && d->id >= q->lo && d->id < q->hi &&
		    (!q->flow || d->flow == q->flow))
			ids[n++] = d->id;
	}
	if (n)
		qsort(ids, n, sizeof(*ids), cmp_u64);
	unsigned k = 0;

	for (; k < n && k < max; k++) {
		ps_rec_fill(ps, ps_desc_slot(ps, ids[k]), &out[k]);
		out[k].status = -EBADMSG;
	}
	free(ids);
	return (int)k;
}

int pktstore_range(struct pktstore *ps, const struct pktstore_query *q, struct pktstore_rec *out,
		   unsigned max)
{
	if (!ps || !q || (!out && max) || q->lo > q->hi || max > INT32_MAX)
		return -EINVAL;
	if (ps->broken)
		return PKTSTORE_EBROKEN;

	const struct ps_index *ix = &ps->all;

	if (q->lo == q->hi)
		return 0;
	if (q->kind == PKTSTORE_DAMAGED)
		return damaged(ps, q, out, max);
	size_t i;

	if (q->flow || q->kind == PKTSTORE_BY_SEQ) {
		struct ps_flow *f = ps_flow_get(ps, q->flow);

		if (!f)
			return -ENOENT;
		ix = &f->idx;
	}
	switch (q->kind) {
	case PKTSTORE_BY_SEQ:
		/* The record holding byte lo starts at or before lo. */
		i = ps_index_lower_seq(ix, q->lo);
		if (i == ix->n || ix->e[i].seq > q->lo)
			i = i ? i - 1 : 0;
		break;
	case PKTSTORE_BY_ID:
		i = lower_bound(ix, offsetof(struct ps_ent, id), q->lo);
		break;
	case PKTSTORE_BY_TIME:
		i = lower_bound(ix, offsetof(struct ps_ent, ts), q->lo);
		break;
	default:
		return -EINVAL;
	}
	return emit(ps, ix, i, q, out, max);
}

/*
 * Walk f's byte stream from seq across records, handing each contiguous
 * piece to take() (which returns nonzero when it can take no more), up to
 * len bytes. Stops at a gap (released records) or at the end of what is
 * held. Bytes are checked against their record's CRC32C when `verify`; a
 * record that fails ends the walk, or fails it if it is the first.
 */
static int stream_walk(struct pktstore *ps, uint64_t flow, uint64_t seq, size_t len,
		       bool verify, int (*take)(void *ctx, const void *p, size_t n), void *ctx,
		       size_t *total)
{
	struct ps_flow *f = ps_flow_get(ps, flow);

	*total = 0;
	if (!f)
		return -ENOENT;
	if (seq < f->trim_seq)
		return -ENOENT; /* trimmed away */
	if (seq >= f->next_seq || !len)
		return 0;

	const struct ps_index *ix = &f->idx;
	size_t i = ps_index_lower_seq(ix, seq);
	uint64_t at = seq;
	size_t done = 0;

	/* The record holding byte seq starts at or before it. */
	while (i > 0 && (i == ix->n || ix->e[i].seq > seq)) {
		i--;
		if (ps_record_live(ps, ix->e[i].id))
			break;
	}
	for (; i < ix->n && done < len; i++) {
		uint64_t id = ix->e[i].id;

		if (!ps_record_live(ps, id))
			continue;

		const struct ps_desc *d = ps_desc_slot(ps, id);

		if (d->seq + d->len <= at)
			continue;
		if (d->seq > at)
			break; /* a gap */
		if (!ps_desc_extent_ok(ps, d) ||
		    (verify && ps_crc32c(ps_ptr(ps, d->data_off), d->len) != d->data_crc)) {
			ps_note_damage(ps, id);
			if (!done)
				return -EBADMSG;
			break;
		}
		uint64_t skip = at - d->seq;
		size_t n = d->len - skip < len - done ? (size_t)(d->len - skip) : len - done;

		if (take(ctx, (const char *)ps_ptr(ps, d->data_off) + skip, n))
			break;
		at += n;
		done += n;
	}
	if (!done)
		return -ENOENT; /* seq falls in a gap */
	*total = done;
	return 0;
}

struct copy_ctx {
	char *to;
};

static int take_copy(void *ctx, const void *p, size_t n)
{
	struct copy_ctx *c = ctx;

	memcpy(c->to, p, n);
	c->to += n;
	return 0;
}

int pktstore_read(struct pktstore *ps, uint64_t flow, uint64_t seq, void *buf, size_t len)
{
	if (!ps || (!buf && len))
		return -EINVAL;
	if (ps->broken)
		return PKTSTORE_EBROKEN;
	if (len > INT32_MAX)
		len = INT32_MAX;

	struct copy_ctx c = { .to = buf };
	size_t total;
	int ret = stream_walk(ps, flow, seq, len, true, take_copy, &c, &total);

	return ret ? ret : (int)total;
}

struct iov_ctx {
	struct iovec *iov;
	int n, max;
};

static int take_iov(void *ctx, const void *p, size_t n)
{
	struct iov_ctx *c = ctx;

	if (c->n == c->max)
		return 1;
	c->iov[c->n].iov_base = (void *)p;
	c->iov[c->n].iov_len = n;
	c->n++;
	return 0;
}

int pktstore_readv(struct pktstore *ps, uint64_t flow, uint64_t seq, size_t len,
		   struct iovec *iov, int iovcnt, unsigned flags)
{
	if (!ps || !iov || iovcnt <= 0 || flags & ~PKTSTORE_NO_VERIFY)
		return -EINVAL;
	if (ps->broken)
		return PKTSTORE_EBROKEN;

	struct iov_ctx c = { .iov = iov, .max = iovcnt };
	size_t total;
	int ret = stream_walk(ps, flow, seq, len, !(flags & PKTSTORE_NO_VERIFY), take_iov, &c,
			      &total);

	return ret ? ret : c.n;
}
