/* SPDX-License-Identifier: MIT */
/*
 * records.c - the record calls of the API: append a record to a local
 * flow, get one by id, release records.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Room for len bytes and a descriptor. When there is none, what the
 * releases since the last commit free, and the cleaner then, may make
 * some: once. */
static int take_space(struct pktstore *ps, uint32_t len, uint64_t *off)
{
	uint32_t avail;

	for (int tries = 0;; tries++) {
		int ret = ps_make_room(ps);

		if (!ret)
			ret = ps_bump_reserve(ps, PS_BUMP_HOT, len, off, &avail);
		if (!ret && ps->desc_free)
			return 0;
		if (ret && ret != -ENOSPC)
			return ret;
		if (tries || !ps->rel_n)
			return -ENOSPC;
		ret = ps_commit(ps);
		if (ret) {
			ps->broken = ret;
			return ret;
		}
	}
}

int pktstore_append(struct pktstore *ps, uint64_t flow, const void *data, uint32_t len,
		    struct pktstore_rec *rec)
{
	if (!ps || (!data && len) || !len)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	if (ps->broken)
		return PKTSTORE_EBROKEN;

	struct ps_flow *f = ps_flow_get(ps, flow);

	if (!f)
		return -ENOENT;
	if (f->kind != PS_FLOW_LOCAL)
		return -EINVAL;

	uint64_t off, id;
	int ret = take_space(ps, len, &off);

	if (ret)
		return ret;
	memcpy(ps_ptr(ps, off), data, len);
	ps_bump_commit(ps, PS_BUMP_HOT, len);
	ps_seg_ref(ps, ps_seg_of(ps, off), len);
	ret = ps_record_make(ps, f, off, len, PKTSTORE_REC_APPENDED, &id);
	if (ret) {
		ps_seg_unref(ps, ps_seg_of(ps, off), len);
		return ret;
	}
	/* An appended record is never "delivered": the caller has it. */
	f->delivered_seq = f->next_seq;
	ret = ps_settle(ps, false);
	if (ret)
		return ret;
	if (rec)
		ps_rec_fill(ps, ps_desc_slot(ps, id), rec);
	return 0;
}

int pktstore_get(struct pktstore *ps, uint64_t id, struct pktstore_rec *rec, unsigned flags)
{
	if (!ps || !rec || !id || flags & ~PKTSTORE_NO_VERIFY)
		return -EINVAL;
	if (ps->broken)
		return PKTSTORE_EBROKEN; /* the last batch may not be durable */

	const struct ps_desc *d = ps_desc_slot(ps, id);
	uint8_t state = ps->desc_state[ps_slot_of(ps, id)];

	if (state == PS_D_FREE || state == PS_D_RELEASED || d->id != id)
		return -ENOENT;
	if (state == PS_D_DAMAGED)
		return -EBADMSG;
	/* The media can rot after open: re-check what is about to be served. */
	if (ps_desc_decode(d, ps_slot_of(ps, id), &ps->slot_div) != PS_DK_LIVE ||
	    !ps_desc_extent_ok(ps, d))
		return -EBADMSG;
	if (!(flags & PKTSTORE_NO_VERIFY) &&
	    ps_crc32c(ps_ptr(ps, d->data_off), d->len) != d->data_crc) {
		ps_note_damage(ps, id);
		return -EBADMSG;
	}
	ps_rec_fill(ps, d, rec);
	return 0;
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
		uint64_t slot = ps_slot_of(ps, ids[i]);
		uint8_t state = ps->desc_state[slot];

		if (!ids[i] || state == PS_D_FREE || state == PS_D_RELEASED ||
		    ps->a.descs_pm[slot].id != ids[i])
			return ids[i] ? -ENOENT : -EINVAL; /* nothing released */
	}

	int ret = ps_release(ps, ids, n);

	if (ret && ret != -ENOMEM)
		ps->broken = ret; /* the commit of a long run of releases failed */
	return ret;
}

int pktstore_release(struct pktstore *ps, uint64_t id)
{
	return pktstore_release_batch(ps, &id, 1);
}

int pktstore_sync(struct pktstore *ps)
{
	if (!ps)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	return ps_settle(ps, false);
}
