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
#include <stdlib.h>
#include <sys/mman.h>

#include "uring_ring.h"

#define BGID 0
#define FIXED_CHUNK (16u * 1024)
#define WINDOW_SEGS 4u           /* segments lent to the kernel at most */
#define FIXED_WINDOW 256u        /* chunks lent at most */
#define CACHELINE 64u            /* a lent rest starts on a line of its own */

struct uring_state {
	struct ps_ring r;      /* first: the ring's callbacks get back here */
	struct ps_be_arena ar;
	bool inc;
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
	unsigned segs_out;     /* fixed: segments with chunks lent or left to lend */
	unsigned segs_max;     /* ... at most this many */
};

static struct uring_state *state(struct pktstore *ps)
{
	return ps_be_state(ps);
}

static void prep_recv(struct ps_ring *r, struct io_uring_sqe *sqe, int fd)
{
	(void)r;
	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
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
	int64_t s = ps_be_seg_take_tail(ps, TAIL_MIN, &start);

	if (s < 0)
		return false;
	*off = u->ar.data_off + (uint64_t)s * u->ar.seg_size + start;
	*len = u->ar.seg_size - start;
	if (!u->inc) {
		u->seg_out[s]++;
		u->segs_out++;
	}
	return true;
}

/* Next buffer to lend: a whole segment (inc) or the next chunk of one, else
 * a sealed segment's tail. */
static bool next_buffer(struct pktstore *ps, struct uring_state *u, uint64_t *off,
			uint32_t *len)
{
	*len = u->buf_len;
	if (u->inc) {
		int64_t s = ps_be_seg_take(ps);

		if (s < 0)
			return tail_buffer(ps, u, off, len);
		*off = u->ar.data_off + (uint64_t)s * u->ar.seg_size;
		return true;
	}
	if (u->chop_seg < 0) {
		/* Rests go back at the end of the ring, so the segments whose
		 * chunks are out finish in no particular order: without this
		 * bound the lent bytes would spread over every segment, none
		 * could be sealed and freed, and released space would never
		 * come back. */
		if (u->segs_out >= u->segs_max)
			return false;
		u->chop_seg = ps_be_seg_take(ps);
		u->chop_next = 0;
		if (u->chop_seg < 0)
			return tail_buffer(ps, u, off, len);
		u->segs_out++;
	}
	uint64_t s = (uint64_t)u->chop_seg;

	*off = u->ar.data_off + s * u->ar.seg_size + (uint64_t)u->chop_next * u->buf_len;
	u->seg_out[s]++;
	if (++u->chop_next == u->ar.seg_size / u->buf_len)
		u->chop_seg = -1;
	return true;
}

/* Lend the buffer at off as buffer id bid. */
static void lend(struct uring_state *u, uint16_t bid, uint64_t off, uint32_t len, int idx)
{
	u->buf_off[bid] = off;
	u->buf_size[bid] = len;
	u->buf_used[bid] = 0;
	io_uring_buf_ring_add(u->br, u->ar.base + off, len, bid,
			      io_uring_buf_ring_mask(u->entries), idx);
	u->in_ring++;
}

static void refill(struct pktstore *ps)
{
	struct uring_state *u = state(ps);
	int added = 0;
	uint64_t off;
	uint32_t len;

	/* Without descriptors the bytes could not become records; keep them
	 * in the socket instead. */
	while (u->in_ring < u->window && u->nfree_bids && ps_be_can_record(ps) &&
	       next_buffer(ps, u, &off, &len))
		lend(u, u->free_bids[--u->nfree_bids], off, len, added++);
	if (added)
		io_uring_buf_ring_advance(u->br, added);
}

/* A starved flow may receive once buffers are lent again. */
static int uring_resume(struct pktstore *ps, struct ps_flow *f)
{
	struct uring_state *u = state(ps);

	refill(ps);
	if (!u->in_ring)
		return -ENOBUFS;
	return ps_flow_receiving(f) && !ps_ring_flow(&u->r, f)->armed ? ps_ring_arm(&u->r, f) : 0;
}

static void uring_space_freed(struct pktstore *ps)
{
	refill(ps);
	ps_resume_starved(ps);
}

