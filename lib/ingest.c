/* SPDX-License-Identifier: MIT */
/*
 * ingest.c - from a backend's landings to durable records in the caller's
 * hands.
 *
 *   backend poll -> ps_land() -> record (CRC, descriptor, flush set)
 *                -> ps_commit() (one drain for the batch) -> delivery
 *
 * Delivery only ever hands out records that a commit has already made
 * durable. A landing that finds no free descriptor waits, in arrival order,
 * in the stall queue; later landings queue behind it so no flow's stream is
 * reordered. Flows with records to deliver sit on the ready list, which is
 * what recv_persist_any() walks.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

/* Turn one landing into a record (or an end of stream). -ENOSPC: no
 * descriptor free, try again later. */
static int land_one(struct pktstore *ps, const struct ps_landing *l)
{
	struct ps_flow *f = l->f;

	if (l->status <= 0) {
		if (f->run == PS_RUN_NONE)
			return 0; /* detached meanwhile: nobody waits for its end */
		if (f->run == PS_RUN_ACTIVE)
			ps->active_flows--;
		ps_flow_starve(ps, f, false); /* nothing more to wait for */
		f->run = PS_RUN_ENDED;
		f->end_status = l->status;
		ps_ready_push(ps, f);
		return 0;
	}
	int ret = ps_record_make(ps, f, l->off, l->len, 0, NULL);

	if (!ret)
		ps_ready_push(ps, f);
	return ret;
}

