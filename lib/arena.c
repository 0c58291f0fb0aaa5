/* SPDX-License-Identifier: MIT */
/*
 * arena.c - the arena file: create it, map it with libpmem2, and trust
 * nothing in it until the superblock has been checked.
 *
 * Two superblock copies hold the same layout. Session state (in-use flag,
 * generation) is rewritten one copy at a time, each persisted before the
 * other is touched, so a crash leaves at least one whole copy; open takes the
 * valid copy with the higher generation and repairs the other.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpmem2.h>

#include "internal.h"

#define MIB (1024ull * 1024)
#define DEFAULT_SIZE (64 * MIB)
#define DEFAULT_SEG (1024 * 1024u)
#define DEFAULT_FLOWS 1024u
#define DEFAULT_BPR 512u
#define ALIGN 4096ull

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

int ps_layout_compute(struct ps_superblock *sb, uint64_t size, uint32_t seg_size,
		      uint32_t max_flows, uint32_t bpr)
{
	if (!seg_size)
		seg_size = DEFAULT_SEG;
	if (!max_flows)
		max_flows = DEFAULT_FLOWS;
	if (!bpr)
		bpr = DEFAULT_BPR;
	if (seg_size % ALIGN || seg_size > (1u << 30) || max_flows > (1u << 24) || bpr < 16)
		return -EINVAL;

	memset(sb, 0, sizeof(*sb));
	sb->magic = PS_MAGIC;
	sb->version = PS_FORMAT_VERSION;
	sb->sb_size = PS_SB_SIZE;
	sb->arena_size = size;
	sb->max_flows = max_flows;
	sb->seg_size = seg_size;
	sb->flow_off = 2 * PS_SB_SIZE;
	sb->desc_off = align_up(sb->flow_off + (uint64_t)max_flows * sizeof(struct ps_flow_entry),
				ALIGN);
	if (size < sb->desc_off + ALIGN + seg_size)
		return -EINVAL;

	/* Split the rest between descriptors and data so that one descriptor
	 * exists per bpr bytes of data. */
	uint64_t rest = size - sb->desc_off;
	uint64_t per_seg = seg_size + (uint64_t)seg_size / bpr * sizeof(struct ps_desc);
	uint64_t nsegs = rest / per_seg + 1;

	for (; nsegs > 0; nsegs--) {
		uint64_t ndesc = nsegs * seg_size / bpr;
		uint64_t data_off = align_up(sb->desc_off + ndesc * sizeof(struct ps_desc), ALIGN);

		if (ndesc && data_off + nsegs * seg_size <= size) {
			sb->ndesc = ndesc;
			sb->nsegs = nsegs;
			sb->data_off = data_off;
			return 0;
		}
	}
	return -EINVAL;
}

