/* SPDX-License-Identifier: MIT */
/*
 * compat_uring.h - io_uring ABI that Debian 12's liburing 2.3 headers lack.
 * The values are the kernel's uapi; whether the running kernel supports
 * them is probed at run time (see recv_uring.c), never assumed.
 */
#ifndef PKTSTORE_COMPAT_URING_H
#define PKTSTORE_COMPAT_URING_H

#include <stddef.h>
#include <string.h>

#include <liburing.h>

/* io_uring_buf_reg flags (Linux 6.12): consume a provided buffer piecewise,
 * so successive receives pack back to back in one large buffer. */
#define PS_IOU_PBUF_RING_INC 2

/* CQE flag (Linux 6.12): the buffer is only partly consumed and will be used
 * again by the next completion of its group. */
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

/* The 16-bit field after bgid is `pad` in liburing 2.3 and `flags` from
 * Linux 6.x uapi on; write it by position so both headers work. */
_Static_assert(sizeof(struct io_uring_buf_reg) == 40, "io_uring_buf_reg layout");
_Static_assert(offsetof(struct io_uring_buf_reg, bgid) == 12, "io_uring_buf_reg layout");

static inline void ps_buf_reg_set_flags(struct io_uring_buf_reg *reg, __u16 flags)
{
	memcpy((char *)reg + offsetof(struct io_uring_buf_reg, bgid) + sizeof(reg->bgid), &flags,
	       sizeof(flags));
}

#endif
