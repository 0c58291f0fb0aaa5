/* SPDX-License-Identifier: MIT */
/*
 * pktstore/adapters/loop.h - what every event-loop adapter shares: drain the
 * store without blocking and hand the records to the application, keeping
 * the rules of pktstore_fd(3):
 *
 *   - the fd is only a hint: drain with PKTSTORE_NONBLOCK until -EAGAIN;
 *   - a drain is bounded, so one busy store cannot starve the rest of the
 *     loop; the adapter schedules itself again when records may be left;
 *   - while the arena is full (-ENOSPC) the fd stays quiet, and it does not
 *     become readable when space comes back: after releasing or trimming
 *     records, the application calls the adapter's kick function;
 *   - once the store is broken (PKTSTORE_EBROKEN) every call fails at once
 *     while its fd may stay readable: the adapter stops watching it, or the
 *     loop would call in for ever.
 *
 * Header-only; the adapters include it. See pktstore_adapters(3).
 */
#ifndef PKTSTORE_ADAPTERS_LOOP_H
#define PKTSTORE_ADAPTERS_LOOP_H

#include <errno.h>

#include <pktstore.h>

#ifndef PKTSTORE_LOOP_BATCH
#define PKTSTORE_LOOP_BATCH 64 /* records per call */
#endif
#ifndef PKTSTORE_LOOP_ROUNDS
#define PKTSTORE_LOOP_ROUNDS 16 /* calls per drain before yielding to the loop */
#endif

/* Records (and end-of-stream and hang-up events: rec.flags) of any flow. */
typedef void (*pktstore_loop_records_fn)(struct pktstore *ps, struct pktstore_rec *recs, int n,
					 void *arg);
/* The arena is full (-ENOSPC: release or trim, then kick), or a call failed
 * (any other negative value; PKTSTORE_EBROKEN means the store is done). */
typedef void (*pktstore_loop_status_fn)(struct pktstore *ps, int status, void *arg);

struct pktstore_loop {
	struct pktstore *ps;
	pktstore_loop_records_fn on_records;
	pktstore_loop_status_fn on_status; /* may be NULL */
	void *arg;
	int full;                          /* the last drain ended with -ENOSPC */
	unsigned long drains;              /* times the loop called in */
};

/*
 * Drain: returns 0 when nothing is left for now (or nothing is receiving),
 * 1 when records may be left (schedule another drain without waiting for
 * the fd), or the negative value that stopped it (-ENOSPC included).
 */
static inline int pktstore_loop_drain(struct pktstore_loop *l)
{
	struct pktstore_rec recs[PKTSTORE_LOOP_BATCH];

	l->drains++;
	for (int round = 0; round < PKTSTORE_LOOP_ROUNDS; round++) {
		int n = pktstore_recv_persist_any(l->ps, recs, PKTSTORE_LOOP_BATCH,
						  PKTSTORE_NONBLOCK);

		if (n > 0) {
			l->full = 0;
			l->on_records(l->ps, recs, n, l->arg);
			continue;
		}
		if (n == 0 || n == -EAGAIN) {
			l->full = 0;
			return 0;
		}
		if (n == -EINTR)
			continue;
		l->full = n == -ENOSPC;
		if (l->on_status)
			l->on_status(l->ps, n, l->arg);
		return n;
	}
	return 1;
}

#endif
