/* SPDX-License-Identifier: MIT */
/*
 * codec.c - checksums and validity of the on-media structures (media.h):
 * superblock, flow entry, descriptor. Everything that decides whether bytes
 * read back from the file mean something lives here, so arena, flows,
 * records and recovery agree on it.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

uint32_t ps_sb_crc(const struct ps_superblock *sb)
{
	return ps_crc32c(sb, offsetof(struct ps_superblock, crc));
}

uint32_t ps_flow_entry_crc(const struct ps_flow_entry *e)
{
	return ps_crc32c(e, offsetof(struct ps_flow_entry, crc));
}

void ps_desc_encode(struct ps_desc *d)
{
	d->mark = 0;
	d->crc = ps_crc32c(d, offsetof(struct ps_desc, crc));
}

/* CRC-8 (polynomial 0x07): every error of one or two bits in the 15 bytes
 * it covers changes it. */
static uint8_t crc8(uint8_t c, const uint8_t *p, size_t n)
{
	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (uint8_t)(c & 0x80 ? (c << 1) ^ 0x07 : c << 1);
	}
	return c;
}

static uint8_t trim_check(uint64_t flow_id, uint64_t seq)
{
	uint8_t b[15];

	for (int i = 0; i < 7; i++)
		b[i] = (uint8_t)(seq >> (8 * i));
	for (int i = 0; i < 8; i++)
		b[7 + i] = (uint8_t)(flow_id >> (8 * i));
	return crc8(0xff, b, sizeof(b));
}

uint64_t ps_trim_encode(uint64_t flow_id, uint64_t seq)
{
	return seq ? (seq & PS_TRIM_SEQ_MAX) | (uint64_t)trim_check(flow_id, seq) << 56 : 0;
}

int ps_trim_decode(uint64_t flow_id, uint64_t word, uint64_t *seq)
{
	*seq = word & PS_TRIM_SEQ_MAX;
	if (!word)
		return 0;
	return *seq && (uint8_t)(word >> 56) == trim_check(flow_id, *seq) ? 0 : -EBADMSG;
}

/* The checksum of a moved descriptor: data_off does not count. */
static uint32_t moved_crc(const struct ps_desc *d)
{
	struct ps_desc c;

	memcpy(&c, d, sizeof(c));
	c.data_off = 0;
	c.mark = PS_DESC_MOVED;
	return ps_crc32c(&c, offsetof(struct ps_desc, crc));
}

/* A descriptor's last 8-byte word, (mark, crc), as one aligned store. */
static uint64_t last_word(uint32_t mark, uint32_t crc)
{
	struct {
		uint32_t mark, crc;
	} w = { mark, crc };
	uint64_t v;

	memcpy(&v, &w, sizeof(v));
	return v;
}

uint64_t ps_desc_moved_word(const struct ps_desc *d)
{
	return last_word(PS_DESC_MOVED, moved_crc(d));
}

static uint32_t released_crc(const struct ps_desc *d)
{
	return ~ps_crc32c(d, offsetof(struct ps_desc, mark));
}

uint64_t ps_desc_release_word(const struct ps_desc *d)
{
	return last_word(PS_DESC_RELEASED, released_crc(d));
}

static bool all_zero(const struct ps_desc *d)
{
	static const struct ps_desc zero;

	return !memcmp(d, &zero, sizeof(zero));
}

enum ps_desc_kind ps_desc_decode(const struct ps_desc *d, uint64_t slot, const struct ps_div *slots)
{
	/* Copy first: another thread cannot write it, but the medium could be
	 * read twice with different results. */
	struct ps_desc c;

	memcpy(&c, d, sizeof(c));
	if (!c.id)
		return all_zero(&c) ? PS_DK_EMPTY : PS_DK_INVALID;
	if (c.id > PS_ID_MAX || ps_mod(slots, c.id) != slot)
		return PS_DK_INVALID;
	if (c.mark == PS_DESC_RELEASED)
		return c.crc == released_crc(&c) ? PS_DK_RELEASED : PS_DK_INVALID;
	if (c.mark == PS_DESC_MOVED)
		return c.crc == moved_crc(&c) ? PS_DK_LIVE : PS_DK_INVALID;
	if (c.mark || c.crc != ps_crc32c(&c, offsetof(struct ps_desc, crc)))
		return PS_DK_INVALID;
	return PS_DK_LIVE;
}