static int stall_push(struct pktstore *ps, const struct ps_landing *l)
{
	if (ps->stall_n == ps->stall_cap) {
		size_t cap = ps->stall_cap ? ps->stall_cap * 2 : 64;
		struct ps_landing *q = malloc(cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		for (size_t i = 0; i < ps->stall_n; i++)
			q[i] = ps->stall[(ps->stall_head + i) % ps->stall_cap];
		free(ps->stall);
		ps->stall = q;
		ps->stall_cap = cap;
		ps->stall_head = 0;
	}
	if (!ps->stall_n)
		ps->cnt.enospc_events++; /* waiting for a descriptor is waiting for space */
	ps->stall[(ps->stall_head + ps->stall_n) % ps->stall_cap] = *l;
	ps->stall_n++;
	l->f->stalled++; /* the flow outlives a detach until these are records */
	return 0;
}

static void stall_drain(struct pktstore *ps)
{
	while (ps->stall_n) {
		struct ps_flow *f = ps->stall[ps->stall_head].f;

		if (land_one(ps, &ps->stall[ps->stall_head]))
			return;
		ps->stall_head = (ps->stall_head + 1) % ps->stall_cap;
		ps->stall_n--;
		f->stalled--;
		ps_flow_maybe_reclaim(ps, f);
	}
}

void ps_land(struct pktstore *ps, struct ps_flow *f, uint64_t off, uint32_t len, int status)
{
	struct ps_landing l = { .f = f, .off = off, .len = len, .status = status };

	/* The stream ended while bytes of it wait for a descriptor: the end
	 * follows them, but the application may be waiting for this very
	 * client to go before it releases anything, so it hears now. */
	if (status <= 0 && f->stalled && !ps->desc_free)
		ps_hangup_notice(ps, f);

	/* The bytes are in the arena now: their segment is busy until the
	 * record made from them is released. */
	if (status > 0)
		ps_seg_ref(ps, ps_seg_of(ps, off), len);
	/* Data waits its turn behind every stalled landing (first come,
	 * first served for descriptors); an end of stream needs no descriptor
	 * and only has to follow its own flow's bytes. */
	bool queue = status > 0 ? ps->stall_n > 0 : f->stalled > 0;

	if (queue || land_one(ps, &l)) {
		if (stall_push(ps, &l) && !ps->broken)
			ps->broken = -ENOMEM;
	}
}

void ps_flow_writable(struct pktstore *ps, struct ps_flow *f)
{
	if (!f->want_writable)
		return;
	f->want_writable = false;
	f->writable = true;
	ps_ready_push(ps, f);
}

void ps_hangup_notice(struct pktstore *ps, struct ps_flow *f)
{
	if (f->hup_noticed)
		return;
	f->hup_noticed = true;
	ps_ready_push(ps, f);
}

/* Short of free segments in a movable store: free a sparse one. Records
 * made so far are committed first, so only durable records move. */
int ps_make_room(struct pktstore *ps)
{
	if (!ps_clean_wanted(ps))
		return 0;
	int ret = ps_commit(ps);

	if (!ret)
		ret = ps_clean(ps);
	if (ret && !ps->broken)
		ps->broken = ret;
	return ret;
}

static void space_freed(struct pktstore *ps)
{
	if (ps->space_pending && ps->be && ps->be->space_freed) {
		ps->space_pending = false;
		ps->be->space_freed(ps);
	}
}

static int commit(struct pktstore *ps)
{
	int ret = ps_commit(ps);

	if (ret && !ps->broken)
		ps->broken = ret;
	return ret; /* this call saw it fail; later ones get EBROKEN */
}

/*
 * Make records from whatever waits, then make them durable, with the
 * releases made since the last commit, in one drain. Releases go first on
 * their own only when what they free is needed now: landings waiting for a
 * descriptor, flows starved of buffers. Only calls that may invalidate data
 * pointers (receive, append: pktstore_open(3)) let the cleaner move records
 * first.
 */
int ps_settle(struct pktstore *ps, bool may_move)
{
	if (ps->broken)
		return PKTSTORE_EBROKEN;
	int ret = may_move ? ps_make_room(ps) : 0;

	if (ret)
		return ret;
	if (ps->rel_n && (ps->stall_n || ps->nstarved || !ps->desc_free) && (ret = commit(ps)))
		return ret;
	space_freed(ps);
	stall_drain(ps);
	if ((ret = commit(ps)))
		return ret;
	space_freed(ps); /* what this commit's releases freed */
	return ps->broken ? PKTSTORE_EBROKEN : 0;
}

/*
 * Whether a receive call about to wait may leave the releases made since
 * the last commit to the commit after its wait: nothing is ready to hand
 * out (so the call cannot return before it commits again), nothing waits
 * to land, and no flow or landing needs the space they free. The server
 * that releases what it has just acknowledged then pays one drain per
 * request instead of two, and the acknowledgement it queued goes out with
 * the wait's enter without a fence in front of it. The durability point
 * stays where pktstore_release(3) puts it: every return of the call
 * commits first.
 */
bool ps_releases_may_wait(const struct pktstore *ps)
{
	return ps->rel_n && !ps->uncommitted && !ps->ready_head && !ps->nfired && !ps->stall_n &&
	       !ps->nstarved && ps->desc_free && !ps->broken && !ps_clean_wanted(ps);
}

/* Hand out f's durable, undelivered records. */
unsigned ps_deliver(struct pktstore *ps, struct ps_flow *f, struct pktstore_rec *out,
			unsigned max)
{
	const struct ps_index *ix = &f->idx;
	unsigned n = 0;

	for (size_t i = ps_index_lower_seq(ix, f->delivered_seq); i < ix->n && n < max; i++) {
		if (!ps_record_live(ps, ix->e[i].id))
			continue;
		ps_rec_fill(ps, ps_desc_slot(ps, ix->e[i].id), &out[n]);
		f->delivered_seq = out[n].seq + out[n].len;
		n++;
	}
	if (n < max)
		f->delivered_seq = f->next_seq; /* only released ones were left */
	return n;
}

bool ps_has_pending(const struct ps_flow *f)
{
	return f->delivered_seq < f->next_seq;
}

/* Receiving cannot progress until the caller releases something. */
bool ps_out_of_space(const struct pktstore *ps, const struct ps_flow *f)
{
	if (ps->stall_n && !ps->desc_free)
		return true;
	/* A starved flow gets buffers back only with a free segment and a
	 * free descriptor (recv_uring.c refills on both). */
	bool no_room = !ps->seg.nfree || !ps->desc_free;

	return no_room && (f ? f->starved : ps->nstarved > 0);
}

/* Records of the ready flows in turn, and each flow's end, hang-up or
 * writable event after its last record, up to max. */
unsigned ps_deliver_any(struct pktstore *ps, struct pktstore_rec *recs, unsigned max)
{
	unsigned n = 0;
	struct ps_flow *f;

	while (n < max && (f = ps_ready_pop(ps))) {
		n += ps_deliver(ps, f, recs + n, max - n);
		bool end = f->run == PS_RUN_ENDED && !f->end_reported;
		bool hup = !end && f->run == PS_RUN_ACTIVE && f->hup_noticed && !f->hup_reported;
		bool wr = f->writable && f->run != PS_RUN_NONE;

		if (ps_has_pending(f) || ((end || hup || wr) && n + (end || hup) + wr > max)) {
			ps_ready_push_front(ps, f); /* out[] is full */
			break;
		}
		if (wr) {
			/* Before an end: the last replies may still go out. */
			f->writable = false;
			recs[n++] = (struct pktstore_rec){ .flow = f->id,
							   .flags = PKTSTORE_REC_WRITABLE,
							   .user = f->user };
		}
		if (end) {
			f->end_reported = true;
			recs[n++] = (struct pktstore_rec){ .status = f->end_status,
							   .flow = f->id,
							   .flags = PKTSTORE_REC_END,
							   .user = f->user };
		} else if (hup) {
			f->hup_reported = true;
			recs[n++] = (struct pktstore_rec){ .status = -ENOBUFS,
							   .flow = f->id,
							   .flags = PKTSTORE_REC_HANGUP,
							   .user = f->user };
		}
		ps_flow_maybe_reclaim(ps, f);
	}
	return n;
}
