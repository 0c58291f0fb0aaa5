/* SPDX-License-Identifier: MIT */
/*
 * desclog.c - the descriptor log: make a pkt-record from bytes already in
 * the arena, commit a batch with one drain, release records; and the one
 * place a descriptor slot changes state.
 *
 * Commit protocol: the bytes and the descriptor (which carries the bytes'
 * CRC32C and its own) are flushed; one drain makes the batch durable. The
 * order in which lines reach the media does not matter: recovery accepts a
 * descriptor only if its own CRC holds and its bytes match their CRC, so a
 * record that was not fully durable is never served.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/*
 * Every change of a slot's state passes here, so that what follows from
 * the states (free slots, live records and their bytes, damaged records,
 * releases waiting for their commit, and each flow's share of them) is kept
 * in one place and cannot drift. f is d's flow, or NULL when it has none
 * (a damaged orphan).
 */
static void slot_count(struct pktstore *ps, enum ps_desc_state st, const struct ps_desc *d,
		       struct ps_flow *f, int64_t k)
{
	struct ps_counters *c = &ps->cnt;

	switch (st) {
	case PS_D_FREE:
		ps->desc_free += (uint64_t)k;
		break;
	case PS_D_LIVE:
		c->records += (uint64_t)k;
		c->record_bytes += (uint64_t)(k * d->len);
		f->live += (uint64_t)k;
		break;
	case PS_D_DAMAGED:
		c->damaged_records += (uint64_t)k;
		if (f)
			f->damaged += (uint64_t)k;
		break;
	case PS_D_RELEASED:
		if (f)
			f->releasing += (uint64_t)k;
		break;
	}
}

void ps_slot_set(struct pktstore *ps, uint64_t slot, const struct ps_desc *d, struct ps_flow *f,
		 enum ps_desc_state to)
{
	enum ps_desc_state from = ps->desc_state[slot];

	if (from == to)
		return;
	slot_count(ps, from, d, f, -1);
	slot_count(ps, to, d, f, 1);
	ps->desc_state[slot] = (uint8_t)to;
}

/* How far ahead the superblock's id limit is raised, and how far its
 * verified_id may lag: a sixteenth of the log, so each costs one superblock
 * rewrite per that many records. */
static uint64_t sb_step(const struct pktstore *ps)
{
	return ps->a.sb.ndesc / 16 > 64 ? ps->a.sb.ndesc / 16 : 64;
}

/*
 * The id of the next record. Ids only grow; id % ndesc names the descriptor
 * slot, so the next id is the next one whose slot is free (slots of live
 * old records are skipped). The superblock's id limit is kept ahead of the
 * ids handed out, a step at a time, until the log has wrapped: recovery
 * scans only the slots below it.
 */
static int next_id(struct pktstore *ps, uint64_t *out)
{
	uint64_t id = ps->next_id;

	while (ps->desc_state[ps_slot_of(ps, id)] != PS_D_FREE)
		id++;
	if (id > PS_ID_MAX)
		return -EOVERFLOW; /* 2^62 records: not in this universe */

	uint64_t limit = ps->a.sb.id_limit;

	if (id >= limit && limit <= ps->a.sb.ndesc) {
		ps->a.sb.id_limit = id + sb_step(ps);
		int ret = ps_arena_sync(ps);

		if (ret) {
			ps->a.sb.id_limit = limit;
			return ret;
		}
	}
	*out = id;
	return 0;
}

/* Write the descriptor into its slot and queue it, with the bytes it
 * describes, for the commit's flush. */
static void desc_write(struct pktstore *ps, const struct ps_desc *d)
{
	struct ps_desc *slot = ps_desc_slot(ps, d->id);

	memcpy(slot, d, sizeof(*d));
	ps_flush_set_add(&ps->pp, &ps->fs, d->data_off, d->len);
	ps_flush_set_add(&ps->pp, &ps->fs, (uint64_t)((char *)slot - ps->a.base), sizeof(*d));
}

