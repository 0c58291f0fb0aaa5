/* SPDX-License-Identifier: MIT */
/*
 * cleaner.c - live bytes, not live records, bound the space of a store
 * opened with PKTSTORE_MOVABLE.
 *
 * A segment is only reused once its last record is released, so a few small
 * records that stay (a client's unfinished message, a value never
 * overwritten) can pin every segment of an arena that is nearly empty. When
 * free segments run short, the cleaner takes the sealed segment with the
 * fewest live bytes, copies its records into the bump segment and frees it.
 * A record keeps its id, flow, seq and checksum; only its bytes move.
 *
 * Crash order, for the whole segment at once:
 *   1. the copies are written and flushed, and each descriptor's last word
 *      becomes the moved mark (media.h), whose checksum leaves data_off
 *      out; one drain makes both durable. The mark alone redirects nothing
 *      (data_off still names the old bytes), so the two need no order
 *      between them;
 *   2. data_off changes, one aligned 8-byte store per descriptor, then a
 *      drain: either value of it is a valid record, and the bytes at either
 *      place match the record's CRC32C;
 *   3. only then is the old segment free to be written again.
 * Power lost at any point leaves every record at its old place or its new
 * one, never neither; recovery checks the bytes' CRC32C wherever it points.
 *
 * The cost: one pass over the index to find the segment's records, its live
 * bytes copied, two drains. It runs inside receive calls and append, at
 * most a few segments per call, and only while free segments are short.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Clean while fewer segments than this are free. */
#define CLEAN_LOW 2

/* The sealed segment with the fewest live bytes, if moving them frees at
 * least half a segment; -1 if none. */
static int64_t pick_victim(const struct pktstore *ps)
{
	const struct ps_segments *s = &ps->seg;
	int64_t best = -1;
	uint32_t best_live = s->size / 2 + 1;

	for (uint64_t i = 0; i < s->n; i++)
		if (s->state[i] == PS_SEG_SEALED && s->refs[i] && s->live[i] < best_live) {
			best = (int64_t)i;
			best_live = s->live[i];
		}
	return best;
}

/* The descriptor slots of the live records in segment seg; fails (0) when
 * the segment also holds anything else: landings not yet records, damaged
 * records. */
static size_t records_in(const struct pktstore *ps, uint64_t seg, uint64_t *slots, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ps->all.n; i++) {
		uint64_t id = ps->all.e[i].id;

		if (!ps_record_live(ps, id))
			continue;
		const struct ps_desc *d = ps_desc_slot(ps, id);

		if (!ps_desc_extent_ok(ps, d))
			return 0; /* rotted since open: leave it where it is */
		if (ps_seg_of(ps, d->data_off) != seg)
			continue;
		if (n == max)
			return 0;
		slots[n++] = ps_slot_of(ps, id);
	}
	return n == max ? n : 0;
}

/* Flush one 8-byte field of each descriptor, then drain: with the flushes
 * already in `fs`, all of them become durable together. */
static int persist_words(struct pktstore *ps, struct ps_flush_set *fs, const uint64_t *slots,
			 size_t n, size_t field)
{
	for (size_t i = 0; i < n; i++)
		ps_flush_set_add(&ps->pp, fs,
				 (uint64_t)((char *)&ps->a.descs_pm[slots[i]] - ps->a.base) + field,
				 sizeof(uint64_t));
	int ret = ps_flush_set_flush(&ps->pp, fs);

	return ret ? ret : ps_drain(&ps->pp);
}

/* Step 1's copies: each record's bytes to the cold segment, or, while
 * every segment is pinned and none can be had for it, to the room left
 * where new bytes go; queued in fs for the flush. False when there is no
 * room for all of them: then nothing on the media refers to the copies
 * and their room is given back. */
