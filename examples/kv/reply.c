/* SPDX-License-Identifier: MIT */
/*
 * reply.c - per-connection output. Text (headers, integers, short values)
 * is packed into DRAM blocks shared by consecutive replies; longer values
 * are named where they lie in the arena, their records pinned until the
 * store has taken them. Everything goes out through pktstore_send(), which
 * copies the text and sends the values from the arena, holding their
 * segment itself until they are sent. A client that does not read is cut
 * off once more than the output limit is queued for it, counted in bytes
 * as Redis's client-output-buffer-limit does (its commands still apply).
 */
#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* A RESP header or integer: the type byte, v in decimal, CRLF. Written by
 * hand: every GET reply starts with one, and vsnprintf costs more than the
 * rest of the reply. */
void out_num(struct conn *c, char type, int64_t v)
{
	char buf[24]; /* type, sign, 19 digits, CRLF */
	char *e = buf + sizeof(buf), *p = e;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

	*--p = '\n';
	*--p = '\r';
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	*--p = type;
	out_text(c, p, (size_t)(e - p));
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
	rec_ref(r);
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

/* What one pktstore_send() takes at most (pktstore_send(3)). */
#define SEND_IOV 64
#define SEND_BYTES (1u << 20)

/* The first len bytes of the queue went: items taken whole are dropped,
 * with their block or record pin (the store copied them, or holds the
 * arena segment of what it sends from there). */
static void consume(struct kv_server *s, struct conn *c, size_t len)
{
	c->qbytes -= len;
	while (c->qhead != c->qtail) {
		struct oitem *it = &c->q[c->qhead % c->qcap];
		if (len < it->len) {
			it->p += len;
			it->len -= (uint32_t)len;
			return;
		}
		len -= it->len;
		item_done(s, c, it);
		c->qhead++;
	}
}

/*
 * Hand the queue to the store, in pieces of at most SEND_IOV items and
 * SEND_BYTES. It sends through its ring, in order with what it took
 * before; PKTSTORE_SEND_MORE lets the next receive call submit the send
 * with its own wait, so a request costs one system call. A closing
 * connection's last replies are submitted at once instead: it is detached
 * as soon as they are in its socket (server.c). What the store refuses (it
 * holds too much that this peer has not read) stays queued, still counted
 * against the output limit, until the flow's PKTSTORE_REC_WRITABLE event.
 * 1: all taken; 0: refused, wait for that event; <0: the connection is dead.
 */
int out_flush(struct kv_server *s, struct conn *c)
{
	unsigned flags = c->closing ? 0 : PKTSTORE_SEND_MORE;
	while (c->qhead != c->qtail) {
		struct iovec iov[SEND_IOV];
		unsigned n = 0;
		size_t total = 0;
		for (uint32_t i = c->qhead; i != c->qtail && n < SEND_IOV && total < SEND_BYTES; i++) {
			const struct oitem *it = &c->q[i % c->qcap];
			size_t len = it->len < SEND_BYTES - total ? it->len : SEND_BYTES - total;
			iov[n].iov_base = (void *)it->p;
			iov[n++].iov_len = len;
			total += len;
		}
		int w = pktstore_send(s->ps, c->flow->id, iov, n, flags);
		if (w == -EAGAIN) {
			c->blocked = 1;
			return 0;
		}
		if (w < 0)
			return w;
		c->sent += (uint64_t)w;
		consume(s, c, (size_t)w);
		if ((size_t)w < total) {
			/* A short count (the recv(2) path, a full socket): the store
			 * reports room too. */
			c->blocked = 1;
			return 0;
		}
	}
	return 1;
}

/*
 * Whether every byte the store took for c is in its socket by now, sent or
 * in the socket's own buffer: detaching, which ends the store's sends,
 * then loses none of it. Bytes the peer acknowledged plus those still in
 * the socket, read in that order so that the sum can only fall short.
 */
int out_in_socket(const struct conn *c)
{
	if (!c->sent)
		return 1;
	uint64_t acked = out_acked(c);
	int outq;
	if (ioctl(c->fd, SIOCOUTQ, &outq) < 0)
		return 0; /* cannot tell: the grace decides */
	return acked + (uint64_t)outq >= c->sent;
}

/* Bytes the peer has acknowledged on c's socket (0: cannot tell). */
uint64_t out_acked(const struct conn *c)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0 ||
	    l < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
		return 0;
	return ti.tcpi_bytes_acked;
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