/* Layout sanity: every region inside the file, in order, without overflow. */
int ps_superblock_check(const struct ps_superblock *sb, uint64_t file_size)
{
	if (sb->magic != PS_MAGIC || sb->sb_size != PS_SB_SIZE)
		return -EUCLEAN;
	if (sb->crc != ps_sb_crc(sb))
		return -EUCLEAN;
	if (sb->version != PS_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	if (sb->arena_size != file_size || sb->flow_off != 2 * PS_SB_SIZE)
		return -EUCLEAN;
	if (!sb->max_flows || sb->max_flows > (1u << 24) || !sb->seg_size ||
	    sb->seg_size % ALIGN || sb->seg_size > (1u << 30) || !sb->ndesc || !sb->nsegs)
		return -EUCLEAN;
	if (sb->ndesc > file_size / sizeof(struct ps_desc) || sb->nsegs > file_size / sb->seg_size)
		return -EUCLEAN;
	/* Each region is bounded by the file before any sum is formed: with
	 * the counts bounded above, no sum below can wrap. */
	if (sb->desc_off > file_size || sb->data_off > file_size)
		return -EUCLEAN;
	if (sb->desc_off < sb->flow_off + (uint64_t)sb->max_flows * sizeof(struct ps_flow_entry) ||
	    sb->desc_off % PS_CACHELINE)
		return -EUCLEAN;
	if (sb->ndesc * sizeof(struct ps_desc) > file_size - sb->desc_off ||
	    sb->data_off < sb->desc_off + sb->ndesc * sizeof(struct ps_desc) ||
	    sb->data_off % ALIGN)
		return -EUCLEAN;
	if (sb->nsegs * sb->seg_size > file_size - sb->data_off)
		return -EUCLEAN;
	if (sb->in_use > 1 || !sb->flow_id_limit || sb->flow_id_limit > PS_FLOW_ID_MAX)
		return -EUCLEAN;
	return 0;
}

static int pmem2_to_errno(int ret)
{
	/* libpmem2 returns -errno or its own negative codes below -100000. */
	if (ret > -4096)
		return ret;
	return ret == PMEM2_E_NOSUPP ? -EOPNOTSUPP : -EIO;
}

static int write_sb(struct pktstore *ps, unsigned copy, const struct ps_superblock *sb)
{
	struct ps_arena *a = &ps->a;

	memcpy(a->sb_pm[copy], sb, sizeof(*sb));
	return ps_persist_range(&ps->pp, (uint64_t)copy * PS_SB_SIZE, sizeof(*sb));
}

/* Rewrite the session state in both copies, one after the other. */
int ps_arena_sync(struct pktstore *ps)
{
	struct ps_superblock sb = ps->a.sb;
	int ret;

	sb.generation++;
	sb.crc = ps_sb_crc(&sb);
	ret = write_sb(ps, 0, &sb);
	if (!ret)
		ret = write_sb(ps, 1, &sb);
	if (!ret)
		ps->a.sb = sb;
	return ret;
}

int ps_arena_mark(struct pktstore *ps, bool in_use)
{
	ps->a.sb.in_use = in_use;
	return ps_arena_sync(ps);
}

static int map_file(struct pktstore *ps)
{
	struct ps_arena *a = &ps->a;
	struct pmem2_config *cfg = NULL;
	int ret;

	ret = pmem2_config_new(&cfg);
	if (ret)
		return pmem2_to_errno(ret);
	if (!a->src)
		ret = pmem2_source_from_fd(&a->src, a->fd);
	if (!ret)
		ret = pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	if (!ret && a->rdonly)
		ret = pmem2_config_set_protection(cfg, PMEM2_PROT_READ);
	if (!ret)
		ret = pmem2_map_new(&a->map, cfg, a->src);
	pmem2_config_delete(&cfg);
	if (ret)
		return pmem2_to_errno(ret);

	a->base = pmem2_map_get_address(a->map);
	switch (pmem2_map_get_store_granularity(a->map)) {
	case PMEM2_GRANULARITY_BYTE:
		ps->pp.gran = PKTSTORE_GRAN_BYTE;
		break;
	case PMEM2_GRANULARITY_CACHE_LINE:
		ps->pp.gran = PKTSTORE_GRAN_CACHE_LINE;
		break;
	default:
		ps->pp.gran = PKTSTORE_GRAN_PAGE;
		break;
	}
	ps->pp.base = a->base;
	ps->pp.size = pmem2_map_get_size(a->map);
	ps->pp.pm_flush = pmem2_get_flush_fn(a->map);
	ps->pp.pm_drain = pmem2_get_drain_fn(a->map);
	return 0;
}

/*
 * tmpfs allocates a fallocated page but zeroes it at its first fault, which
 * would land in the receive path's first pass over each segment. Pay it once
 * at creation instead (Linux 5.14+; older kernels fault as usual). A disk
 * file is left alone: populating it would write the whole file back.
 */
static void prefault_tmpfs(struct ps_arena *a)
{
	struct statfs fs;

	if (fstatfs(a->fd, &fs) || fs.f_type != TMPFS_MAGIC)
		return;
#ifdef MADV_POPULATE_WRITE
	madvise(a->base, a->size, MADV_POPULATE_WRITE);
#endif
}

static int open_file(struct ps_arena *a, const char *path, const struct pktstore_opts *o,
		     bool *allocated)
{
	struct stat st;
	unsigned flags = o ? o->flags : 0;
	int oflags = (a->rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;

	/* Create exclusively first, so that we know whether this call made
	 * the file and must remove it if the open fails after all. */
	if (flags & PKTSTORE_CREATE) {
		mode_t mode = o->mode ? (mode_t)(o->mode & 07777) : 0600;

		a->fd = open(path, oflags | O_CREAT | O_EXCL, mode);
		if (a->fd >= 0)
			a->created = true;
		else if (errno != EEXIST || flags & PKTSTORE_EXCL)
			return -errno;
	}
	if (a->fd < 0)
		a->fd = open(path, oflags);
	if (a->fd < 0)
		return -errno;
	/* Two stores on one arena would corrupt it: the second open fails.
	 * Read-only inspectors may share, but not with a writer. */
	if (flock(a->fd, (a->rdonly ? LOCK_SH : LOCK_EX) | LOCK_NB))
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	if (fstat(a->fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
		return -EINVAL;
	*allocated = false;
	if (S_ISCHR(st.st_mode)) {
		/* Device DAX: the size comes from the device, not stat. */
		size_t size;
		int ret = pmem2_source_from_fd(&a->src, a->fd);

		if (!ret)
			ret = pmem2_source_size(a->src, &size);
		if (ret)
			return pmem2_to_errno(ret);
		a->size = size;
		return 0;
	}
	if (st.st_size == 0) {
		if (!(flags & PKTSTORE_CREATE))
			return -EUCLEAN;
		/* Allocate every block now: a later ENOSPC on a page fault
		 * would be a SIGBUS, not an error code. */
		uint64_t size = o->size ? o->size : DEFAULT_SIZE;
		int r = posix_fallocate(a->fd, 0, (off_t)size);

		if (r)
			return -r;
		*allocated = true;
		a->size = size;
		return 0;
	}
	a->size = (uint64_t)st.st_size;
	return 0;
}

static bool all_zero(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Copy B's first word: a create is under way (see format()). */
static int mark_creating(struct pktstore *ps)
{
	struct ps_arena *a = &ps->a;

	memset(a->base + PS_SB_SIZE, 0, PS_SB_SIZE);
	__atomic_store_n((uint64_t *)(void *)(a->base + PS_SB_SIZE), PS_CREATING,
			 __ATOMIC_RELEASE);
	return ps_persist_range(&ps->pp, PS_SB_SIZE, PS_SB_SIZE);
}

/*
 * Make the file an arena, open for use: the first session starts here, so
 * the superblocks are written once, already marked in use (the open that
 * formats makes no second sync). First copy B's first word says a create
 * is under way (one 8-byte store, made durable); then old metadata is
 * zeroed; then copy A and copy B are written, each durable before the
 * next. Until A is durable the file is not an arena, and B still carries
 * the mark, so a crash at any point leaves either an arena or a file that
 * unfinished() recognises as this create cut short, and nothing else.
 */
static int format(struct pktstore *ps, const struct pktstore_opts *o, bool allocated)
{
	struct ps_arena *a = &ps->a;
	struct ps_superblock sb;
	int ret = ps_layout_compute(&sb, a->size, o->segment_size, o->max_flows,
				    o->bytes_per_record);

	if (ret)
		return ret;
	prefault_tmpfs(a);
	ret = mark_creating(ps);
	if (ret)
		return ret;
	if (!allocated) {
		/* Old bytes (a reused device, an interrupted create) must
		 * not pass for flows or descriptors. */
		memset(a->base + sb.flow_off, 0, sb.data_off - sb.flow_off);
		ret = ps_persist_range(&ps->pp, sb.flow_off, sb.data_off - sb.flow_off);
		if (ret)
			return ret;
	}
	sb.create_ns = ps_now_ns();
	if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid))
		memcpy(sb.uuid, &sb.create_ns, sizeof(sb.create_ns));
	sb.in_use = 1;
	/* Ids start at 1: none at or above it was handed out, so an open
	 * scans no descriptor slot until the first append raises it (0 would
	 * mean unknown, a scan of the whole log: O(arena size)). */
	sb.id_limit = 1;
	sb.flow_id_limit = 1;
	uint64_t usc;

	if (!pmem2_source_device_usc(a->src, &usc)) {
		sb.usc_valid = 1;
		sb.usc = usc;
	}
	sb.crc = ps_sb_crc(&sb);
	ret = write_sb(ps, 0, &sb);
	if (!ret)
		ret = write_sb(ps, 1, &sb);
	if (!ret) {
		a->formatted = true;
		a->sb = sb;
	}
	return ret;
}

/* What a create may format: a file that never held an arena (both
 * superblock copies zero), or a create cut short (copy B still carries the
 * mark and copy A is not a valid superblock). Any other bytes there are
 * someone's data, or a damaged arena: refused, never overwritten. */
static bool unfinished(const struct ps_arena *a)
{
	struct ps_superblock first;
	uint64_t b0;

	if (all_zero(a->base, 2 * PS_SB_SIZE))
		return true;
	memcpy(&b0, a->base + PS_SB_SIZE, sizeof(b0));
	if (b0 != PS_CREATING || !all_zero(a->base + PS_SB_SIZE + sizeof(b0),
					   PS_SB_SIZE - sizeof(b0)))
		return false;
	memcpy(&first, a->base, sizeof(first));
	return ps_superblock_check(&first, a->size) != 0;
}

/* Pick the valid superblock copy with the higher generation; repair the other. */
static int load_superblock(struct pktstore *ps)
{
	struct ps_arena *a = &ps->a;
	struct ps_superblock c[2];
	int r[2];

	for (int i = 0; i < 2; i++) {
		memcpy(&c[i], a->sb_pm[i], sizeof(c[i]));
		r[i] = ps_superblock_check(&c[i], a->size);
	}
	if (r[0] && r[1])
		return r[0] == -EPROTONOSUPPORT || r[1] == -EPROTONOSUPPORT ? -EPROTONOSUPPORT
									 : -EUCLEAN;
	int pick = r[0] ? 1 : r[1] ? 0 : c[1].generation > c[0].generation;
	int other = !pick;

	if (!r[0] && !r[1] && memcmp(&c[0], &c[1], offsetof(struct ps_superblock, generation))) {
		/* Two valid copies with different layouts: nothing tells which
		 * is right. */
		return -EUCLEAN;
	}
	a->sb = c[pick];
	if (r[other] || c[other].generation != c[pick].generation) {
		/* Counted even read-only, so an inspector sees the damage. */
		a->sb_repaired++;
		if (!a->rdonly) {
			int ret = write_sb(ps, other, &c[pick]);

			if (ret)
				return ret;
		}
	}
	return 0;
}

static void detect_unsafe_shutdown(struct ps_arena *a)
{
	uint64_t usc;

	if (a->formatted)
		return; /* a new arena: in use, but not by a lost session */
	a->dirty_shutdown = a->sb.in_use;
	if (pmem2_source_device_usc(a->src, &usc)) {
		a->sb.usc_valid = 0; /* no NVDIMM health data (tmpfs, disk) */
		return;
	}
	/* libpmemobj's rule: the count moving while the arena was in use means
	 * the device lost power with data in flight. */
	if (a->sb.in_use && a->sb.usc_valid && a->sb.usc != usc)
		a->unsafe_shutdown = true;
	a->sb.usc_valid = 1;
	a->sb.usc = usc;
}

int ps_arena_open(struct pktstore *ps, const char *path, const struct pktstore_opts *o)
{
	struct ps_arena *a = &ps->a;
	bool allocated = false;
	int ret;

	a->fd = -1;
	a->rdonly = o && o->flags & PKTSTORE_RDONLY;
	if (o && o->flags & PKTSTORE_CREATE) {
		/* Refuse bad layout options before touching the file. */
		struct ps_superblock probe;

		ret = ps_layout_compute(&probe, o->size ? o->size : DEFAULT_SIZE, o->segment_size,
					o->max_flows, o->bytes_per_record);
		if (ret)
			return ret;
	}
	ret = open_file(a, path, o, &allocated);
	if (ret)
		return ret;
	if (a->size < 2 * PS_SB_SIZE)
		return -EUCLEAN;
	ret = map_file(ps);
	if (ret)
		return ret;
	a->sb_pm[0] = (struct ps_superblock *)a->base;
	a->sb_pm[1] = (struct ps_superblock *)(a->base + PS_SB_SIZE);

	if (o && o->flags & PKTSTORE_CREATE && unfinished(a)) {
		ret = format(ps, o, allocated);
		if (ret)
			return ret;
	}
	/* What format() wrote needs no reading back (nor any repair). */
	ret = a->formatted ? 0 : load_superblock(ps);
	if (ret)
		return ret;
	detect_unsafe_shutdown(a);

	a->flows_pm = (struct ps_flow_entry *)(a->base + a->sb.flow_off);
	a->descs_pm = (struct ps_desc *)(a->base + a->sb.desc_off);
	return 0;
}
void ps_arena_close(struct ps_arena *a)
{
	if (a->map)
		pmem2_map_delete(&a->map);
	if (a->src)
		pmem2_source_delete(&a->src);
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
}
