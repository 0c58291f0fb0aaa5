/* SPDX-License-Identifier: MIT */
/*
 * recv_uring.c - io_uring multishot recv into buffers carved from the arena.
 *
 * The provided buffer ring holds arena addresses, so the kernel's one copy
 * out of the socket lands the bytes where they will be persisted, and user
 * space copies nothing. Two shapes:
 *
 *   uring-inc    (Linux 6.12+) one buffer = one whole segment, consumed
 *                incrementally: receives of every flow pack back to back, a
 *                record is an extent with no slack, and a batch flushes as a
 *                few contiguous runs.
 *   uring-fixed  (Linux 6.0+) segments chopped into fixed chunks; each
 *                receive takes a whole buffer, and the unused rest of it
 *                (from the next cache line on) is lent again at once as a
 *                buffer of its own, so small receives pack nearly as
 *                densely as with incremental consumption.
 *
 * Only a small window of buffers is lent to the kernel at a time, so free
 * segments stay available for append and so a full arena simply stops the
 * refill: receives then end with -ENOBUFS, the bytes stay in the socket
 * buffer and TCP's window closes. Space coming back re-arms starved flows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "compat_uring.h"
#include "internal.h"

#define BGID 0
#define FIXED_CHUNK (16u * 1024)
#define WINDOW_SEGS 4u           /* segments lent to the kernel at most */
#define FIXED_WINDOW 256u        /* chunks lent at most */

struct uring_state {
	struct io_uring ring;
	bool inc;
	bool deferred; /* DEFER_TASKRUN: bound to the thread that enabled it */
	bool enabled;
	int epfd;              /* pktstore_fd(): see ps_uring_watch() */
	int evfd;              /* the ring's, in the epoll set */
	uint8_t *watched;      /* by flow slot: what the epoll set watches */
	struct io_uring_buf_ring *br;
	size_t br_bytes;
	unsigned entries, window, in_ring;
	uint32_t buf_len;
	uint64_t *buf_off;     /* by buffer id: arena offset of the buffer */
	uint32_t *buf_size;    /* by buffer id: its length */
	uint32_t *buf_used;    /* by buffer id: bytes consumed (incremental) */
	uint16_t *free_bids;
	unsigned nfree_bids;
	uint32_t *seg_out;     /* fixed: chunks of a segment still in the kernel */
	int64_t chop_seg;      /* fixed: segment being handed out chunk by chunk */
	uint32_t chop_next;
};

/* The first thread to use a deferred ring becomes its only submitter. */
static int enable(struct uring_state *u)
{
	if (u->enabled)
		return 0;
	int ret = u->deferred ? ps_uring_enable_rings(&u->ring) : 0;

	u->enabled = !ret;
	return ret;
}

