/* SPDX-License-Identifier: MIT */
/*
 * store.c - the records the server holds, what pins them, and when they go.
 */
#include <stdlib.h>
#include <string.h>

#include "kv.h"

#define FLOW_BUCKETS 4096

struct kflow *flow_get(struct kv_server *s, uint64_t id)
{
	struct kflow *f = s->fh ? s->fh[id % FLOW_BUCKETS] : NULL;
	while (f && f->id != id)
		f = f->hnext;
	return f;
}

struct kflow *flow_add(struct kv_server *s, uint64_t id, int proto)
{
	if (!s->fh) {
		s->fh = calloc(FLOW_BUCKETS, sizeof(*s->fh));
		if (!s->fh)
			return NULL;
	}
	struct kflow *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->id = id;
	f->proto = proto;
	if (proto == KV_RESP)
		resp_init(&f->resp, &s->resp_lim);
	else if (proto == KV_HTTP)
		http_init(&f->http, &s->http_lim);
	f->hnext = s->fh[id % FLOW_BUCKETS];
	s->fh[id % FLOW_BUCKETS] = f;
	s->fh_n++;
	return f;
}

/* Shutdown: free what the server holds; the arena keeps every record. */
void store_free(struct kv_server *s)
{
	for (uint64_t i = 0; i < s->ntombs; i++)
		free(s->tombs[i]);
	for (uint64_t i = s->log_head; i < s->log_tail; i++)
		free(s->log[i % s->log_cap]);
	free(s->tombs);
	free(s->log);
	for (uint64_t b = 0; s->fh && b < FLOW_BUCKETS; b++)
		for (struct kflow *f = s->fh[b], *n; f; f = n) {
			n = f->hnext;
			for (struct krec *r = f->head, *rn; r; r = rn) {
				rn = r->next;
				free(r);
			}
			resp_free(&f->resp);
			http_free(&f->http);
			free(f);
		}
	free(s->fh);
	s->fh = NULL;
}

void flow_forget(struct kv_server *s, struct kflow *f)
{
	struct kflow **pp = &s->fh[f->id % FLOW_BUCKETS];
	while (*pp != f)
		pp = &(*pp)->hnext;
	*pp = f->hnext;
	s->fh_n--;
	resp_free(&f->resp);
	http_free(&f->http);
	free(f);
}

struct krec *rec_add(struct kv_server *s, struct kflow *f, const struct pktstore_rec *pr)
{
	(void)s;
	struct krec *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->id = pr->id;
	r->seq = pr->seq;
	r->data = pr->data;
	r->len = pr->len;
	r->flow = f;
	if (f->tail)
		f->tail->next = r;
	else
		f->head = r;
	f->tail = r;
	f->nrecs++;
	f->next_seq = r->seq + r->len;
	return r;
}

static void rec_release(struct kv_server *s, struct krec *r)
{
	static struct kv_ratelimit rl;
	int rc = pktstore_release(s->ps, r->id);
	if (rc < 0)
		kv_log_limited(&rl, "release of record %llu failed: %s", (unsigned long long)r->id,
			       pktstore_strerror(rc));
	s->released++;
	free(r);
}

/*
 * A flow's records go oldest first, and only up to a point where parsing can
 * restart: the end of a record that ends on a command boundary, or a
 * boundary a checkpoint has recorded (release_limit). A closed flow whose
 * records are all unreferenced goes whole: nothing of it matters to replay.
 */
void flow_try_release(struct kv_server *s, struct kflow *f)
{
	if (s->replaying || f->proto == KV_META)
		return;
	int all = f->closed;
	if (all)
		for (struct krec *r = f->head; r; r = r->next)
			if (r->refs || !r->parsed) {
				all = 0;
				break;
			}
	struct krec *r;
	while ((r = f->head) && r->parsed && r->refs == 0 &&
	       (all || r->ends_clean || r->seq + r->len <= f->release_limit)) {
		f->head = r->next;
		if (f->tail == r)
			f->tail = NULL;
		if (f->hint == r)
			f->hint = NULL;
		f->nrecs--;
		rec_release(s, r);
	}
	if (f->closed && !f->head && !f->conn)
		flow_forget(s, f);
}

void rec_unref(struct kv_server *s, struct krec *r)
{
	if (--r->refs)
		return;
	if (r->flow->proto == KV_META) {
		/* Meta records are self-contained: any one can go, in any order. */
		if (s->replaying)
			return;
		struct kflow *f = r->flow;
		struct krec **pp = &f->head, *prev = NULL;
		while (*pp != r) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = r->next;
		if (f->tail == r)
			f->tail = prev;
		f->nrecs--;
		rec_release(s, r);
		return;
	}
	flow_try_release(s, r->flow);
}

struct pin *pin_command(struct kflow *f, uint64_t pos, uint64_t cstart, uint64_t cend,
			uint64_t vseq, uint32_t vlen)
{
	struct krec *first = f->hint ? f->hint : f->head;
	if (first && first->seq > cstart)
		first = f->head;
	while (first && first->seq + first->len <= cstart)
		first = first->next;
	uint32_t n = 0;
	for (struct krec *r = first; r && r->seq < cend; r = r->next)
		n++;
	struct pin *p = malloc(sizeof(*p) + n * sizeof(p->s[0]));
	if (!p)
		return NULL;
	p->pos = pos;
	p->vlen = vlen;
	p->n = n;
	uint64_t vend = vseq + vlen;
	struct krec *r = first;
	for (uint32_t i = 0; i < n; i++, r = r->next) {
		uint64_t lo = vseq > r->seq ? vseq : r->seq;
		uint64_t hi = vend < r->seq + r->len ? vend : r->seq + r->len;
		p->s[i].rec = r;
		p->s[i].off = lo < hi ? (uint32_t)(lo - r->seq) : 0;
		p->s[i].len = lo < hi ? (uint32_t)(hi - lo) : 0;
		r->refs++;
	}
	return p;
}

