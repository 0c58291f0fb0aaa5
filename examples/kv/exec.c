/* SPDX-License-Identifier: MIT */
/*
 * exec.c - what each request does. The same code runs live (c != NULL:
 * reply) and during replay (c == NULL: only state changes), so that replay
 * reaches exactly the state the live server acknowledged.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv.h"

static int is(const struct kv_arg *a, const char *name)
{
	size_t n = strlen(name);
	return a->copy && a->len == n && !strncasecmp(a->copy, name, n);
}

static int key_ok(const struct kv_arg *a)
{
	return a->copy && a->len <= KV_MAX_KEY;
}

static void err(struct conn *c, const char *msg)
{
	if (c)
		out_fmt(c, "-%s\r\n", msg);
}

/* Redis's words, so that clients that know them react as to Redis. */
static void oom(struct conn *c)
{
	if (c)
		out_lit(c, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
}

/*
 * Whether the write at pos is refused. Live: when it does not fit, and the
 * refusal is made durable before the reply. Replay: exactly when the live
 * server refused it; replay cannot decide again, because the records of
 * versions overwritten since are released at once and the space they took
 * then is not known any more.
 */
static int refused(struct kv_server *s, uint64_t pos, int fits)
{
	static struct kv_ratelimit rl;
	if (s->replaying)
		return replay_refused(s, pos);
	if (fits)
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

/* Room for key to take a value of vlen bytes. */
static int fits(struct kv_server *s, const struct kv_arg *key, uint64_t vlen)
{
	return ks_fits(s, ks_charge(s, key->len, vlen), ks_charge_of(s, key->copy, key->len));
}

/* MSET: the last value given for a key is the one that stays. */
static int mset_fits(struct kv_server *s, const struct kv_arg *a, uint32_t argc)
{
	uint64_t add = 0, sub = 0;
	for (uint32_t i = 1; i < argc; i += 2) {
		int later = 0;
		for (uint32_t j = i + 2; j < argc && !later; j += 2)
			later = a[j].len == a[i].len && !memcmp(a[j].copy, a[i].copy, a[i].len);
		if (later)
			continue;
		add += ks_charge(s, a[i].len, a[i + 1].len);
		sub += ks_charge_of(s, a[i].copy, a[i].len);
	}
	return ks_fits(s, add, sub);
}

static void arity(struct conn *c, const struct kv_arg *cmd)
{
	if (c)
		out_fmt(c, "-ERR wrong number of arguments for '%.*s' command\r\n",
			(int)(cmd->len < 64 ? cmd->len : 64), cmd->copy);
}

static void bulk_value(struct conn *c, const struct kentry *e)
{
	if (!c)
		return;
	if (!e) {
		out_lit(c, "$-1\r\n");
		return;
	}
	out_fmt(c, "$%u\r\n", e->ver->vlen);
	out_pin(c, e->ver);
	out_lit(c, "\r\n");
}

/* Copy a short value out of the arena (INCR reads at most 20 digits). */
static uint32_t value_copy(const struct pin *v, char *buf, uint32_t cap)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < v->n && n < cap; i++) {
		uint32_t take = v->s[i].len < cap - n ? v->s[i].len : cap - n;
		memcpy(buf + n, v->s[i].rec->data + v->s[i].off, take);
		n += take;
	}
	return n;
}

static int parse_i64(const char *s, uint32_t n, int64_t *out)
{
	if (!n || n > 20)
		return -1;
	uint32_t i = 0;
	int neg = s[0] == '-';
	if (neg && n == 1)
		return -1;
	i = (uint32_t)neg;
	uint64_t v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static void do_incr(struct kv_server *s, const struct kv_arg *k, uint64_t pos, struct conn *c)
{
	/* The new value is not in the request, so it is made durable in the
	 * server's own flow at the INCR's position; replay takes it from there. */
	if (s->replaying)
		return;
	int64_t v = 0;
	struct kentry *e = ks_get(&s->ks, k->copy, k->len);
	if (e) {
		char buf[24];
		if (e->ver->vlen > 20 ||
		    parse_i64(buf, value_copy(e->ver, buf, sizeof(buf)), &v)) {
			err(c, "ERR value is not an integer or out of range");
			return;
		}
	}
	if (v == INT64_MAX) {
		err(c, "ERR increment or decrement would overflow");
		return;
	}
	v++;
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);
	/* Not logged as refused: replay takes INCR results from the server's
	 * flow, never from the command. */
	if (!fits(s, k, (uint64_t)n)) {
		s->oom_replies++;
		return oom(c);
	}
	struct pin *ver;
	int rc = meta_set_value(s, pos, k->copy, k->len, num, (uint32_t)n, &ver);
	if (rc < 0) {
		if (c)
			out_fmt(c, "-ERR cannot persist: %s\r\n", pktstore_strerror(rc));
		return;
	}
	ks_set(s, k->copy, k->len, ver);
	if (c)
		out_fmt(c, ":%" PRId64 "\r\n", v);
}

