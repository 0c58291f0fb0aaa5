/* SPDX-License-Identifier: MIT */
/*
 * store.c - the records the server holds, what pins them, and when they go.
 */
#include <stdlib.h>
#include <string.h>

#include "kv.h"

/* Which protocol a flow of this tag speaks (0: not ours), and whether it was
 * accepted while a password was required. */
int kv_proto_of_tag(uint64_t tag, int *need_auth)
{
	if (need_auth)
		*need_auth = tag == KV_TAG_RESP_AUTH;
	return tag == KV_TAG_RESP || tag == KV_TAG_RESP_AUTH ? KV_RESP
	       : tag == KV_TAG_HTTP			   ? KV_HTTP
	       : tag == KV_TAG_META			   ? KV_META
							   : 0;
}

struct kflow *flow_get(struct kv_server *s, uint64_t id)
{
	struct kflow *f = s->fh ? s->fh[id % KV_FLOW_BUCKETS] : NULL;
	while (f && f->id != id)
		f = f->hnext;
	return f;
}

struct kflow *flow_add(struct kv_server *s, uint64_t id, int proto)
{
	if (!s->fh) {
		s->fh = calloc(KV_FLOW_BUCKETS, sizeof(*s->fh));
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
	f->hnext = s->fh[id % KV_FLOW_BUCKETS];
	s->fh[id % KV_FLOW_BUCKETS] = f;
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
	for (uint64_t b = 0; s->fh && b < KV_FLOW_BUCKETS; b++)
		for (struct kflow *f = s->fh[b], *n; f; f = n) {
			n = f->hnext;
			for (struct krec *r = f->head, *rn; r; r = rn) {
				rn = r->next;
				free(r);
			}
			resp_free(&f->resp);
			http_free(&f->http);
			free(f->states);
			free(f);
		}
	free(s->fh);
	s->fh = NULL;
}

void flow_forget(struct kv_server *s, struct kflow *f)
{
	struct kflow **pp = &s->fh[f->id % KV_FLOW_BUCKETS];
	while (*pp != f)
		pp = &(*pp)->hnext;
	*pp = f->hnext;
	s->fh_n--;
	flow_drop_states(s, f, UINT64_MAX);
	free(f->states);
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
	r->ts_ms = pr->ts_ns / 1000000;
	r->data = pr->data;
	r->len = pr->len;
	r->flow = f;
	r->prev = f->tail;
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

/* Take r out of its flow's list, from anywhere in it. */
static void rec_unlink(struct kflow *f, struct krec *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		f->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		f->tail = r->prev;
	if (f->hint == r)
		f->hint = NULL;
	f->nrecs--;
}

/*
 * A flow's records go oldest first, and only up to a point where parsing can
 * restart: the end of a record that ends on a command boundary outside a
 * transaction, or a boundary a checkpoint has recorded (release_limit). A
 * closed flow whose records are all unreferenced goes whole: nothing of it
 * matters to replay. It goes newest first, so that a crash halfway leaves
 * its first records, where parsing starts cleanly, and never a tail that
 * starts inside a command or a transaction (whose queued SETs replay would
 * then run on their own).
 */
static void release_whole(struct kv_server *s, struct kflow *f)
{
	struct krec **v = malloc((f->nrecs ? f->nrecs : 1) * sizeof(*v));
	if (!v)
		return; /* they stay until memory allows; replay would ignore them */
	uint32_t n = 0;
	for (struct krec *r = f->head; r; r = r->next)
		v[n++] = r;
	f->head = f->tail = f->hint = NULL;
	f->nrecs = 0;
	while (n)
		rec_release(s, v[--n]);
	free(v);
}

static int all_parsed(const struct kflow *f)
{
	for (const struct krec *r = f->head; r; r = r->next)
		if (!r->parsed)
			return 0;
	return 1;
}

/*
 * A closed flow's unfinished command (or transaction) never runs, live or in
 * replay, so the records holding nothing but its bytes go, newest first,
 * even while an older record stays for a value it holds: a client closed in
 * the middle of a large value gives that space back at once. A crash
 * halfway leaves a prefix of the stream, or one with a gap, which replay
 * stops at; either way the command stays unfinished.
 */
static void release_unfinished_tail(struct kv_server *s, struct kflow *f)
{
	uint64_t from = flow_unfinished_from(f);
	struct krec *r;
	while ((r = f->tail) && r->parsed && r->refs == 0 && r->seq >= from) {
		rec_unlink(f, r);
		rec_release(s, r);
	}
}

void flow_try_release(struct kv_server *s, struct kflow *f)
{
	if (s->replaying || f->proto == KV_META)
		return;
	/* Whether nothing holds any of a closed flow's records is counted, not
	 * walked: a closed flow whose head cannot go yet (a record that ends
	 * inside a request) would otherwise be walked at every release of one
	 * of its records, quadratic in its length (a window of logged POSTs
	 * trimmed from the oldest, say). */
	if (f->closed && !f->nheld && all_parsed(f))
		release_whole(s, f);
	struct krec *r;
	while ((r = f->head) && r->parsed && r->refs == 0 &&
	       (r->ends_clean || r->seq + r->len <= f->release_limit)) {
		rec_unlink(f, r);
		rec_release(s, r);
	}
	if (f->closed && !f->broken)
		release_unfinished_tail(s, f);
	if (f->closed && !f->head && !f->conn)
		flow_forget(s, f);
	else
		flow_drop_states(s, f, f->head ? f->head->seq : f->next_seq);
}

void rec_unref(struct kv_server *s, struct krec *r)
{
	if (--r->refs)
		return;
	r->flow->nheld--;
	if (r->flow->proto == KV_META) {
		/* Meta records are self-contained: any one can go, in any order,
		 * unlinked where it is (a walk from the head would make a
		 * workload that supersedes old decisions, INCR on many keys,
		 * quadratic). */
		if (s->replaying)
			return;
		rec_unlink(r->flow, r);
		rec_release(s, r);
		return;
	}
	flow_try_release(s, r->flow);
}

struct pin *pin_alloc(uint32_t n)
{
	struct pin *p = calloc(1, sizeof(*p) + n * sizeof(p->s[0]));
	if (p)
		p->n = n;
	return p;
}

/*
 * What a version of a command in the stream holds: the command's first
 * record, and the records with the value's bytes [vseq, vseq + vlen) (cend
 * bounds the search). A flow's records go oldest first and stop at the
 * first one still held (flow_try_release), so holding the first keeps the
 * whole command for replay: a span for each of its records would cost every
 * key of an MSET sent in R pieces R spans.
 */
struct pin *pin_command(struct kv_server *s, struct kflow *f, uint64_t pos, uint64_t cstart,
			uint64_t cend, uint64_t vseq, uint32_t vlen)
{
	struct krec *first = f->hint ? f->hint : f->head;
	if (first && first->seq > cstart)
		first = f->head;
	while (first && first->seq + first->len <= cstart)
		first = first->next;
	uint64_t vend = vseq + vlen;
	struct krec *vfirst = NULL;
	uint32_t n = 0;
	for (struct krec *r = first; r && r->seq < cend && (vlen ? r->seq < vend : r == first);
	     r = r->next) {
		if (vlen && r->seq + r->len <= vseq)
			continue;
		if (!vfirst)
			vfirst = r;
		n++;
	}
	int lead = first && first != vfirst; /* the first record, apart from the value's */
	struct pin *p = pin_alloc(n + lead);
	if (!p)
		return NULL;
	p->pos = pos;
	p->vlen = vlen;
	p->vid = ++s->next_vid;
	uint32_t i = 0;
	if (lead) {
		p->s[i++] = (struct span){ first, 0, 0 };
		rec_ref(first);
	}
	struct krec *r = vfirst;
	for (; i < n + lead; i++, r = r->next) {
		uint64_t lo = vseq > r->seq ? vseq : r->seq;
		uint64_t hi = vend < r->seq + r->len ? vend : r->seq + r->len;
		p->s[i].rec = r;
		p->s[i].off = lo < hi ? (uint32_t)(lo - r->seq) : 0;
		p->s[i].len = lo < hi ? (uint32_t)(hi - lo) : 0;
		rec_ref(r);
	}
	return p;
}

/* Only the records holding [seq, seq + len) of f; NULL when some of them
 * are gone (replay: the version was overwritten or deleted since). */
struct pin *pin_range(struct kv_server *s, struct kflow *f, uint64_t pos, uint64_t seq,
		      uint32_t len)
{
	struct krec *first = f->hint && f->hint->seq <= seq ? f->hint : f->head;
	while (first && first->seq + first->len <= seq && len)
		first = first->next;
	uint32_t n = 0;
	uint64_t end = seq + len, at = seq;
	for (struct krec *r = first; r && at < end; r = r->next) {
		if (r->seq > at)
			return NULL; /* a hole */
		at = r->seq + r->len;
		n++;
	}
	if (at < end)
		return NULL;
	struct pin *p = pin_alloc(n);
	if (!p)
		return NULL;
	p->pos = pos;
	p->vlen = len;
	p->vid = ++s->next_vid;
	struct krec *r = first;
	for (uint32_t i = 0; i < n; i++, r = r->next) {
		uint64_t lo = seq > r->seq ? seq : r->seq;
		uint64_t hi = end < r->seq + r->len ? end : r->seq + r->len;
		p->s[i] = (struct span){ r, (uint32_t)(lo - r->seq), (uint32_t)(hi - lo) };
		rec_ref(r);
	}
	return p;
}

struct pin *pin_meta(struct kv_server *s, struct krec *r, uint64_t pos, uint32_t off,
		     uint32_t len)
{
	struct pin *p = pin_alloc(1);
	if (!p)
		return NULL;
	p->pos = pos;
	p->vlen = len;
	p->vid = ++s->next_vid;
	p->s[0] = (struct span){ r, off, len };
	rec_ref(r);
	return p;
}

/* The same version under a new identity (an expiry change makes one). */
struct pin *pin_clone(struct kv_server *s, const struct pin *o)
{
	/* A heap value gets its span at its unit's commit: keep room for it. */
	struct pin *p = pin_alloc(o->n ? o->n : 1);
	if (!p)
		return NULL;
	memcpy(p, o, sizeof(*p) + o->n * sizeof(o->s[0]));
	p->vid = ++s->next_vid;
	if (o->heap) {
		p->heap = malloc(o->vlen ? o->vlen : 1);
		if (!p->heap) {
			free(p);
			return NULL;
		}
		memcpy(p->heap, o->heap, o->vlen);
	}
	for (uint32_t i = 0; i < p->n; i++)
		rec_ref(p->s[i].rec);
	if (p->urec)
		rec_ref(p->urec);
	if (p->xrec)
		rec_ref(p->xrec);
	return p;
}

/* Bytes [from, from + cap) of a version's value, copied; returns how many. */
uint32_t pin_copy(const struct pin *v, uint32_t from, char *buf, uint32_t cap)
{
	if (from >= v->vlen)
		return 0;
	if (cap > v->vlen - from)
		cap = v->vlen - from;
	if (v->heap) {
		memcpy(buf, v->heap + from, cap);
		return cap;
	}
	uint32_t n = 0, at = 0;
	for (uint32_t i = 0; i < v->n && n < cap; i++) {
		const struct span *sp = &v->s[i];
		if (at + sp->len <= from) {
			at += sp->len;
			continue;
		}
		uint32_t skip = from > at ? from - at : 0;
		uint32_t take = sp->len - skip < cap - n ? sp->len - skip : cap - n;
		memcpy(buf + n, sp->rec->data + sp->off + skip, take);
		n += take;
		at += sp->len;
	}
	return n;
}

/* A heap value is on its way to a meta record (its unit's). */
int pin_in_meta(const struct pin *p)
{
	return p->heap || (p->n && p->s[0].rec->flow->proto == KV_META);
}

void pin_drop(struct kv_server *s, struct pin *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->n; i++)
		rec_unref(s, p->s[i].rec);
	if (p->urec)
		rec_unref(s, p->urec);
	if (p->xrec)
		rec_unref(s, p->xrec);
	free(p->heap);
	free(p);
}

/* Hold r in *slot instead of what it held. */
void rec_hold(struct krec **slot, struct krec *r)
{
	if (r)
		rec_ref(r);
	*slot = r;
}

/*
 * A connection's database and AUTH state from stream offset from_seq on,
 * and the meta record that makes it durable. Each is held while replay may
 * start in its stretch of the stream: until the flow's first byte still
 * held lies past where the next one takes over, or a checkpoint carries it.
 */
void flow_set_state(struct kflow *f, int db, int authed, struct krec *r,
		    uint64_t from_seq)
{
	static struct kv_ratelimit rl;
	f->db = (uint8_t)db;
	f->authed = (uint8_t)authed;
	if (kv_grow(&f->states, &f->statecap, f->nstates, sizeof(*f->states))) {
		/* Without it replay could start this connection in the wrong
		 * database: keep what was there, which holds everything older. */
		kv_log_limited(&rl, "out of memory for a connection's state");
		return;
	}
	rec_ref(r);
	f->states[f->nstates++] = (struct kstate){ r, from_seq };
}

/* States replay no longer needs: every one whose successor holds from a
 * point before before_seq (the flow's first byte still held), or all of
 * them (UINT64_MAX: a checkpoint carries the state, or the flow is gone). */
void flow_drop_states(struct kv_server *s, struct kflow *f, uint64_t before_seq)
{
	uint32_t drop = 0;
	if (before_seq == UINT64_MAX)
		drop = f->nstates;
	else
		while (drop + 1 < f->nstates && f->states[drop + 1].from_seq <= before_seq)
			drop++;
	if (!drop)
		return;
	for (uint32_t i = 0; i < drop; i++)
		rec_unref(s, f->states[i].rec);
	memmove(f->states, f->states + drop, (f->nstates - drop) * sizeof(*f->states));
	f->nstates -= drop;
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

/* What an entry counts against the window: its body, and what the request
 * line and its descriptor take besides (an empty body is not free). */
#define LOG_ENTRY_OVERHEAD 128

static uint64_t log_charge(const struct pin *p)
{
	return (uint64_t)p->vlen + LOG_ENTRY_OVERHEAD;
}

void log_trim(struct kv_server *s, uint64_t below_pos)
{
	while (s->log_head != s->log_tail) {
		struct pin *p = s->log[s->log_head % s->log_cap];
		if (p->pos >= below_pos && s->log_bytes <= s->log_keep)
			break;
		s->log_head++;
		s->log_bytes -= log_charge(p);
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
	s->log_bytes += log_charge(p);
	log_trim(s, 0);
}
