/* SPDX-License-Identifier: MIT */
/*
 * records.c - pkt-records: make one from bytes already in the arena, commit
 * a batch with one drain, release one.
 *
 * Commit protocol: the bytes and the descriptor (which carries the bytes'
 * CRC32C and its own) are flushed; one drain makes the batch durable. The
 * order in which lines reach the media does not matter: recovery accepts a
 * descriptor only if its own CRC holds and its bytes match their CRC, so a
 * record that was not fully durable is never served.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "internal.h"

uint64_t ps_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Record ids only grow; id % ndesc names the descriptor slot, so the next id
 * is the next one whose slot is free (slots of live old records are skipped). */
/* How far ahead the superblock's id limit is raised, and how far its
 * verified_id may lag: a sixteenth of the log, so each costs one superblock
 * rewrite per that many records. */
static uint64_t sb_step(const struct pktstore *ps)
{
	return ps->ndesc / 16 > 64 ? ps->ndesc / 16 : 64;
}

static uint64_t next_free_id(struct pktstore *ps)
{
	uint64_t id = ps->next_id;

	while (ps->desc_state[id % ps->ndesc] != PS_D_FREE)
		id++;
	return id;
}

int ps_record_make(struct pktstore *ps, struct ps_flow *f, uint64_t data_off, uint32_t len,
		   uint32_t flags, uint64_t *idp)
{
	if (!ps->desc_free)
		return -ENOSPC;

	PS_PROF_START();
	uint64_t id = next_free_id(ps);

	if (id > PS_ID_MAX)
		return -EOVERFLOW; /* 2^62 records: not in this universe */

	/* Keep the superblock's id limit ahead of the ids handed out, a
	 * sixteenth of the log at a time, until the log has wrapped. */
	uint64_t limit = ps->a.sb.id_limit;

	if (id >= limit && limit <= ps->ndesc) {
		ps->a.sb.id_limit = id + sb_step(ps);
		int ret = ps_arena_sync(ps);

		if (ret) {
			ps->a.sb.id_limit = limit;
			return ret;
		}
	}
	uint64_t now = ps_now_ns();

	/* Time only moves forward inside a store, so time ranges can be
	 * binary-searched in id and seq order. */
	if (now < ps->last_ts)
		now = ps->last_ts;

	/* Checksum while the bytes are still in cache from the kernel's copy. */
	uint32_t data_crc = ps_crc32c(ps_ptr(ps, data_off), len);

	PS_PROF_LAP(ps, crc);
	if (ps_index_push(&f->idx, id, f->next_seq, now))
		return -ENOMEM;
	if (ps_index_push(&ps->all, id, f->next_seq, now)) {
		f->idx.n--;
		return -ENOMEM;
	}
	PS_PROF_LAP(ps, index);

	struct ps_desc d = {
		.id = id,
		.flow = f->id,
		.seq = f->next_seq,
		.ts_ns = now,
		.data_off = data_off,
		.len = len,
		.data_crc = data_crc,
		.flags = flags,
	};
	ps_desc_encode(&d);

	struct ps_desc *slot = ps_desc_slot(ps, id);

	memcpy(slot, &d, sizeof(d));
	ps_flush_set_add(&ps->pp, &ps->fs, data_off, len);
	ps_flush_set_add(&ps->pp, &ps->fs, (uint64_t)((char *)slot - ps->a.base), sizeof(d));
	PS_PROF_LAP(ps, desc);

	ps->last_ts = now;
	ps->desc_state[id % ps->ndesc] = PS_D_LIVE;
	ps->desc_free--;
	ps->next_id = id + 1;
	f->next_seq += len;
	f->live++;
	ps->st.records++;
	ps->st.record_bytes += len;
	ps->st.records_persisted++;
	ps->st.bytes_persisted += len;
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

int ps_commit(struct pktstore *ps)
{
	if (!ps->uncommitted)
		return 0;
	ps->uncommitted = false;
	ps->st.batches++;

	PS_PROF_START();
	int ret = ps_flush_set_flush(&ps->pp, &ps->fs);

	PS_PROF_LAP(ps, flush);
	int r = ps_drain(&ps->pp);

	PS_PROF_LAP(ps, drain);
#ifdef PKTSTORE_PROFILE
	ps->prof.commits++;
#endif
	if (ret || r)
		return ret ? ret : r;
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

/* The DRAM side of a release whose mark is durable. Only the last word
 * changed, so the rest of the descriptor still says what it held. */
static void forget(struct pktstore *ps, uint64_t slot)
{
	const struct ps_desc *d = &ps->a.descs_pm[slot];
	bool live = ps->desc_state[slot] == PS_D_LIVE;
	struct ps_flow *f = ps_flow_get(ps, d->flow);

	if (live) {
		f->live--;
		f->idx.dead++;
		ps->all.dead++;
		ps->st.records--;
		ps->st.record_bytes -= d->len;
	} else {
		ps->st.damaged_records--;
		if (f)
			f->damaged--;
	}
	ps->desc_state[slot] = PS_D_FREE;
	ps->desc_free++;
	ps->space_pending = true;
	if (ps->be && ps->be->released)
		ps->be->released(ps, d->data_off, d->len);
	ps_seg_unref(ps, ps_seg_of(ps, d->data_off), d->len);
	if (f) {
		if (live)
			ps_index_squeeze(ps, &f->idx);
		ps_flow_maybe_reclaim(ps, f);
	}
}

int pktstore_release_batch(struct pktstore *ps, const uint64_t *ids, unsigned n)
{
	if (!ps || (!ids && n) || n > INT32_MAX)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	if (ps->broken)
		return PKTSTORE_EBROKEN;
	for (unsigned i = 0; i < n; i++) {
		uint64_t slot = ids[i] % ps->ndesc;

		if (!ids[i] || ps->desc_state[slot] == PS_D_FREE ||
		    ps->a.descs_pm[slot].id != ids[i])
			return ids[i] ? -ENOENT : -EINVAL; /* nothing released */
	}

	/* Descriptors are marked released durably before their bytes can be
	 * reused, so recovery never pairs one with someone else's bytes. Only
	 * the last word changes (media.h): one aligned store, which power loss
	 * leaves either done or not. One drain covers the batch. */
	struct ps_flush_set fs;

	fs.n = 0; /* ranges past n are never read: skip clearing 1 KiB per call */
	fs.err = 0;

	for (unsigned i = 0; i < n; i++) {
		struct ps_desc *d = ps_desc_slot(ps, ids[i]);
		uint64_t *last = (uint64_t *)(void *)&d->mark;

		__atomic_store_n(last, ps_desc_release_word(d), __ATOMIC_RELEASE);
		ps_flush_set_add(&ps->pp, &fs, (uint64_t)((char *)last - ps->a.base),
				 sizeof(*last));
	}
	int ret = ps_flush_set_flush(&ps->pp, &fs);

	if (!ret)
		ret = ps_drain(&ps->pp);
	if (ret) {
		/* Cleared in memory, maybe not on the media: only a reopen
		 * can tell again. */
		ps->broken = ret;
		return ret;
	}
	for (unsigned i = 0; i < n; i++)
		if (ps->desc_state[ids[i] % ps->ndesc] != PS_D_FREE) /* repeated ids count once */
			forget(ps, ids[i] % ps->ndesc);
	ps_index_squeeze(ps, &ps->all);
	if (ps->space_pending && ps->be && ps->be->space_freed) {
		ps->space_pending = false;
		ps->be->space_freed(ps);
	}
	return 0;
}

int pktstore_release(struct pktstore *ps, uint64_t id)
{
	return pktstore_release_batch(ps, &id, 1);
}
