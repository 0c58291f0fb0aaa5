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

#include <sys/socket.h>

/* A receive's user_data is its flow id; a cancel's has this bit, above
 * every flow id, and a hang-up poll's carries its flow id with this one. */
#define UD_CANCEL (1ull << 63)
#define UD_HUP (1ull << 62)
#define UD_SEND (1ull << 61) /* ... and a send's (pktstore_send) this one */
#define UD_WATCH (1ull << 60) /* a watched fd's poll: its watch number */
#define UD_ROOM (1ull << 59)  /* a send's wait for room after -EAGAIN */
_Static_assert(UD_ROOM >= 1ull << PS_BE_FLOW_ID_BITS, "tags lie above every flow id");

/* pktstore_send(): the bytes queued for a flow (uring_send.c), in pieces:
 * copied bytes, at an offset into buf, or arena bytes, at an arena offset,
 * whose segment is held until they are sent. */
struct ps_send_piece {
	uint64_t at;
	uint32_t len;
	bool arena;
};

struct ps_sendq {
	char *buf;
	uint32_t buf_len, buf_cap;
	struct ps_send_piece *piece;
	uint32_t n, cap;
	uint32_t held;  /* pieces that hold arena bytes */
	uint64_t bytes;
};

/* Arena bytes this long or longer are sent from the arena, not copied:
 * bench/sendref.sh counts the instructions of echoing a stored message
 * both ways (2026-12-04, emulated PM on /dev/shm): 256 B 3186 from the arena
 * against 3142 copied, 512 B 3246/3249, 1 KiB 3361/3413, 2 KiB 3598/3745,
 * 4 KiB 4094/4433. It is built with other values (-DPS_SEND_REF_MIN=N) to
 * measure. */
#ifndef PS_SEND_REF_MIN
#define PS_SEND_REF_MIN 1024
#endif

/* Queue iov's bytes, large arena pieces by reference when from_arena;
 * nothing taken on failure. */
int ps_sendq_add(struct ps_sendq *q, struct pktstore *ps, const struct ps_be_arena *ar,
		 const struct iovec *iov, unsigned iovcnt, bool from_arena);
/* The queue's bytes from offset `from`, as at most max iovecs. */
unsigned ps_sendq_iov(const struct ps_sendq *q, const struct ps_be_arena *ar, uint64_t from,
		      struct iovec *iov, unsigned max);
/* Empty it, letting go of the arena bytes it held. */
void ps_sendq_clear(struct ps_sendq *q, struct pktstore *ps);
void ps_sendq_free(struct ps_sendq *q, struct pktstore *ps);

/* Iovecs of one send at most. */
#define PS_SEND_IOV 64

/* What is posted for one flow, by flow slot. */
struct ps_ring_flow {
	bool armed;      /* a multishot receive */
	bool hup_watch;  /* a POLLRDHUP poll, while starved */
	bool sending;    /* a send of `out` (pktstore_send) */
	bool await_room; /* ... that outlived the enter that submitted it */
	bool room_poll;  /* ... that ended in -EAGAIN: a POLLOUT poll, then again */
	bool cancelling; /* detach waits for all to end: post nothing new */
	uint32_t watched; /* the events the readiness set watches (uring_ring.c) */
	/* pktstore_send(): the bytes of the send in flight, from out_sent on,
	 * and the bytes queued behind it; one send in flight keeps them in
	 * order. */
	struct ps_sendq out, pend;
	uint64_t out_sent;
	struct msghdr *msg; /* of the send in flight, with its PS_SEND_IOV iovecs */
	int send_err; /* an earlier send failed: the next pktstore_send says so */
	uint32_t sending_at; /* its place in the ring's list of sending flows */
};

struct ps_ring {
	struct io_uring ring;
	bool live;      /* set up: io_uring_queue_exit at fini */
	bool deferred;  /* DEFER_TASKRUN: bound to the thread that enabled it */
	bool enabled;
	int epfd;       /* pktstore_fd() */
	int evfd;       /* the ring's eventfd, in epfd */
	bool fd_given;  /* pktstore_fd() was asked for: keep the eventfd clear */
	bool send_from_arena; /* ps_ring_setup's */
	struct ps_be_arena ar;
	struct ps_ring_flow *fl;
	uint32_t nfl;
	uint64_t *sending;  /* ids of the flows with a send in flight */
	uint32_t nsending;
	uint32_t fresh_sends; /* posted since the last enter */
	struct {
		int fd;
		bool posted;    /* its one-shot poll */
		bool in_set;    /* in the readiness set */
	} watch[PS_WATCH_MAX]; /* pktstore_watch(), by watch number */
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
	/* Sends may take large pieces from the arena (its bytes stay put while
	 * their segment is held); zcrx gives buffers back to the NIC on
	 * release, whatever holds them, so it copies. */
	bool send_from_arena;
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

/* pktstore_fd(): the readiness set. */
int ps_ring_fd(struct ps_ring *r);
/* Post f's multishot receive. */
int ps_ring_arm(struct ps_ring *r, struct ps_flow *f);
/* f starves: mark it, and post a poll for its peer's hang-up. */
void ps_ring_starve(struct ps_ring *r, struct ps_flow *f);
/* Submit, wait for a completion if `wait`, reap: completions handled, or
 * -errno (-EINTR: a signal ended the wait). */
int ps_ring_poll(struct ps_ring *r, bool wait);
unsigned ps_ring_reap(struct ps_ring *r);
/* pktstore_send(3) through the ring (a backend's send op). */
int ps_ring_send(struct ps_ring *r, struct ps_flow *f, const struct iovec *iov, unsigned iovcnt,
		 size_t len, unsigned flags);
/* pktstore_watch(3) through the ring (a backend's watch op). */
int ps_ring_watch(struct ps_ring *r, unsigned i, int fd, bool on);
/* Cancel what is posted for f and reap until it has ended: the completions
 * queued for f carry bytes taken from its socket, and they land first. */
void ps_ring_cancel(struct ps_ring *r, struct ps_flow *f);

#endif