static struct io_uring_sqe *get_sqe(struct uring_state *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

static int arm(struct pktstore *ps, struct ps_flow *f)
{
	struct uring_state *u = ps->be_state;
	int ret = enable(u);

	if (ret)
		return ret;

	struct io_uring_sqe *sqe = get_sqe(u);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_recv_multishot(sqe, f->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, f->id);
	f->armed = true;
	ps_uring_watch(u->epfd, &u->watched[f->slot], f);
	ret = io_uring_submit(&u->ring);
	return ret < 0 ? ret : 0;
}

/*
 * A starved flow has no receive posted, so nothing would notice its peer
 * leaving until space returns, and the application, waiting for space,
 * would keep a dead client's socket in CLOSE_WAIT. A one-shot poll for the
 * hang-up ends the stream instead (UD_HUP in its user_data).
 */
static void watch_hangup(struct pktstore *ps, struct ps_flow *f)
{
	struct uring_state *u = ps->be_state;
	struct io_uring_sqe *sqe;

	if (f->hup_watch || f->hup_noticed || f->run != PS_RUN_ACTIVE || enable(u) ||
	    !(sqe = get_sqe(u)))
		return;
	io_uring_prep_poll_add(sqe, f->fd, POLLRDHUP);
	io_uring_sqe_set_data64(sqe, f->id | UD_HUP);
	f->hup_watch = true;
	ps_uring_watch(u->epfd, &u->watched[f->slot], f);
	io_uring_submit(&u->ring);
}

static void refill(struct pktstore *ps);

static void starve(struct pktstore *ps, struct ps_flow *f)
{
	ps_flow_starve(ps, f, true);
	watch_hangup(ps, f);
}

/* The hang-up poll fired (or was cancelled). With nothing unread, the
 * stream has ended; with bytes unread, the application hears of it once
 * (see recv_socket.c) and the poll is not posted again for this flow. */
static void hangup_done(struct pktstore *ps, struct ps_flow *f, int res)
{
	struct uring_state *u = ps->be_state;
	int unread = 0;

	if (!f)
		return;
	f->hup_watch = false;
	if (res < 0 || !f->starved || f->run != PS_RUN_ACTIVE || f->armed)
		return; /* cancelled, or receiving again: the receive sees the end */
	if (ioctl(f->fd, FIONREAD, &unread))
		unread = 0;
	if (unread <= 0) {
		ps_land(ps, f, 0, 0, 0);
		return;
	}
	/* Bytes wait. If the ring was only empty for a moment (buffers come
	 * back as completions are reaped), receive them: a hang-up while
	 * full is for an arena that has no room. */
	refill(ps);
	if (u->in_ring && ps->desc_free && !arm(ps, f)) {
		ps_flow_starve(ps, f, false);
		return;
	}
	ps_hangup_notice(ps, f);
}

/* Smallest free tail of a segment worth lending as a buffer. */
#define TAIL_MIN 4096u

/*
 * With no free segment left, lend the free tail of a segment that recovery
 * sealed, as one buffer of whatever length it has: without this an arena
 * whose every segment holds a live record after a restart would take no
 * byte more on the io_uring paths.
 */
static bool tail_buffer(struct pktstore *ps, struct uring_state *u, uint64_t *off,
			uint32_t *len)
{
	uint32_t start;
	int64_t s = ps_seg_take_tail(ps, TAIL_MIN, PS_SEG_KERNEL, &start);

	if (s < 0)
		return false;
	*off = ps->a.sb.data_off + (uint64_t)s * ps->seg.size + start;
	*len = ps->seg.size - start;
	if (!u->inc)
		u->seg_out[s]++;
	return true;
}

/* Next buffer to lend: a whole segment (inc) or the next chunk of one, else
 * a sealed segment's tail. */
static bool next_buffer(struct pktstore *ps, struct uring_state *u, uint64_t *off,
			uint32_t *len)
{
	uint64_t data_off = ps->a.sb.data_off;

	*len = u->buf_len;
	if (u->inc) {
		int64_t s = ps_seg_take(ps, PS_SEG_KERNEL);

		if (s < 0)
			return tail_buffer(ps, u, off, len);
		*off = data_off + (uint64_t)s * ps->seg.size;
		return true;
	}
	if (u->chop_seg < 0) {
		u->chop_seg = ps_seg_take(ps, PS_SEG_KERNEL);
		u->chop_next = 0;
		if (u->chop_seg < 0)
			return tail_buffer(ps, u, off, len);
	}
	uint64_t s = (uint64_t)u->chop_seg;

	*off = data_off + s * ps->seg.size + (uint64_t)u->chop_next * u->buf_len;
	u->seg_out[s]++;
	if (++u->chop_next == ps->seg.size / u->buf_len)
		u->chop_seg = -1;
	return true;
}

static void refill(struct pktstore *ps)
{
	struct uring_state *u = ps->be_state;
	unsigned added = 0;
	uint64_t off;
	uint32_t len;

	/* Without descriptors the bytes could not become records; keep them
	 * in the socket instead. */
	while (u->in_ring < u->window && u->nfree_bids && ps->desc_free &&
	       next_buffer(ps, u, &off, &len)) {
		uint16_t bid = u->free_bids[--u->nfree_bids];

		u->buf_off[bid] = off;
		u->buf_size[bid] = len;
		u->buf_used[bid] = 0;
		io_uring_buf_ring_add(u->br, ps_ptr(ps, off), len, bid,
				      io_uring_buf_ring_mask(u->entries), (int)added);
		added++;
		u->in_ring++;
	}
	if (added)
		io_uring_buf_ring_advance(u->br, (int)added);
}

/* Smallest rest of a fixed buffer worth lending again. */
#define REST_MIN 512u

static void uring_space_freed(struct pktstore *ps)
{
	struct uring_state *u = ps->be_state;

	refill(ps);
	if (!ps->starved_flows || !u->in_ring)
		return;
	for (uint32_t i = 0; i < ps->max_flows && ps->starved_flows; i++) {
		struct ps_flow *f = ps->flows[i];

		if (f && f->starved && f->run == PS_RUN_ACTIVE && !f->armed && !arm(ps, f))
			ps_flow_starve(ps, f, false);
	}
}

/* The kernel is done with buffer bid. */
static void buffer_done(struct pktstore *ps, struct uring_state *u, uint16_t bid);

/*
 * A fixed buffer that took `res` bytes: its rest, from the next cache line
 * on, goes back to the kernel as a buffer of its own (a provided buffer can
 * be any extent), unless it is too short or no descriptor is left for the
 * bytes it would take. The segment stays out meanwhile.
 */
static void lend_rest(struct pktstore *ps, struct uring_state *u, uint16_t bid, uint32_t res)
{
	uint32_t used = (res + PS_CACHELINE - 1) & ~(uint32_t)(PS_CACHELINE - 1);
	uint64_t off = u->buf_off[bid] + used;
	uint32_t rest = used < u->buf_size[bid] ? u->buf_size[bid] - used : 0;
	uint64_t seg = ps_seg_of(ps, u->buf_off[bid]);

	if (rest < REST_MIN || !ps->desc_free) {
		buffer_done(ps, u, bid);
		return;
	}
	u->seg_out[seg]++;
	buffer_done(ps, u, bid); /* gives a buffer id back for the rest */

	uint16_t nb = u->free_bids[--u->nfree_bids];

	u->buf_off[nb] = off;
	u->buf_size[nb] = rest;
	u->buf_used[nb] = 0;
	io_uring_buf_ring_add(u->br, ps_ptr(ps, off), rest, nb, io_uring_buf_ring_mask(u->entries),
			      0);
	io_uring_buf_ring_advance(u->br, 1);
	u->in_ring++;
}

static void buffer_done(struct pktstore *ps, struct uring_state *u, uint16_t bid)
{
	uint64_t seg = ps_seg_of(ps, u->buf_off[bid]);

	u->in_ring--;
	u->free_bids[u->nfree_bids++] = bid;
	if (u->inc) {
		ps_seg_seal(ps, seg);
	} else if (--u->seg_out[seg] == 0 && (int64_t)seg != u->chop_seg) {
		ps_seg_seal(ps, seg);
	}
}

/* A completion of f's multishot receive. */
static void recv_done(struct pktstore *ps, struct uring_state *u, struct ps_flow *f,
		      const struct io_uring_cqe *cqe)
{
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
		uint64_t off = u->buf_off[bid] + u->buf_used[bid];

		/* Land before giving the buffer up: the landing's reference is
		 * what keeps the segment from being freed and lent again. */
		if (cqe->res > 0) {
			u->buf_used[bid] += (uint32_t)cqe->res;
			if (f)
				ps_land(ps, f, off, (uint32_t)cqe->res, 1);
		}
		if (!u->inc && cqe->res > 0)
			lend_rest(ps, u, bid, (uint32_t)cqe->res);
		else if (!u->inc || !(cqe->flags & IORING_CQE_F_BUF_MORE))
			buffer_done(ps, u, bid);
	}
	if (!f)
		return; /* cannot happen: detach waits for the final completion */
	if (!(cqe->flags & IORING_CQE_F_MORE))
		f->armed = false;

	if (cqe->res > 0) {
		/* A multishot receive may end early (e.g. CQ overflow): re-arm. */
		if (!f->armed && f->run == PS_RUN_ACTIVE && arm(ps, f))
			starve(ps, f);
	} else if (cqe->res == -ENOBUFS) {
		starve(ps, f);
		ps->space_pending = true; /* maybe the ring can be refilled now */
	} else if (cqe->res != -ECANCELED && f->run == PS_RUN_ACTIVE) {
		ps_land(ps, f, 0, 0, cqe->res);
	}
}