struct pin *pin_meta(struct krec *r, uint64_t pos, uint32_t off, uint32_t len)
{
	struct pin *p = malloc(sizeof(*p) + sizeof(p->s[0]));
	if (!p)
		return NULL;
	p->pos = pos;
	p->vlen = len;
	p->n = 1;
	p->s[0] = (struct span){ r, off, len };
	r->refs++;
	return p;
}

int pin_in_meta(const struct pin *p)
{
	return p->n && p->s[0].rec->flow->proto == KV_META;
}

void pin_drop(struct kv_server *s, struct pin *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->n; i++)
		rec_unref(s, p->s[i].rec);
	free(p);
}

void tomb_add(struct kv_server *s, struct pin *p)
{
	if (s->ntombs == s->tombs_cap) {
		uint64_t cap = s->tombs_cap ? s->tombs_cap * 2 : 64;
		struct pin **t = realloc(s->tombs, cap * sizeof(*t));
		if (!t) {
			/* Keeping the records is what matters; leak the pin rather than free them. */
			kv_log("out of memory for tombstones");
			return;
		}
		s->tombs = t;
		s->tombs_cap = cap;
	}
	s->tombs[s->ntombs++] = p;
}

void log_trim(struct kv_server *s, uint64_t below_pos)
{
	while (s->log_head != s->log_tail) {
		struct pin *p = s->log[s->log_head % s->log_cap];
		if (p->pos >= below_pos && s->log_bytes <= s->log_keep)
			break;
		s->log_head++;
		s->log_bytes -= p->vlen;
		pin_drop(s, p);
	}
}

/* The log is a window over the most recent entries: bounded so that a
 * logging workload cannot fill the arena. */
void log_add(struct kv_server *s, struct pin *p)
{
	if (s->log_tail - s->log_head == s->log_cap) {
		uint64_t cap = s->log_cap ? s->log_cap * 2 : 1024;
		struct pin **l = malloc(cap * sizeof(*l));
		if (!l) {
			pin_drop(s, p);
			return;
		}
		for (uint64_t i = s->log_head; i < s->log_tail; i++)
			l[i - s->log_head] = s->log[i % s->log_cap];
		free(s->log);
		s->log = l;
		s->log_tail -= s->log_head;
		s->log_head = 0;
		s->log_cap = cap;
	}
	s->log[s->log_tail++ % s->log_cap] = p;
	s->log_bytes += p->vlen;
	log_trim(s, 0);
}

/*
 * Parse one record of a flow and apply the commands it completes. Shared by
 * the live server and replay, so both stop, skip and apply at the same bytes.
 */
int flow_feed(struct kv_server *s, struct kflow *f, struct krec *r)
{
	uint32_t off = 0;
	if (f->skip_to > r->seq)
		off = f->skip_to - r->seq < r->len ? (uint32_t)(f->skip_to - r->seq) : r->len;
	int busy = f->proto == KV_RESP ? resp_busy(&f->resp) : http_busy(&f->http);
	r->cstart = busy ? (f->proto == KV_RESP ? f->resp.cmd_start : f->http.req_start)
			 : r->seq + off;
	if (!busy)
		f->hint = r;
	f->cmd_idx = 0;
	struct conn *c = f->conn && !f->conn->discard && !s->replaying ? f->conn : NULL;
	while (off < r->len && !f->broken) {
		size_t used = 0;
		int rc = f->proto == KV_RESP
				 ? resp_parse(&f->resp, r->seq + off, r->data + off, r->len - off, &used)
				 : http_parse(&f->http, r->seq + off, r->data + off, r->len - off, &used);
		off += (uint32_t)used;
		int was_broken = f->broken;
		if (rc == KV_DONE) {
			uint32_t idx = f->cmd_idx < 0xfffff ? f->cmd_idx++ : 0xfffff;
			if (s->replaying)
				replay_vals_before(s, KV_POS(r->id, idx));
			if (f->proto == KV_RESP)
				exec_resp(s, f, &f->resp, KV_POS(r->id, idx), c);
			else
				exec_http(s, f, &f->http, KV_POS(r->id, idx), c);
			f->hint = r;
		} else if (rc == KV_HEAD) {
			if (c)
				out_lit(c, "HTTP/1.1 100 Continue\r\n\r\n");
		} else if (rc == KV_ERR) {
			f->broken = 1;
			if (c && f->proto == KV_RESP) {
				out_fmt(c, "-ERR Protocol error: %s\r\n", f->resp.err);
			} else if (c) {
				out_fmt(c,
					"HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
					f->http.status, http_reason(f->http.status));
			}
			if (f->conn)
				f->conn->closing = 1;
		}
		if (f->broken && !was_broken)
			f->broken_at = rc == KV_ERR ? (f->proto == KV_RESP ? f->resp.cmd_start
									  : f->http.req_start)
						    : r->seq + off;
	}
	r->parsed = 1;
	busy = f->proto == KV_RESP ? resp_busy(&f->resp) : http_busy(&f->http);
	r->ends_clean = !f->broken && !busy;
	return 0;
}
