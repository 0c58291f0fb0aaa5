/* SPDX-License-Identifier: MIT */
/*
 * store.c - the public glue: open (map, recover, pick a receive path),
 * close, stats, flow listing, error strings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the arena format is little-endian");

/* PKTSTORE_RECV_PATH: "auto" or a backend's name. */
static int parse_path(const char *s, enum pktstore_recv_path *out)
{
	const struct ps_backend_ops *be = ps_backend_by_name(s);

	if (!strcmp(s, "auto"))
		*out = PKTSTORE_PATH_AUTO;
	else if (be)
		*out = be->path;
	else
		return -EINVAL;
	return 0;
}

/*
 * AUTO takes the best path that works and records why better ones did not;
 * a path asked for by name must work or open fails.
 */
static int pick_backend(struct pktstore *ps, enum pktstore_recv_path want)
{
	char why[sizeof(ps->fallback)] = "";
	int ret = ps_starved_init(ps);

	if (ret)
		return ret;
	ret = -EOPNOTSUPP;
	for (unsigned i = 0; i < ps_nbackends; i++) {
		const struct ps_backend_ops *be = ps_backends[i];

		if (want != PKTSTORE_PATH_AUTO && want != be->path)
			continue;
		if (be->probe && be->probe(ps))
			continue; /* not for these options (a demanded one was checked) */
		ps->fallback[0] = '\0';
		ret = be->init(ps);
		if (!ret) {
			ps->be = be;
			/* A better path's failure, or else the chosen path's
			 * own note (zcrx copying from a private area). */
			if (why[0])
				memcpy(ps->fallback, why, sizeof(why));
			return 0;
		}
		if (!why[0])
			snprintf(why, sizeof(why), "%s: %.110s", be->name,
				 ps->fallback[0] ? ps->fallback : strerror(-ret));
		be->fini(ps);
	}
	return ret;
}

static void store_free(struct pktstore *ps)
{
	if (ps->be)
		ps->be->fini(ps);
	ps_flows_free(ps);
	ps_segments_fini(&ps->seg);
	free(ps->desc_state);
	ps_index_free(&ps->all);
	free(ps->stall);
	free(ps->rel);
	free(ps->watch);
	ps_starved_fini(ps);
	ps_arena_close(&ps->a);
	free(ps);
}

unsigned pktstore_version(void)
{
	return PKTSTORE_VERSION;
}

/*
 * Bring the caller's options, of the size its header had, to this library's
 * layout: missing fields are zero (their defaults), and extra bytes from a
 * newer header must be zero, since this library could not honour them
 * (openat2's rule).
 */
static int opts_copy(struct pktstore_opts *dst, const struct pktstore_opts *src, size_t size)
{
	memset(dst, 0, sizeof(*dst));
	if (!src)
		return 0;
	if (size < offsetof(struct pktstore_opts, size))
		return -EINVAL;
	if (size > sizeof(*dst)) {
		const unsigned char *extra = (const unsigned char *)src + sizeof(*dst);

		for (size_t i = 0; i < size - sizeof(*dst); i++)
			if (extra[i])
				return -E2BIG;
		size = sizeof(*dst);
	}
	memcpy(dst, src, size);
	return 0;
}

/* The options' flags and receive path, PKTSTORE_RECV_PATH applied. */
static int check_opts(const struct pktstore_opts *opts, enum pktstore_recv_path *want)
{
	unsigned flags = opts ? opts->flags : 0;
	const char *env = getenv("PKTSTORE_RECV_PATH");

	*want = opts ? opts->recv_path : PKTSTORE_PATH_AUTO;
	if (flags & ~(PKTSTORE_CREATE | PKTSTORE_EXCL | PKTSTORE_RDONLY | PKTSTORE_MOVABLE |
		      PKTSTORE_VERIFY) ||
	    (flags & PKTSTORE_RDONLY && flags & PKTSTORE_CREATE))
		return -EINVAL;
	if (*want == PKTSTORE_PATH_AUTO && env && *env && parse_path(env, want))
		return -EINVAL;
	if (*want != PKTSTORE_PATH_AUTO && !ps_backend_by_path(*want))
		return -EINVAL;
	return 0;
}

/* The DRAM state of the mapped arena, rebuilt from the log. */
static int load(struct pktstore *ps, unsigned flags)
{
	const struct ps_superblock *sb = &ps->a.sb;
	uint64_t t0 = ps_mono_ns();
	int ret;

	ps->desc_free = sb->ndesc;
	ps_div_init(&ps->slot_div, sb->ndesc);
	ps_div_init(&ps->flow_div, sb->max_flows);
	ps->next_id = 1;
	ps->verify_all = flags & PKTSTORE_VERIFY;
	ps->desc_state = calloc(sb->ndesc, 1);
	if (!ps->desc_state)
		return -ENOMEM;
	ret = ps_segments_init(&ps->seg, sb->nsegs, sb->seg_size);
	if (!ret)
		ret = ps_flows_load(ps);
	if (!ret)
		ret = ps_recover(ps);
	ps->cnt.recovery_ns = ps_mono_ns() - t0;
	return ret;
}

int pktstore_open_ex(const char *path, const struct pktstore_opts *user_opts, size_t opts_size,
		     struct pktstore **out)
{
	struct pktstore_opts o;
	enum pktstore_recv_path want;
	int ret = opts_copy(&o, user_opts, opts_size);
	const struct pktstore_opts *opts = user_opts ? &o : NULL;