static void handle_cqe(struct pktstore *ps, struct uring_state *u, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);

	if (ud & UD_CANCEL)
		return;

	struct ps_flow *f = ps_flow_get(ps, ud & ~UD_HUP);

	if (ud & UD_HUP) {
		if (f)
			hangup_done(ps, f, cqe->res);
	} else {
		recv_done(ps, u, f, cqe);
	}
	if (f) /* what is posted for f changed: so does what the fd watches */
		ps_uring_watch(u->epfd, &u->watched[f->slot], f);
}

static unsigned reap(struct pktstore *ps, struct uring_state *u)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&u->ring, head, cqe) {
		handle_cqe(ps, u, cqe);
		n++;
	}
	io_uring_cq_advance(&u->ring, n);
	return n;
}

static int uring_poll(struct pktstore *ps, struct ps_flow *only, bool wait)
{
	struct uring_state *u = ps->be_state;
	uint64_t ignored;
	int ret;

	(void)only; /* one ring serves every flow */
	ret = enable(u);
	if (ret)
		return ret;
	/* Clear the hint before reaping, so a completion arriving meanwhile
	 * leaves the fd readable. */
	if (read(u->evfd, &ignored, sizeof(ignored)) < 0 && errno != EAGAIN)
		return -errno;
	ret = wait && !io_uring_cq_ready(&u->ring) ? io_uring_submit_and_wait(&u->ring, 1)
						    : io_uring_submit(&u->ring);
	/* Deferred completions run only when we enter the kernel. */
	if (!wait && u->deferred)
		io_uring_get_events(&u->ring);
	if (ret == -EINTR)
		return ret; /* like recv(2): a signal ends the wait */
	if (ret < 0 && ret != -EAGAIN && ret != -EBUSY)
		return ret;
	unsigned n = reap(ps, u);

	refill(ps);
	return (int)n;
}

