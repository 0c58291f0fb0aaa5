/* SPDX-License-Identifier: MIT */
/*
 * fastdiv.h - division by a divisor fixed at open (the descriptor count,
 * the segment size, the flow table size) with a multiply and a shift
 * instead of a divide instruction, which costs tens of cycles: recovery and
 * every record's path divide several times per record.
 *
 * For a divisor d below 2^63 and l = ceil(log2 d), m = ceil(2^(63+l) / d)
 * fits in 64 bits, and floor(n * m / 2^(63+l)) = floor(n / d) for every
 * n below 2^63 (Granlund and Montgomery, "Division by invariant integers
 * using multiplication", 1994, theorem 4.2 with N = 63). Record ids, flow
 * ids and arena offsets stay below 2^63.
 */
#ifndef PKTSTORE_FASTDIV_H
#define PKTSTORE_FASTDIV_H

#include <stdint.h>

struct ps_div {
	uint64_t d, m;
	unsigned shift; /* 63 + l */
};

/* 1 <= d < 2^63. */
static inline void ps_div_init(struct ps_div *v, uint64_t d)
{
	unsigned l = 0;

	while ((1ull << l) < d)
		l++;
	v->d = d;
	v->shift = 63 + l;
	v->m = (uint64_t)((((unsigned __int128)1 << v->shift) + d - 1) / d);
}

/* n < 2^63. */
static inline uint64_t ps_div(const struct ps_div *v, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)n * v->m) >> v->shift);
}

static inline uint64_t ps_mod(const struct ps_div *v, uint64_t n)
{
	return n - ps_div(v, n) * v->d;
}

#endif
