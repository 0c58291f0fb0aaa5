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
#include <sys/eventfd.h>
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
static bool arena_pinnable(const struct pktstore *ps)
{
	struct statfs fs;
	struct stat st;

	if (fstat(ps->a.fd, &st) == 0 && S_ISCHR(st.st_mode))
		return true; /* device DAX */
	return fstatfs(ps->a.fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

int ps_zcrx_area_setup(struct pktstore *ps, struct zcrx_state *z, bool in_place, uint64_t len)
{
	z->in_place = in_place;
	if (in_place) {
		/* Half the segments at most: appends need room too. */
		uint64_t max = ps->seg.n / 2 ? ps->seg.n / 2 : 1;
		int64_t first = ps_seg_take_run(ps, max, &z->nsegs);

		if (first < 0)
			return -ENOSPC;
		z->seg_first = (uint64_t)first;
		z->area_arena_off = ps->a.sb.data_off + z->seg_first * ps->seg.size;
		z->area = ps_ptr(ps, z->area_arena_off);
		z->area_len = z->nsegs * ps->seg.size;
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

static int arm(struct pktstore *ps, struct zcrx_state *z, struct ps_flow *f)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&z->ring);

	if (!sqe) {
		io_uring_submit(&z->ring);
		sqe = io_uring_get_sqe(&z->ring);
		if (!sqe)
			return -EBUSY;
	}
	io_uring_prep_rw(PS_IORING_OP_RECV_ZC, sqe, f->fd, NULL, 0, 0);
	sqe->ioprio |= IORING_RECV_MULTISHOT;
	sqe->file_index = z->zcrx_id; /* the uapi's zcrx_ifq_idx shares this word */
	io_uring_sqe_set_data64(sqe, f->id);
	f->armed = true;
	ps_uring_watch(z->epfd, &z->watched[f->slot], f);
	(void)ps;
	int ret = io_uring_submit(&z->ring);

	return ret < 0 ? ret : 0;
}

void ps_zcrx_complete(struct pktstore *ps, struct zcrx_state *z, struct ps_flow *f, int res,
		      uint32_t cqe_flags, uint64_t zc_off)
{
	if (!(cqe_flags & IORING_CQE_F_MORE))
		f->armed = false;
	if (res > 0) {
		uint64_t off = zc_off & ~PS_IORING_ZCRX_AREA_MASK;

		if ((zc_off & PS_IORING_ZCRX_AREA_MASK) != z->token || off > z->area_len ||
		    (uint64_t)res > z->area_len - off ||
		    (z->in_place && ps_seg_of(ps, z->area_arena_off + off) !=
					    ps_seg_of(ps, z->area_arena_off + off + (uint64_t)res - 1))) {
			/* Not a buffer of our area: never trust it as data. */
			z->bad_completions++;
			return;
		}
		if (z->in_place) {
			ps_land(ps, f, z->area_arena_off + off, (uint32_t)res, 1);
			return; /* its buffer goes back when its record is released */
		}
		uint64_t dst;
		uint32_t avail;

		/* The one copy of copy mode. A full arena keeps the buffer
		 * until space returns, and the receive stops. */
		if (ps_bump_reserve(ps, PS_BUMP_HOT, (uint32_t)res, &dst, &avail)) {
			ps_flow_starve(ps, f, true);
			return;
		}
		memcpy(ps_ptr(ps, dst), z->area + off, (size_t)res);
		ps_bump_commit(ps, PS_BUMP_HOT, (uint32_t)res);
		ps_land(ps, f, dst, (uint32_t)res, 1);
		ps_zcrx_give_back(z, off, (uint32_t)res);
	} else if (res == -ENOSPC) {
		/* The multishot receive ran out of room and ended: re-arm once
		 * buffers come back. */
		ps_flow_starve(ps, f, true);
	} else if (res != -ECANCELED && f->run == PS_RUN_ACTIVE) {
		ps_land(ps, f, 0, 0, res);
	}
}

static void zcrx_released(struct pktstore *ps, uint64_t data_off, uint32_t len)
{
	struct zcrx_state *z = ps->be_state;

	if (z->in_place && data_off >= z->area_arena_off &&
	    data_off < z->area_arena_off + z->area_len)
		ps_zcrx_give_back(z, data_off - z->area_arena_off, len);
}

static unsigned reap(struct pktstore *ps, struct zcrx_state *z)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&z->ring, head, cqe) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		struct ps_flow *f = ud & UD_CANCEL ? NULL : ps_flow_get(ps, ud);

		if (f) {
			const struct ps_zcrx_cqe *zc = (const void *)cqe->big_cqe;

			ps_zcrx_complete(ps, z, f, cqe->res, cqe->flags, zc->off);
			ps_uring_watch(z->epfd, &z->watched[f->slot], f);
		}
		n++;
	}
	io_uring_cq_advance(&z->ring, n);
	return n;
}

static void zcrx_space_freed(struct pktstore *ps)
{
	struct zcrx_state *z = ps->be_state;

	ps_zcrx_flush_backlog(z);
	for (uint32_t i = 0; i < ps->max_flows && ps->starved_flows; i++) {
		struct ps_flow *f = ps->flows[i];

		if (f && f->starved && f->run == PS_RUN_ACTIVE && !f->armed && !arm(ps, z, f))
			ps_flow_starve(ps, f, false);
	}
}