static void info(struct kv_server *s, struct conn *c)
{
	struct pktstore_stats st;
	char text[2048];
	if (pktstore_stats(s->ps, &st) < 0)
		memset(&st, 0, sizeof(st));
	static const char *gran[] = { "byte", "cache line", "page" };
	int n = snprintf(text, sizeof(text),
			 "# Server\r\nredis_version:7.0.0\r\npktstore_kv_version:%d.%d.%d\r\n"
			 "tcp_port:%u\r\n\r\n# Clients\r\nconnected_clients:%" PRIu64 "\r\n\r\n"
			 "# Memory\r\nused_memory:%" PRIu64 "\r\nmaxmemory:%" PRIu64 "\r\n"
			 "oom_replies:%" PRIu64 "\r\n\r\n"
			 "# Persistence\r\narena:%s\r\ngranularity:%s\r\nrecv_path:%s\r\n"
			 "arena_segments:%" PRIu64 "\r\narena_segments_free:%" PRIu64 "\r\n"
			 "records:%" PRIu64 "\r\nrecord_bytes:%" PRIu64 "\r\n"
			 "cleaning_passes:%" PRIu64 "\r\nrelocated_bytes:%" PRIu64 "\r\n"
			 "released_records:%" PRIu64 "\r\nlog_bytes:%" PRIu64 "\r\n\r\n"
			 "# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=0,avg_ttl=0\r\n",
			 PKTSTORE_VERSION_MAJOR, PKTSTORE_VERSION_MINOR, PKTSTORE_VERSION_PATCH,
			 s->resp_port, s->nconns, s->live_charge, s->limit, s->oom_replies, s->cfg.arena,
			 gran[st.granularity <= PKTSTORE_GRAN_PAGE ? st.granularity : 2],
			 st.recv_path_name, st.segments, st.segments_free, st.records,
			 st.record_bytes, s->passes, s->relocated_bytes, s->released, s->log_bytes,
			 s->ks.n);
	out_fmt(c, "$%d\r\n", n);
	out_text(c, text, (size_t)n);
	out_lit(c, "\r\n");
}

