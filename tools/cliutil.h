/* SPDX-License-Identifier: MIT */
/*
 * cliutil.h - what the command-line programs that open arenas (pktstore,
 * pktstore-demo) share, so that a failed open reads the same in each:
 *
 *   open_error()     why pktstore_open() failed, and what to do about it
 *   min_arena_size() the smallest size a layout accepts
 *   lock_holder()    which process holds an arena
 *
 * Sizes and versions are in size.h.
 */
#ifndef PKTSTORE_CLIUTIL_H
#define PKTSTORE_CLIUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <pktstore.h>

#include "size.h"

/*
 * Print "PROG: PATH: what is wrong; what to do" for a pktstore_open() that
 * failed with err, given the options it was called with (NULL: defaults).
 * It names the library's rules the call broke (the PKTSTORE_RECV_PATH
 * values, the smallest size of the layout, the process holding the arena)
 * where pktstore_strerror() has only the errno text.
 */
void open_error(const char *prog, const char *path, int err, const struct pktstore_opts *o);

/*
 * The smallest arena size pktstore_open() accepts for the layout options
 * of o (segment size, flows, bytes per record), or 0 if no size would do.
 */
uint64_t min_arena_size(const struct pktstore_opts *o);

/* The process holding a flock(2) lock on path, or 0 if none is found. */
long lock_holder(const char *path);

#endif
