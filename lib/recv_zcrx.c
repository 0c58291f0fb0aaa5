/* SPDX-License-Identifier: MIT */
/*
 * recv_zcrx.c - io_uring zero-copy receive (Linux 6.15+): the NIC writes TCP
 * payload by DMA straight into a registered area, and completions name
 * where. When the area is a run of the arena's own segments (memory the
 * kernel can pin: tmpfs, memfd, devdax), a completion already is a record's
 * bytes and no CPU copies anything. An arena on fsdax or a regular file
 * cannot be pinned: then the area is private memory and each completion is
 * copied into the arena once.
 *
 * A buffer goes back to the kernel through the refill ring when the record
 * holding it is released (in place), or right after its copy. If every
 * buffer is held by a record, the NIC queue runs dry and TCP retransmits:
 * nothing acknowledged is lost, the sender waits.
 *
 * Needs CAP_NET_ADMIN, a NIC rx queue with header/data split and a flow
 * steering rule sending the flows there (pktstore(7)); any failure to set it
 * up is reported and the store falls back to the buffer-ring path.
 */
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "recv_zcrx.h"

#define ZCRX_RQ_ENTRIES 4096u
#define ZCRX_COPY_AREA (16u << 20) /* private area when the arena cannot be pinned */

int ps_zcrx_parse(const char *spec, char *ifname, unsigned *rxq)
{
	const char *colon = spec ? strrchr(spec, ':') : NULL;
	char *end;

	if (!colon || colon == spec || (size_t)(colon - spec) >= IF_NAMESIZE || !colon[1])
		return -EINVAL;
	unsigned long q = strtoul(colon + 1, &end, 10);

	if (*end || q > 0xffff)
		return -EINVAL;
	memcpy(ifname, spec, (size_t)(colon - spec));
	ifname[colon - spec] = '\0';
	*rxq = (unsigned)q;
	return 0;
}

/* Long-term pinning works for shmem and device memory, not for page cache
 * of a disk file system (it refuses fsdax and ext4 mappings). */
