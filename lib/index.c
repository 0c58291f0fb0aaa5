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
#include <sys/uio.h>

#include "internal.h"

int ps_index_reserve(struct ps_index *ix, size_t n)
{
	if (n <= ix->cap)
		return 0;

	struct ps_ent *e = realloc(ix->e, n * sizeof(*e));

	if (!e)
		return -ENOMEM;
	ix->e = e;
	ix->cap = n;
	return 0;
}

int ps_index_push(struct ps_index *ix, uint64_t id, uint64_t seq, uint64_t ts)
{
	if (ix->n == ix->cap) {
		size_t cap = ix->cap ? ix->cap * 2 : 64;
		struct ps_ent *e = realloc(ix->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		ix->e = e;
		ix->cap = cap;
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