/* The kernel is done with buffer bid. */
static void buffer_done(struct pktstore *ps, struct uring_state *u, uint16_t bid)
{
	uint64_t seg = ps_be_seg_of(ps, u->buf_off[bid]);

	u->in_ring--;
	u->free_bids[u->nfree_bids++] = bid;
	if (u->inc) {
		ps_be_seg_seal(ps, seg);
	} else if (--u->seg_out[seg] == 0 && (int64_t)seg != u->chop_seg) {
		u->segs_out--;
		ps_be_seg_seal(ps, seg);
	}
}

/* Smallest rest of a fixed buffer worth lending again. */
#define REST_MIN 512u

/*
 * A fixed buffer that took `res` bytes: its rest, from the next cache line
 * on, goes back to the kernel as a buffer of its own (a provided buffer can
 * be any extent), unless it is too short or no descriptor is left for the
 * bytes it would take. The segment stays out meanwhile.
 */
static void lend_rest(struct pktstore *ps, struct uring_state *u, uint16_t bid, uint32_t res)
{
	uint32_t used = (res + CACHELINE - 1) & ~(CACHELINE - 1);
	uint64_t off = u->buf_off[bid] + used;
	uint32_t rest = used < u->buf_size[bid] ? u->buf_size[bid] - used : 0;
	uint64_t seg = ps_be_seg_of(ps, u->buf_off[bid]);

	if (rest < REST_MIN || !ps_be_can_record(ps)) {
		buffer_done(ps, u, bid);
		return;
	}
	u->seg_out[seg]++;
	buffer_done(ps, u, bid); /* gives a buffer id back for the rest */
	lend(u, u->free_bids[--u->nfree_bids], off, rest, 0);
	io_uring_buf_ring_advance(u->br, 1);
}

/* A completion of f's multishot receive (the ring's on_recv). */
static void recv_done(struct pktstore *ps, struct ps_flow *f, const struct io_uring_cqe *cqe)
{
	struct uring_state *u = state(ps);

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

	bool armed = ps_ring_flow(&u->r, f)->armed;

	if (cqe->res > 0) {
		/* A multishot receive may end early (e.g. CQ overflow): re-arm. */
		if (!armed && ps_flow_receiving(f) && ps_ring_arm(&u->r, f))
			ps_ring_starve(&u->r, f);
	} else if (cqe->res == -ENOBUFS) {
		ps_ring_starve(&u->r, f);
		ps_be_space_pending(ps); /* maybe the ring can be refilled now */
	} else if (cqe->res != -ECANCELED && ps_flow_receiving(f)) {
		ps_land(ps, f, 0, 0, cqe->res);
	}
}

static int uring_poll(struct pktstore *ps, struct ps_flow *only, bool wait)
{
	(void)only; /* one ring serves every flow */
	int ret = ps_ring_poll(&state(ps)->r, wait);

	if (ret >= 0)
		refill(ps);
	return ret;
}

static int uring_attach(struct pktstore *ps, struct ps_flow *f)
{
	struct uring_state *u = state(ps);

	if (!u->in_ring) {
		ps_ring_starve(&u->r, f); /* armed when space returns */
		return 0;
	}
	return ps_ring_arm(&u->r, f);
}

static void uring_detach(struct pktstore *ps, struct ps_flow *f)
{
	ps_ring_cancel(&state(ps)->r, f);
	refill(ps);
}

static int uring_send(struct pktstore *ps, struct ps_flow *f, const struct iovec *iov,
		      unsigned iovcnt, size_t len, unsigned flags)
{
	return ps_ring_send(&state(ps)->r, f, iov, iovcnt, len, flags);
}

static int uring_watch(struct pktstore *ps, unsigned i, int fd, bool on)
{
	return ps_ring_watch(&state(ps)->r, i, fd, on);
}

static int uring_fd(struct pktstore *ps)
{
	return ps_ring_fd(&state(ps)->r);
}

static void uring_fini(struct pktstore *ps)
{
	struct uring_state *u = state(ps);

	if (!u)
		return;
	ps_ring_fini(&u->r);
	if (u->br)
		munmap(u->br, u->br_bytes);
	free(u->buf_off);
	free(u->buf_size);
	free(u->buf_used);
	free(u->free_bids);
	free(u->seg_out);
	free(u);
	ps_be_set_state(ps, NULL);
}

