/* SPDX-License-Identifier: MIT */
/*
 * driver.c - parse one record of a flow and apply the commands it
 * completes. The live server and replay both come through here, so both
 * stop, skip, queue and apply at the same bytes, with the same positions
 * and times. The protocols differ only in the operations below.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

struct proto_ops {
	int (*parse)(struct kflow *f, uint64_t seq, const char *d, size_t n, size_t *used);
	int (*busy)(const struct kflow *f);
	uint64_t (*cmd_start)(const struct kflow *f);
	void (*apply)(struct kv_server *s, struct kflow *f, uint64_t pos, uint64_t now_ms,
		      uint64_t cend, struct conn *c, struct replay *rp);
	void (*refuse)(struct kflow *f, struct conn *c); /* the stream cannot be parsed */
};

static int resp_parse_op(struct kflow *f, uint64_t seq, const char *d, size_t n, size_t *used)
{
	return resp_parse(&f->resp, seq, d, n, used);
}

static int resp_busy_op(const struct kflow *f)
{
	return resp_busy(&f->resp);
}

static uint64_t resp_start_op(const struct kflow *f)
{
	return f->resp.cmd_start;
}

static void resp_refuse_op(struct kflow *f, struct conn *c)
{
	out_fmt(c, "-ERR Protocol error: %s\r\n", f->resp.err);
}

static int http_parse_op(struct kflow *f, uint64_t seq, const char *d, size_t n, size_t *used)
{
	return http_parse(&f->http, seq, d, n, used);
}

static int http_busy_op(const struct kflow *f)
{
	return http_busy(&f->http);
}

static uint64_t http_start_op(const struct kflow *f)
{
	return f->http.req_start;
}

static void http_apply_op(struct kv_server *s, struct kflow *f, uint64_t pos, uint64_t now_ms,
			  uint64_t cend, struct conn *c, struct replay *rp)
{
	(void)cend;
	exec_http(s, f, &f->http, pos, now_ms, c, rp);
}

static void http_refuse_op(struct kflow *f, struct conn *c)
{
	out_fmt(c, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		f->http.status, http_reason(f->http.status));
}

static void resp_apply(struct kv_server *s, struct kflow *f, uint64_t pos, uint64_t now_ms,
		       uint64_t cend, struct conn *c, struct replay *rp);

static const struct proto_ops resp_ops = { resp_parse_op, resp_busy_op, resp_start_op,
					   resp_apply, resp_refuse_op };
static const struct proto_ops http_ops = { http_parse_op, http_busy_op, http_start_op,
					   http_apply_op, http_refuse_op };

static const struct proto_ops *ops_of(const struct kflow *f)
{
	return f->proto == KV_RESP ? &resp_ops : &http_ops;
}

int flow_busy(const struct kflow *f)
{
	return ops_of(f)->busy(f);
}

uint64_t flow_cmd_start(const struct kflow *f)
{
	return ops_of(f)->cmd_start(f);
}

/* Where the bytes of the command, or the transaction, not finished yet
 * begin: next_seq when there is none. */
uint64_t flow_unfinished_from(const struct kflow *f)
{
	return f->in_multi ? f->multi_start : flow_busy(f) ? flow_cmd_start(f) : f->next_seq;
}

/* Redis's words for a command it does not know, newlines made spaces. */
static void unknown(struct cmdctx *x)
{
	if (!x->c)
		return;
	char args[300];
	size_t al = 0;
	args[0] = 0;
	for (uint32_t i = 1; i < x->argc && al < 128; i++) {
		uint32_t room = 128 - (uint32_t)al;
		uint32_t n = x->argv[i].len < room ? x->argv[i].len : room;
		int w = snprintf(args + al, sizeof(args) - al, "'%.*s' ", (int)n, arg(x, i));
		al += w > 0 ? (size_t)w : 0;
	}
	uint32_t nl = x->argv[0].len < 128 ? x->argv[0].len : 128;
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "ERR unknown command '%.*s', with args beginning with: %s",
			 (int)nl, arg(x, 0), args);
	for (int i = 0; i < n && i < (int)sizeof(buf); i++)
		if (buf[i] == '\r' || buf[i] == '\n')
			buf[i] = ' ';
	r_err(x, buf);
}

/* An error while queueing makes the transaction's EXEC fail. */
static void queue_error(struct cmdctx *x)
{
	if (x->f->in_multi && x->f->conn)
		x->f->conn->multi_dirty = 1;
}

