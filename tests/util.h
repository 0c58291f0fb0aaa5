/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Criterion tests: loopback sockets, arena files,
 * a deterministic byte stream to send and check. */
#ifndef PKTSTORE_TEST_UTIL_H
#define PKTSTORE_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "pktstore.h"

/* Where arenas live: emulated PM (tmpfs: /dev/shm, or the directory in
 * PKTSTORE_TEST_PM_DIR, e.g. a DAX mount) or a regular file system
 * (PKTSTORE_TEST_DIR, default /var/tmp). */
enum medium { MEDIUM_TMPFS, MEDIUM_FILE };

/* A fresh arena path on the medium (the file does not exist yet). */
void arena_path(enum medium m, const char *name, char *buf, size_t n);

/* The granularity libpmem2 should report for the existing file at path,
 * found without libpmem2: page unless MAP_SYNC maps it (DAX); on DAX, byte
 * when every NVDIMM region's persistence domain is the CPU cache (eADR),
 * else cache line. */
enum pktstore_granularity medium_granularity(const char *path);

/* After pktstore_open() asking for receive path rp returned ret: if ret is
 * an error because this kernel (or a seccomp filter) lacks rp, skip the test
 * with the reason, removing the arena at created (if not NULL) first.
 * Otherwise return, for the caller to assert on ret. */
void skip_if_path_missing(enum pktstore_recv_path rp, int ret, const char *created);

/* A connected loopback TCP pair: *client writes, *server is for the store. */
void tcp_pair(int *client, int *server);

/* Open (creating) an arena at path with a forced receive path. */
struct pktstore *store_open(const char *path, uint64_t size, enum pktstore_recv_path rp);

/* Byte i of stream `stream`: a pattern in which a shifted or lost byte shows. */
static inline uint8_t stream_byte(uint64_t stream, uint64_t i)
{
	uint64_t x = (i / 251) * 0x9E3779B97F4A7C15ull + stream * 0xBF58476D1CE4E5B9ull;

	return (uint8_t)((x >> 32) ^ (i % 251));
}

void fill_stream(uint64_t stream, uint64_t off, uint8_t *buf, size_t n);
/* Send n bytes of stream from offset off, all of them. */
void send_stream(int fd, uint64_t stream, uint64_t off, size_t n);
/* Send from a thread (the store's thread must be free to receive). With
 * shut set, shut the socket's write side after the last byte. */
struct sender;
struct sender *sender_start(int fd, uint64_t stream, uint64_t off, size_t n, int shut);
void sender_join(struct sender *s);

/* 1 if the bytes equal the stream at offset off. */
int check_stream(uint64_t stream, uint64_t off, const void *buf, size_t n);

/* Receive records from flow until `bytes` bytes came in; check each record's
 * seq continuity and contents. Returns the number of records. */
unsigned recv_expect(struct pktstore *ps, uint64_t flow, uint64_t stream, uint64_t from,
		     uint64_t bytes);

static const enum pktstore_recv_path all_paths[] = {
	PKTSTORE_PATH_URING_INC, PKTSTORE_PATH_URING_FIXED, PKTSTORE_PATH_RECV
};

#endif
