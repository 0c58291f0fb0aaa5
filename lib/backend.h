/* SPDX-License-Identifier: MIT */
/*
 * backend.h - the contract between the store's core and its receive
 * backends, the only header a backend includes.
 *
 * A backend receives bytes for the flows attached to it into the arena and
 * reports each landing (ps_land); the core turns landings into durable
 * records, in order, and hands them out. The backend sees the store through
 * the few services below, never struct pktstore, and a flow through its
 * accessors: what it keeps per flow it keeps in its own state, by flow slot.
 * (hiredis' event adapters have this shape: an ops table, their own state,
 * and two entry points back into the library.)
 *
 * Adding a backend: its own file with its ops table, and a line in the list
 * of backend.c (and the file in lib/CMakeLists.txt).
 */
#ifndef PKTSTORE_BACKEND_H
#define PKTSTORE_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "pktstore.h"

struct pktstore;
struct ps_flow;
struct iovec;

/* Flow ids are below 2^PS_BE_FLOW_ID_BITS (the core gives no other and
 * takes no other from the arena): a backend may tag the bits above. */
#define PS_BE_FLOW_ID_BITS 56

struct ps_backend_ops {
	const char *name; /* as PKTSTORE_RECV_PATH and recv_path_name spell it */
	enum pktstore_recv_path path;
	/* Optional: whether the options of the open let this backend be
	 * tried at all, before the arena is mapped (0). Refused, it is skipped
	 * silently by the automatic choice, and the open asking for it by name
	 * fails with the value. */
	int (*probe)(struct pktstore *ps);
	/* Set up; on failure say why (ps_be_fallback) and return -errno.
	 * fini frees what init made, after a failed init too. */
	int (*init)(struct pktstore *ps);
	void (*fini)(struct pktstore *ps);
	int (*attach)(struct pktstore *ps, struct ps_flow *f);
	/* Stop receiving; every landing for f is reported before it returns. */
	void (*detach)(struct pktstore *ps, struct ps_flow *f);
	/* Report landings via ps_land(); wait for at least one when `wait`.
	 * `only` restricts the work to one flow where the backend can. */
	int (*poll)(struct pktstore *ps, struct ps_flow *only, bool wait);
	/* Segments or descriptors became free: hand buffers back, then call
	 * ps_resume_starved(). */
	void (*space_freed)(struct pktstore *ps);
	/* Try receiving again for a starved flow: 0 when it receives again
	 * (the core marks it so), -ENOBUFS when no flow can yet, another
	 * -errno when this one cannot. */
	int (*resume)(struct pktstore *ps, struct ps_flow *f);
	/* pktstore_fd(3). */
	int (*fd)(struct pktstore *ps);
	/* Optional: a record's bytes are no longer needed (zcrx returns its
	 * buffer to the kernel). */
	void (*released)(struct pktstore *ps, uint64_t data_off, uint32_t len);
	/* Optional: pktstore_send(3) for f, len bytes in all (checked); the
	 * core sends with sendmsg(2) for a backend without it. */
	int (*send)(struct pktstore *ps, struct ps_flow *f, const struct iovec *iov,
		    unsigned iovcnt, size_t len, unsigned flags);
	/* Optional: a send on f took less than it was given; call
	 * ps_flow_writable() when it can take more. (A backend with its own
	 * send calls that when its queue drains, and needs none of this.) */
	void (*want_writable)(struct pktstore *ps, struct ps_flow *f);
	/* pktstore_watch(3): with `on`, wait (once) for fd, the core's watch
	 * number i, to be readable, with the flows, and report it with
	 * ps_watch_fired(); the core asks again after each report. Without
	 * `on`, stop: no report for i may follow the return. */
	int (*watch)(struct pktstore *ps, unsigned i, int fd, bool on);
};

/* Every backend, best first: the automatic choice takes the first that
 * works (backend.c). */
extern const struct ps_backend_ops *const ps_backends[];
extern const unsigned ps_nbackends;
const struct ps_backend_ops *ps_backend_by_path(enum pktstore_recv_path path);
const struct ps_backend_ops *ps_backend_by_name(const char *name);

/* ---------------------------------------------- services of the core */

