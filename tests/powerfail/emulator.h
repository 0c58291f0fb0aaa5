/* SPDX-License-Identifier: MIT */
/*
 * The power-failure emulator behind the PKTSTORE_POWERFAIL build of the
 * library. It keeps a shadow image of the arena holding only what was
 * flushed and then fenced. Events are the library's flushes and drains and,
 * between them, the first store to each page of the arena's metadata
 * (superblocks, flow table, descriptor log), which it catches by keeping
 * those pages read-only: so power can also fail between two stores that no
 * flush separates. At the chosen event it "loses power" before the event
 * takes effect: it writes an image made of the shadow, plus each
 * flushed-but-unfenced cache line torn at random 8-byte granularity, plus
 * some dirty lines never flushed (a cache may evict them at any time), and
 * exits the process with status 0.
 */
#ifndef PKTSTORE_POWERFAIL_EMULATOR_H
#define PKTSTORE_POWERFAIL_EMULATOR_H

#include <stdint.h>

/* Arm the emulator: crash at event `crash_at` (0: never), write the image to
 * `image_path`; `seed` drives the tearing. The arena is created afresh. */
void pf_arm(const char *image_path, uint64_t crash_at, unsigned seed);
/* ... or the arena is the existing file `arena`, durable as it stands (a
 * later generation run on an earlier crash image). */
void pf_arm_existing(const char *image_path, uint64_t crash_at, unsigned seed,
		     const char *arena);
/* Events seen so far. */
uint64_t pf_events(void);

/* Next to the image, in IMAGE.sb, the emulator writes one byte: bit k set if
 * superblock copy k was being written (stored but not yet fenced) when power
 * failed. A copy not in flight must be enough, alone, to open the image. */
#define PF_SB_SUFFIX ".sb"

#endif
