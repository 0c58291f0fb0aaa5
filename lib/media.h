/* SPDX-License-Identifier: MIT */
/*
 * media.h - the on-media format of an arena. Everything here is read back
 * from an untrusted file, so every field is validated before use.
 *
 *   offset 0          superblock copy A (4 KiB)
 *   offset 4 KiB      superblock copy B (4 KiB)
 *   flow_off          flow table: max_flows x 128-byte entries
 *   desc_off          descriptor log: ndesc x 64-byte pkt-record descriptors
 *   data_off          data region: nsegs x seg_size segments
 *
 * All integers are little-endian (the library builds only on x86-64 and
 * other little-endian hosts; see the static assertion in store.c).
 */
#ifndef PKTSTORE_MEDIA_H
#define PKTSTORE_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#define PS_MAGIC 0x31524f5453544b50ULL /* "PKTSTOR1" */
/* 2: a release leaves a mark (below) instead of zeroing the id word. */
#define PS_FORMAT_VERSION 2
#define PS_SB_SIZE 4096
/* The first word of copy B while a create is under way (arena.c). */
#define PS_CREATING 0x474e495441455243ULL /* "CREATING" */
#define PS_CACHELINE 64

/* Layout, fixed at creation. Both superblock copies hold the same layout. */
struct ps_superblock {
	uint64_t magic;
	uint32_t version;
	uint32_t sb_size;
	uint64_t arena_size;
	uint64_t flow_off;
	uint64_t desc_off;
	uint64_t data_off;
	uint32_t max_flows;
	uint32_t seg_size;
	uint64_t ndesc;
	uint64_t nsegs;
	uint64_t create_ns;
	uint8_t uuid[16];
	/* Session state, rewritten at open and close. */
	uint64_t generation; /* bumped on every rewrite; the higher valid copy wins */
	uint32_t in_use;     /* 1 between open and a clean close */
	uint32_t usc_valid;  /* the device reported an unsafe shutdown count */
	uint64_t usc;        /* that count at open */
	uint64_t id_limit;   /* no record id >= this was ever handed out (0:
				unknown); raised ahead of allocation, so
				recovery below ndesc scans only [0, id_limit) */
	uint64_t flow_id_limit; /* no flow id >= this was ever handed out;
				   raised ahead of allocation, so a deleted
				   flow's id never names a new flow, even after
				   a crash */
	uint64_t verified_id; /* every record with a lower id was whole (its
				 bytes durable, or checked) when this copy was
				 written: open hashes only the records at or
				 above it (0: hash all) */
	uint32_t crc;        /* CRC32C of every byte above */
};

enum ps_flow_state {
	PS_FLOW_FREE = 0,
	PS_FLOW_SOCKET = 1, /* a network flow: seq = offset in the TCP stream */
	PS_FLOW_LOCAL = 2,  /* application flow: records come from append */
};

/*
 * One flow table entry: 128 bytes, two cache lines. Written whole once, at
 * attach; after that only single aligned 8-byte words change (trim_seq,
 * close_ns, and id = 0 to free the slot), which a power loss cannot tear, so
 * an entry is never left half-rewritten.
 */
struct ps_flow_entry {
	uint64_t id;         /* 0 = free slot */
	uint64_t tag;
	uint64_t open_ns;
	uint32_t state;      /* enum ps_flow_state */
	uint16_t family;
	uint16_t local_port; /* host byte order */
	uint16_t peer_port;
	uint16_t reserved16;
	uint8_t local_addr[16];
	uint8_t peer_addr[16];
	uint8_t reserved[36];
	uint32_t crc;        /* CRC32C of the bytes above */
	uint32_t reserved32;
	uint64_t trim_seq;   /* the stream below this seq is gone (pktstore_trim):
				0, or the seq in the low 56 bits and a CRC-8 of
				it and the entry's id in the top 8 (codec.c),
				so damage here is seen although the word is
				outside the entry's checksum */
	uint64_t close_ns;   /* 0: still open, or ended by a crash */
};

/* One pkt-record descriptor: exactly one cache line, so it persists with one
 * flush and can never be torn across lines. */
struct ps_desc {
	uint64_t id;       /* 1..PS_ID_MAX; slot == id % ndesc. An all-zero
			      descriptor is a never-used slot */
	uint64_t flow;
	uint64_t seq;
	uint64_t ts_ns;
	uint64_t data_off; /* arena offset of the bytes */
	uint32_t len;
	uint32_t data_crc; /* CRC32C of the bytes */
	uint32_t flags;    /* PKTSTORE_REC_* */
	uint32_t reserved;
	uint32_t mark;     /* 0 live; PS_DESC_MOVED live and movable;
			      PS_DESC_RELEASED once released */
	uint32_t crc;      /* live: CRC32C of the 60 bytes above;
			      moved: the same with data_off taken as 0;
			      released: ~CRC32C of the 56 bytes before mark */
};

/*
 * A release rewrites only the last word (mark and crc) in one aligned 8-byte
 * store, so power loss leaves the descriptor live or released, never half of
 * each. The released checksum still covers the id and everything else, so
 * neither a zeroed word nor a random flip can pass for a release, and a torn
 * later write into the slot can never bring back the old record's checksum.
 */
#define PS_DESC_RELEASED 0x444c4552u /* "RELD" */
/*
 * The cleaner (cleaner.c) moves a record's bytes without changing its id:
 * first the last word becomes the moved mark, whose checksum leaves data_off
 * out, then data_off alone changes, in one aligned 8-byte store. Either
 * value of data_off is then a valid descriptor, and the bytes' own CRC32C
 * (checked at open and on every read) tells whether it points at them.
 */
#define PS_DESC_MOVED 0x44564f4du /* "MOVD" */
/* Ids stay far below 2^64, so the next id can never wrap to 0. */
#define PS_ID_MAX (1ull << 62)
/* Flow ids stay below 2^56: the io_uring backends tag their user data with
 * the bits above a flow id (uring_ring.h), and a superblock's flow id limit
 * or a flow entry above it is damage. */
#define PS_FLOW_ID_MAX (1ull << 56)

_Static_assert(sizeof(struct ps_superblock) <= PS_SB_SIZE, "superblock fits its slot");
_Static_assert(sizeof(struct ps_flow_entry) == 128, "flow entry is two cache lines");
_Static_assert(offsetof(struct ps_flow_entry, close_ns) % 8 == 0, "close_ns is one atomic word");
_Static_assert(offsetof(struct ps_flow_entry, trim_seq) % 8 == 0 &&
		       offsetof(struct ps_flow_entry, trim_seq) > offsetof(struct ps_flow_entry, crc),
	       "trim_seq is one atomic word outside the checksum");
_Static_assert(sizeof(struct ps_desc) == PS_CACHELINE, "descriptor is one cache line");
_Static_assert(offsetof(struct ps_desc, mark) == 56, "mark and crc are one atomic word");

#endif