static int uring_attach(struct pktstore *ps, struct ps_flow *f)
{
	struct uring_state *u = ps->be_state;

	if (!u->in_ring) {
		starve(ps, f); /* armed when space returns */
		return 0;
	}
	return arm(ps, f);
}

/*
 * What pktstore_fd() returns on the io_uring paths: an epoll set holding
 * the ring's eventfd, which the kernel signals when it posts completions,
 * and the socket of each flow with a receive posted (watched for data and
 * hang-up) or a hang-up poll (watched for that alone). The eventfd alone is
 * no truthful signal: with deferred task running the work for a socket
 * waits for our next io_uring_enter, and on some kernels (Linux 6.12) the
 * eventfd stays quiet meanwhile, so an event loop waiting on it moved only
 * on its own timeout. A socket is readable exactly while the kernel has
 * such work, run or not; the eventfd covers completions posted inside our
 * own enters that no poll reaped (a receive armed at attach finds bytes
 * waiting). A flow with nothing posted (starved with its hang-up reported,
 * ended, detached) leaves the set, so bytes left in its socket do not keep
 * the fd readable. Shared with recv_zcrx.c.
 */
int ps_uring_ready_init(struct io_uring *ring, int *epfd, int *evfd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	*epfd = epoll_create1(EPOLL_CLOEXEC);
	if (*epfd < 0)
		return -errno;
	*evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (*evfd < 0)
		return -errno;
	ret = io_uring_register_eventfd(ring, *evfd);
	if (ret)
		return ret;
	return epoll_ctl(*epfd, EPOLL_CTL_ADD, *evfd, &ev) ? -errno : 0;
}

void ps_uring_watch(int epfd, uint8_t *watched, struct ps_flow *f)
{
	uint8_t want = f->armed ? PS_WATCH_IN : f->hup_watch ? PS_WATCH_HUP : PS_WATCH_NONE;

	if (want == *watched)
		return;
	struct epoll_event ev = { .events = want == PS_WATCH_IN ? EPOLLIN | EPOLLRDHUP : EPOLLRDHUP,
				  .data.u64 = f->id };
	int op = *watched == PS_WATCH_NONE ? EPOLL_CTL_ADD
		 : want == PS_WATCH_NONE   ? EPOLL_CTL_DEL
					   : EPOLL_CTL_MOD;

	/* A failed add leaves it unwatched, to be tried again at the next
	 * change; a failed delete means the socket is gone already. */
	if (!epoll_ctl(epfd, op, f->fd, &ev) || op == EPOLL_CTL_DEL)
		*watched = want;
}

