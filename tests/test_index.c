/* SPDX-License-Identifier: MIT */
/* lib/index.c: an index keeps every entry, in order, as it grows from the
 * heap into a mapping of its own and on through doublings and reserves,
 * however its mapping sits beside the others' (an open's scan grows a
 * flow's index next to the id index it reserved at once). White-box: it
 * links the static library. */
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../lib/internal.h"

static void check(const struct ps_index *ix, uint64_t n, uint64_t mul)
{
	cr_assert_eq(ix->n, n);
	cr_assert_geq(ix->cap, n);
	for (uint64_t i = 0; i < n; i++) {
		const struct ps_ent *e = &ix->e[i];

		if (e->id != i * mul || e->seq != i * mul + 1 || e->ts != i * mul + 2)
			cr_assert_fail("entry %lu: id %lu seq %lu ts %lu", (unsigned long)i,
				       (unsigned long)e->id, (unsigned long)e->seq,
				       (unsigned long)e->ts);
	}
}

static void push(struct ps_index *ix, uint64_t i, uint64_t mul)
{
	cr_assert_eq(ps_index_push(ix, i * mul, i * mul + 1, i * mul + 2), 0, "push %lu",
		     (unsigned long)i);
}

/* The scan's pattern: the id index reserved for every slot, then a
 * flow's index and the id index appended in step. */
Test(index, grows_beside_a_reserved_index)
{
	struct ps_index all = { 0 }, flow = { 0 };
	const uint64_t n = 1u << 20;

	cr_assert_eq(ps_index_reserve(&all, n + n / 2 + 7), 0);
	for (uint64_t i = 0; i < n; i++) {
		push(&flow, i, 1);
		push(&all, i, 1);
	}
	check(&flow, n, 1);
	check(&all, n, 1);
	ps_index_free(&flow);
	ps_index_free(&all);
	cr_assert_null(all.e);
	cr_assert_eq(all.cap, 0);
}

/* Several indexes growing at once, their mappings moving past each other,
 * one reserved again midway to a size that is no power of two. */
Test(index, many_grow_interleaved)
{
	enum { K = 5 };
	struct ps_index ix[K] = { 0 };
	const uint64_t n = 300000;

	for (uint64_t i = 0; i < n; i++) {
		for (int k = 0; k < K; k++)
			if (i < n / (uint64_t)(k + 1))
				push(&ix[k], i, (uint64_t)k + 1);
		if (i == n / 3)
			cr_assert_eq(ps_index_reserve(&ix[2], n / 2 + 12345), 0);
	}
	for (int k = 0; k < K; k++) {
		check(&ix[k], n / (uint64_t)(k + 1), (uint64_t)k + 1);
		ps_index_free(&ix[k]);
	}
}

/* A freed index starts over, from the heap, as a new one. */
Test(index, reused_after_free)
{
	struct ps_index ix = { 0 };

	for (int round = 0; round < 3; round++) {
		uint64_t n = round == 1 ? 100 : 200000;

		for (uint64_t i = 0; i < n; i++)
			push(&ix, i, 3);
		check(&ix, n, 3);
		ps_index_free(&ix);
	}
}

/* A fresh arena reserves its id index for one entry (its id limit is 1):
 * growth from there starts at the same 64 entries as from nothing, not at
 * 2, 4, 8, ..., each a realloc of its own. */
Test(index, growth_from_a_small_reserve_starts_at_64)
{
	struct ps_index ix = { 0 };

	cr_assert_eq(ps_index_reserve(&ix, 1), 0);
	cr_assert_eq(ix.cap, 1);
	push(&ix, 0, 5);
	push(&ix, 1, 5);
	cr_assert_geq(ix.cap, 64, "cap %zu after growing from 1", (size_t)ix.cap);
	for (uint64_t i = 2; i < 200; i++)
		push(&ix, i, 5);
	check(&ix, 200, 5);
	ps_index_free(&ix);
}

/* Where the kernel will not remap (here: the mapping split in two areas,
 * as a partial madvise or mprotect would), growth copies instead of
 * failing. */
Test(index, grows_where_mremap_refuses)
{
	struct ps_index ix = { 0 };
	uint64_t n = 0;
	long page = sysconf(_SC_PAGESIZE);

	while (ix.cap * sizeof(struct ps_ent) < ((size_t)4 << 20))
		push(&ix, n++, 5);
	while (n < ix.cap)
		push(&ix, n++, 5);
	/* Full: the next push grows it. Split its area first. */
	cr_assert_eq(madvise((char *)ix.e + 4 * page, (size_t)page, MADV_RANDOM), 0);
	push(&ix, n++, 5);
	for (uint64_t stop = 4 * n; n < stop;)
		push(&ix, n++, 5);
	check(&ix, n, 5);
	ps_index_free(&ix);
}