static void resp_apply(struct kv_server *s, struct kflow *f, uint64_t pos, uint64_t now_ms,
		       uint64_t cend, struct conn *c, struct replay *rp)
{
	struct unit u;
	struct cmdctx x = { .s = s, .f = f, .c = c, .rp = rp, .u = &u, .argv = f->resp.argv,
			    .argc = f->resp.argc, .pos = pos, .now_ms = now_ms, .db = f->db };
	if (!rp) {
		s->st.commands++;
		if (f->conn)
			f->conn->last_ms = now_ms;
	}
	const char *name = arg(&x, 0);
	x.cmd = cmd_lookup(name, x.argv[0].len);
	if (!x.cmd) {
		unknown(&x);
		queue_error(&x);
		goto out;
	}
	if (f->conn)
		f->conn->last_cmd = x.cmd->name;
	if (cmd_check(&x)) {
		queue_error(&x);
		goto out;
	}
	/* Nothing but AUTH, HELLO, QUIT and RESET before AUTH, live or replayed:
	 * the stream holds what was sent, not what was allowed. */
	if (f->need_auth && !f->authed && !(x.cmd->flags & CMD_NOAUTH)) {
		r_err(&x, "NOAUTH Authentication required.");
		queue_error(&x);
		goto out;
	}
	if (f->in_multi && !(x.cmd->flags & CMD_NOMULTI)) {
		/* As Redis does: nothing is queued while memory is full. */
		if (!rp && ks_full(s)) {
			r_oom(&x);
			queue_error(&x);
		} else if (!rp && multi_queue(&x) == 0) {
			out_lit(c, "+QUEUED\r\n");
		}
		goto out;
	}
	/* Replay runs what its bytes decide, and below the horizon only what
	 * keeps the transaction state: the rest is in the checkpoint. */
	if (rp && (!(x.cmd->flags & CMD_REPLAY) ||
		   (pos < s->hpos && !(x.cmd->flags & CMD_NOMULTI))))
		goto out;

	unit_begin(&u, s, f, pos, f->resp.cmd_start, cend);
	struct out_mark m;
	if (c)
		out_mark(c, &m);
	cmd_run(&x);
	int rc = unit_end(&u);
	if (rc < 0) {
		/* Nothing of it was kept: the client must not think otherwise. */
		if (c)
			out_rewind(s, c, &m);
		r_persist_failed(&x, rc);
	}
out:
	arg_free(&x);
}

/*
 * Parse one record of a flow and apply the commands it completes. Shared by
 * the live server and replay (rp != NULL), so both stop, skip and apply at
 * the same bytes.
 */
int flow_feed(struct kv_server *s, struct kflow *f, struct krec *r, struct replay *rp)
{
	const struct proto_ops *ops = ops_of(f);
	uint32_t off = 0;
	if (f->skip_to > r->seq)
		off = f->skip_to - r->seq < r->len ? (uint32_t)(f->skip_to - r->seq) : r->len;
	int busy = ops->busy(f);
	r->cstart = busy ? ops->cmd_start(f) : r->seq + off;
	if (!busy)
		f->hint = r;
	f->cmd_idx = 0;
	if (r->ts_ms > s->now_ms)
		s->now_ms = r->ts_ms;
	/* A closing connection stays attached until its replies are out
	 * (server.c): what it still sends applies, as replay will apply it,
	 * but is not answered. */
	struct conn *c = f->conn && !f->conn->discard && !f->conn->closing && !rp ? f->conn : NULL;
	while (off < r->len && !f->broken) {
		size_t used = 0;
		int rc = ops->parse(f, r->seq + off, r->data + off, r->len - off, &used);
		off += (uint32_t)used;
		int was_broken = f->broken;
		if (rc == KV_DONE) {
			uint32_t idx = f->cmd_idx < 0xfffff ? f->cmd_idx++ : 0xfffff;
			uint64_t pos = KV_POS(r->id, idx);
			if (rp)
				replay_effects_before(s, rp, pos);
			ops->apply(s, f, pos, r->ts_ms, r->seq + off, c, rp);
			f->hint = r;
		} else if (rc == KV_HEAD) {
			if (c)
				out_lit(c, "HTTP/1.1 100 Continue\r\n\r\n");
		} else if (rc == KV_ERR) {
			f->broken = 1;
			if (c)
				ops->refuse(f, c);
			if (f->conn)
				f->conn->closing = 1;
		}
		if (f->broken && !was_broken)
			f->broken_at = rc == KV_ERR ? ops->cmd_start(f) : r->seq + off;
	}
	r->parsed = 1;
	/* Replay may start after this record only if no command nor
	 * transaction goes on past it. */
	r->ends_clean = !f->broken && !ops->busy(f) && !f->in_multi;
	return 0;
}
