/* SPDX-License-Identifier: MIT */
/*
 * persist.c - making arena bytes durable.
 *
 * DAX mappings (byte or cache-line granularity) use libpmem2's flush
 * (CLWB/CLFLUSHOPT) and drain (SFENCE). Page-granularity mappings (tmpfs, a
 * regular file) need msync(2); libpmem2 aborts the process if that fails, so
 * at page granularity we call msync ourselves and hand the error back.
 *
 * Callers batch: every range of a batch is flushed, then one drain makes the
 * whole batch durable. That single drain is what the API amortises.
 *
 * Every flush and drain of the library passes through the two functions
 * below, which is what lets the power-failure test build (PKTSTORE_POWERFAIL,
 * tests/powerfail/) see them all: a flush or fence missing anywhere shows up
 * there as a lost record.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* Distinct stores on distinct threads share this cache: atomic accesses,
 * since each thread may compute the same value at once. */
static uintptr_t page_mask(void)
{
	static uintptr_t mask;
	uintptr_t m = __atomic_load_n(&mask, __ATOMIC_RELAXED);

	if (!m) {
		m = ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
		__atomic_store_n(&mask, m, __ATOMIC_RELAXED);
	}
	return m;
}

int ps_flush_range(struct ps_persist *pp, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
#ifdef PKTSTORE_POWERFAIL
	ps_powerfail_flush(pp->base, pp->size, off, len);
	return 0;
#endif
	if (pp->gran != PKTSTORE_GRAN_PAGE) {
		pp->pm_flush(pp->base + off, len);
		return 0;
	}
	uintptr_t start = (uintptr_t)(pp->base + off) & page_mask();
	uintptr_t end = (uintptr_t)(pp->base + off + len);

	if (msync((void *)start, end - start, MS_SYNC))
		return -errno;
	return 0;
}

int ps_drain(struct ps_persist *pp)
{
#ifdef PKTSTORE_POWERFAIL
	ps_powerfail_drain(pp->base, pp->size);
	return 0;
#endif
	if (pp->gran != PKTSTORE_GRAN_PAGE)
		pp->pm_drain();
	return 0;
}

int ps_persist_range(struct ps_persist *pp, uint64_t off, uint64_t len)
{
	int ret = ps_flush_range(pp, off, len);

	return ret ? ret : ps_drain(pp);
}

/* Flush what the set holds (no drain) and empty it. */
static int flush_range_all(struct ps_persist *pp, struct ps_flush_set *fs)
{
	int ret = 0;

	for (unsigned i = 0; i < fs->n; i++) {
		int r = ps_flush_range(pp, fs->r[i].off, fs->r[i].len);

		if (r && !ret)
			ret = r;
	}
	fs->n = 0;
	return ret;
}

/* The flush half of a commit; an error kept from an early flush counts. */
int ps_flush_set_flush(struct ps_persist *pp, struct ps_flush_set *fs)
{
	int ret = flush_range_all(pp, fs);

	if (fs->err) {
		ret = fs->err;
		fs->err = 0;
	}
	return ret;
}

/* A full set is flushed early; the drain at commit still covers it, and an
 * error is kept for commit to report. Out of line: the common add stays a
 * few instructions. */
__attribute__((noinline, cold)) static void flush_early(struct ps_persist *pp,
							struct ps_flush_set *fs)
{
	int r = flush_range_all(pp, fs);

	if (r && !fs->err)
		fs->err = r;
}

/* Flushes act on whole cache lines: ranges are kept line-aligned, so two
 * releases of neighbouring descriptors (8 bytes at the end of each line) are
 * one run, not two. */
#define LINE 64u

/* How many of the newest runs an added range may merge with. A batch writes
 * back to back, so a range that touches an open run touches one of the last
 * few; a longer look only costs time (a range left unmerged is flushed twice
 * at worst, which is harmless). */
#define MERGE_LOOK 4u

void ps_flush_set_add(struct ps_persist *pp, struct ps_flush_set *fs, uint64_t off,
		      uint64_t len)
{
	uint64_t lo = off & ~(uint64_t)(LINE - 1);
	uint64_t hi = (off + len + LINE - 1) & ~(uint64_t)(LINE - 1);
	unsigned stop = fs->n > MERGE_LOOK ? fs->n - MERGE_LOOK : 0;

	for (unsigned i = fs->n; i-- > stop;) {
		uint64_t ro = fs->r[i].off, re = ro + fs->r[i].len;

		if (lo <= re && ro <= hi) {
			fs->r[i].off = lo < ro ? lo : ro;
			fs->r[i].len = (hi > re ? hi : re) - fs->r[i].off;
			return;
		}
	}
	if (fs->n == PS_FLUSH_SET_MAX)
		flush_early(pp, fs);
	fs->r[fs->n].off = lo;
	fs->r[fs->n].len = hi - lo;
	fs->n++;
}