/* Multishot recv arrived in Linux 6.0 together with SEND_ZC, which the
 * opcode probe can see; multishot itself it cannot. */
static int check_multishot(struct pktstore *ps, struct uring_state *u)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(&u->r.ring);
	bool has_multishot = probe && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);

	io_uring_free_probe(probe);
	if (has_multishot)
		return 0;
	ps_be_fallback(ps, "kernel lacks io_uring multishot recv (Linux 6.0)");
	return -EOPNOTSUPP;
}

/* How many buffers are lent at most, and how long they are: the same
 * number of segments on both shapes, a quarter of them and no more than
 * WINDOW_SEGS, so appends keep room. */
static int size_window(struct uring_state *u)
{
	unsigned segs = (unsigned)(u->ar.nsegs / 4 < WINDOW_SEGS ? u->ar.nsegs / 4 : WINDOW_SEGS);

	if (!segs)
		segs = 1;
	if (u->inc) {
		u->buf_len = u->ar.seg_size;
		u->window = segs;
	} else {
		u->buf_len = u->ar.seg_size < FIXED_CHUNK ? u->ar.seg_size : FIXED_CHUNK;
		uint64_t chunks = (uint64_t)segs * (u->ar.seg_size / u->buf_len);

		u->segs_max = segs;
		u->window = (unsigned)(chunks < FIXED_WINDOW ? chunks : FIXED_WINDOW);
		u->seg_out = calloc(u->ar.nsegs, sizeof(*u->seg_out));
		if (!u->seg_out)
			return -ENOMEM;
	}
	if (!u->window)
		u->window = 1;
	for (u->entries = 1; u->entries < u->window; u->entries <<= 1)
		;
	return 0;
}

/* The bookkeeping of buffer ids, all free. */
static int alloc_bids(struct uring_state *u)
{
	u->buf_off = calloc(u->entries, sizeof(*u->buf_off));
	u->buf_size = calloc(u->entries, sizeof(*u->buf_size));
	u->buf_used = calloc(u->entries, sizeof(*u->buf_used));
	u->free_bids = calloc(u->entries, sizeof(*u->free_bids));
	if (!u->buf_off || !u->buf_size || !u->buf_used || !u->free_bids)
		return -ENOMEM;
	for (unsigned i = 0; i < u->entries; i++)
		u->free_bids[u->nfree_bids++] = (uint16_t)(u->entries - 1 - i);
	return 0;
}

/* The provided-buffer ring in our memory, registered; incremental
 * consumption where asked (Linux 6.12 accepts the flag). */
static int register_buf_ring(struct pktstore *ps, struct uring_state *u)
{
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
	if (u->inc)
		ps_buf_reg_set_flags(&reg, PS_IOU_PBUF_RING_INC);
	int ret = io_uring_register_buf_ring(&u->r.ring, &reg, 0);

	if (ret)
		ps_be_fallback(ps, "%s",
			       u->inc && ret == -EINVAL
				       ? "kernel lacks incremental buffer consumption (Linux 6.12 or later)"
				       : "io_uring buffer ring registration failed");
	return ret;
}

static int setup(struct pktstore *ps, bool inc)
{
	static const struct ps_ring_setup rs = { .send_from_arena = true };
	struct uring_state *u = calloc(1, sizeof(*u));
	int ret;

	if (!u)
		return -ENOMEM;
	ps_be_set_state(ps, u);
	ps_be_arena(ps, &u->ar);
	u->inc = inc;
	u->chop_seg = -1;
	u->r.prep_recv = prep_recv;
	u->r.on_recv = recv_done;
	ret = ps_ring_init(&u->r, ps, &rs);
	if (!ret)
		ret = check_multishot(ps, u);
	if (!ret)
		ret = size_window(u);
	if (!ret)
		ret = alloc_bids(u);
	if (!ret)
		ret = register_buf_ring(ps, u);
	if (!ret)
		ret = ps_ring_ready(&u->r);
	if (!ret)
		refill(ps);
	return ret;
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
	.resume = uring_resume,
	.fd = uring_fd,
	.send = uring_send,
	.watch = uring_watch,
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
	.resume = uring_resume,
	.fd = uring_fd,
	.send = uring_send,
	.watch = uring_watch,
};
