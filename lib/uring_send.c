/* SPDX-License-Identifier: MIT */
/*
 * uring_send.c - the bytes pktstore_send() queues for a flow on the io_uring
 * paths, until the ring has sent them.
 *
 * The ring owns what it sends until the send completes, and the caller's
 * buffer may change as soon as pktstore_send() returns, so small pieces are
 * copied into the queue. Bytes that already live in the arena (a stored
 * value sent back, say) and are large enough that a copy would cost more
 * than a piece of their own are not copied: the queue names them, holds
 * their segment so that a release cannot let it be reused meanwhile, and
 * the send gathers them from the arena, where the kernel takes them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "uring_ring.h"

/* Pieces of a queue at most: past them, arena bytes are copied too. */
#define PIECES_MAX 256

/* The arena offset of the bytes at p..p+len when they lie inside one data
 * segment, else UINT64_MAX. */
static uint64_t arena_at(const struct ps_be_arena *ar, const char *p, size_t len)
{
	const char *lo = ar->base + ar->data_off;
	uint64_t data = ar->nsegs * ar->seg_size;

	if (p < lo || (uint64_t)(p - lo) >= data || len > data - (uint64_t)(p - lo))
		return UINT64_MAX;
	uint64_t in = (uint64_t)(p - lo);

	if (in / ar->seg_size != (in + len - 1) / ar->seg_size)
		return UINT64_MAX;
	return ar->data_off + in;
}

static int piece_add(struct ps_sendq *q, uint64_t at, uint32_t len, bool arena)
{
	struct ps_send_piece *last = q->n ? &q->piece[q->n - 1] : NULL;

	if (!arena && last && !last->arena && last->at + last->len == at) {
		last->len += len; /* copied right after the last copied piece */
		return 0;
	}
	if (q->n == q->cap) {
		uint32_t cap = q->cap ? 2 * q->cap : 8;
		struct ps_send_piece *p = realloc(q->piece, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		q->piece = p;
		q->cap = cap;
	}
	q->piece[q->n++] = (struct ps_send_piece){ .at = at, .len = len, .arena = arena };
	return 0;
}

static int copy_in(struct ps_sendq *q, const void *p, uint32_t len)
{
	if (q->buf_len + len > q->buf_cap) {
		uint32_t cap = q->buf_cap ? q->buf_cap : 4096;

		while (cap < q->buf_len + len)
			cap *= 2;
		char *b = realloc(q->buf, cap);

		if (!b)
			return -ENOMEM;
		q->buf = b;
		q->buf_cap = cap;
	}
	int ret = piece_add(q, q->buf_len, len, false);

	if (ret)
		return ret;
	memcpy(q->buf + q->buf_len, p, len);
	q->buf_len += len;
	return 0;
}

int ps_sendq_add(struct ps_sendq *q, struct pktstore *ps, const struct ps_be_arena *ar,
		 const struct iovec *iov, unsigned iovcnt, bool from_arena)
{
	uint32_t n0 = q->n, buf0 = q->buf_len;
	uint32_t last_len0 = n0 ? q->piece[n0 - 1].len : 0;
	uint64_t bytes0 = q->bytes;
	int ret = 0;

	for (unsigned i = 0; i < iovcnt && !ret; i++) {
		const char *p = iov[i].iov_base;
		uint32_t len = (uint32_t)iov[i].iov_len;
		uint64_t at = from_arena && len >= PS_SEND_REF_MIN ? arena_at(ar, p, len)
								   : UINT64_MAX;

		if (!len)
			continue;
		if (at != UINT64_MAX && q->n < PIECES_MAX) {
			ret = piece_add(q, at, len, true);
			if (!ret) {
				ps_be_hold(ps, at, len, true);
				q->held++;
			}
		} else {
			ret = copy_in(q, p, len);
		}
		q->bytes += len;
	}
	if (ret) {
		/* Nothing taken: the pieces added so far go again. */
		for (uint32_t k = n0; k < q->n; k++)
			if (q->piece[k].arena) {
				ps_be_hold(ps, q->piece[k].at, q->piece[k].len, false);
				q->held--;
			}
		if (n0)
			q->piece[n0 - 1].len = last_len0; /* copies it took in */
		q->n = n0;
		q->buf_len = buf0;
		q->bytes = bytes0;
	}
	return ret;
}

unsigned ps_sendq_iov(const struct ps_sendq *q, const struct ps_be_arena *ar, uint64_t from,
		      struct iovec *iov, unsigned max)
{
	unsigned n = 0;

	for (uint32_t k = 0; k < q->n && n < max; k++) {
		const struct ps_send_piece *pc = &q->piece[k];

		if (from >= pc->len) {
			from -= pc->len;
			continue;
		}
		char *base = pc->arena ? ar->base + pc->at : q->buf + pc->at;

		iov[n++] = (struct iovec){ .iov_base = base + from, .iov_len = pc->len - from };
		from = 0;
	}
	return n;
}

void ps_sendq_clear(struct ps_sendq *q, struct pktstore *ps)
{
	for (uint32_t k = 0; k < q->n && q->held; k++)
		if (q->piece[k].arena) {
			ps_be_hold(ps, q->piece[k].at, q->piece[k].len, false);
			q->held--;
		}
	q->n = 0;
	q->buf_len = 0;
	q->bytes = 0;
}

void ps_sendq_free(struct ps_sendq *q, struct pktstore *ps)
{
	ps_sendq_clear(q, ps);
	free(q->buf);
	free(q->piece);
	*q = (struct ps_sendq){ 0 };
}
