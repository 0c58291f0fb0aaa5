/* SPDX-License-Identifier: MIT */
/*
 * t_multi.c - MULTI, EXEC, DISCARD, WATCH, UNWATCH.
 *
 * Durability: every byte of a transaction is in the stream before EXEC is
 * parsed, so EXEC only runs once all of it is durable. EXEC is one
 * recorded unit: every change of every queued command is staged and the
 * lot is appended as one record before the reply, or nothing changes.
 * Replay never runs a transaction: it follows MULTI, the queue and EXEC
 * through the stream only to keep positions and release points exact,
 * and applies the record at EXEC's position if there is one. A transaction
 * whose EXEC never arrived, or that WATCH aborted, left no record, so it
 * never applies. While a transaction is being queued its records cannot be
 * released (driver.c), and a checkpoint restarts the connection at MULTI.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "watch.h"

/* A transaction holds at most this much DRAM for its queued arguments. */
#define MULTI_MAX_BYTES (64u << 20)

struct queued {
	const struct kv_cmd *cmd;
	uint32_t argc;
	struct kv_arg *argv;  /* copies point into buf; long arguments stay in the stream */
	char *buf;
};

static void queue_clear(struct conn *c)
{
	for (uint32_t i = 0; i < c->nmq; i++) {
		free(c->mq[i].argv);
		free(c->mq[i].buf);
	}
	free(c->mq);
	c->mq = NULL;
	c->nmq = c->mqcap = 0;
	c->mq_bytes = 0;
}

/* The transaction state goes, live and in replay alike. */
static void multi_end(struct kv_server *s, struct kflow *f)
{
	f->in_multi = 0;
	struct conn *c = f->conn;
	if (c && !s->replaying) {
		queue_clear(c);
		c->multi_dirty = c->watch_dirty = 0;
		watch_clear(s, c);
	}
}

void multi_free(struct kv_server *s, struct conn *c)
{
	queue_clear(c);
	if (c->nwatched)
		watch_clear(s, c);
}

int multi_queue(struct cmdctx *x)
{
	struct conn *c = x->f->conn;
	if (!c)
		return -1;
	uint64_t bytes = (uint64_t)x->argc * sizeof(struct kv_arg);
	for (uint32_t i = 0; i < x->argc; i++)
		bytes += x->argv[i].copy ? x->argv[i].len : 0;
	if (c->mq_bytes + bytes > MULTI_MAX_BYTES) {
		c->multi_dirty = 1;
		r_err(x, "ERR transaction too large: pktstore-kv queues at most 64 MiB of arguments");
		return -1;
	}
	if (kv_grow(&c->mq, &c->mqcap, c->nmq, sizeof(*c->mq)))
		goto oom;
	struct queued *q = &c->mq[c->nmq];
	q->cmd = x->cmd;
	q->argc = x->argc;
	q->argv = malloc(x->argc * sizeof(*q->argv));
	q->buf = malloc(bytes + 1);
	if (!q->argv || !q->buf) {
		free(q->argv);
		free(q->buf);
		goto oom;
	}
	char *p = q->buf;
	for (uint32_t i = 0; i < x->argc; i++) {
		q->argv[i] = x->argv[i];
		if (x->argv[i].copy) {
			memcpy(p, x->argv[i].copy, x->argv[i].len);
			q->argv[i].copy = p;
			p += x->argv[i].len;
		}
	}
	c->nmq++;
	c->mq_bytes += bytes;
	return 0;
oom:
	c->multi_dirty = 1;
	r_err(x, "ERR out of memory");
	return -1;
}

void c_multi(struct cmdctx *x)
{
	if (x->f->in_multi)
		return r_err(x, "ERR MULTI calls can not be nested");
	x->f->in_multi = 1;
	x->f->multi_start = x->f->resp.cmd_start;
	r_ok(x);
}

void c_discard(struct cmdctx *x)
{
	if (!x->f->in_multi)
		return r_err(x, "ERR DISCARD without MULTI");
	multi_end(x->s, x->f);
	r_ok(x);
}

/*
 * The flow's hint at the record where a queued command starts, found from
 * the previous one's: what reads its arguments from the stream (arg(),
 * pin_range()) starts there, not at the head of a connection that may hold
 * thousands of older records (EXEC's own record lies after the queued
 * ones). The hint, not a pointer of EXEC's own, carries it: a record
 * unlinked meanwhile takes the hint with it (rec_unlink).
 */
static void hint_at(struct kflow *f, const struct queued *q)
{
	if (!q->argc || q->argv[0].seq == KV_ARG_SYNTHETIC)
		return;
	uint64_t seq = q->argv[0].seq;
	struct krec *r = f->hint && f->hint->seq <= seq ? f->hint : f->head;
	while (r && r->next && r->next->seq <= seq)
		r = r->next;
	if (r && r->seq <= seq)
		f->hint = r;
}

void c_exec(struct cmdctx *x)
{
	struct kv_server *s = x->s;
	struct kflow *f = x->f;
	if (!f->in_multi)
		return r_err(x, "ERR EXEC without MULTI");
	if (x->rp) {
		multi_end(s, f); /* its record, if any, does the rest */
		return;
	}
	struct conn *c = f->conn;
	for (uint32_t i = 0; i < c->nmq && ks_full(s); i++)
		if (c->mq[i].cmd->flags & CMD_DENYOOM) {
			r_err(x, "EXECABORT Transaction discarded because of: OOM command not allowed "
				 "when used memory > 'maxmemory'.");
			return multi_end(s, f);
		}
	if (watch_expired_since(s, c, x->now_ms))
		c->watch_dirty = 1;
	if (c->multi_dirty) {
		r_err(x, "EXECABORT Transaction discarded because of previous errors.");
		return multi_end(s, f);
	}
	if (c->watch_dirty) {
		r_nil_array(x);
		return multi_end(s, f);
	}
	/* Taken out of the connection first: a queued command may end the
	 * transaction state (RESET cannot be queued, but be safe). */
	struct queued *mq = c->mq;
	uint32_t n = c->nmq;
	c->mq = NULL;
	c->nmq = c->mqcap = 0;
	multi_end(s, f);
	recorded(x);
	r_array(x, n);
	for (uint32_t i = 0; i < n; i++) {
		hint_at(f, &mq[i]);
		struct cmdctx sub = *x;
		sub.cmd = mq[i].cmd;
		sub.argv = mq[i].argv;
		sub.argc = mq[i].argc;
		sub.db = f->db;
		sub.gather = NULL;
		sub.gather_at = NULL; /* EXEC's own record lies after the queued ones */
		/* Once its record has outgrown a segment the transaction is
		 * undone whatever follows (unit_end): the rest need not run. */
		if (!x->u->mb.err)
			cmd_run(&sub);
		arg_free(&sub);
		free(mq[i].argv);
		free(mq[i].buf);
	}
	free(mq);
}

void c_watch(struct cmdctx *x)
{
	if (x->f->in_multi)
		return r_err(x, "ERR WATCH inside MULTI is not allowed");
	struct conn *c = x->f->conn;
	for (uint32_t i = 1; i < x->argc; i++) {
		if (arg_key(x, i))
			return;
		if (c && watch_add(x->s, c, x->db, arg(x, i), x->argv[i].len, x->now_ms) < 0)
			return r_err(x, "ERR out of memory");
	}
	r_ok(x);
}

void c_unwatch(struct cmdctx *x)
{
	struct conn *c = x->f->conn;
	if (c) {
		watch_clear(x->s, c);
		c->watch_dirty = 0;
	}
	r_ok(x);
}
