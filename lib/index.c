/* SPDX-License-Identifier: MIT */
/*
 * index.c - the DRAM index: every record by id, each flow's by seq.
 *
 * Each flow keeps its records as an array in seq order, and the store keeps
 * every record in id order. Records are appended in both orders at once
 * (seq, id and time all grow together), so lookups are binary searches and
 * inserts are appends. A released record leaves a dead entry that is
 * squeezed out once dead entries are the majority; liveness is checked
 * against the descriptor slot, so a dead entry is never served.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "internal.h"

/*
 * An index of a million records is tens of MiB, filled once by an open's
 * scan or by appends. Two costs dominate if it lives on the heap: each
 * doubling copies the whole array (realloc of a heap block), and each
 * 4 KiB page faults once as it fills (dear in many VMs). So a large array
 * gets a mapping of its own: it grows by mremap, which moves page tables,
 * never bytes, and asks for transparent huge pages, one fault per 2 MiB.
 * Without THP the kernel just keeps small pages. Small arrays (most flows)
 * stay on the heap.
 */
#define MAPPED_MIN ((size_t)1 << 20)

static size_t bytes_of(size_t cap)
{
	return cap * sizeof(struct ps_ent);
}

static bool mapped(const struct ps_index *ix)
{
	return bytes_of(ix->cap) >= MAPPED_MIN;
}

/* The whole mapping, never a part: a part would split it into several
 * areas, and mremap moves only one. */
static void *map_new(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	madvise(p, bytes, MADV_HUGEPAGE);
#endif
	return p;
}

/* Give the array back, to the kernel or the heap, as it was got. */
static void drop_array(const struct ps_index *ix)
{
	if (mapped(ix))
		munmap(ix->e, bytes_of(ix->cap));
	else
		free(ix->e);
}

static void *grow_mapped(struct ps_index *ix, size_t cap)
{
	if (mapped(ix)) {
		void *p = mremap(ix->e, bytes_of(ix->cap), bytes_of(cap), MREMAP_MAYMOVE);

		if (p != MAP_FAILED)
			return p;
	}
	/* From the heap, or where the kernel would not remap: copy. */
	void *p = map_new(bytes_of(cap));

	if (!p)
		return NULL;
	if (ix->n)
		memcpy(p, ix->e, ix->n * sizeof(*ix->e));
	drop_array(ix);
	return p;
}

static int resize(struct ps_index *ix, size_t cap)
{
	void *e = bytes_of(cap) >= MAPPED_MIN ? grow_mapped(ix, cap)
					      : realloc(ix->e, bytes_of(cap));

	if (!e)
		return -ENOMEM;
	ix->e = e;
	ix->cap = cap;
	return 0;
}

int ps_index_reserve(struct ps_index *ix, size_t n)
{
	return n <= ix->cap ? 0 : resize(ix, n);
}

void ps_index_free(struct ps_index *ix)
{
	drop_array(ix);
	*ix = (struct ps_index){ 0 };
}

int ps_index_push(struct ps_index *ix, uint64_t id, uint64_t seq, uint64_t ts)
{
	if (ix->n == ix->cap) {
		/* From a reserve of a few (a fresh arena reserves one), not
		 * 2, 4, 8, ...: at least the 64 an empty index starts with. */
		int ret = resize(ix, ix->cap * 2 > 64 ? ix->cap * 2 : 64);

		if (ret)
			return ret;
	}
	ix->e[ix->n++] = (struct ps_ent){ .id = id, .seq = seq, .ts = ts };
	return 0;
}

void ps_index_squeeze(struct pktstore *ps, struct ps_index *ix)
{
	if (ix->dead < 64 || ix->dead * 2 < ix->n)
		return;
	size_t j = 0;

	for (size_t i = 0; i < ix->n; i++)
		if (ps_record_live(ps, ix->e[i].id))
			ix->e[j++] = ix->e[i];
	ix->n = j;
	ix->dead = 0;
}

/* First entry whose field (seq, id or ts: all grow along the array) is >= key. */
size_t ps_index_lower(const struct ps_index *ix, size_t field, uint64_t key)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v;

		memcpy(&v, (const char *)&ix->e[mid] + field, sizeof(v));
		if (v < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t ps_index_lower_seq(const struct ps_index *ix, uint64_t key)
{
	return ps_index_lower(ix, offsetof(struct ps_ent, seq), key);
}

