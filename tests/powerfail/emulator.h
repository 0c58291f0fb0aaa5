/* SPDX-License-Identifier: MIT */
/*
 * The power-failure emulator behind the PKTSTORE_POWERFAIL build of the
 * library. It keeps a shadow image of the arena holding only what was
 * flushed and then fenced. At the chosen event (the Nth flush or drain) it
 * "loses power": it writes an image made of the shadow, plus each
 * flushed-but-unfenced cache line torn at random 8-byte granularity, plus
 * some dirty lines never flushed (a cache may evict them at any time), and
 * exits the process.
 */
#ifndef PKTSTORE_POWERFAIL_EMULATOR_H
#define PKTSTORE_POWERFAIL_EMULATOR_H

#include <stdint.h>

/* Arm the emulator: crash at event `crash_at` (0: never), write the image to
 * `image_path`; `seed` drives the tearing. */
void pf_arm(const char *image_path, uint64_t crash_at, unsigned seed);
/* Flushes plus drains seen so far. */
uint64_t pf_events(void);

#endif