static bool arena_pinnable(const struct zcrx_state *z)
{
	struct statfs fs;
	struct stat st;

	if (fstat(z->ar.fd, &st) == 0 && S_ISCHR(st.st_mode))
		return true; /* device DAX */
	return fstatfs(z->ar.fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

int ps_zcrx_area_setup(struct pktstore *ps, struct zcrx_state *z, bool in_place, uint64_t len)
{
	ps_be_arena(ps, &z->ar);
	z->in_place = in_place;
	if (in_place) {
		/* Half the segments at most: appends need room too. */
		uint64_t max = z->ar.nsegs / 2 ? z->ar.nsegs / 2 : 1;
		int64_t first = ps_be_seg_take_run(ps, max, &z->nsegs);

		if (first < 0)
			return -ENOSPC;
		z->seg_first = (uint64_t)first;
		z->area_arena_off = z->ar.data_off + z->seg_first * z->ar.seg_size;
		z->area = z->ar.base + z->area_arena_off;
		z->area_len = z->nsegs * z->ar.seg_size;
		return 0;
	}
	z->area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (z->area == MAP_FAILED) {
		z->area = NULL;
		return -ENOMEM;
	}
	z->area_len = len;
	return 0;
}

void ps_zcrx_rq_attach(struct zcrx_state *z, void *mem, uint32_t entries, uint32_t head_off,
		       uint32_t tail_off, uint32_t rqes_off)
{
	z->khead = (uint32_t *)((char *)mem + head_off);
	z->ktail = (uint32_t *)((char *)mem + tail_off);
	z->rqes = (struct ps_zcrx_rqe *)((char *)mem + rqes_off);
	z->rq_entries = entries;
	z->rq_tail = IO_URING_READ_ONCE(*z->ktail);
}

static bool rq_push(struct zcrx_state *z, uint64_t off, uint32_t len)
{
	uint32_t head = io_uring_smp_load_acquire(z->khead);

	if (z->rq_tail - head >= z->rq_entries)
		return false;
	struct ps_zcrx_rqe *e = &z->rqes[z->rq_tail & (z->rq_entries - 1)];

	e->off = off | z->token;
	e->len = len;
	e->__pad = 0;
	z->rq_tail++;
	io_uring_smp_store_release(z->ktail, z->rq_tail);
	return true;
}

void ps_zcrx_flush_backlog(struct zcrx_state *z)
{
	size_t i = 0;

	if (!z->nbacklog)
		return;

	while (i < z->nbacklog && rq_push(z, z->backlog[i].off, z->backlog[i].len))
		i++;
	memmove(z->backlog, z->backlog + i, (z->nbacklog - i) * sizeof(*z->backlog));
	z->nbacklog -= i;
}

void ps_zcrx_give_back(struct zcrx_state *z, uint64_t off, uint32_t len)
{
	if (!z->nbacklog && rq_push(z, off, len))
		return;
	/* The refill ring is full: keep the order, retry at the next poll. */
	if (z->nbacklog == z->backlog_cap) {
		size_t cap = z->backlog_cap ? z->backlog_cap * 2 : 256;
		struct ps_zcrx_rqe *b = realloc(z->backlog, cap * sizeof(*b));

		if (!b)
			return; /* the buffer stays with us; the kernel has others */
		z->backlog = b;
		z->backlog_cap = cap;
	}
	z->backlog[z->nbacklog++] = (struct ps_zcrx_rqe){ .off = off, .len = len };
}

static void prep_recv(struct ps_ring *r, struct io_uring_sqe *sqe, int fd)
{
	struct zcrx_state *z = (struct zcrx_state *)r;

	io_uring_prep_rw(PS_IORING_OP_RECV_ZC, sqe, fd, NULL, 0, 0);
	sqe->ioprio |= IORING_RECV_MULTISHOT;
	sqe->file_index = z->zcrx_id; /* the uapi's zcrx_ifq_idx shares this word */
}

/* Copy a completion's bytes into bump space and land them: -ENOSPC when
 * there is none. */
static int copy_in(struct pktstore *ps, struct zcrx_state *z, struct ps_flow *f, uint64_t off,
		   uint32_t len)
{
	uint64_t dst;
	uint32_t avail;

	if (!ps_be_can_record(ps) || ps_be_bump_reserve(ps, len, &dst, &avail))
		return -ENOSPC;
	memcpy(z->ar.base + dst, z->area + off, len);
	ps_be_bump_commit(ps, len);
	ps_land(ps, f, dst, len, 1);
	ps_zcrx_give_back(z, off, len);
	return 0;
}

static bool flow_waits(const struct zcrx_state *z, const struct ps_flow *f)
{
	for (size_t i = 0; i < z->nwaits; i++)
		if (z->waits[i].flow == ps_flow_id(f))
			return true;
	return false;
}

static void wait_for_space(struct pktstore *ps, struct zcrx_state *z, struct ps_flow *f,
			   uint64_t off, uint32_t len, int status)
{
	if (z->nwaits == z->waits_cap) {
		size_t cap = z->waits_cap ? z->waits_cap * 2 : 64;
		struct zcrx_wait *w = realloc(z->waits, cap * sizeof(*w));

		if (!w) {
			/* Out of memory: the bytes are lost, but not the buffer. */
			z->bad_completions++;
			if (status > 0)
				ps_zcrx_give_back(z, off, len);
			return;
		}
		z->waits = w;
		z->waits_cap = cap;
	}
	z->waits[z->nwaits++] = (struct zcrx_wait){ .flow = ps_flow_id(f), .off = off,
						    .len = len, .status = status };
	if (status > 0)
		ps_flow_starve(ps, f, true);
}

void ps_zcrx_complete(struct pktstore *ps, struct zcrx_state *z, struct ps_flow *f, int res,
		      uint32_t cqe_flags, uint64_t zc_off)
{
	(void)cqe_flags;
	if (res > 0) {
		uint64_t off = zc_off & ~PS_IORING_ZCRX_AREA_MASK;

		if ((zc_off & PS_IORING_ZCRX_AREA_MASK) != z->token || off > z->area_len ||
		    (uint64_t)res > z->area_len - off ||
		    (z->in_place &&
		     ps_be_seg_of(ps, z->area_arena_off + off) !=
			     ps_be_seg_of(ps, z->area_arena_off + off + (uint64_t)res - 1))) {
			/* Not a buffer of our area: never trust it as data. */
			z->bad_completions++;
			return;
		}
		if (z->in_place) {
			ps_land(ps, f, z->area_arena_off + off, (uint32_t)res, 1);
			return; /* its buffer goes back when its record is released */
		}
		/* The one copy of copy mode. A full arena keeps the bytes in
		 * their buffer until space returns (the NIC runs out of
		 * buffers meanwhile and TCP holds the rest back). */
		if (z->nwaits || copy_in(ps, z, f, off, (uint32_t)res))
			wait_for_space(ps, z, f, off, (uint32_t)res, 1);
	} else if (res == -ENOSPC) {
		/* The multishot receive ran out of room and ended: re-arm once
		 * buffers come back. */
		ps_flow_starve(ps, f, true);
	} else if (res != -ECANCELED && ps_flow_receiving(f)) {
		if (flow_waits(z, f))
			wait_for_space(ps, z, f, 0, 0, res); /* after its bytes */
		else
			ps_land(ps, f, 0, 0, res);
	}
}

void ps_zcrx_flush_waits(struct pktstore *ps, struct zcrx_state *z)
{
	size_t i = 0;

	if (!z->nwaits)
		return;
	for (; i < z->nwaits; i++) {
		const struct zcrx_wait *w = &z->waits[i];
		struct ps_flow *f = ps_be_flow(ps, w->flow);

		if (!f) {
			if (w->status > 0)
				ps_zcrx_give_back(z, w->off, w->len); /* cannot happen: detach drops */
			continue;
		}
		if (w->status <= 0)
			ps_land(ps, f, 0, 0, w->status);
		else if (copy_in(ps, z, f, w->off, w->len))
			break;
	}
	memmove(z->waits, z->waits + i, (z->nwaits - i) * sizeof(*z->waits));
	z->nwaits -= i;
}

/* Detach: f's waiting bytes cannot land any more; their buffers go back. */
static void drop_waits(struct zcrx_state *z, const struct ps_flow *f)
{
	size_t k = 0;

	for (size_t i = 0; i < z->nwaits; i++) {
		if (z->waits[i].flow != ps_flow_id(f))
			z->waits[k++] = z->waits[i];
		else if (z->waits[i].status > 0)
			ps_zcrx_give_back(z, z->waits[i].off, z->waits[i].len);
	}
	z->nwaits = k;
}

static struct zcrx_state *state(struct pktstore *ps)
{
	return ps_be_state(ps);
}

static void zcrx_released(struct pktstore *ps, uint64_t data_off, uint32_t len)
{
	struct zcrx_state *z = state(ps);

	if (z->in_place && data_off >= z->area_arena_off &&
	    data_off < z->area_arena_off + z->area_len)
		ps_zcrx_give_back(z, data_off - z->area_arena_off, len);
}

/* The ring's on_recv: a 32-byte RECV_ZC completion. */
static void recv_done(struct pktstore *ps, struct ps_flow *f, const struct io_uring_cqe *cqe)
{
	struct zcrx_state *z = state(ps);
	const struct ps_zcrx_cqe *zc = (const void *)cqe->big_cqe;

	if (!f)
		return;
	ps_zcrx_complete(ps, z, f, cqe->res, cqe->flags, zc->off);
	if (ps_flow_starved(f) && !ps_ring_flow(&z->r, f)->armed)
		ps_ring_starve(&z->r, f); /* watch for its hang-up meanwhile */
}

/* A starved flow: buffers came back, or space. */
static int zcrx_resume(struct pktstore *ps, struct ps_flow *f)
{
	struct zcrx_state *z = state(ps);

	if (flow_waits(z, f))
		return -ENOSPC; /* its bytes still wait to be copied */
	return ps_ring_flow(&z->r, f)->armed ? 0 : ps_ring_arm(&z->r, f);
}

static void zcrx_space_freed(struct pktstore *ps)
{
	ps_zcrx_flush_backlog(state(ps));
	ps_zcrx_flush_waits(ps, state(ps));
	ps_resume_starved(ps);
}

static int zcrx_poll(struct pktstore *ps, struct ps_flow *only, bool wait)
{
	struct zcrx_state *z = state(ps);

	(void)only;
	ps_zcrx_flush_backlog(z);
	ps_zcrx_flush_waits(ps, z);
	return ps_ring_poll(&z->r, wait);
}

static int zcrx_attach(struct pktstore *ps, struct ps_flow *f)
{
	return ps_ring_arm(&state(ps)->r, f);
}

static void zcrx_detach(struct pktstore *ps, struct ps_flow *f)
{
	ps_ring_cancel(&state(ps)->r, f);
	ps_zcrx_flush_waits(ps, state(ps)); /* what space allows still lands */
	drop_waits(state(ps), f);
}

static int zcrx_send(struct pktstore *ps, struct ps_flow *f, const struct iovec *iov,
		      unsigned iovcnt, size_t len, unsigned flags)
{
	return ps_ring_send(&state(ps)->r, f, iov, iovcnt, len, flags);
}

static int zcrx_watch(struct pktstore *ps, unsigned i, int fd, bool on)
{
	return ps_ring_watch(&state(ps)->r, i, fd, on);
}

static int zcrx_fd(struct pktstore *ps)
{
	return ps_ring_fd(&state(ps)->r);
}

static void zcrx_fini(struct pktstore *ps)
{
	struct zcrx_state *z = state(ps);

	if (!z)
		return;
	ps_ring_fini(&z->r);
	if (z->rq_mem)
		munmap(z->rq_mem, z->rq_bytes);
	if (z->area && !z->in_place)
		munmap(z->area, z->area_len);
	if (z->area && z->in_place && !z->zcrx_live)
		ps_be_seg_give_run(ps, z->seg_first, z->nsegs); /* setup failed: nothing landed */
	free(z->backlog);
	free(z->waits);
	free(z);
	ps_be_set_state(ps, NULL);
}

static int fail(struct pktstore *ps, int ret, const char *why)
{
	struct zcrx_state *z = state(ps);

	ps_be_fallback(ps, "%s:%u: %.56s: %.24s", z->ifname, z->rxq, why, strerror(-ret));
	return ret;
}

/* The NIC queue asked for, "IFNAME:QUEUE": the open's option, else
 * PKTSTORE_ZCRX; NULL when neither names one. */
static const char *queue_spec(struct pktstore *ps)
{
	const struct pktstore_opts *o = ps_be_opts(ps);
	const char *spec = o && o->zcrx ? o->zcrx : getenv("PKTSTORE_ZCRX");

	return spec && *spec ? spec : NULL;
}

/* Zero-copy receive needs a NIC queue named: without one it is not tried,
 * and asked for by name the open is invalid. */
static int zcrx_probe(struct pktstore *ps)
{
	return queue_spec(ps) ? 0 : -EINVAL;
}

/* The refill ring in our memory: the kernel reports where head, tail and
 * entries sit in it. */
static int map_refill_ring(struct zcrx_state *z)
{
	z->rq_bytes = 4096 + (size_t)ZCRX_RQ_ENTRIES * sizeof(struct ps_zcrx_rqe);
	z->rq_mem = mmap(NULL, z->rq_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	if (z->rq_mem == MAP_FAILED) {
		z->rq_mem = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Hand the NIC queue, the area and the refill ring to the kernel. */
static int register_ifq(struct pktstore *ps, struct zcrx_state *z, unsigned if_idx)
{
	struct ps_zcrx_area_reg area = { .addr = (uintptr_t)z->area, .len = z->area_len };
	struct ps_region_desc region = {
		.user_addr = (uintptr_t)z->rq_mem,
		.size = z->rq_bytes,
		.flags = PS_IORING_MEM_REGION_TYPE_USER,
	};
	struct ps_zcrx_ifq_reg reg = {
		.if_idx = if_idx,
		.if_rxq = z->rxq,
		.rq_entries = ZCRX_RQ_ENTRIES,
		.area_ptr = (uintptr_t)&area,
		.region_ptr = (uintptr_t)&region,
	};
	int ret = (int)syscall(__NR_io_uring_register, z->r.ring.ring_fd,
			       PS_IORING_REGISTER_ZCRX_IFQ, &reg, 1);

	if (ret < 0) {
		ret = -errno;
		return fail(ps, ret,
			    ret == -EPERM    ? "registration needs CAP_NET_ADMIN"
			    : ret == -EINVAL ? "registration refused (kernel before 6.15?)"
			    : ret == -EFAULT ? "area cannot be pinned"
					     : "NIC queue refused (no header/data split?)");
	}
	z->zcrx_live = true;
	z->token = area.rq_area_token;
	z->zcrx_id = reg.zcrx_id;
	ps_zcrx_rq_attach(z, z->rq_mem, reg.rq_entries, reg.offsets.head, reg.offsets.tail,
			  reg.offsets.rqes);
	return 0;
}

static int zcrx_init(struct pktstore *ps)
{
	/* 32-byte completions and a ring bound to one thread (the kernel
	 * demands deferred task running for zcrx); the ring starts enabled. */
	static const struct ps_ring_setup rs = {
		.flags = IORING_SETUP_CQE32, .must_defer = true, .start_enabled = true
	};
	struct zcrx_state *z = calloc(1, sizeof(*z));
	const char *spec = queue_spec(ps);
	int ret;

	if (!z)
		return -ENOMEM;
	ps_be_set_state(ps, z);
	ps_be_arena(ps, &z->ar);
	z->r.epfd = z->r.evfd = -1;
	z->r.prep_recv = prep_recv;
	z->r.on_recv = recv_done;
	if (ps_zcrx_parse(spec, z->ifname, &z->rxq)) {
		ps_be_fallback(ps, "bad zcrx interface:queue '%.40s'", spec ? spec : "");
		return -EINVAL;
	}
	unsigned if_idx = if_nametoindex(z->ifname);

	if (!if_idx)
		return fail(ps, -ENODEV, "no such interface");
	ret = ps_ring_init(&z->r, ps, &rs);
	if (ret)
		return fail(ps, ret, "io_uring setup (needs Linux 6.1+)");

	bool in_place = arena_pinnable(z);

	ret = ps_zcrx_area_setup(ps, z, in_place, ZCRX_COPY_AREA);
	if (ret)
		return fail(ps, ret, "no area");
	ret = map_refill_ring(z);
	if (!ret)
		ret = register_ifq(ps, z, if_idx);
	if (!ret)
		ret = ps_ring_ready(&z->r);
	if (ret)
		return ret;
	if (!in_place)
		ps_be_fallback(ps, "arena cannot be pinned: zcrx into a private area, one copy");
	return 0;
}

const struct ps_backend_ops ps_backend_zcrx = {
	.name = "zcrx",
	.path = PKTSTORE_PATH_ZCRX,
	.probe = zcrx_probe,
	.init = zcrx_init,
	.fini = zcrx_fini,
	.attach = zcrx_attach,
	.detach = zcrx_detach,
	.poll = zcrx_poll,
	.space_freed = zcrx_space_freed,
	.resume = zcrx_resume,
	.fd = zcrx_fd,
	.send = zcrx_send,
	.watch = zcrx_watch,
	.released = zcrx_released,
};
