/* SPDX-License-Identifier: MIT */
/*
 * reply.c - per-connection output: short replies are packed into DRAM
 * chunks, values are sent from the arena with the records pinned until the
 * kernel has taken the bytes.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "kv.h"

#define CHUNK 4096
/* Past these, a client that does not read its replies is disconnected
 * (its commands still apply): memory per connection stays bounded. Bytes
 * sent from the arena cost no DRAM, so only copied replies count. */
#define OUT_MAX_DRAM (4u << 20)
#define OUT_MAX_ITEMS (1u << 16)

static struct oitem *push(struct conn *c)
{
	if (c->discard)
		return NULL;
	if (c->qtail - c->qhead == c->qcap) {
		uint32_t n = c->qtail - c->qhead;
		if (n >= OUT_MAX_ITEMS) {
			c->discard = 1;
			c->closing = 1;
			return NULL;
		}
		uint32_t cap = c->qcap ? c->qcap * 2 : 16;
		struct oitem *q = malloc(cap * sizeof(*q));
		if (!q) {
			c->discard = 1;
			c->closing = 1;
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

void out_text(struct conn *c, const char *s, size_t n)
{
	if (!c || c->discard)
		return;
	if (c->qtail != c->qhead) {
		struct oitem *last = &c->q[(c->qtail - 1) % c->qcap];
		if (last->own && last->len + n <= last->cap) {
			memcpy(last->own + last->len, s, n);
			last->len += (uint32_t)n;
			c->qbytes += n;
			return;
		}
	}
	if (c->qdram + n > OUT_MAX_DRAM) {
		c->discard = c->closing = 1;
		return;
	}
	struct oitem *it = push(c);
	if (!it)
		return;
	uint32_t cap = n > CHUNK ? (uint32_t)n : CHUNK;
	it->own = malloc(cap);
	if (!it->own) {
		c->qtail--;
		c->discard = c->closing = 1;
		return;
	}
	memcpy(it->own, s, n);
	it->p = it->own;
	it->len = (uint32_t)n;
	it->cap = it->alloc = cap;
	c->qbytes += n;
	c->qdram += cap;
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
	if (!len)
		return;
	struct oitem *it = push(c);
	if (!it)
		return;
	it->p = r->data + off;
	it->len = len;
	it->pin = r;
	r->refs++;
	c->qbytes += len;
}

void out_pin(struct conn *c, const struct pin *v)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < v->n; i++)
		out_arena(c, v->s[i].rec, v->s[i].off, v->s[i].len);
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
	if (it->own)
		c->qdram -= it->alloc;
	free(it->own);
	if (it->pin)
		rec_unref(s, it->pin);
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
				if (it->own)
					it->cap = 0; /* no appending behind a partial send */
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
	c->qbytes = c->qdram = 0;
}
