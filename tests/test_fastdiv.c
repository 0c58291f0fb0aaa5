/* SPDX-License-Identifier: MIT */
/* lib/fastdiv.h: division by a divisor fixed at open, with a multiply and
 * a shift, agrees with the divide instruction for every divisor the store
 * uses (descriptor counts, segment sizes, flow table sizes, up to 2^63)
 * and every numerator below 2^63 (ids, arena offsets). */
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "../lib/fastdiv.h"

static uint64_t rnd64(uint64_t *s)
{
	/* splitmix64: a deterministic spread over all 64-bit values */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void check(uint64_t d, uint64_t n)
{
	struct ps_div v;

	ps_div_init(&v, d);
	cr_assert_eq(ps_div(&v, n), n / d, "%lu / %lu", (unsigned long)n, (unsigned long)d);
	cr_assert_eq(ps_mod(&v, n), n % d, "%lu %% %lu", (unsigned long)n, (unsigned long)d);
}

Test(fastdiv, edges)
{
	static const uint64_t divisors[] = {
		1, 2, 3, 7, 64, 1000, 1023, 1024, 1025, 4096, 1675264, (1u << 20) + 4096,
		(1ull << 24), (1ull << 32) - 1, 1ull << 32, (1ull << 32) + 1, (1ull << 62) + 5,
		(1ull << 63) - 1,
	};
	const uint64_t top = (1ull << 63) - 1;

	for (size_t i = 0; i < sizeof(divisors) / sizeof(divisors[0]); i++) {
		uint64_t d = divisors[i];
		uint64_t ns[] = { 0, 1, d - 1, d, d + 1, 2 * d - 1, top, top - d, top - d + 1,
				  top / d * d, top / d * d - 1 };

		for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++)
			if (ns[k] <= top)
				check(d, ns[k]);
	}
}

Test(fastdiv, random)
{
	uint64_t s = 1;

	for (int i = 0; i < 200000; i++) {
		uint64_t d = rnd64(&s) >> (1 + rnd64(&s) % 63);
		uint64_t n = rnd64(&s) >> 1;

		check(d ? d : 1, n);
		check(d ? d : 1, n % ((d ? d : 1) * 3 + 1));
	}
}
