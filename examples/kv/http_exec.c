/* SPDX-License-Identifier: MIT */
/*
 * http_exec.c - the HTTP API: PUT/POST /kv/KEY stores the body, GET/HEAD
 * reads it, DELETE removes it, POST /log appends to the write-ahead log.
 * Keys live in database 0. Every request here is replayed: its effect
 * follows from its bytes.
 */
#include <string.h>

#include "kv.h"
#include "unit.h"

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 507: return "Insufficient Storage";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decode the key; -1 when malformed or too long. */
static int decode_key(const char *t, uint32_t n, char *out)
{
	uint32_t o = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (o == KV_MAX_KEY)
			return -1;
		if (t[i] == '?' || t[i] == '#')
			break;
		if (t[i] == '%') {
			int hi, lo;
			if (i + 2 >= n || (hi = hexval(t[i + 1])) < 0 || (lo = hexval(t[i + 2])) < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = t[i];
		}
	}
	return o ? (int)o : -1;
}

static void status(struct conn *c, int code, int keep)
{
	if (c)
		out_fmt(c, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n%s\r\n", code, http_reason(code),
			keep ? "" : "Connection: close\r\n");
}

static int refused_put(struct kv_server *s, const char *key, uint32_t klen, uint64_t vlen,
		       uint64_t pos, struct replay *rp)
{
	static struct kv_ratelimit rl;
	if (rp)
		return replay_refused(rp, pos);
	if (ks_fits(s, ks_charge(s, klen, vlen), ks_charge_of(s, 0, key, klen)))
		return 0;
	int rc = meta_refuse(s, pos);
	if (rc < 0) {
		/* Replay would apply it, so the live server must too. */
		kv_log_limited(&rl, "cannot record an OOM refusal (%s): accepting the write",
			       pktstore_strerror(rc));
		return 0;
	}
	s->oom_replies++;
	return 1;
}

void exec_http(struct kv_server *s, struct kflow *f, struct http_parser *p, uint64_t pos,
	       uint64_t now_ms, struct conn *c, struct replay *rp)
{
	const struct http_req *q = &p->req;
	int keep = q->keep_alive;
	if (!keep) {
		/* Later requests on this connection are never served, so replay
		 * must not apply them either. */
		f->broken = 1;
		if (f->conn)
			f->conn->closing = 1;
	}
	if (rp && pos < s->hpos)
		return;
	if (!rp)
		s->st.commands++;

	char key[KV_MAX_KEY];
	int klen = -1;
	if (q->target_len > 4 && !memcmp(q->target, "/kv/", 4))
		klen = decode_key(q->target + 4, q->target_len - 4, key);

	if (q->target_len == 4 && !memcmp(q->target, "/log", 4)) {
		if (q->method != HTTP_POST)
			return status(c, 405, keep);
		struct pin *e = pin_command(s, f, pos, p->req_start, UINT64_MAX, q->body_seq,
					    (uint32_t)q->body_len);
		if (e)
			log_add(s, e);
		return status(c, e ? 200 : 500, keep);
	}
	if (klen < 0)
		return status(c, 404, keep);
	switch (q->method) {
	case HTTP_GET:
	case HTTP_HEAD: {
		if (!c)
			return;
		struct kentry *e = ks_lookup(s, 0, key, (uint32_t)klen, now_ms);
		if (!e)
			return status(c, 404, keep);
		out_fmt(c, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n%s\r\n", e->ver->vlen,
			keep ? "" : "Connection: close\r\n");
		if (q->method == HTTP_GET)
			out_pin(c, e->ver);
		return;
	}
	case HTTP_PUT:
	case HTTP_POST: {
		if (refused_put(s, key, (uint32_t)klen, q->body_len, pos, rp))
			return status(c, 507, keep);
		struct unit u;
		unit_begin(&u, s, f, pos, p->req_start, f->next_seq);
		int rc = eff_set_stream(&u, 0, key, (uint32_t)klen, q->body_seq, (uint32_t)q->body_len, 0);
		unit_end(&u);
		return status(c, rc < 0 ? 500 : 200, keep);
	}
	case HTTP_DELETE: {
		struct unit u;
		unit_begin(&u, s, f, pos, p->req_start, f->next_seq);
		int removed = ks_lookup(s, 0, key, (uint32_t)klen, now_ms) &&
			      eff_del(&u, 0, key, (uint32_t)klen) > 0;
		unit_end(&u);
		return status(c, removed ? 200 : 404, keep);
	}
	default:
		return status(c, 405, keep);
	}
}