static void config(struct kv_server *s, const struct resp_parser *p, struct conn *c)
{
	const struct kv_arg *a = p->argv;
	(void)s;
	if (p->argc == 3 && is(&a[1], "GET")) {
		/* redis-benchmark asks for these two; report no RDB/AOF behaviour. */
		if (is(&a[2], "save"))
			out_lit(c, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
		else if (is(&a[2], "appendonly"))
			out_lit(c, "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
		else
			out_lit(c, "*0\r\n");
	} else {
		err(c, "ERR unsupported CONFIG subcommand");
	}
}

void exec_resp(struct kv_server *s, struct kflow *f, struct resp_parser *p, uint64_t pos,
	       struct conn *c)
{
	const struct kv_arg *a = p->argv;
	uint32_t argc = p->argc;

	if (is(&a[0], "QUIT")) {
		if (c)
			out_lit(c, "+OK\r\n");
		f->broken = 1;
		if (f->conn)
			f->conn->closing = 1;
		return;
	}
	if (s->replaying && pos < s->hpos)
		return;

	if (is(&a[0], "SET")) {
		if (argc < 3)
			return arity(c, &a[0]);
		if (argc > 3)
			return err(c, "ERR syntax error (SET options are not supported)");
		if (!key_ok(&a[1]))
			return err(c, "ERR key too long");
		if (refused(s, pos, s->replaying || fits(s, &a[1], a[2].len)))
			return oom(c);
		struct pin *v = pin_command(f, pos, p->cmd_start, UINT64_MAX, a[2].seq, a[2].len);
		if (!v)
			return err(c, "ERR out of memory");
		ks_set(s, a[1].copy, a[1].len, v);
		if (c)
			out_lit(c, "+OK\r\n");
	} else if (is(&a[0], "GET")) {
		if (argc != 2)
			return arity(c, &a[0]);
		if (c)
			bulk_value(c, key_ok(&a[1]) ? ks_get(&s->ks, a[1].copy, a[1].len) : NULL);
	} else if (is(&a[0], "DEL")) {
		if (argc < 2)
			return arity(c, &a[0]);
		int removed = 0;
		for (uint32_t i = 1; i < argc; i++)
			if (key_ok(&a[i]))
				removed += ks_del(s, a[i].copy, a[i].len);
		if (removed) {
			struct pin *t = pin_command(f, pos, p->cmd_start, UINT64_MAX, 0, 0);
			if (t)
				tomb_add(s, t);
		}
		if (c)
			out_fmt(c, ":%d\r\n", removed);
	} else if (is(&a[0], "EXISTS")) {
		if (argc < 2)
			return arity(c, &a[0]);
		int n = 0;
		for (uint32_t i = 1; i < argc; i++)
			n += key_ok(&a[i]) && ks_get(&s->ks, a[i].copy, a[i].len);
		if (c)
			out_fmt(c, ":%d\r\n", n);
	} else if (is(&a[0], "MSET")) {
		if (argc < 3 || argc % 2 == 0)
			return arity(c, &a[0]);
		for (uint32_t i = 1; i < argc; i += 2)
			if (!key_ok(&a[i]))
				return err(c, "ERR key too long");
		if (refused(s, pos, s->replaying || mset_fits(s, a, argc)))
			return oom(c);
		for (uint32_t i = 1; i < argc; i += 2) {
			struct pin *v = pin_command(f, pos, p->cmd_start, UINT64_MAX, a[i + 1].seq,
						    a[i + 1].len);
			if (v)
				ks_set(s, a[i].copy, a[i].len, v);
		}
		if (c)
			out_lit(c, "+OK\r\n");
	} else if (is(&a[0], "MGET")) {
		if (argc < 2)
			return arity(c, &a[0]);
		if (!c)
			return;
		out_fmt(c, "*%u\r\n", argc - 1);
		for (uint32_t i = 1; i < argc; i++)
			bulk_value(c, key_ok(&a[i]) ? ks_get(&s->ks, a[i].copy, a[i].len) : NULL);
	} else if (is(&a[0], "INCR")) {
		if (argc != 2)
			return arity(c, &a[0]);
		if (!key_ok(&a[1]))
			return err(c, "ERR key too long");
		do_incr(s, &a[1], pos, c);
	} else if (is(&a[0], "FLUSHALL") || is(&a[0], "FLUSHDB")) {
		if (argc > 2)
			return arity(c, &a[0]);
		if (s->ks.n) {
			ks_flush(s);
			struct pin *t = pin_command(f, pos, p->cmd_start, UINT64_MAX, 0, 0);
			if (t)
				tomb_add(s, t);
		}
		if (c)
			out_lit(c, "+OK\r\n");
	} else if (!c) {
		return; /* everything below only reads */
	} else if (is(&a[0], "PING")) {
		if (argc > 2)
			return arity(c, &a[0]);
		if (argc == 1) {
			out_lit(c, "+PONG\r\n");
		} else {
			out_fmt(c, "$%u\r\n", a[1].len);
			out_range(c, f, a[1].seq, a[1].len);
			out_lit(c, "\r\n");
		}
	} else if (is(&a[0], "ECHO")) {
		if (argc != 2)
			return arity(c, &a[0]);
		out_fmt(c, "$%u\r\n", a[1].len);
		out_range(c, f, a[1].seq, a[1].len);
		out_lit(c, "\r\n");
	} else if (is(&a[0], "DBSIZE")) {
		out_fmt(c, ":%" PRIu64 "\r\n", s->ks.n);
	} else if (is(&a[0], "INFO")) {
		info(s, c);
	} else if (is(&a[0], "SELECT")) {
		if (argc != 2)
			return arity(c, &a[0]);
		if (is(&a[1], "0"))
			out_lit(c, "+OK\r\n");
		else
			err(c, "ERR DB index is out of range");
	} else if (is(&a[0], "COMMAND")) {
		out_lit(c, "*0\r\n"); /* enough for redis-cli: no command hints */
	} else if (is(&a[0], "CONFIG")) {
		config(s, p, c);
	} else {
		uint32_t n = a[0].copy ? (a[0].len < 64 ? a[0].len : 64) : 0;
		out_fmt(c, "-ERR unknown command '%.*s'\r\n", (int)n, a[0].copy ? a[0].copy : "");
	}
}

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

void exec_http(struct kv_server *s, struct kflow *f, struct http_parser *p, uint64_t pos,
	       struct conn *c)
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
	if (s->replaying && pos < s->hpos)
		return;

	char key[KV_MAX_KEY];
	int klen = -1;
	if (q->target_len > 4 && !memcmp(q->target, "/kv/", 4))
		klen = decode_key(q->target + 4, q->target_len - 4, key);

	if (q->target_len == 4 && !memcmp(q->target, "/log", 4)) {
		if (q->method != HTTP_POST)
			return status(c, 405, keep);
		struct pin *e = pin_command(f, pos, p->req_start, UINT64_MAX, q->body_seq,
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
		struct kentry *e = ks_get(&s->ks, key, (uint32_t)klen);
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
		int fit = s->replaying ||
			  ks_fits(s, ks_charge(s, (uint32_t)klen, q->body_len),
				  ks_charge_of(s, key, (uint32_t)klen));
		if (refused(s, pos, fit))
			return status(c, 507, keep);
		struct pin *v = pin_command(f, pos, p->req_start, UINT64_MAX, q->body_seq,
					    (uint32_t)q->body_len);
		if (!v)
			return status(c, 500, keep);
		ks_set(s, key, (uint32_t)klen, v);
		return status(c, 200, keep);
	}
	case HTTP_DELETE: {
		int removed = ks_del(s, key, (uint32_t)klen);
		if (removed) {
			struct pin *t = pin_command(f, pos, p->req_start, UINT64_MAX, 0, 0);
			if (t)
				tomb_add(s, t);
		}
		return status(c, removed ? 200 : 404, keep);
	}
	default:
		return status(c, 405, keep);
	}
}