	if (!ret)
		ret = path && out ? check_opts(opts, &want) : -EINVAL;
	if (ret)
		return ret;
	unsigned flags = opts ? opts->flags : 0;
	const struct ps_backend_ops *wanted = ps_backend_by_path(want);
	struct pktstore *ps = calloc(1, sizeof(*ps));

	if (!ps)
		return -ENOMEM;
	ps->opening = opts;
	/* A path demanded must suit the options before any file is made. */
	ret = wanted && wanted->probe ? wanted->probe(ps) : 0;
	if (ret) {
		free(ps);
		return ret;
	}
	ret = ps_arena_open(ps, path, opts);
	if (!ret)
		ret = load(ps, flags);
	if (!ret && !ps->a.rdonly) {
		ps->movable = flags & PKTSTORE_MOVABLE;
		ps->clean_hint = true; /* recovery may have left sparse segments */
		/* A new arena's superblocks say "in use" from the start. */
		ret = ps->a.formatted ? 0 : ps_arena_mark(ps, true);
		if (!ret)
			ret = pick_backend(ps, want);
	}
	if (!ret) {
		ps->opening = NULL; /* the caller's options may go now */
		*out = ps;
		return 0;
	}
	/* Whatever this call created goes too: a retry must find no
	 * half-made arena in its way. The lock is still ours here. */
	if (ps->a.created)
		unlink(path);
	else if (ps->a.formatted && ps->a.map)
		ps_arena_mark(ps, false); /* an arena nobody used: not a lost session */
	store_free(ps);
	return ret;
}

int pktstore_close(struct pktstore *ps)
{
	if (!ps)
		return -EINVAL;
	if (ps->a.rdonly) {
		store_free(ps);
		return 0;
	}
	for (uint32_t i = 0; i < ps->a.sb.max_flows; i++) {
		struct ps_flow *f = ps->flows[i];

		if (f && f->kind == PS_FLOW_SOCKET && f->run != PS_RUN_NONE)
			pktstore_detach(ps, f->id);
	}
	/* Only a store whose every commit succeeded may claim a clean close. */
	int ret = ps->broken ? PKTSTORE_EBROKEN : ps_commit(ps);

	if (!ret)
		ret = ps_arena_mark(ps, false);
	store_free(ps);
	return ret;
}

int pktstore_stats_ex(struct pktstore *ps, struct pktstore_stats *out, size_t size)
{
	if (!ps || !out || !size)
		return -EINVAL;

	const struct ps_superblock *sb = &ps->a.sb;
	const struct ps_counters *c = &ps->cnt;
	struct pktstore_stats full = { 0 }, *st = &full;

	st->records = c->records;
	st->record_bytes = c->record_bytes;
	st->records_persisted = c->records_persisted;
	st->bytes_persisted = c->bytes_persisted;
	st->batches = c->batches;
	st->recovered_records = c->recovered_records;
	st->damaged_records = c->damaged_records;
	st->invalid_descriptors = c->invalid_descriptors;
	st->invalid_flows = c->invalid_flows;
	st->recovery_ns = c->recovery_ns;
	st->enospc_events = c->enospc_events;
	st->cleaned_segments = c->cleaned_segments;
	st->moved_records = c->moved_records;
	st->moved_bytes = c->moved_bytes;
	st->superblock_repairs = ps->a.sb_repaired;
	st->dirty_shutdown = ps->a.dirty_shutdown;
	st->unsafe_shutdown = ps->a.unsafe_shutdown;
	st->arena_size = sb->arena_size;
	st->segment_size = sb->seg_size;
	st->segments = sb->nsegs;
	st->data_bytes = sb->nsegs * sb->seg_size;
	st->segments_free = ps->seg.nfree;
	st->descriptors = ps->a.sb.ndesc;
	st->descriptors_free = ps->desc_free;
	st->flows_max = ps->a.sb.max_flows;
	st->flows = ps->nflows;
	st->granularity = ps->pp.gran;
	st->recv_path = ps->be ? ps->be->path : PKTSTORE_PATH_AUTO;
	snprintf(st->recv_path_name, sizeof(st->recv_path_name), "%s",
		 ps->be ? ps->be->name : "none");
	snprintf(st->fallback_reason, sizeof(st->fallback_reason), "%s", ps->fallback);
	st->broken = ps->broken;
	/* An older caller gets the fields it knows of; a newer one's extra
	 * fields read as zero. */
	if (size > sizeof(full)) {
		memset((char *)out + sizeof(full), 0, size - sizeof(full));
		size = sizeof(full);
	}
	memcpy(out, &full, size);
	return 0;
}

/*
 * An errno value reads as the operating system says it: the same -ENOENT is
 * a missing file from pktstore_open() and a missing record from
 * pktstore_get(), and only the caller knows which; the man page of each
 * call says what each value means there. Conditions no errno names have the
 * library's own codes.
 */
const char *pktstore_strerror(int err)
{
	switch (err) {
	case 0:
		return "Success";
	case PKTSTORE_EFLOWS:
		return "Flow table full: delete or detach flows, or create the arena with more";
	case PKTSTORE_EBROKEN:
		return "Store stopped by an earlier failed persist: close and reopen it";
	default:
		if (err < 0 && err > -4096)
			return strerror(-err);
		return "Unknown error";
	}
}

#ifdef PKTSTORE_PROFILE
int pktstore_profile(struct pktstore *ps, struct pktstore_profile *out)
{
	if (!ps || !out)
		return -EINVAL;
	*out = ps->prof;
	return 0;
}
#endif
