/* SPDX-License-Identifier: MIT */
#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { H_IDLE, H_HEAD, H_BODY };

void http_init(struct http_parser *p, const struct kv_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->lim = *lim;
}

void http_free(struct http_parser *p)
{
	free(p->buf);
	memset(p, 0, sizeof(*p));
}

int http_busy(const struct http_parser *p)
{
	return p->state != H_IDLE;
}

static int fail(struct http_parser *p, int status, const char *why)
{
	p->status = status;
	p->err = why;
	return KV_ERR;
}

static int has_token(const char *v, size_t n, const char *tok)
{
	size_t t = strlen(tok);
	for (size_t i = 0; i + t <= n; i++)
		if (!strncasecmp(v + i, tok, t))
			return 1;
	return 0;
}

static const struct {
	const char *name;
	int method;
} methods[] = {
	{ "GET", HTTP_GET }, { "HEAD", HTTP_HEAD }, { "PUT", HTTP_PUT },
	{ "POST", HTTP_POST }, { "DELETE", HTTP_DELETE },
};

/* The header block is complete in buf (terminated by an empty line). */
static int parse_head(struct http_parser *p)
{
	char *s = p->buf, *end = p->buf + p->buf_len;
	char *eol = memchr(s, '\n', (size_t)(end - s));
	char *line_end = eol > s && eol[-1] == '\r' ? eol - 1 : eol;
	char *sp1 = memchr(s, ' ', (size_t)(line_end - s));
	if (!sp1)
		return fail(p, 400, "malformed request line");
	char *sp2 = memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1)
		return fail(p, 400, "malformed request line");
	size_t vlen = (size_t)(line_end - sp2 - 1);
	if (vlen != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) || (sp2[8] != '0' && sp2[8] != '1'))
		return fail(p, 505, "unsupported HTTP version");

	struct http_req *r = &p->req;
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if ((size_t)(sp1 - s) == strlen(methods[i].name) &&
		    !memcmp(s, methods[i].name, (size_t)(sp1 - s)))
			r->method = methods[i].method;
	r->target = sp1 + 1;
	r->target_len = (uint32_t)(sp2 - sp1 - 1);
	r->keep_alive = sp2[8] == '1';

	int have_len = 0;
	for (s = eol + 1; s < end; s = eol + 1) {
		eol = memchr(s, '\n', (size_t)(end - s));
		line_end = eol > s && eol[-1] == '\r' ? eol - 1 : eol;
		if (line_end == s)
			break;
		char *colon = memchr(s, ':', (size_t)(line_end - s));
		if (!colon || colon == s)
			return fail(p, 400, "malformed header");
		size_t nlen = (size_t)(colon - s);
		char *v = colon + 1;
		while (v < line_end && (*v == ' ' || *v == '\t'))
			v++;
		size_t n = (size_t)(line_end - v);
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (nlen == 14 && !strncasecmp(s, "Content-Length", 14)) {
			uint64_t cl = 0;
			if (!n || n > 19)
				return fail(p, 400, "bad Content-Length");
			for (size_t i = 0; i < n; i++) {
				if (v[i] < '0' || v[i] > '9')
					return fail(p, 400, "bad Content-Length");
				cl = cl * 10 + (uint64_t)(v[i] - '0');
			}
			if (have_len && cl != r->body_len)
				return fail(p, 400, "conflicting Content-Length");
			have_len = 1;
			r->body_len = cl;
		} else if (nlen == 17 && !strncasecmp(s, "Transfer-Encoding", 17)) {
			return fail(p, 501, "Transfer-Encoding is not supported");
		} else if (nlen == 10 && !strncasecmp(s, "Connection", 10)) {
			if (has_token(v, n, "close"))
				r->keep_alive = 0;
			else if (has_token(v, n, "keep-alive"))
				r->keep_alive = 1;
		} else if (nlen == 6 && !strncasecmp(s, "Expect", 6)) {
			r->expect_continue = has_token(v, n, "100-continue");
		}
	}
	if (r->body_len > p->lim.max_bulk)
		return fail(p, 413, "body too large");
	return 0;
}

int http_parse(struct http_parser *p, uint64_t seq, const char *data, size_t len, size_t *used)
{
	size_t i = 0;

	while (i < len) {
		switch (p->state) {
		case H_IDLE:
			if (data[i] == '\r' || data[i] == '\n') {
				i++; /* stray line breaks between requests are tolerated (RFC 9112 2.2) */
				break;
			}
			p->req_start = seq + i;
			p->buf_len = 0;
			p->state = H_HEAD;
			break;
		case H_HEAD: {
			/* Copy up to the next LF, then check whether the block just ended. */
			const char *nl = memchr(data + i, '\n', len - i);
			size_t take = nl ? (size_t)(nl - (data + i)) + 1 : len - i;
			if ((uint64_t)p->buf_len + take > p->lim.max_line)
				return *used = i, fail(p, 431, "header block too large");
			if (p->buf_len + take > p->buf_cap) {
				uint32_t cap = p->buf_cap ? p->buf_cap : 512;
				while (cap < p->buf_len + take)
					cap *= 2;
				char *b = realloc(p->buf, cap);
				if (!b)
					return *used = i, fail(p, 500, "out of memory");
				p->buf = b;
				p->buf_cap = cap;
			}
			memcpy(p->buf + p->buf_len, data + i, take);
			p->buf_len += (uint32_t)take;
			i += take;
			if (!nl)
				break;
			const char *b = p->buf;
			uint32_t n = p->buf_len;
			int blank = (n >= 2 && b[n - 2] == '\n') ||
				    (n >= 3 && b[n - 3] == '\n' && b[n - 2] == '\r');
			if (!blank)
				break;
			if (parse_head(p))
				return *used = i, KV_ERR;
			p->req.body_seq = seq + i;
			p->remaining = p->req.body_len;
			if (!p->remaining) {
				p->state = H_IDLE;
				*used = i;
				return KV_DONE;
			}
			p->state = H_BODY;
			if (p->req.expect_continue) {
				*used = i;
				return KV_HEAD;
			}
			break;
		}
		case H_BODY: {
			size_t take = len - i < p->remaining ? len - i : (size_t)p->remaining;
			i += take;
			p->remaining -= take;
			if (!p->remaining) {
				p->state = H_IDLE;
				*used = i;
				return KV_DONE;
			}
			break;
		}
		}
	}
	*used = i;
	return KV_NEED;
}
