/* SPDX-License-Identifier: MIT */
/*
 * recovery.c - rebuild the DRAM state from the descriptor log at open.
 *
 * One sequential pass over the descriptors. A descriptor counts only if its
 * own CRC holds, its id is in range and names its slot, it carries no
 * release mark, its extent lies inside one data segment, its flow exists,
 * and its bytes match their CRC. Anything else
 * was torn by a crash or damaged on the media: a bad descriptor frees its
 * slot; a good descriptor over bad bytes stays, marked damaged, so the damage
 * is reported (get returns -EBADMSG) instead of silently forgotten.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

static int cmp_seq(const void *a, const void *b)
{
	const struct ps_ent *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_id(const void *a, const void *b)
{
	const struct ps_ent *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Slots are scanned in order and slot = id % ndesc, so the entries arrive
 * sorted by id (and each flow's by seq) except for one wrap-around point:
 * rotate instead of sorting. Only a damaged or unusual log (ids more than
 * ndesc apart) needs qsort. by_seq picks the key.
 */
static void sort_entries(struct ps_ent *e, size_t n, bool by_seq)
{
	size_t descents = 0, at = 0;

	for (size_t i = 1; i < n; i++) {
		if (by_seq ? e[i - 1].seq > e[i].seq : e[i - 1].id > e[i].id) {
			descents++;
			at = i;
		}
	}
	if (!descents)
		return;
	bool wraps_once = descents == 1 && (by_seq ? e[n - 1].seq <= e[0].seq : e[n - 1].id <= e[0].id);

	if (wraps_once) {
		struct ps_ent *tmp = malloc(at * sizeof(*tmp));

		if (tmp) {
			memcpy(tmp, e, at * sizeof(*tmp));
			memmove(e, e + at, (n - at) * sizeof(*e));
			memcpy(e + n - at, tmp, at * sizeof(*tmp));
			free(tmp);
			return;
		}
	}
	qsort(e, n, sizeof(*e), by_seq ? cmp_seq : cmp_id);
}

/* The segment holds this record's bytes: keep both its count and how far
 * into it records reach. */
static void hold_extent(struct pktstore *ps, const struct ps_desc *d)
{
	uint64_t seg = ps_seg_of(ps, d->data_off);
	uint64_t start = ps->a.sb.data_off + seg * ps->seg.size;

	ps_seg_ref(ps, seg, d->len);
	ps_seg_note_extent(&ps->seg, seg, (uint32_t)(d->data_off + d->len - start));
}

/* Counted in its flow when the flow exists, so that deleting or trimming
 * the flow takes the damaged record too and the flow is not reclaimed
 * from under it. */
static void mark_damaged(struct pktstore *ps, uint64_t slot, const struct ps_desc *d)
{
	if (d->id < ps->damage_floor)
		ps->damage_floor = d->id;
	ps_slot_set(ps, slot, d, ps_flow_get(ps, d->flow), PS_D_DAMAGED);
	hold_extent(ps, d);
}

/* Records of one flow cover disjoint, increasing seq ranges; a record that
 * overlaps its predecessor can only come from a damaged arena. */
static void finish_flow(struct pktstore *ps, struct ps_flow *f)
{
	struct ps_index *ix = &f->idx;
	uint64_t end = 0;
	size_t j = 0;

	sort_entries(ix->e, ix->n, true);
	for (size_t i = 0; i < ix->n; i++) {
		uint64_t slot = ps_slot_of(ps, ix->e[i].id);
		const struct ps_desc *d = &ps->a.descs_pm[slot];

		if (j && d->seq < end) {
			/* Its extent stays held, now by a damaged record. */
			if (d->id < ps->damage_floor)
				ps->damage_floor = d->id;
			ps_slot_set(ps, slot, d, f, PS_D_DAMAGED);
			continue;
		}
		end = d->seq + d->len;
		ix->e[j++] = ix->e[i];
	}
	ix->n = j;
	if (end < f->trim_seq)
		end = f->trim_seq; /* everything was trimmed: go on from there */
	f->next_seq = end;
	f->delivered_seq = end;
}

/* Slots that may hold a descriptor: below the id limit while the log has
 * not wrapped, all of them after. */
static uint64_t slots_to_scan(const struct pktstore *ps)
{
	uint64_t limit = ps->a.sb.id_limit;

	return limit && limit <= ps->a.sb.ndesc ? limit : ps->a.sb.ndesc;
}

/* The id index gets room for every slot scanned at once, so the scan
 * appends without reallocating; its memory is only touched as it fills.
 * Each flow's index grows as its records come, by doubling: a large one
 * has a mapping of its own and grows by remapping, not copying (index.c). */
static int presize(struct pktstore *ps)
{
	return ps_index_reserve(&ps->all, slots_to_scan(ps));
}

/* Trimmed records whose release had not happened yet: released now, in
 * one batch, through the ordinary release, so that their descriptors can
 * never come back (as damaged records, bytes and all) once their flow's
 * entry goes. A read-only open only leaves them out. */
struct trimmed {
	uint64_t *ids;
	size_t n, cap;
};

