/* SPDX-License-Identifier: MIT */
/*
 * size.h - sizes and versions as every command-line program of the project
 * (pktstore, pktstore-demo, the benchmarks) reads and writes them. Needs no
 * library: the benchmark peers link it alone.
 */
#ifndef PKTSTORE_SIZE_H
#define PKTSTORE_SIZE_H

#include <stdint.h>

/*
 * Decimal digits, then optionally K, M or G (either case, powers of 1024),
 * optionally followed by "iB" or "B": "4096", "64K", "1MiB". A leading 0 is
 * still decimal ("010" is ten). Returns 0 and sets *out, -EINVAL when s is
 * not of that form (empty, a sign, spaces, other letters), or -ERANGE when
 * the value overflows or is above max.
 */
int parse_size(const char *s, uint64_t max, uint64_t *out);

/* "PROG: OPT 'S' is not a size: ..." or "... is too large: at most MAX". */
void size_error(const char *prog, const char *opt, const char *s, int err, uint64_t max);

/* Human-readable bytes: "512 bytes", "1.5 KiB", "8.0 GiB". */
const char *size_text(uint64_t bytes, char buf[32]);

/* "PROG (libpktstore) 1.0.0" on stdout, the version of the headers built
 * with; PROG may be argv[0], its directory is dropped. */
void print_version(const char *prog);

#endif