int ps_record_make(struct pktstore *ps, struct ps_flow *f, uint64_t data_off, uint32_t len,
		   uint32_t flags, uint64_t *idp)
{
	if (!ps->desc_free)
		return -ENOSPC;

	PS_PROF_START();
	uint64_t id;
	int ret = next_id(ps, &id);

	if (ret)
		return ret;
	/* Time only moves forward inside a store, so time ranges can be
	 * binary-searched in id and seq order. */
	uint64_t now = ps_now_ns();

	if (now < ps->last_ts)
		now = ps->last_ts;

	/* Checksum while the bytes are still in cache from the kernel's copy. */
	struct ps_desc d = {
		.id = id,
		.flow = f->id,
		.seq = f->next_seq,
		.ts_ns = now,
		.data_off = data_off,
		.len = len,
		.data_crc = ps_crc32c(ps_ptr(ps, data_off), len),
		.flags = flags,
	};

	PS_PROF_LAP(ps, crc);
	if (ps_index_push(&f->idx, id, d.seq, now))
		return -ENOMEM;
	if (ps_index_push(&ps->all, id, d.seq, now)) {
		f->idx.n--;
		return -ENOMEM;
	}
	PS_PROF_LAP(ps, index);
	ps_desc_encode(&d);
	desc_write(ps, &d);
	PS_PROF_LAP(ps, desc);

	ps_slot_set(ps, ps_slot_of(ps, id), &d, f, PS_D_LIVE);
	ps->last_ts = now;
	ps->next_id = id + 1;
	f->next_seq += len;
	ps->cnt.records_persisted++;
	ps->cnt.bytes_persisted += len;
	ps->uncommitted = true;
#ifdef PKTSTORE_PROFILE
	ps->prof.records++;
#endif
	if (idp)
		*idp = id;
	return 0;
}

/*
 * After a commit's drain every record made so far is durable, so the
 * superblock may say "whole below next_id" (never past a record known to
 * be damaged). The new value rides along with any superblock rewrite; it is
 * written on purpose only once a sixteenth of the log has gone by, so that
 * a dirty open hashes at most that tail while the commits pay nothing.
 */
static int note_durable(struct pktstore *ps)
{
	uint64_t v = ps_verified_now(ps);

	ps->a.sb.verified_id = v;
	if (v - ps->verified_synced < sb_step(ps))
		return 0;
	ps->verified_synced = v;
	return ps_arena_sync(ps);
}

static void forget_released(struct pktstore *ps);

/*
 * One flush pass and one drain make durable every record made and every
 * release marked since the last commit; then the released slots and their
 * space are free.
 */
int ps_commit(struct pktstore *ps)
{
	bool records = ps->uncommitted;

	if (!records && !ps->rel_n)
		return 0;
	ps->uncommitted = false;

	PS_PROF_START();
	int ret = ps_flush_set_flush(&ps->pp, &ps->fs);

	PS_PROF_LAP(ps, flush);
	int r = ps_drain(&ps->pp);

	PS_PROF_LAP(ps, drain);
	if (ret || r)
		return ret ? ret : r;
	forget_released(ps);
	if (!records)
		return 0;
	ps->cnt.batches++;
#ifdef PKTSTORE_PROFILE
	ps->prof.commits++;
#endif
	return note_durable(ps);
}

/* The record's bytes lie inside one data segment. Checked at open and
 * again before serving or moving bytes: a moved descriptor's checksum does
 * not cover data_off (media.h), so rot there would go unseen otherwise. */
bool ps_desc_extent_ok(const struct pktstore *ps, const struct ps_desc *d)
{
	const struct ps_superblock *sb = &ps->a.sb;
	uint64_t data_end = sb->data_off + sb->nsegs * sb->seg_size;

	if (!d->len || d->data_off < sb->data_off || d->data_off >= data_end ||
	    d->len > data_end - d->data_off)
		return false;
	return ps_seg_of(ps, d->data_off) == ps_seg_of(ps, d->data_off + d->len - 1);
}

