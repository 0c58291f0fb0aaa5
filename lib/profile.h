/* SPDX-License-Identifier: MIT */
/*
 * profile.h - per-stage cycle counters for the benchmarks. Compiled in only
 * when PKTSTORE_PROFILE is defined (the pktstore_prof library that bench/
 * links); the release library has neither the counters nor their cost.
 */
#ifndef PKTSTORE_PROFILE_H
#define PKTSTORE_PROFILE_H

#include <stdint.h>

struct pktstore;

/* Cycles (TSC) spent per stage since open, and the counts they cover. */
struct pktstore_profile {
	uint64_t records;  /* records made */
	uint64_t commits;  /* batches committed */
	uint64_t crc;      /* CRC32C of the bytes */
	uint64_t desc;     /* descriptor build, store, flush-set entry */
	uint64_t index;    /* DRAM index appends */
	uint64_t flush;    /* cache-line flushes / msync of a batch */
	uint64_t drain;    /* the fence of a batch */
};

int pktstore_profile(struct pktstore *ps, struct pktstore_profile *out);

#ifdef PKTSTORE_PROFILE
#include <x86intrin.h>
#define PS_PROF_START() uint64_t ps_prof_t_ = __rdtsc()
#define PS_PROF_LAP(ps, field)                                                                     \
	do {                                                                                       \
		uint64_t t_ = __rdtsc();                                                           \
		(ps)->prof.field += t_ - ps_prof_t_;                                               \
		ps_prof_t_ = t_;                                                                   \
	} while (0)
#else
#define PS_PROF_START() ((void)0)
#define PS_PROF_LAP(ps, field) ((void)0)
#endif

#endif
