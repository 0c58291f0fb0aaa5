/* SPDX-License-Identifier: MIT */
/*
 * query.c - the read calls of the API over the index: range queries by
 * seq, id or time (and the damaged records), and reads of a flow's byte
 * stream across records.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "internal.h"

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
	uint64_t *ids = malloc(ps->cnt.damaged_records * sizeof(*ids) + 1);
	size_t n = 0;

	if (!ids)
		return -ENOMEM;
	for (uint64_t slot = 0; slot < ps->a.sb.ndesc && n < ps->cnt.damaged_records; slot++) {
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
		i = ps_index_lower(ix, offsetof(struct ps_ent, id), q->lo);
		break;
	case PKTSTORE_BY_TIME:
		i = ps_index_lower(ix, offsetof(struct ps_ent, ts), q->lo);
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
