/* SPDX-License-Identifier: MIT */
/*
 * crc.c - CRC32C (Castagnoli), the checksum of every record's bytes and of
 * every on-media structure. ISA-L's crc32_iscsi uses the CPU's CRC32 and
 * carry-less multiply instructions (~31 ns per KiB here, 4x a plain SSE4.2
 * loop); it neither pre- nor post-inverts, so both inversions happen here and
 * the result is the standard CRC32C (check value 0xE3069283).
 */
#include <limits.h>

#include <isa-l/crc.h>

#include "internal.h"

#if defined(__x86_64__)
/*
 * Descriptors, flow entries and superblocks are 60-124 bytes: there the call
 * and setup of ISA-L's folding loop cost more than the CRC itself, while the
 * SSE4.2 crc32 instruction (the same CRC32C) does 8 bytes a cycle or so.
 */
__attribute__((target("sse4.2"))) static uint32_t crc32c_short(uint32_t crc,
							     const unsigned char *p,
							     size_t len)
{
	uint64_t c = crc;

	for (; len >= 8; p += 8, len -= 8) {
		uint64_t w;

		__builtin_memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	crc = (uint32_t)c;
	for (; len; p++, len--)
		crc = __builtin_ia32_crc32qi(crc, *p);
	return crc;
}

/* Stores opened at once on several threads all ask: the answer is the same
 * for each, and atomic accesses make the benign race a defined one. */
static bool have_sse42(void)
{
	static int known = -1;
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);

	if (k < 0) {
		__builtin_cpu_init();
		k = __builtin_cpu_supports("sse4.2") ? 1 : 0;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k;
}
#define SHORT_CRC 256
#endif

uint32_t ps_crc32c_update(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

#if defined(__x86_64__)
	if (len < SHORT_CRC && have_sse42())
		return ~crc32c_short(~crc, p, len);
#endif
	crc = ~crc;
	while (len) {
		int chunk = len > (size_t)INT_MAX ? INT_MAX : (int)len;

		crc = crc32_iscsi((unsigned char *)p, chunk, crc);
		p += chunk;
		len -= (size_t)chunk;
	}
	return ~crc;
}

uint32_t pktstore_crc32c(uint32_t crc, const void *buf, size_t len)
{
	return ps_crc32c_update(crc, buf, len);
}