/* Bytes landed in the arena at off for f (status 1), or the end of f's
 * stream (0: EOF, <0: -errno). */
void ps_land(struct pktstore *ps, struct ps_flow *f, uint64_t off, uint32_t len, int status);
/* How many fds pktstore_watch() takes: watch numbers are below it. */
#define PS_WATCH_MAX 64
/* f's sends can take more bytes again: if a send was refused or cut short
 * since the last report, the application hears of it (once). */
void ps_flow_writable(struct pktstore *ps, struct ps_flow *f);
/* Watch number i's fd is readable (status 0), or its wait failed
 * (-errno): the next receive call reports it. */
void ps_watch_fired(struct pktstore *ps, unsigned i, int status);
/* A starved flow's peer hung up with bytes still unread in the socket: tell
 * the application (once), which may then detach it. */
void ps_hangup_notice(struct pktstore *ps, struct ps_flow *f);
/* f cannot receive for lack of space (or can again). The core keeps the
 * starved flows and offers them to resume() when space returns. */
void ps_flow_starve(struct pktstore *ps, struct ps_flow *f, bool starved);
/* Offer every starved flow to the backend's resume(). */
void ps_resume_starved(struct pktstore *ps);
/* Call space_freed() at the core's next turn (not from inside a reap). */
void ps_be_space_pending(struct pktstore *ps);

/* The backend's own state. */
void *ps_be_state(const struct pktstore *ps);
void ps_be_set_state(struct pktstore *ps, void *state);
/* Why a better path was not taken, or why init failed (stats' fallback_reason). */
void ps_be_fallback(struct pktstore *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The options of the open in progress: valid in probe() and init() only. */
const struct pktstore_opts *ps_be_opts(const struct pktstore *ps);

/* The arena as a backend needs it: fixed for the life of the store. */
struct ps_be_arena {
	char *base;        /* arena offset 0 */
	uint64_t data_off; /* first segment */
	uint64_t nsegs;
	uint32_t seg_size;
	uint32_t max_flows; /* ps_flow_slot() is below it */
	int fd;            /* the arena file */
};
void ps_be_arena(const struct pktstore *ps, struct ps_be_arena *out);

/* A landing now could become a record (a descriptor is free): without
 * one, bytes are better left in the socket. */
bool ps_be_can_record(const struct pktstore *ps);
/* Segments for the kernel's buffers: a free one, or -1. */
int64_t ps_be_seg_take(struct pktstore *ps);
/* The free tail of a sealed segment, at least min bytes from *start; -1. */
int64_t ps_be_seg_take_tail(struct pktstore *ps, uint32_t min, uint32_t *start);
/* A run of up to max free segments, *n of them; -1. */
int64_t ps_be_seg_take_run(struct pktstore *ps, uint64_t max, uint64_t *n);
void ps_be_seg_give_run(struct pktstore *ps, uint64_t first, uint64_t n);
/* No new bytes land in seg: it frees when its last record goes. */
void ps_be_seg_seal(struct pktstore *ps, uint64_t seg);
uint64_t ps_be_seg_of(const struct pktstore *ps, uint64_t data_off);
/* Hold (or let go of) the segment of len arena bytes at off, which a send
 * still needs: it is not reused while held. */
void ps_be_hold(struct pktstore *ps, uint64_t off, uint32_t len, bool hold);
/* Bump space for bytes placed by user space (recv(2), copies): at least
 * min bytes at *off, *avail in all; then commit what was used. */
int ps_be_bump_reserve(struct pktstore *ps, uint32_t min, uint64_t *off, uint32_t *avail);
void ps_be_bump_commit(struct pktstore *ps, uint32_t used);

/* The flow with this id, or NULL. */
struct ps_flow *ps_be_flow(struct pktstore *ps, uint64_t id);
uint64_t ps_flow_id(const struct ps_flow *f);
int ps_flow_fd(const struct ps_flow *f);
uint32_t ps_flow_slot(const struct ps_flow *f);
/* Attached and its stream not ended: the backend receives for it. */
bool ps_flow_receiving(const struct ps_flow *f);
bool ps_flow_starved(const struct ps_flow *f);
/* Its hang-up was reported to the application already. */
bool ps_flow_hup_noticed(const struct ps_flow *f);

#endif