static int zcrx_poll(struct pktstore *ps, struct ps_flow *only, bool wait)
{
	struct zcrx_state *z = ps->be_state;
	uint64_t ignored;
	int ret;

	(void)only;
	if (read(z->evfd, &ignored, sizeof(ignored)) < 0 && errno != EAGAIN)
		return -errno;
	ps_zcrx_flush_backlog(z);
	ret = wait && !io_uring_cq_ready(&z->ring) ? io_uring_submit_and_wait(&z->ring, 1)
						    : io_uring_submit(&z->ring);
	if (ret == -EINTR)
		return ret;
	if (!wait)
		io_uring_get_events(&z->ring); /* deferred completions */
	return (int)reap(ps, z);
}

static int zcrx_attach(struct pktstore *ps, struct ps_flow *f)
{
	return arm(ps, ps->be_state, f);
}

static unsigned reap_store(struct pktstore *ps)
{
	return reap(ps, ps->be_state);
}

static void zcrx_detach(struct pktstore *ps, struct ps_flow *f)
{
	struct zcrx_state *z = ps->be_state;

	ps_uring_cancel_flow(ps, &z->ring, f, reap_store);
	ps_uring_watch(z->epfd, &z->watched[f->slot], f);
}

static int zcrx_fd(struct pktstore *ps)
{
	return ((struct zcrx_state *)ps->be_state)->epfd;
}

static void zcrx_fini(struct pktstore *ps)
{
	struct zcrx_state *z = ps->be_state;

	if (!z)
		return;
	if (z->ring_ready)
		io_uring_queue_exit(&z->ring);
	if (z->evfd >= 0)
		close(z->evfd);
	if (z->epfd >= 0)
		close(z->epfd);
	free(z->watched);
	if (z->rq_mem)
		munmap(z->rq_mem, z->rq_bytes);
	if (z->area && !z->in_place)
		munmap(z->area, z->area_len);
	if (z->area && z->in_place && !z->zcrx_live)
		ps_seg_give_run(ps, z->seg_first, z->nsegs); /* setup failed: nothing landed */
	free(z->backlog);
	free(z);
	ps->be_state = NULL;
}

static int fail(struct pktstore *ps, int ret, const char *why)
{
	struct zcrx_state *z = ps->be_state;

	snprintf(ps->fallback, sizeof(ps->fallback), "%s:%u: %.56s: %.24s", z->ifname, z->rxq, why,
		 strerror(-ret));
	return ret;
}

static int zcrx_init(struct pktstore *ps)
{
	struct zcrx_state *z = calloc(1, sizeof(*z));
	int ret;

	if (!z)
		return -ENOMEM;
	ps->be_state = z;
	z->epfd = -1;
	z->evfd = -1;
	if (ps_zcrx_parse(ps->zcrx_spec, z->ifname, &z->rxq)) {
		snprintf(ps->fallback, sizeof(ps->fallback), "bad zcrx interface:queue '%.40s'",
			 ps->zcrx_spec ? ps->zcrx_spec : "");
		return -EINVAL;
	}
	unsigned if_idx = if_nametoindex(z->ifname);

	if (!if_idx)
		return fail(ps, -ENODEV, "no such interface");

	/* Zero-copy receive needs 32-byte completions and a ring bound to
	 * one thread (DEFER_TASKRUN); the ring starts enabled. */
	struct io_uring_params p = {
		.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CQE32 | IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN,
		.cq_entries = 4096,
	};

	ret = io_uring_queue_init_params(256, &z->ring, &p);
	if (ret)
		return fail(ps, ret, "io_uring setup (needs Linux 6.1+)");
	z->ring_ready = true;

	bool in_place = arena_pinnable(ps);

	ret = ps_zcrx_area_setup(ps, z, in_place, ZCRX_COPY_AREA);
	if (ret)
		return fail(ps, ret, "no area");

	/* Refill ring in our memory: the kernel reports where head, tail and
	 * entries sit in it. */
	z->rq_bytes = 4096 + (size_t)ZCRX_RQ_ENTRIES * sizeof(struct ps_zcrx_rqe);
	z->rq_mem = mmap(NULL, z->rq_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	if (z->rq_mem == MAP_FAILED) {
		z->rq_mem = NULL;
		return -ENOMEM;
	}
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

	ret = (int)syscall(__NR_io_uring_register, z->ring.ring_fd, PS_IORING_REGISTER_ZCRX_IFQ,
			   &reg, 1);
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

	/* The ring defers its task work (the kernel demands it for zcrx), so
	 * pktstore_fd() watches the sockets too (ps_uring_ready_init()). */
	z->watched = calloc(ps->max_flows, sizeof(*z->watched));
	if (!z->watched)
		return -ENOMEM;
	ret = ps_uring_ready_init(&z->ring, &z->epfd, &z->evfd);
	if (ret)
		return fail(ps, ret, "eventfd");
	if (!in_place)
		snprintf(ps->fallback, sizeof(ps->fallback),
			 "arena cannot be pinned: zcrx into a private area, one copy");
	return 0;
}

const struct ps_backend_ops ps_backend_zcrx = {
	.name = "zcrx",
	.path = PKTSTORE_PATH_ZCRX,
	.init = zcrx_init,
	.fini = zcrx_fini,
	.attach = zcrx_attach,
	.detach = zcrx_detach,
	.poll = zcrx_poll,
	.space_freed = zcrx_space_freed,
	.fd = zcrx_fd,
	.released = zcrx_released,
};
