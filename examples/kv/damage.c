/* SPDX-License-Identifier: MIT */
/*
 * damage.c - find what the arena lost before replaying it.
 *
 * A connection's stream is its write-ahead log, and replay cannot parse
 * past a hole in it: serving the state before the hole would silently undo
 * acknowledged writes and bring deleted keys back. So, as Redis does with a
 * damaged AOF, the server refuses to start and names the damage (flow,
 * record, seq, what would be lost), and --repair cuts each damaged stream
 * at its damage, durably releasing what follows, says exactly what it
 * dropped, and starts.
 *
 * The facts come from the library:
 *   - records whose bytes fail their checksum (PKTSTORE_DAMAGED), among
 *     them records whose flow entry is gone (a damaged flow table entry);
 *   - gaps in a connection flow's seq sequence: the server releases a
 *     connection's records only from one end (store.c), so the records that
 *     survive are contiguous, and a gap is a record whose descriptor is lost;
 *   - a flow whose first_seq lies past its first record's start, or a
 *     server flow with no record but a non-zero first_seq: the server never
 *     calls pktstore_trim(), so only a damaged trim point does that;
 *   - after a clean shutdown, the closing summary (compact.c) that lists
 *     every flow's first_seq, next_seq and record count: a record lost at a
 *     stream's end or front leaves no gap, but it changes those.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

enum dmg_kind {
	DMG_BYTES,   /* a record's bytes fail their checksum */
	DMG_ORPHAN,  /* a record whose flow entry is gone */
	DMG_MISSING, /* bytes missing between two records of a connection */
	DMG_TRIMMED, /* the flow's start was moved past its first byte */
	DMG_SUMMARY, /* the arena differs from what the clean shutdown left */
};

#define NO_CUT UINT64_MAX

struct dmg {
	enum dmg_kind kind;
	int proto;         /* KV_RESP, KV_HTTP, KV_META, or 0: not a kv flow */
	uint64_t flow, id; /* id: the damaged record, or 0 */
	uint64_t seq, end; /* the damaged or missing bytes */
	uint64_t cut;      /* the stream is dropped from here on, or NO_CUT */
	char what[192];    /* DMG_SUMMARY: what differs */
};

static struct {
	struct dmg *d;
	size_t n, cap;
} dm;