static bool copy_out(struct pktstore *ps, struct ps_flush_set *fs, const uint64_t *slots,
		     uint64_t *to, size_t nrec)
{
	size_t copied = 0;

	for (; copied < nrec; copied++) {
		const struct ps_desc *d = &ps->a.descs_pm[slots[copied]];
		uint32_t avail;
		enum ps_bump_kind k = PS_BUMP_COLD;

		if (ps_bump_reserve(ps, k, d->len, &to[copied], &avail) &&
		    ps_bump_reserve(ps, k = PS_BUMP_HOT, d->len, &to[copied], &avail))
			break;
		memcpy(ps_ptr(ps, to[copied]), ps_ptr(ps, d->data_off), d->len);
		ps_bump_commit(ps, k, d->len);
		ps_seg_ref(ps, ps_seg_of(ps, to[copied]), d->len);
		ps_flush_set_add(&ps->pp, fs, to[copied], d->len);
	}
	if (copied == nrec)
		return true;
	for (size_t i = 0; i < copied; i++)
		ps_seg_unref(ps, ps_seg_of(ps, to[i]), ps->a.descs_pm[slots[i]].len);
	return false;
}

/* Steps 1 and 2 on the media: the moved marks durable with the copies,
 * then the new places. */
static int redirect(struct pktstore *ps, struct ps_flush_set *fs, const uint64_t *slots,
		    const uint64_t *to, size_t nrec)
{
	for (size_t i = 0; i < nrec; i++) {
		struct ps_desc *d = &ps->a.descs_pm[slots[i]];

		if (d->mark != PS_DESC_MOVED)
			__atomic_store_n((uint64_t *)(void *)&d->mark, ps_desc_moved_word(d),
					 __ATOMIC_RELEASE);
	}
	int ret = persist_words(ps, fs, slots, nrec, offsetof(struct ps_desc, mark));

	if (ret)
		return ret;
	for (size_t i = 0; i < nrec; i++)
		__atomic_store_n(&ps->a.descs_pm[slots[i]].data_off, to[i], __ATOMIC_RELEASE);
	*fs = (struct ps_flush_set){ .n = 0 };
	return persist_words(ps, fs, slots, nrec, offsetof(struct ps_desc, data_off));
}

/* Move every record out of segment seg. 1: freed; 0: could not (no room for
 * the copies: nothing changed); <0: a persist failed. */
static int clean_segment(struct pktstore *ps, uint64_t seg)
{
	uint32_t nrec = ps->seg.refs[seg];
	uint64_t *slots = malloc(nrec * sizeof(*slots));
	uint64_t *to = malloc(nrec * sizeof(*to));
	struct ps_flush_set fs = { .n = 0 };
	int ret = 0;

	if (!slots || !to) {
		ret = -ENOMEM;
		goto out;
	}
	if (records_in(ps, seg, slots, nrec) != nrec)
		goto out;
	/* Nothing may land in it or adopt its tail meanwhile. */
	ps->seg.state[seg] = PS_SEG_CLEANING;
	if (!copy_out(ps, &fs, slots, to, nrec)) {
		ps_seg_cleaned(ps, seg);
		goto out;
	}
	ret = redirect(ps, &fs, slots, to, nrec);
	if (ret) {
		/* Which place is durable is unknown: keep both held, stop. */
		ps->broken = ret;
		goto out;
	}
	/* 3. The old segment goes. */
	for (size_t i = 0; i < nrec; i++) {
		uint32_t len = ps->a.descs_pm[slots[i]].len;

		ps_seg_unref(ps, seg, len);
		ps->cnt.moved_bytes += len;
	}
	ps->cnt.moved_records += nrec;
	ps->cnt.cleaned_segments++;
	ps_seg_cleaned(ps, seg);
	ret = 1;
out:
	free(slots);
	free(to);
	return ret;
}

bool ps_clean_wanted(const struct pktstore *ps)
{
	return ps->movable && ps->clean_hint && ps->seg.nfree < CLEAN_LOW && !ps->broken;
}

/* Segments cleaned per call at most: enough to give back the reserve and
 * one more, short enough that no call stalls. */
#define CLEAN_MAX 4

int ps_clean(struct pktstore *ps)
{
	for (int n = 0; n < CLEAN_MAX && ps_clean_wanted(ps); n++) {
		int64_t seg = pick_victim(ps);

		if (seg < 0) {
			/* Nothing worth moving until something is released. */
			ps->clean_hint = false;
			return 0;
		}
		int ret = clean_segment(ps, (uint64_t)seg);

		if (ret == 0 || ret == -ENOMEM) {
			ps->clean_hint = false; /* nothing changed: try after a release */
			return 0;
		}
		if (ret < 0)
			return ret;
	}
	return 0;
}
