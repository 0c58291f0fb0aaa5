/* SPDX-License-Identifier: MIT */
/*
 * cmdctx.c - what every command handler uses: its arguments, its replies
 * in Redis's words, and the rules that keep replay exact (recorded(),
 * refused()).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd.h"
#include "util.h"

/*
 * Argument i as contiguous bytes. Short ones were copied by the parser;
 * longer ones are gathered from the flow's records, which stay while the
 * command (or its transaction) runs. Several may be alive at once: each
 * gathered argument is appended to one buffer, whose old copies are kept
 * until the command ends by never moving them (a new buffer is chained
 * through its first bytes).
 */
const char *arg(struct cmdctx *x, uint32_t i)
{
	const struct kv_arg *a = &x->argv[i];
	if (a->copy || !a->len)
		return a->copy ? a->copy : "";
	size_t need = sizeof(char *) + a->len;
	char *b = malloc(need);
	if (!b)
		return "";
	/* Chain: the first bytes point at the previous buffer. */
	memcpy(b, &x->gather, sizeof(char *));
	x->gather = b;
	char *out = b + sizeof(char *);
	memset(out, 0, a->len); /* never what an earlier allocation held */
	uint64_t seq = a->seq, end = a->seq + a->len;
	/* From the record the last argument gathered started in, or the one
	 * the command started in: arguments are mostly asked for in order, a
	 * command may span thousands of records, and a connection whose oldest
	 * record cannot go yet may hold a long chain before it. */
	struct krec *first = x->gather_at && x->gather_at->seq <= seq ? x->gather_at
			     : x->f->hint && x->f->hint->seq <= seq ? x->f->hint
								     : x->f->head;
	for (struct krec *r = first; r && seq < end; r = r->next) {
		if (r->seq + r->len <= seq)
			continue;
		if (seq == a->seq)
			x->gather_at = r;
		uint32_t off = (uint32_t)(seq - r->seq);
		uint32_t take = r->len - off < end - seq ? r->len - off : (uint32_t)(end - seq);
		memcpy(out + (seq - a->seq), r->data + off, take);
		seq += take;
	}
	return out;
}

void arg_free(struct cmdctx *x)
{
	while (x->gather) {
		char *next;
		memcpy(&next, x->gather, sizeof(next));
		free(x->gather);
		x->gather = next;
	}
}

int arg_is(struct cmdctx *x, uint32_t i, const char *word)
{
	size_t n = strlen(word);
	return i < x->argc && x->argv[i].len == n && !strncasecmp(arg(x, i), word, n);
}

int arg_i64(struct cmdctx *x, uint32_t i, int64_t *out)
{
	if (str_to_i64(arg(x, i), x->argv[i].len, out) == 0)
		return 0;
	r_not_int(x);
	return -1;
}

int arg_key(struct cmdctx *x, uint32_t i)
{
	if (x->argv[i].len <= KV_MAX_KEY)
		return 0;
	r_errf(x, "ERR key too long: pktstore-kv takes keys of at most %u bytes", KV_MAX_KEY);
	return -1;
}

void r_ok(struct cmdctx *x)
{
	out_lit(x->c, "+OK\r\n");
}

void r_int(struct cmdctx *x, int64_t v)
{
	out_num(x->c, ':', v);
}

void r_nil(struct cmdctx *x)
{
	out_lit(x->c, "$-1\r\n");
}

void r_nil_array(struct cmdctx *x)
{
	out_lit(x->c, "*-1\r\n");
}

void r_array(struct cmdctx *x, uint64_t n)
{
	out_num(x->c, '*', (int64_t)n);
}

void r_bulk(struct cmdctx *x, const char *p, size_t n)
{
	if (!x->c)
		return;
	out_num(x->c, '$', (int64_t)n);
	out_text(x->c, p, n);
	out_lit(x->c, "\r\n");
}

void r_bulk_str(struct cmdctx *x, const char *p)
{
	r_bulk(x, p, strlen(p));
}

void r_status(struct cmdctx *x, const char *p)
{
	out_fmt(x->c, "+%s\r\n", p);
}

void r_value(struct cmdctx *x, const struct pin *v)
{
	if (!x->c)
		return;
	out_num(x->c, '$', v->vlen);
	out_pin(x->c, v);
	out_lit(x->c, "\r\n");
}

void r_err(struct cmdctx *x, const char *msg)
{
	if (!x->rp)
		x->s->st.errors++;
	out_fmt(x->c, "-%s\r\n", msg);
}

void r_errf(struct cmdctx *x, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	r_err(x, buf);
}

void r_syntax(struct cmdctx *x)
{
	r_err(x, "ERR syntax error");
}

void r_arity(struct cmdctx *x)
{
	r_errf(x, "ERR wrong number of arguments for '%s' command", x->cmd->name);
}

void r_not_int(struct cmdctx *x)
{
	r_err(x, "ERR value is not an integer or out of range");
}

/* Redis's words, so that clients that know them react as to Redis. */
void r_oom(struct cmdctx *x)
{
	r_err(x, "OOM command not allowed when used memory > 'maxmemory'.");
}

void r_persist_failed(struct cmdctx *x, int rc)
{
	r_errf(x, "ERR cannot persist: %s", pktstore_strerror(rc));
}

int recorded(struct cmdctx *x)
{
	if (x->rp)
		return 0;
	if (!x->u->record)
		unit_set_recorded(x->u);
	return 1;
}

/*
 * Whether the write at x->pos is refused. Live: when it does not fit; a
 * replayed unit makes the refusal durable before the reply, since replay
 * cannot decide again (the records of versions overwritten since are
 * released at once and the space they took then is not known any more). A
 * recorded unit needs nothing: what it did not do is not in its record.
 */
int refused(struct cmdctx *x, uint64_t add, uint64_t sub)
{
	static struct kv_ratelimit rl;
	struct kv_server *s = x->s;
	if (x->rp)
		return replay_refused(x->rp, x->pos);
	if (ks_fits(s, add, sub))
		return 0;
	if (!x->u->record) {
		int rc = meta_refuse(s, x->pos);
		if (rc < 0) {
			/* Replay would apply it, so the live server must too. */
			kv_log_limited(&rl, "cannot record an OOM refusal (%s): accepting the write",
				       pktstore_strerror(rc));
			return 0;
		}
	}
	s->oom_replies++;
	r_oom(x);
	return 1;
}

struct kentry *lookup_key(struct cmdctx *x, int db, const char *key, uint32_t klen)
{
	struct kentry *e = ks_lookup(x->s, db, key, klen, x->now_ms);
	if (!x->rp) {
		if (e)
			x->s->st.hits++;
		else
			x->s->st.misses++;
	}
	return e;
}

struct kentry *lookup(struct cmdctx *x, int db, uint32_t keyarg)
{
	return lookup_key(x, db, arg(x, keyarg), x->argv[keyarg].len);
}
