/* SPDX-License-Identifier: MIT */
/*
 * reply.c - per-connection output. Text (headers, integers, short values)
 * is packed into DRAM blocks shared by consecutive replies; longer values
 * are sent from the arena with their records pinned until the kernel has
 * taken the bytes. A client that does not read is cut off once more than
 * the output limit is queued for it, counted in bytes as Redis's
 * client-output-buffer-limit does (its commands still apply).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kv.h"

#define BLOCK 16384
/* Values up to this are copied into the text: a pinned record and an
 * iovec for a few bytes cost more than the copy. */
#define INLINE_VALUE 64

struct oblk {
	uint32_t refs, used, cap;
	char data[];
};

static uint64_t out_limit = 1ull << 30;

void out_set_limit(uint64_t bytes)
{
	out_limit = bytes;
}

static void overflow(struct conn *c)
{
	c->discard = 1;
	c->closing = 1;
}

static struct oitem *push(struct conn *c)
{
	if (c->qtail - c->qhead == c->qcap) {
		uint32_t n = c->qtail - c->qhead;
		uint32_t cap = c->qcap ? c->qcap * 2 : 16;
		struct oitem *q = cap > c->qcap ? malloc((size_t)cap * sizeof(*q)) : NULL;
		if (!q) {
			overflow(c);
			return NULL;
		}
		for (uint32_t i = 0; i < n; i++)
			q[i] = c->q[(c->qhead + i) % c->qcap];
		free(c->q);
		c->q = q;
		c->qhead = 0;
		c->qtail = n;
		c->qcap = cap;
	}
	struct oitem *it = &c->q[c->qtail++ % c->qcap];
	memset(it, 0, sizeof(*it));
	return it;
}

static void blk_unref(struct conn *c, struct oblk *b)
{
	if (--b->refs == 0) {
		c->qdram -= b->cap;
		free(b);
	} else if (b == c->blk && b->refs == 1) {
		b->used = 0; /* only the connection holds it: empty again, reused */
	}
}

void out_text(struct conn *c, const char *s, size_t n)
{
	if (!c || c->discard || !n)
		return;
	if (c->qbytes + n > out_limit)
		return overflow(c);
	struct oblk *b = c->blk;
	/* Appended to the last item when it is the end of the current block. */
	if (b && c->qtail != c->qhead && b->cap - b->used >= n) {
		struct oitem *last = &c->q[(c->qtail - 1) % c->qcap];
		if (last->blk == b && last->p + last->len == b->data + b->used) {
			memcpy(b->data + b->used, s, n);
			b->used += (uint32_t)n;
			last->len += (uint32_t)n;
			c->qbytes += n;
			return;
		}
	}
	if (!b || b->cap - b->used < n) {
		size_t cap = n > BLOCK ? n : BLOCK;
		struct oblk *nb = malloc(sizeof(*nb) + cap);
		if (!nb)
			return overflow(c);
		nb->refs = 1; /* the connection's own reference while current */
		nb->used = 0;
		nb->cap = (uint32_t)cap;
		c->qdram += cap;
		c->blk = nb;
		if (b)
			blk_unref(c, b);
		b = nb;
	}
	struct oitem *it = push(c);
	if (!it)
		return;
	memcpy(b->data + b->used, s, n);
	it->p = b->data + b->used;
	it->len = (uint32_t)n;
	it->blk = b;
	b->refs++;
	b->used += (uint32_t)n;
	c->qbytes += n;
}