/*
 * Cancel f's multishot receive and reap until its final completion: the
 * completions already queued for f carry bytes taken from its socket, and
 * they become records before detach returns. Shared with recv_zcrx.c; the
 * cancel's own completion carries user_data UD_CANCEL.
 */
void ps_uring_cancel_flow(struct pktstore *ps, struct io_uring *ring, struct ps_flow *f,
			  unsigned (*reap_all)(struct pktstore *ps))
{
	struct io_uring_sqe *sqe;

	if (!f->armed && !f->hup_watch)
		return;
	/* The hang-up poll holds a reference to the socket: it must be gone
	 * before detach returns, or closing the fd would not close it. */
	for (int k = 0; k < 2; k++) {
		uint64_t ud = k ? f->id | UD_HUP : f->id;

		if (k ? !f->hup_watch : !f->armed)
			continue;
		while (!(sqe = io_uring_get_sqe(ring)))
			io_uring_submit_and_wait(ring, 1);
		io_uring_prep_cancel64(sqe, ud, 0);
		io_uring_sqe_set_data64(sqe, UD_CANCEL);
	}
	while (f->armed || f->hup_watch) {
		int ret = io_uring_submit_and_wait(ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			break;
		reap_all(ps);
	}
}

static unsigned reap_store(struct pktstore *ps)
{
	return reap(ps, ps->be_state);
}

static void uring_detach(struct pktstore *ps, struct ps_flow *f)
{
	struct uring_state *u = ps->be_state;

	ps_uring_cancel_flow(ps, &u->ring, f, reap_store);
	ps_uring_watch(u->epfd, &u->watched[f->slot], f);
	refill(ps);
}

static int uring_fd(struct pktstore *ps)
{
	return ((struct uring_state *)ps->be_state)->epfd;
}

static void uring_fini(struct pktstore *ps)
{
	struct uring_state *u = ps->be_state;

	if (!u)
		return;
	if (u->ring.ring_fd >= 0)
		io_uring_queue_exit(&u->ring);
	if (u->br)
		munmap(u->br, u->br_bytes);
	if (u->evfd >= 0)
		close(u->evfd);
	if (u->epfd >= 0)
		close(u->epfd);
	free(u->watched);
	free(u->buf_off);
	free(u->buf_size);
	free(u->buf_used);
	free(u->free_bids);
	free(u->seg_out);
	free(u);
	ps->be_state = NULL;
}

static int setup(struct pktstore *ps, bool inc)
{
	struct uring_state *u = calloc(1, sizeof(*u));
	/*
	 * Deferred task running (Linux 6.1): the kernel completes receives when
	 * the receiving thread next enters it instead of interrupting it, which
	 * on a busy server is the difference between fighting the network
	 * stack for the socket lock and batching (3x the requests at 16
	 * loopback connections in bench/). The ring's eventfd is then no
	 * truthful signal (on Linux 6.12 it stays quiet until the enter that
	 * runs the work), so pktstore_fd() watches the sockets as well
	 * (ps_uring_ready_init()). It binds the ring to one thread: the ring starts disabled and the
	 * first thread that attaches or receives enables it and becomes the
	 * store's receiving thread. Older kernels refuse the flags: retry
	 * without them.
	 */
	struct io_uring_params p = {
		.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
		.cq_entries = 4096,
	};
	int ret;

	if (!u)
		return -ENOMEM;
	ps->be_state = u;
	u->ring.ring_fd = -1;
	u->evfd = -1;
	u->epfd = -1;
	u->inc = inc;
	u->chop_seg = -1;

	ret = io_uring_queue_init_params(256, &u->ring, &p);
	u->deferred = !ret;
	if (ret == -EINVAL) {
		p = (struct io_uring_params){ .flags = IORING_SETUP_CQSIZE, .cq_entries = 4096 };
		ret = io_uring_queue_init_params(256, &u->ring, &p);
	}
	if (ret) {
		u->ring.ring_fd = -1;
		snprintf(ps->fallback, sizeof(ps->fallback), "io_uring_setup: %s", strerror(-ret));
		return ret;
	}
	/* Multishot recv arrived in Linux 6.0 together with SEND_ZC, which
	 * the opcode probe can see; multishot itself it cannot. */
	struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
	bool has_multishot = probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);

	io_uring_free_probe(probe);
	if (!has_multishot) {
		snprintf(ps->fallback, sizeof(ps->fallback),
			 "kernel lacks io_uring multishot recv (Linux 6.0)");
		return -EOPNOTSUPP;
	}

	if (inc) {
		u->buf_len = ps->seg.size;
		u->window = (unsigned)(ps->seg.n / 4 < WINDOW_SEGS ? ps->seg.n / 4 : WINDOW_SEGS);
	} else {
		u->buf_len = ps->seg.size < FIXED_CHUNK ? ps->seg.size : FIXED_CHUNK;
		uint64_t chunks = ps->seg.n / 4 * (ps->seg.size / u->buf_len);

		u->window = (unsigned)(chunks < FIXED_WINDOW ? chunks : FIXED_WINDOW);
		u->seg_out = calloc(ps->seg.n, sizeof(*u->seg_out));
		if (!u->seg_out)
			return -ENOMEM;
	}
	if (!u->window)
		u->window = 1;
	for (u->entries = 1; u->entries < u->window; u->entries <<= 1)
		;
	u->buf_off = calloc(u->entries, sizeof(*u->buf_off));
	u->buf_size = calloc(u->entries, sizeof(*u->buf_size));
	u->buf_used = calloc(u->entries, sizeof(*u->buf_used));
	u->free_bids = calloc(u->entries, sizeof(*u->free_bids));
	if (!u->buf_off || !u->buf_size || !u->buf_used || !u->free_bids)
		return -ENOMEM;
	for (unsigned i = 0; i < u->entries; i++)
		u->free_bids[u->nfree_bids++] = (uint16_t)(u->entries - 1 - i);

	u->br_bytes = (u->entries * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
	u->br = mmap(NULL, u->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		     0);
	if (u->br == MAP_FAILED) {
		u->br = NULL;
		return -ENOMEM;
	}
	io_uring_buf_ring_init(u->br);

	struct io_uring_buf_reg reg = {
		.ring_addr = (uintptr_t)u->br,
		.ring_entries = u->entries,
		.bgid = BGID,
	};
	if (inc)
		ps_buf_reg_set_flags(&reg, PS_IOU_PBUF_RING_INC);
	ret = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (ret) {
		snprintf(ps->fallback, sizeof(ps->fallback), "%s",
			 inc && ret == -EINVAL
				 ? "kernel lacks incremental buffer consumption (Linux 6.12)"
				 : "io_uring buffer ring registration failed");
		return ret;
	}

	u->watched = calloc(ps->max_flows, sizeof(*u->watched));
	if (!u->watched)
		return -ENOMEM;
	ret = ps_uring_ready_init(&u->ring, &u->epfd, &u->evfd);
	if (ret)
		return ret;
	refill(ps);
	return 0;
}

static int init_inc(struct pktstore *ps)
{
	return setup(ps, true);
}

static int init_fixed(struct pktstore *ps)
{
	return setup(ps, false);
}

const struct ps_backend_ops ps_backend_uring_inc = {
	.name = "uring-inc",
	.path = PKTSTORE_PATH_URING_INC,
	.init = init_inc,
	.fini = uring_fini,
	.attach = uring_attach,
	.detach = uring_detach,
	.poll = uring_poll,
	.space_freed = uring_space_freed,
	.fd = uring_fd,
};

const struct ps_backend_ops ps_backend_uring_fixed = {
	.name = "uring-fixed",
	.path = PKTSTORE_PATH_URING_FIXED,
	.init = init_fixed,
	.fini = uring_fini,
	.attach = uring_attach,
	.detach = uring_detach,
	.poll = uring_poll,
	.space_freed = uring_space_freed,
	.fd = uring_fd,
};
