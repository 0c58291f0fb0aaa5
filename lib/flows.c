/* SPDX-License-Identifier: MIT */
/*
 * flows.c - the flow calls of the API: create, describe, list, label,
 * trim and delete flows.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

int pktstore_flow_create(struct pktstore *ps, uint64_t tag, uint64_t *flow)
{
	struct ps_flow *f;

	if (!ps || !flow)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	if (ps->broken)
		return PKTSTORE_EBROKEN;

	int ret = ps_flow_new(ps, PS_FLOW_LOCAL, -1, tag, &f);

	if (!ret)
		*flow = f->id;
	return ret;
}

int pktstore_flow_info(struct pktstore *ps, uint64_t flow, struct pktstore_flow_info *info)
{
	if (!ps || !info)
		return -EINVAL;

	struct ps_flow *f = ps_flow_get(ps, flow);

	if (!f)
		return -ENOENT;
	ps_flow_fill_info(ps, f, info);
	return 0;
}

static int cmp_info(const void *a, const void *b)
{
	const struct pktstore_flow_info *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

int pktstore_flows(struct pktstore *ps, uint64_t after, struct pktstore_flow_info *out,
		   unsigned max)
{
	if (!ps || (!out && max) || max > INT32_MAX)
		return -EINVAL;

	/* Keep the `max` smallest ids above `after`: fill, then replace the
	 * largest kept one whenever a smaller id shows up. */
	unsigned n = 0, worst = 0;

	for (uint32_t i = 0; i < ps->a.sb.max_flows && max; i++) {
		struct ps_flow *f = ps->flows[i];

		if (!f || f->id <= after)
			continue;
		if (n < max) {
			ps_flow_fill_info(ps, f, &out[n]);
			if (out[n].id > out[worst].id)
				worst = n;
			n++;
			continue;
		}
		if (f->id >= out[worst].id)
			continue;
		ps_flow_fill_info(ps, f, &out[worst]);
		for (unsigned j = 0; j < n; j++)
			if (out[j].id > out[worst].id)
				worst = j;
	}
	if (n)
		qsort(out, n, sizeof(*out), cmp_info);
	return (int)n;
}

int pktstore_flow_set_user(struct pktstore *ps, uint64_t flow, void *user)
{
	if (!ps)
		return -EINVAL;

	struct ps_flow *f = ps_flow_get(ps, flow);

	if (!f)
		return -ENOENT;
	f->user = user;
	return 0;
}

/* Release f's records, live and damaged, that end at or below `seq` (their
 * marks become durable with the next commit). The ids are copied out first:
 * a commit squeezes the index. Damaged records are in no index (their bytes are
 * not the stream's); they are rare, so a flow that has any pays one scan
 * of the descriptor states. */
static int release_below(struct pktstore *ps, struct ps_flow *f, uint64_t seq)
{
	size_t n = 0;
	uint64_t *ids = malloc((f->idx.n + f->damaged + 1) * sizeof(*ids));
	int ret = 0;

	if (!ids)
		return -ENOMEM;
	for (size_t i = 0; i < f->idx.n; i++) {
		uint64_t id = f->idx.e[i].id;

		if (!ps_record_live(ps, id))
			continue;
		if (seq != UINT64_MAX && ps_desc_slot(ps, id)->seq + ps_desc_slot(ps, id)->len > seq)
			break; /* seq order: the rest end later */
		ids[n++] = id;
	}
	for (uint64_t slot = 0, left = f->damaged; left && slot < ps->a.sb.ndesc; slot++) {
		const struct ps_desc *d = &ps->a.descs_pm[slot];

		if (ps->desc_state[slot] != PS_D_DAMAGED || d->flow != f->id)
			continue;
		left--;
		if (seq == UINT64_MAX || d->seq + d->len <= seq)
			ids[n++] = d->id;
	}
	for (size_t i = 0; i < n && !ret; i += 256)
		ret = ps_release(ps, ids + i, n - i < 256 ? (unsigned)(n - i) : 256);
	free(ids);
	if (ret && ret != -ENOMEM)
		ps->broken = ret; /* a commit failed */
	return ret;
}

int pktstore_flow_delete(struct pktstore *ps, uint64_t flow)
{
	if (!ps || !flow)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	if (ps->broken)
		return PKTSTORE_EBROKEN;

	struct ps_flow *f = ps_flow_get(ps, flow);

	if (!f)
		return -ENOENT;
	if (f->run != PS_RUN_NONE || f->stalled)
		return -EBUSY; /* its socket, or bytes waiting for a descriptor */

	/* Records first: a crash part way leaves a flow with fewer records,
	 * never records whose flow is gone (recovery would call them
	 * damaged). */
	int ret = release_below(ps, f, UINT64_MAX);

	if (!ret)
		ret = ps_commit(ps);
	if (ret) {
		if (ret != -ENOMEM)
			ps->broken = ret;
		return ret;
	}
	/* A closed network flow is reclaimed by the release of its last
	 * record. */
	if (ps_flow_get(ps, flow) != f)
		return 0;
	ret = ps_flow_word_persist(ps, &ps->a.flows_pm[f->slot].id, 0);
	if (ret)
		return ret;
	ps_flow_drop(ps, f);
	return 0;
}

/*
 * The trim point is one durable 8-byte word, written before any record
 * goes: after a crash in between, recovery drops the records below it
 * itself. The records wholly below are then released, which frees their
 * space; nothing here needs free space, so it works on a full arena.
 */
int pktstore_trim(struct pktstore *ps, uint64_t flow, uint64_t seq)
{
	if (!ps)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	if (ps->broken)
		return PKTSTORE_EBROKEN;

	struct ps_flow *f = ps_flow_get(ps, flow);

	if (!f)
		return -ENOENT;
	if (seq > f->next_seq)
		return -ERANGE; /* beyond what the flow holds */
	if (seq <= f->trim_seq)
		return 0;
	if (seq > PS_TRIM_SEQ_MAX)
		return -EOVERFLOW; /* 64 PiB into one stream */

	int ret = ps_flow_word_persist(ps, &ps->a.flows_pm[f->slot].trim_seq, ps_trim_encode(f->id, seq));

	if (ret) {
		ps->broken = ret;
		return ret;
	}
	f->trim_seq = seq;
	if (f->delivered_seq < seq)
		f->delivered_seq = seq;
	return release_below(ps, f, seq);
}