void out_fmt(struct conn *c, const char *fmt, ...)
{
	char buf[512];
	if (!c)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_text(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void out_arena(struct conn *c, struct krec *r, uint32_t off, uint32_t len)
{
	if (!len || c->discard)
		return;
	if (c->qbytes + len > out_limit)
		return overflow(c);
	struct oitem *it = push(c);
	if (!it)
		return;
	it->p = r->data + off;
	it->len = len;
	it->pin = r;
	r->refs++;
	c->qbytes += len;
}

/* Bytes [from, from + len) of a version's value. */
void out_pin_range(struct conn *c, const struct pin *v, uint32_t from, uint32_t len)
{
	if (!c || c->discard)
		return;
	if (len <= INLINE_VALUE || v->heap) {
		char small[INLINE_VALUE];
		char *buf = len <= INLINE_VALUE ? small : malloc(len);
		if (!buf)
			return overflow(c);
		out_text(c, buf, pin_copy(v, from, buf, len));
		if (buf != small)
			free(buf);
		return;
	}
	uint32_t at = 0, end = from + len;
	for (uint32_t i = 0; i < v->n && at < end; i++) {
		const struct span *sp = &v->s[i];
		uint32_t lo = from > at ? from - at : 0;
		uint32_t hi = end - at < sp->len ? end - at : sp->len;
		if (lo < hi)
			out_arena(c, sp->rec, sp->off + lo, hi - lo);
		at += sp->len;
	}
}

void out_pin(struct conn *c, const struct pin *v)
{
	out_pin_range(c, v, 0, v->vlen);
}

void out_range(struct conn *c, struct kflow *f, uint64_t seq, uint32_t len)
{
	if (!c)
		return;
	uint64_t end = seq + len;
	for (struct krec *r = f->hint ? f->hint : f->head; r && r->seq < end; r = r->next) {
		uint64_t lo = seq > r->seq ? seq : r->seq;
		uint64_t hi = end < r->seq + r->len ? end : r->seq + r->len;
		if (lo < hi)
			out_arena(c, r, (uint32_t)(lo - r->seq), (uint32_t)(hi - lo));
	}
}

static void item_done(struct kv_server *s, struct conn *c, struct oitem *it)
{
	if (it->blk)
		blk_unref(c, it->blk);
	if (it->pin)
		rec_unref(s, it->pin);
}

/* Where the queue is now, to take back what follows (a unit that failed). */
void out_mark(const struct conn *c, struct out_mark *m)
{
	m->qtail = c->qtail;
	m->qbytes = c->qbytes;
	m->last_len = c->qtail != c->qhead ? c->q[(c->qtail - 1) % c->qcap].len : 0;
}

void out_rewind(struct kv_server *s, struct conn *c, const struct out_mark *m)
{
	if (c->qtail - c->qhead < c->qtail - m->qtail)
		return; /* sent meanwhile: cannot happen within one command */
	while (c->qtail != m->qtail) {
		c->qtail--;
		item_done(s, c, &c->q[c->qtail % c->qcap]);
	}
	if (c->qtail != c->qhead) {
		struct oitem *last = &c->q[(c->qtail - 1) % c->qcap];
		if (last->blk && last->len > m->last_len && last->blk == c->blk &&
		    last->p + last->len == c->blk->data + c->blk->used)
			c->blk->used -= last->len - m->last_len;
		last->len = m->last_len;
	}
	c->qbytes = m->qbytes;
	if (c->discard && c->qbytes < out_limit && !c->detached)
		c->discard = c->closing = 0;
}

/* 1: all sent; 0: the socket is full; <0: the connection is dead. */
int out_flush(struct kv_server *s, struct conn *c)
{
	while (c->qhead != c->qtail) {
		struct iovec iov[IOV_MAX < 256 ? IOV_MAX : 256];
		int n = 0;
		for (uint32_t i = c->qhead; i != c->qtail && n < (int)(sizeof(iov) / sizeof(iov[0]));
		     i++, n++) {
			iov[n].iov_base = (void *)c->q[i % c->qcap].p;
			iov[n].iov_len = c->q[i % c->qcap].len;
		}
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		size_t left = (size_t)w;
		c->qbytes -= left;
		while (left) {
			struct oitem *it = &c->q[c->qhead % c->qcap];
			if (left < it->len) {
				it->p += left;
				it->len -= (uint32_t)left;
				break;
			}
			left -= it->len;
			item_done(s, c, it);
			c->qhead++;
		}
		while (c->qhead != c->qtail && c->q[c->qhead % c->qcap].len == 0) {
			item_done(s, c, &c->q[c->qhead % c->qcap]);
			c->qhead++;
		}
	}
	return 1;
}

void out_free(struct kv_server *s, struct conn *c)
{
	for (; c->qhead != c->qtail; c->qhead++)
		item_done(s, c, &c->q[c->qhead % c->qcap]);
	free(c->q);
	c->q = NULL;
	c->qcap = c->qhead = c->qtail = 0;
	c->qbytes = 0;
	if (c->blk) {
		struct oblk *b = c->blk;
		c->blk = NULL;
		if (--b->refs == 0) {
			c->qdram -= b->cap;
			free(b);
		}
	}
}
