/* SPDX-License-Identifier: MIT */
/*
 * clock.h - the two clocks the store reads: wall time for what is
 * persisted (record timestamps, flow open and close, arena creation), which
 * a reader in another process or session can compare; monotonic time for
 * durations it reports (recovery_ns), which must not jump.
 */
#ifndef PKTSTORE_CLOCK_H
#define PKTSTORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t ps_clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CLOCK_REALTIME in ns: what pktstore_rec.ts_ns and the flow times say. */
static inline uint64_t ps_now_ns(void)
{
	return ps_clock_ns(CLOCK_REALTIME);
}

static inline uint64_t ps_mono_ns(void)
{
	return ps_clock_ns(CLOCK_MONOTONIC);
}

#endif
