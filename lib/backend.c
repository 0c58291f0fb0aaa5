/* SPDX-License-Identifier: MIT */
/*
 * backend.c - the core's side of backend.h: the services a backend calls,
 * over the store's own state, and the flows starved of space.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* ------------------------------------------------------ starved flows */

int ps_starved_init(struct pktstore *ps)
{
	ps->starved = calloc(ps->a.sb.max_flows ? ps->a.sb.max_flows : 1, sizeof(*ps->starved));
	ps->starved_at = calloc(ps->a.sb.max_flows ? ps->a.sb.max_flows : 1, sizeof(*ps->starved_at));
	return ps->starved && ps->starved_at ? 0 : -ENOMEM;
}

void ps_starved_fini(struct pktstore *ps)
{
	free(ps->starved);
	free(ps->starved_at);
	ps->starved = NULL;
	ps->starved_at = NULL;
}

void ps_flow_starve(struct pktstore *ps, struct ps_flow *f, bool starved)
{
	if (f->starved == starved)
		return;
	f->starved = starved;
	if (starved) {
		ps->starved_at[f->slot] = (uint32_t)ps->nstarved;
		ps->starved[ps->nstarved++] = f;
		ps->cnt.enospc_events++;
		return;
	}
	/* The last one takes its place. */
	uint32_t at = ps->starved_at[f->slot];
	struct ps_flow *last = ps->starved[--ps->nstarved];

	ps->starved[at] = last;
	ps->starved_at[last->slot] = at;
}

void ps_resume_starved(struct pktstore *ps)
{
	if (!ps->desc_free)
		return; /* nothing received could become a record */
	/* From the end: unstarving moves the last flow into the gap, which
	 * has been offered already. */
	for (size_t i = ps->nstarved; i-- > 0;) {
		if (i >= ps->nstarved)
			continue; /* a resume ended more than its own flow */
		struct ps_flow *f = ps->starved[i];

		if (f->run != PS_RUN_ACTIVE)
			continue;
		int ret = ps->be->resume(ps, f);

		if (ret == -ENOBUFS)
			return;
		if (!ret)
			ps_flow_starve(ps, f, false);
	}
}

void ps_be_space_pending(struct pktstore *ps)
{
	ps->space_pending = true;
}

/* ---------------------------------------------------------- services */

void *ps_be_state(const struct pktstore *ps)
{
	return ps->be_state;
}

void ps_be_set_state(struct pktstore *ps, void *state)
{
	ps->be_state = state;
}

void ps_be_fallback(struct pktstore *ps, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ps->fallback, sizeof(ps->fallback), fmt, ap);
	va_end(ap);
}

const struct pktstore_opts *ps_be_opts(const struct pktstore *ps)
{
	return ps->opening;
}

void ps_be_arena(const struct pktstore *ps, struct ps_be_arena *out)
{
	*out = (struct ps_be_arena){
		.base = ps->a.base,
		.data_off = ps->a.sb.data_off,
		.nsegs = ps->seg.n,
		.seg_size = ps->seg.size,
		.max_flows = ps->a.sb.max_flows,
		.fd = ps->a.fd,
	};
}

bool ps_be_can_record(const struct pktstore *ps)
{
	return ps->desc_free > 0;
}

int64_t ps_be_seg_take(struct pktstore *ps)
{
	return ps_seg_take(ps, PS_SEG_KERNEL);
}

int64_t ps_be_seg_take_tail(struct pktstore *ps, uint32_t min, uint32_t *start)
{
	return ps_seg_take_tail(ps, min, PS_SEG_KERNEL, start);
}

int64_t ps_be_seg_take_run(struct pktstore *ps, uint64_t max, uint64_t *n)
{
	return ps_seg_take_run(ps, max, n);
}

void ps_be_seg_give_run(struct pktstore *ps, uint64_t first, uint64_t n)
{
	ps_seg_give_run(ps, first, n);
}

void ps_be_seg_seal(struct pktstore *ps, uint64_t seg)
{
	ps_seg_seal(ps, seg);
}

uint64_t ps_be_seg_of(const struct pktstore *ps, uint64_t data_off)
{
	return ps_seg_of(ps, data_off);
}

void ps_be_hold(struct pktstore *ps, uint64_t off, uint32_t len, bool hold)
{
	if (hold)
		ps_seg_ref(ps, ps_seg_of(ps, off), len);
	else
		ps_seg_unref(ps, ps_seg_of(ps, off), len);
}

int ps_be_bump_reserve(struct pktstore *ps, uint32_t min, uint64_t *off, uint32_t *avail)
{
	return ps_bump_reserve(ps, PS_BUMP_HOT, min, off, avail);
}

void ps_be_bump_commit(struct pktstore *ps, uint32_t used)
{
	ps_bump_commit(ps, PS_BUMP_HOT, used);
}

struct ps_flow *ps_be_flow(struct pktstore *ps, uint64_t id)
{
	return ps_flow_get(ps, id);
}

uint64_t ps_flow_id(const struct ps_flow *f)
{
	return f->id;
}

int ps_flow_fd(const struct ps_flow *f)
{
	return f->fd;
}

uint32_t ps_flow_slot(const struct ps_flow *f)
{
	return f->slot;
}

bool ps_flow_receiving(const struct ps_flow *f)
{
	return f->run == PS_RUN_ACTIVE;
}

bool ps_flow_starved(const struct ps_flow *f)
{
	return f->starved;
}

bool ps_flow_hup_noticed(const struct ps_flow *f)
{
	return f->hup_noticed;
}