static int trimmed_add(struct trimmed *t, uint64_t id)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		uint64_t *ids = realloc(t->ids, cap * sizeof(*ids));

		if (!ids)
			return -ENOMEM;
		t->ids = ids;
		t->cap = cap;
	}
	t->ids[t->n++] = id;
	return 0;
}

/* What one scan of the log carries from slot to slot. */
struct scan {
	struct trimmed trimmed;
	uint64_t whole_below;
	struct ps_flow *f; /* the last flow met: runs of one flow are common */
};

static void note_id(struct pktstore *ps, const struct ps_desc *d)
{
	if (d->id >= ps->next_id)
		ps->next_id = d->id + 1;
}

/* Take the descriptor in one slot into the DRAM state. */
static int scan_slot(struct pktstore *ps, struct scan *sc, uint64_t slot)
{
	const struct ps_desc *d = &ps->a.descs_pm[slot];
	enum ps_desc_kind kind = ps_desc_decode(d, slot, &ps->slot_div);

	if (kind == PS_DK_EMPTY)
		return 0;
	if (kind == PS_DK_RELEASED) {
		/* Its id stays spent: ids are never handed out twice, so no
		 * later torn write can pass for this record. */
		note_id(ps, d);
		return 0;
	}
	if (kind == PS_DK_INVALID || !ps_desc_extent_ok(ps, d)) {
		ps->cnt.invalid_descriptors++;
		return 0;
	}
	if (!sc->f || sc->f->id != d->flow)
		sc->f = ps_flow_get(ps, d->flow);
	struct ps_flow *f = sc->f;
	bool trim = f && d->seq + d->len <= f->trim_seq;

	note_id(ps, d);
	if (trim) {
		/* Left out by a read-only open; else taken in, unhashed, to
		 * be released at the end of the scan. The id stays spent
		 * either way. */
		if (ps->a.rdonly)
			return 0;
		int ret = trimmed_add(&sc->trimmed, d->id);

		if (ret)
			return ret;
	}
	if (!f || (!trim && d->id >= sc->whole_below &&
		   ps_crc32c(ps_ptr(ps, d->data_off), d->len) != d->data_crc)) {
		mark_damaged(ps, slot, d);
	} else {
		if (ps_index_push(&f->idx, d->id, d->seq, d->ts_ns) ||
		    ps_index_push(&ps->all, d->id, d->seq, d->ts_ns))
			return -ENOMEM;
		ps_slot_set(ps, slot, d, f, PS_D_LIVE);
		hold_extent(ps, d);
	}
	if (d->ts_ns > ps->last_ts)
		ps->last_ts = d->ts_ns;
	return 0;
}

int ps_recover(struct pktstore *ps)
{
	/* Records below the superblock's verified_id were whole when it was
	 * written (durable before it, or checked at an open): their bytes are
	 * not hashed again unless asked (PKTSTORE_VERIFY). After a clean close
	 * that is every record; after a crash, all but the last stretch. Rot
	 * since then is still caught where bytes are served (get, read) and by
	 * a scrub. A crafted value only skips hashing: extents are checked
	 * regardless, so nothing is read outside the arena. */
	struct scan sc = { .whole_below = ps->verify_all ? 0 : ps->a.sb.verified_id };
	int ret;

	ps->damage_floor = UINT64_MAX;

	/* Map the descriptor log in one call instead of a page fault per few
	 * pages (Linux 5.14+; older kernels fault as usual). */
#ifdef MADV_POPULATE_READ
	madvise(ps->a.descs_pm, slots_to_scan(ps) * sizeof(struct ps_desc), MADV_POPULATE_READ);
#endif
	ret = presize(ps);
	for (uint64_t slot = 0, n = slots_to_scan(ps); slot < n && !ret; slot++)
		ret = scan_slot(ps, &sc, slot);
	if (ret) {
		free(sc.trimmed.ids);
		return ret;
	}
	struct trimmed trimmed = sc.trimmed;

	for (uint32_t s = 0; s < ps->a.sb.max_flows; s++)
		if (ps->flows[s])
			finish_flow(ps, ps->flows[s]);
	/* finish_flow may have dropped entries that `all` still lists; the
	 * liveness check on every read hides them, squeeze drops them. */
	sort_entries(ps->all.e, ps->all.n, false);
	ret = trimmed.n ? ps_release(ps, trimmed.ids, (unsigned)trimmed.n) : 0;
	if (!ret)
		ret = ps_commit(ps);
	free(trimmed.ids);
	if (ret)
		return ret;
	ps->cnt.recovered_records = ps->cnt.records;
	/* Everything below next_id is now checked or known whole, but for the
	 * damaged records; the open's superblock rewrite makes it durable. */
	ps->a.sb.verified_id = ps_verified_now(ps);
	ps->verified_synced = ps->a.sb.verified_id;
	ps_segments_build_free(&ps->seg);
	/* Closed network flows without records are reclaimed now. */
	for (uint32_t s = 0; s < ps->a.sb.max_flows; s++)
		if (ps->flows[s])
			ps_flow_maybe_reclaim(ps, ps->flows[s]);
	return 0;
}