void ps_rec_fill(const struct pktstore *ps, const struct ps_desc *d, struct pktstore_rec *r)
{
	r->id = d->id;
	r->flow = d->flow;
	r->seq = d->seq;
	r->ts_ns = d->ts_ns;
	r->data = ps_ptr(ps, d->data_off);
	r->len = d->len;
	r->crc32c = d->data_crc;
	r->flags = d->flags;
	r->status = 0;

	const struct ps_flow *f = ps_flow_get((struct pktstore *)ps, d->flow);

	r->user = f ? f->user : NULL;
	memset(r->reserved, 0, sizeof(r->reserved));
}

/* The DRAM side of a release whose mark is durable. Only the last word
 * changed, so the rest of the descriptor still says what it held. */
static void forget(struct pktstore *ps, uint64_t slot)
{
	const struct ps_desc *d = &ps->a.descs_pm[slot];
	struct ps_flow *f = ps_flow_get(ps, d->flow);

	ps_slot_set(ps, slot, d, f, PS_D_FREE);
	ps->space_pending = true;
	if (ps->be && ps->be->released)
		ps->be->released(ps, d->data_off, d->len);
	ps_seg_unref(ps, ps_seg_of(ps, d->data_off), d->len);
	if (f) {
		ps_index_squeeze(ps, &f->idx);
		ps_flow_maybe_reclaim(ps, f);
	}
}

static void forget_released(struct pktstore *ps)
{
	if (!ps->rel_n)
		return;
	for (size_t i = 0; i < ps->rel_n; i++)
		forget(ps, ps->rel[i]);
	ps->rel_n = 0;
	ps_index_squeeze(ps, &ps->all);
}

/*
 * A released descriptor gets its release mark at once, and the mark joins
 * the next commit's flush set: the commit's one drain makes it durable with
 * the records made meanwhile, and only then are the slot and the bytes
 * free again, so recovery never pairs a descriptor with someone else's
 * bytes. Only the last word changes (media.h): one aligned store, which
 * power loss leaves either done or not. Until that commit a crash may bring
 * the record back; readers of this session no longer see it.
 */
int ps_release(struct pktstore *ps, const uint64_t *ids, unsigned n)
{
	if (ps->rel_n + n > ps->rel_cap) {
		size_t cap = ps->rel_cap ? ps->rel_cap : 64;

		while (cap < ps->rel_n + n)
			cap *= 2;
		uint64_t *rel = realloc(ps->rel, cap * sizeof(*rel));

		if (!rel)
			return -ENOMEM;
		ps->rel = rel;
		ps->rel_cap = cap;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t slot = ps_slot_of(ps, ids[i]);
		enum ps_desc_state st = ps->desc_state[slot];

		if (st == PS_D_FREE || st == PS_D_RELEASED)
			continue; /* a repeated id counts once */
		struct ps_desc *d = &ps->a.descs_pm[slot];
		uint64_t *last = (uint64_t *)(void *)&d->mark;
		struct ps_flow *f = ps_flow_get(ps, d->flow);

		__atomic_store_n(last, ps_desc_release_word(d), __ATOMIC_RELEASE);
		ps_flush_set_add(&ps->pp, &ps->fs, (uint64_t)((char *)last - ps->a.base),
				 sizeof(*last));
		if (st == PS_D_LIVE) {
			f->idx.dead++;
			ps->all.dead++;
		}
		ps_slot_set(ps, slot, d, f, PS_D_RELEASED);
		ps->rel[ps->rel_n++] = slot;
	}
	/* A long run of releases with nothing received in between commits
	 * on its own, so the space comes back and the list stays short. */
	if (ps->rel_n >= PS_RELEASE_BATCH_MAX)
		return ps_commit(ps);
	return 0;
}
