/* SPDX-License-Identifier: MIT */
/*
 * compat_uring.h - io_uring ABI that Debian 12's liburing 2.3 headers lack.
 * The values are the kernel's uapi; whether the running kernel supports
 * them is probed at run time (see recv_uring.c), never assumed.
 */
#ifndef PKTSTORE_COMPAT_URING_H
#define PKTSTORE_COMPAT_URING_H

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <liburing.h>

/* io_uring_buf_reg flags (Linux 6.12): consume a provided buffer piecewise,
 * so successive receives pack back to back in one large buffer. */
#define PS_IOU_PBUF_RING_INC 2

/* CQE flag (Linux 6.12): the buffer is only partly consumed and will be used
 * again by the next completion of its group. */
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

/* Debian's liburing 2.3 declares io_uring_enable_rings() but does not
 * export it: the register call it wraps. */
static inline int ps_uring_enable_rings(struct io_uring *ring)
{
	int ret = (int)syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS,
			       NULL, 0);

	return ret < 0 ? -errno : 0;
}

/* The 16-bit field after bgid is `pad` in liburing 2.3 and `flags` from
 * Linux 6.x uapi on; write it by position so both headers work. */
_Static_assert(sizeof(struct io_uring_buf_reg) == 40, "io_uring_buf_reg layout");
_Static_assert(offsetof(struct io_uring_buf_reg, bgid) == 12, "io_uring_buf_reg layout");

static inline void ps_buf_reg_set_flags(struct io_uring_buf_reg *reg, __u16 flags)
{
	memcpy((char *)reg + offsetof(struct io_uring_buf_reg, bgid) + sizeof(reg->bgid), &flags,
	       sizeof(flags));
}

/* ------------------------------------------------ zero-copy receive (zcrx)
 * Linux 6.15+ uapi (include/uapi/linux/io_uring.h, later io_uring/zcrx.h);
 * liburing gained it in 2.10. Layouts are asserted below against the
 * kernel's sizes, so a mistake fails the build, not the registration. */
#define PS_IORING_OP_RECV_ZC 58
#define PS_IORING_REGISTER_ZCRX_IFQ 32
#define PS_IORING_MEM_REGION_TYPE_USER 1
#define PS_IORING_ZCRX_AREA_SHIFT 48
#define PS_IORING_ZCRX_AREA_MASK (~((1ULL << PS_IORING_ZCRX_AREA_SHIFT) - 1))

struct ps_zcrx_rqe { /* refill queue entry: a buffer handed back */
	__u64 off;
	__u32 len;
	__u32 __pad;
};

struct ps_zcrx_cqe { /* second half of a 32-byte RECV_ZC completion */
	__u64 off; /* area offset | area id << 48 */
	__u64 __pad;
};

struct ps_zcrx_offsets {
	__u32 head;
	__u32 tail;
	__u32 rqes;
	__u32 __resv2;
	__u64 __resv[2];
};

struct ps_zcrx_area_reg {
	__u64 addr;
	__u64 len;
	__u64 rq_area_token; /* out: the area's id, pre-shifted */
	__u32 flags;
	__u32 dmabuf_fd;
	__u64 __resv2[2];
};

struct ps_region_desc {
	__u64 user_addr;
	__u64 size;
	__u32 flags;
	__u32 id;
	__u64 mmap_offset;
	__u64 __resv[4];
};

struct ps_zcrx_ifq_reg {
	__u32 if_idx;
	__u32 if_rxq;
	__u32 rq_entries;
	__u32 flags;
	__u64 area_ptr;   /* struct ps_zcrx_area_reg * */
	__u64 region_ptr; /* struct ps_region_desc * */
	struct ps_zcrx_offsets offsets; /* out */
	__u32 zcrx_id;    /* out */
	__u32 rx_buf_len;
	__u64 __resv[3];
};

_Static_assert(sizeof(struct ps_zcrx_rqe) == 16, "zcrx rqe layout");
_Static_assert(sizeof(struct ps_zcrx_cqe) == 16, "zcrx cqe layout");
_Static_assert(sizeof(struct ps_zcrx_offsets) == 32, "zcrx offsets layout");
_Static_assert(sizeof(struct ps_zcrx_area_reg) == 48, "zcrx area layout");
_Static_assert(sizeof(struct ps_region_desc) == 64, "region desc layout");
_Static_assert(sizeof(struct ps_zcrx_ifq_reg) == 96, "zcrx ifq registration layout");
_Static_assert(offsetof(struct ps_zcrx_ifq_reg, offsets) == 32, "zcrx ifq registration layout");
_Static_assert(offsetof(struct ps_zcrx_ifq_reg, zcrx_id) == 64, "zcrx ifq registration layout");

#endif
