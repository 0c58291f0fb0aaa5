/* SPDX-License-Identifier: MIT */
/*
 * codec.c - checksums and validity of the on-media structures (media.h):
 * superblock, flow entry, descriptor. Everything that decides whether bytes
 * read back from the file mean something lives here, so arena, flows,
 * records and recovery agree on it.
 */
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

/* The checksum of a moved descriptor: data_off does not count. */
static uint32_t moved_crc(const struct ps_desc *d)
{
	struct ps_desc c;

	memcpy(&c, d, sizeof(c));
	c.data_off = 0;
	c.mark = PS_DESC_MOVED;
	return ps_crc32c(&c, offsetof(struct ps_desc, crc));
}

uint64_t ps_desc_moved_word(const struct ps_desc *d)
{
	struct {
		uint32_t mark, crc;
	} w = { PS_DESC_MOVED, moved_crc(d) };
	uint64_t v;

	memcpy(&v, &w, sizeof(v));
	return v;
}

static uint32_t released_crc(const struct ps_desc *d)
{
	return ~ps_crc32c(d, offsetof(struct ps_desc, mark));
}

uint64_t ps_desc_release_word(const struct ps_desc *d)
{
	struct {
		uint32_t mark, crc;
	} w = { PS_DESC_RELEASED, released_crc(d) };
	uint64_t v;

	memcpy(&v, &w, sizeof(v));
	return v;
}

static bool all_zero(const struct ps_desc *d)
{
	static const struct ps_desc zero;

	return !memcmp(d, &zero, sizeof(zero));
}

enum ps_desc_kind ps_desc_decode(const struct ps_desc *d, uint64_t slot, uint64_t ndesc)
{
	/* Copy first: another thread cannot write it, but the medium could be
	 * read twice with different results. */
	struct ps_desc c;

	memcpy(&c, d, sizeof(c));
	if (!c.id)
		return all_zero(&c) ? PS_DK_EMPTY : PS_DK_INVALID;
	if (c.id > PS_ID_MAX || c.id % ndesc != slot)
		return PS_DK_INVALID;
	if (c.mark == PS_DESC_RELEASED)
		return c.crc == released_crc(&c) ? PS_DK_RELEASED : PS_DK_INVALID;
	if (c.mark == PS_DESC_MOVED)
		return c.crc == moved_crc(&c) ? PS_DK_LIVE : PS_DK_INVALID;
	if (c.mark || c.crc != ps_crc32c(&c, offsetof(struct ps_desc, crc)))
		return PS_DK_INVALID;
	return PS_DK_LIVE;
}
