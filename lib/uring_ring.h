/* SPDX-License-Identifier: MIT */
/*
 * uring_ring.h - what the io_uring backends (recv_uring.c, recv_zcrx.c)
 * share: one ring with its setup, the multishot receive of each flow
 * (arm, reap, cancel), the hang-up poll of a starved flow, and the
 * readiness set behind pktstore_fd(). A backend fills in how to prepare its
 * receive and what a receive completion means; the rest is here.
 */
#ifndef PKTSTORE_URING_RING_H
#define PKTSTORE_URING_RING_H

#include "backend.h"
#include "compat_uring.h"

/* A receive's user_data is its flow id; a cancel's has this bit, above
 * every flow id, and a hang-up poll's carries its flow id with this one. */
#define UD_CANCEL (1ull << 63)
#define UD_HUP (1ull << 62)

/* What is posted for one flow, by flow slot. */
struct ps_ring_flow {
	bool armed;      /* a multishot receive */
	bool hup_watch;  /* a POLLRDHUP poll, while starved */
	bool cancelling; /* detach waits for both to end: post nothing new */
	uint8_t watched; /* what the readiness set watches (uring_ring.c) */
};

struct ps_ring {
	struct io_uring ring;
	bool live;      /* set up: io_uring_queue_exit at fini */
	bool deferred;  /* DEFER_TASKRUN: bound to the thread that enabled it */
	bool enabled;
	int epfd;       /* pktstore_fd() */
	int evfd;       /* the ring's eventfd, in epfd */
	struct ps_ring_flow *fl;
	struct pktstore *ps;

	/* The backend's: prepare f's multishot receive in sqe. */
	void (*prep_recv)(struct ps_ring *r, struct io_uring_sqe *sqe, int fd);
	/* A completion of a receive of f (NULL: the flow is gone; the
	 * completion's buffer still is the backend's to account for). armed
	 * is already clear when it was the last. */
	void (*on_recv)(struct pktstore *ps, struct ps_flow *f, const struct io_uring_cqe *cqe);
};

/* Setup flags beyond the common ones, and whether the ring must defer its
 * task work (zcrx) or may go without where the kernel refuses it. */
struct ps_ring_setup {
	unsigned flags;
	bool must_defer;
	bool start_enabled; /* the creating thread becomes the submitter */
};

/* Make the ring (ps_be_fallback says why not). ps_ring_ready() finishes
 * setup once the backend registered what it needs. */
int ps_ring_init(struct ps_ring *r, struct pktstore *ps, const struct ps_ring_setup *s);
int ps_ring_ready(struct ps_ring *r);
void ps_ring_fini(struct ps_ring *r);
/* The first thread to use a deferred ring becomes its only submitter. */
int ps_ring_enable(struct ps_ring *r);
struct io_uring_sqe *ps_ring_sqe(struct ps_ring *r);

static inline struct ps_ring_flow *ps_ring_flow(struct ps_ring *r, const struct ps_flow *f)
{
	return &r->fl[ps_flow_slot(f)];
}

/* Post f's multishot receive. */
int ps_ring_arm(struct ps_ring *r, struct ps_flow *f);
/* f starves: mark it, and post a poll for its peer's hang-up. */
void ps_ring_starve(struct ps_ring *r, struct ps_flow *f);
/* Submit, wait for a completion if `wait`, reap: completions handled, or
 * -errno (-EINTR: a signal ended the wait). */
int ps_ring_poll(struct ps_ring *r, bool wait);
unsigned ps_ring_reap(struct ps_ring *r);
/* Cancel what is posted for f and reap until it has ended: the completions
 * queued for f carry bytes taken from its socket, and they land first. */
void ps_ring_cancel(struct ps_ring *r, struct ps_flow *f);

#endif
