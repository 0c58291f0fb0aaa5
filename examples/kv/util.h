/* SPDX-License-Identifier: MIT */
/*
 * util.h - numbers and patterns as Redis reads and writes them, so that
 * clients see the same answers: integers without leading zeros, spaces or
 * "-0"; floats in long double, printed without trailing zeros; glob-style
 * patterns for KEYS and SCAN.
 */
#ifndef KV_UTIL_H
#define KV_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define KV_LONG_DOUBLE_MAX_CHARS 5120

int str_to_i64(const char *s, size_t n, int64_t *out);
int str_to_ld(const char *s, size_t n, long double *out);
int ld_to_str(char *buf, size_t len, long double v);
int glob_match(const char *pat, size_t plen, const char *s, size_t slen, int nocase);
/* The hash of a key for the keyspace's buckets, MSET's repeated keys and
 * WATCH: SipHash-1-3 under a key kv_hash_init() draws once at start, folded
 * to 32 bits. */
void kv_hash_init(void);
uint32_t kv_hash(const char *k, uint32_t n);
uint64_t kv_siphash13(uint64_t k0, uint64_t k1, const char *k, uint32_t n);

#endif