static int add(const struct dmg *d)
{
	if (dm.n == dm.cap) {
		size_t cap = dm.cap ? dm.cap * 2 : 16;
		struct dmg *n = realloc(dm.d, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		dm.d = n;
		dm.cap = cap;
	}
	dm.d[dm.n++] = *d;
	return 0;
}

void damage_free(void)
{
	free(dm.d);
	memset(&dm, 0, sizeof(dm));
}

/*
 * A flow's extent as a reopen computes it: from its first live record to
 * the end of its last one. The live next_seq can be further on (records at
 * the end released), so the closing summary records this instead.
 */
int flow_extent(struct pktstore *ps, uint64_t flow, struct kv_sum_flow *out)
{
	struct pktstore_rec recs[64];
	uint64_t lo = 0;
	int n;
	*out = (struct kv_sum_flow){ .flow = flow };
	while ((n = pktstore_range(ps, &(struct pktstore_query){ PKTSTORE_BY_SEQ, flow, lo,
								   UINT64_MAX },
				   recs, 64)) > 0) {
		int progress = 0;
		for (int i = 0; i < n; i++) {
			if (out->records && recs[i].seq < lo)
				continue;
			if (!out->records)
				out->first_seq = recs[i].seq;
			out->records++;
			lo = out->next_seq = recs[i].seq + recs[i].len;
			progress = 1;
		}
		if (!progress)
			break;
	}
	return n;
}

/* A damage already reported for this flow, which explains everything
 * after it. */
static int flow_has_damage(uint64_t flow)
{
	for (size_t i = 0; i < dm.n; i++)
		if (dm.d[i].flow == flow)
			return 1;
	return 0;
}

static int proto_of(uint64_t tag)
{
	return tag == KV_TAG_RESP ? KV_RESP : tag == KV_TAG_HTTP ? KV_HTTP
				 : tag == KV_TAG_META   ? KV_META
							 : 0;
}

static const char *proto_name(int proto)
{
	return proto == KV_RESP ? "RESP connection" : proto == KV_HTTP ? "HTTP connection"
					       : proto == KV_META ? "server flow"
								  : "flow";
}

/* Records whose bytes fail their checksum, in every flow. */
static int scan_damaged(struct kv_server *s)
{
	struct pktstore_rec recs[64];
	uint64_t lo = 1;
	int n;
	while ((n = pktstore_range(s->ps, &(struct pktstore_query){ PKTSTORE_DAMAGED, 0, lo,
								      UINT64_MAX },
				   recs, 64)) > 0) {
		for (int i = 0; i < n; i++) {
			const struct pktstore_rec *r = &recs[i];
			struct pktstore_flow_info fi;
			int known = pktstore_flow_info(s->ps, r->flow, &fi) == 0;
			int proto = known ? proto_of(fi.tag) : 0;
			/* Server records stand alone: losing one cuts nothing else. */
			int cuts = proto == KV_RESP || proto == KV_HTTP;
			struct dmg d = { .kind = known ? DMG_BYTES : DMG_ORPHAN, .proto = proto,
					 .flow = r->flow, .id = r->id, .seq = r->seq,
					 .end = r->seq + r->len, .cut = cuts ? r->seq : NO_CUT };
			if (add(&d))
				return -ENOMEM;
			lo = r->id + 1;
		}
	}
	return n;
}

/* The gap at seq is a record whose bytes fail their checksum, not a lost one. */
static int bytes_damaged(uint64_t flow, uint64_t seq)
{
	for (size_t i = 0; i < dm.n; i++)
		if (dm.d[i].flow == flow && dm.d[i].kind == DMG_BYTES && dm.d[i].seq == seq)
			return 1;
	return 0;
}

/* A connection flow: contiguous from its first record to its last. */
static int scan_flow(struct kv_server *s, const struct pktstore_flow_info *fi, int proto)
{
	struct pktstore_rec recs[64];
	uint64_t lo = 0, end = 0;
	int first = 1, n;
	if (!fi->records) {
		/* No record but a start past 0: a damaged trim point dropped them all. */
		if (fi->first_seq == 0)
			return 0;
		struct dmg d = { .kind = DMG_TRIMMED, .proto = proto, .flow = fi->id,
				 .seq = 0, .end = fi->first_seq, .cut = NO_CUT };
		return add(&d);
	}
	while ((n = pktstore_range(s->ps, &(struct pktstore_query){ PKTSTORE_BY_SEQ, fi->id, lo,
								      UINT64_MAX },
				   recs, 64)) > 0) {
		for (int i = 0; i < n; i++) {
			const struct pktstore_rec *r = &recs[i];
			if (!first && r->seq < end)
				continue; /* the record holding lo, seen already */
			if (first && fi->first_seq > r->seq) {
				struct dmg d = { .kind = DMG_TRIMMED, .proto = proto, .flow = fi->id,
						 .id = r->id, .seq = r->seq, .end = fi->first_seq,
						 .cut = r->seq };
				if (add(&d))
					return -ENOMEM;
			}
			if (!first && r->seq > end && proto != KV_META && !bytes_damaged(fi->id, end)) {
				struct dmg d = { .kind = DMG_MISSING, .proto = proto, .flow = fi->id,
						 .seq = end, .end = r->seq, .cut = end };
				if (add(&d))
					return -ENOMEM;
			}
			first = 0;
			end = r->seq + r->len;
			lo = end;
		}
	}
	return n;
}

/* got is NULL when the flow is gone. */
static int summary_differs(const struct kv_sum_flow *want, const struct kv_sum_flow *got, int proto)
{
	struct dmg d = { .kind = DMG_SUMMARY, .proto = proto, .flow = want->flow, .cut = NO_CUT };
	if (!got) {
		snprintf(d.what, sizeof(d.what),
			 "the clean shutdown left bytes %" PRIu64 "..%" PRIu64 " in %" PRIu64
			 " records; the flow is gone",
			 want->first_seq, want->next_seq, want->records);
	} else {
		snprintf(d.what, sizeof(d.what),
			 "the clean shutdown left bytes %" PRIu64 "..%" PRIu64 " in %" PRIu64
			 " records; found %" PRIu64 "..%" PRIu64 " in %" PRIu64,
			 want->first_seq, want->next_seq, want->records, got->first_seq,
			 got->next_seq, got->records);
		/* A lost front leaves a stream that starts inside a command:
		 * keep none of it. A lost tail leaves nothing to drop. */
		if (got->first_seq != want->first_seq && proto != KV_META && got->records)
			d.cut = got->first_seq;
		d.seq = got->next_seq < want->next_seq ? got->next_seq : want->first_seq;
		d.end = want->next_seq;
	}
	return add(&d);
}

/*
 * After a clean shutdown nothing may differ from the closing summary, which
 * must be the last record of the newest server flow.
 */
static int check_summary(struct kv_server *s, const struct pktstore_stats *st, uint64_t last_meta,
			 const struct kv_summary *sum)
{
	if (st->dirty_shutdown || (!last_meta && !st->records && !st->damaged_records))
		return 0;
	struct pktstore_flow_info fi;
	struct pktstore_rec r;
	int found = sum && pktstore_get(s->ps, sum->rec_id, &r, 0) == 0 && r.flow == last_meta &&
		    pktstore_flow_info(s->ps, last_meta, &fi) == 0 && r.seq == sum->meta_next_seq &&
		    fi.next_seq == r.seq + r.len;
	if (!found) {
		struct dmg d = { .kind = DMG_SUMMARY, .proto = KV_META, .flow = last_meta,
				 .cut = NO_CUT };
		snprintf(d.what, sizeof(d.what),
			 "the last session closed cleanly, but its closing summary (the last "
			 "record of this flow) is missing");
		return add(&d);
	}
	if (fi.records != sum->meta_records + 1) {
		/* A server flow releases in any order: only the count tells. */
		struct kv_sum_flow want = { last_meta, 0, r.seq + r.len, sum->meta_records + 1 };
		struct kv_sum_flow got = { last_meta, 0, fi.next_seq, fi.records };
		if (summary_differs(&want, &got, KV_META))
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < sum->n; i++) {
		const struct kv_sum_flow *w = &sum->flows[i];
		struct kv_sum_flow got;
		int rc = pktstore_flow_info(s->ps, w->flow, &fi);
		if (rc == -ENOENT) {
			/* Closed connections without records go at open. */
			if (w->records && !flow_has_damage(w->flow) && summary_differs(w, NULL, 0))
				return -ENOMEM;
			continue;
		}
		if (rc < 0 || (rc = flow_extent(s->ps, w->flow, &got)) < 0)
			return rc;
		if ((got.first_seq != w->first_seq || got.next_seq != w->next_seq ||
		     got.records != w->records) &&
		    !flow_has_damage(w->flow) && summary_differs(w, &got, proto_of(fi.tag)))
			return -ENOMEM;
	}
	return 0;
}

static int by_flow_cut(const void *a, const void *b)
{
	const struct dmg *x = a, *y = b;
	if (x->flow != y->flow)
		return x->flow < y->flow ? -1 : 1;
	return x->cut < y->cut ? -1 : x->cut > y->cut;
}

int damage_scan(struct kv_server *s, const struct pktstore_stats *st, uint64_t last_meta,
		const struct kv_summary *sum)
{
	damage_free();
	int rc = scan_damaged(s);
	struct pktstore_flow_info info[64];
	uint64_t after = 0;
	int n;
	while (rc >= 0 && (n = pktstore_flows(s->ps, after, info, 64)) != 0) {
		if (n < 0)
			return n;
		for (int i = 0; i < n && rc >= 0; i++) {
			after = info[i].id;
			int proto = proto_of(info[i].tag);
			if (proto)
				rc = scan_flow(s, &info[i], proto);
		}
	}
	if (rc >= 0)
		rc = check_summary(s, st, last_meta, sum);
	if (rc < 0)
		return rc;
	if (dm.n)
		qsort(dm.d, dm.n, sizeof(*dm.d), by_flow_cut);
	return (int)dm.n;
}

struct loss {
	uint64_t records, bytes, commands;
};

/*
 * What cutting a connection's stream at `from` drops. The bytes right after
 * the damage may start inside a command, so counting starts afresh at each
 * record where parsing fails: the command count is a lower bound.
 */
static struct loss count_loss(struct kv_server *s, uint64_t flow, int proto, uint64_t from)
{
	struct loss l = { 0 };
	struct resp_parser rp;
	struct http_parser hp;
	struct pktstore_rec recs[64];
	uint64_t lo = from;
	int n;
	resp_init(&rp, &s->resp_lim);
	http_init(&hp, &s->http_lim);
	while ((n = pktstore_range(s->ps, &(struct pktstore_query){ PKTSTORE_BY_SEQ, flow, lo,
								      UINT64_MAX },
				   recs, 64)) > 0) {
		int progress = 0;
		for (int i = 0; i < n; i++) {
			const struct pktstore_rec *r = &recs[i];
			if (r->seq < lo)
				continue;
			progress = 1;
			lo = r->seq + r->len;
			l.records++;
			l.bytes += r->len;
			for (size_t off = 0, used; off < r->len; off += used) {
				used = 0;
				const char *p = (const char *)r->data + off;
				int rc = proto == KV_RESP ? resp_parse(&rp, r->seq + off, p, r->len - off, &used)
							  : http_parse(&hp, r->seq + off, p, r->len - off, &used);
				if (rc == KV_DONE) {
					l.commands++;
				} else if (rc == KV_ERR) {
					resp_free(&rp);
					http_free(&hp);
					resp_init(&rp, &s->resp_lim);
					http_init(&hp, &s->http_lim);
					break;
				}
			}
		}
		if (!progress)
			break;
	}
	resp_free(&rp);
	http_free(&hp);
	return l;
}

static void describe(const struct dmg *d, char *buf, size_t len)
{
	switch (d->kind) {
	case DMG_BYTES:
		snprintf(buf, len, "record %" PRIu64 " (bytes %" PRIu64 "..%" PRIu64 ") fails its checksum",
			 d->id, d->seq, d->end);
		break;
	case DMG_ORPHAN:
		snprintf(buf, len, "record %" PRIu64 " (bytes %" PRIu64 "..%" PRIu64
			 ") belongs to no flow in the table (its entry is damaged, or the library "
			 "freed it at open because only damaged records were left)",
			 d->id, d->seq, d->end);
		break;
	case DMG_MISSING:
		snprintf(buf, len, "bytes %" PRIu64 "..%" PRIu64
			 " are missing (the record that held them is damaged)",
			 d->seq, d->end);
		break;
	case DMG_TRIMMED:
		snprintf(buf, len, "the stream was cut to start at %" PRIu64
			 ", past its first byte %" PRIu64 " (a damaged trim point)",
			 d->end, d->seq);
		break;
	case DMG_SUMMARY:
		snprintf(buf, len, "%s", d->what);
		break;
	}
}

/* One line per damage; the first one of each connection that cuts its
 * stream says what cutting there drops. */
static void report(struct kv_server *s, const char *prefix, int dropping)
{
	for (size_t i = 0; i < dm.n; i++) {
		const struct dmg *d = &dm.d[i];
		char what[320];
		describe(d, what, sizeof(what));
		/* Repair releases a damaged record; other damage it can only accept. */
		const char *outcome = !dropping ? "" : d->id && d->kind != DMG_TRIMMED ? " (released)"
											 : " (accepted)";
		int first_cut = d->cut != NO_CUT && (i == 0 || dm.d[i - 1].flow != d->flow ||
						     dm.d[i - 1].cut == NO_CUT);
		if (first_cut) {
			struct loss l = count_loss(s, d->flow, d->proto, d->cut);
			kv_log("%s: flow %" PRIu64 " (%s): %s; %s the stream from seq %" PRIu64
			       ": %" PRIu64 " more records, %" PRIu64 " bytes, at least %" PRIu64
			       " commands after the damage",
			       prefix, d->flow, proto_name(d->proto), what,
			       dropping ? "dropping" : "repair would drop", d->cut, l.records, l.bytes,
			       l.commands);
		} else if (d->proto == KV_META) {
			kv_log("%s: flow %" PRIu64 " (%s): %s; keys whose newest value it held would "
			       "go back to an older value or vanish%s",
			       prefix, d->flow, proto_name(d->proto), what, outcome);
		} else {
			kv_log("%s: flow %" PRIu64 " (%s): %s%s", prefix, d->flow,
			       proto_name(d->proto), what, outcome);
		}
	}
}

void damage_report(struct kv_server *s)
{
	report(s, "damage", 0);
	kv_log("refusing to start: %zu damaged places in arena %s; the server changed nothing; "
	       "start with --repair to cut each damaged stream at its damage, dropping what is listed above",
	       dm.n, s->cfg.arena);
}

/* Release a connection's records from seq `from` on, oldest first. */
static int drop_from(struct kv_server *s, uint64_t flow, uint64_t from)
{
	struct pktstore_rec recs[64];
	int n;
	while ((n = pktstore_range(s->ps, &(struct pktstore_query){ PKTSTORE_BY_SEQ, flow, from,
								      UINT64_MAX },
				   recs, 64)) > 0) {
		int released = 0;
		for (int i = 0; i < n; i++) {
			if (recs[i].seq < from)
				continue;
			int rc = pktstore_release(s->ps, recs[i].id);
			if (rc < 0)
				return rc;
			released++;
		}
		if (!released)
			return 0;
	}
	return n;
}

int damage_repair(struct kv_server *s)
{
	report(s, "repair", 1);
	for (size_t i = 0; i < dm.n; i++) {
		const struct dmg *d = &dm.d[i];
		int rc = 0;
		if (d->id && (d->kind == DMG_BYTES || d->kind == DMG_ORPHAN))
			rc = pktstore_release(s->ps, d->id);
		if (rc == 0 && d->cut != NO_CUT)
			rc = drop_from(s, d->flow, d->cut);
		if (rc < 0 && rc != -ENOENT) {
			kv_log("repair: flow %" PRIu64 ": %s", d->flow, pktstore_strerror(rc));
			return rc;
		}
	}
	kv_log("repair: %zu damaged places repaired; starting", dm.n);
	return 0;
}
