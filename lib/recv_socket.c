/* SPDX-License-Identifier: MIT */
/*
 * recv_socket.c - the receive path of last resort: recv(2) straight into
 * the arena's bump segment. Used where io_uring is missing, disabled
 * (/proc/sys/kernel/io_uring_disabled) or blocked by seccomp. Same single
 * kernel copy as io_uring; one syscall per receive instead of none.
 *
 * An epoll set of the attached sockets is both how the any-flow call waits
 * and the fd the application polls. A flow that finds no free space (or no
 * free descriptor) stays in the set watching only for a hang-up, so the fd
 * does not spin while the caller must release records, yet a client that
 * leaves still gets its end of stream; full interest returns with space.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#define RECV_MAX (256u * 1024)   /* bytes asked for in one recv(2) */
#define RECV_MIN 4096u           /* smaller tails of a segment are skipped */
#define RECVS_PER_FLOW 16        /* fairness between ready flows */

struct socket_state {
	int epfd;
};

static int watch(struct pktstore *ps, struct ps_flow *f, int op)
{
	struct socket_state *s = ps->be_state;
	struct epoll_event ev = { .events = f->starved ? EPOLLRDHUP : EPOLLIN | EPOLLRDHUP,
				  .data.u64 = f->id };

	return epoll_ctl(s->epfd, op, f->fd, &ev) ? -errno : 0;
}

static void starve(struct pktstore *ps, struct ps_flow *f)
{
	ps_flow_starve(ps, f, true);
	watch(ps, f, EPOLL_CTL_MOD);
}

/*
 * A starved flow's peer hung up (or only shut its side: TCP cannot tell).
 * With nothing unread, that is the end of the stream. With bytes unread, the
 * application hears of it once and decides: detach, or release records so
 * the rest comes in. Meanwhile the socket is watched for nothing more, so
 * the fd stays quiet.
 */
static void hangup_while_starved(struct pktstore *ps, struct ps_flow *f)
{
	struct socket_state *s = ps->be_state;
	int unread = 0;

	if (ioctl(f->fd, FIONREAD, &unread))
		unread = 0;
	if (unread <= 0) {
		watch(ps, f, EPOLL_CTL_DEL);
		ps_land(ps, f, 0, 0, 0);
		return;
	}
	struct epoll_event ev = { .events = 0, .data.u64 = f->id };

	epoll_ctl(s->epfd, EPOLL_CTL_MOD, f->fd, &ev);
	ps_hangup_notice(ps, f);
}

static int socket_init(struct pktstore *ps)
{
	struct socket_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0) {
		int ret = -errno;

		free(s);
		return ret;
	}
	ps->be_state = s;
	return 0;
}

static void socket_fini(struct pktstore *ps)
{
	struct socket_state *s = ps->be_state;

	if (!s)
		return;
	close(s->epfd);
	free(s);
	ps->be_state = NULL;
}

static int socket_attach(struct pktstore *ps, struct ps_flow *f)
{
	return watch(ps, f, EPOLL_CTL_ADD);
}

static void socket_detach(struct pktstore *ps, struct ps_flow *f)
{
	if (f->run == PS_RUN_ACTIVE)
		watch(ps, f, EPOLL_CTL_DEL);
}

static void end_flow(struct pktstore *ps, struct ps_flow *f, int status)
{
	watch(ps, f, EPOLL_CTL_DEL);
	ps_land(ps, f, 0, 0, status);
}

/* Receive what the socket has, up to a fair share. Returns landings made. */
static int recv_flow(struct pktstore *ps, struct ps_flow *f)
{
	int landed = 0;

	for (int i = 0; i < RECVS_PER_FLOW && f->run == PS_RUN_ACTIVE; i++) {
		uint64_t off;
		uint32_t avail;

		/* Without a descriptor the bytes could not become a record:
		 * they wait in the socket instead of the stall queue. */
		if (!ps->desc_free ||
		    ps_bump_reserve(ps, PS_BUMP_HOT, RECV_MIN < ps->seg.size ? RECV_MIN : ps->seg.size, &off,
				    &avail)) {
			starve(ps, f);
			break;
		}
		size_t want = avail < RECV_MAX ? avail : RECV_MAX;
		ssize_t n = recv(f->fd, ps_ptr(ps, off), want, MSG_DONTWAIT);

		if (n > 0) {
			ps_bump_commit(ps, PS_BUMP_HOT, (uint32_t)n);
			ps_land(ps, f, off, (uint32_t)n, 1);
			landed++;
			if ((size_t)n < want)
				break; /* the socket is drained */
		} else if (n == 0) {
			end_flow(ps, f, 0);
			landed++;
		} else if (errno == EINTR) {
			continue;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			break;
		} else {
			end_flow(ps, f, -errno);
			landed++;
		}
	}
	return landed;
}

static int socket_poll(struct pktstore *ps, struct ps_flow *only, bool wait)
{
	struct socket_state *s = ps->be_state;

	if (only) {
		struct pollfd pfd = { .fd = only->fd, .events = POLLIN | POLLRDHUP };

		if (only->starved)
			pfd.events = only->hup_noticed ? 0 : POLLRDHUP;
		if (poll(&pfd, 1, wait ? -1 : 0) < 0)
			return -errno;
		if (only->starved && pfd.revents) {
			if (pfd.revents & (POLLHUP | POLLERR)) {
				end_flow(ps, only, -ENOBUFS);
				return 1;
			}
			hangup_while_starved(ps, only);
			return 1;
		}
		return pfd.revents ? recv_flow(ps, only) : 0;
	}

	struct epoll_event ev[64];
	int n = epoll_wait(s->epfd, ev, 64, wait ? -1 : 0);
	int landed = 0;

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		struct ps_flow *f = ps_flow_get(ps, ev[i].data.u64);

		if (!f || f->run != PS_RUN_ACTIVE)
			continue;
		if (!f->starved) {
			landed += recv_flow(ps, f);
		} else if (ev[i].events & (EPOLLHUP | EPOLLERR)) {
			end_flow(ps, f, -ENOBUFS); /* reset or fully closed: gone */
			landed++;
		} else if (ev[i].events & EPOLLRDHUP) {
			hangup_while_starved(ps, f);
			landed++;
		}
	}
	return landed;
}

/* Something was released: let starved flows try again (a flow that still
 * finds no room starves again at its next receive). */
static void socket_space_freed(struct pktstore *ps)
{
	if (!ps->starved_flows || !ps->desc_free)
		return;
	for (uint32_t i = 0; i < ps->max_flows && ps->starved_flows; i++) {
		struct ps_flow *f = ps->flows[i];

		if (f && f->starved) {
			ps_flow_starve(ps, f, false);
			if (f->run == PS_RUN_ACTIVE)
				watch(ps, f, EPOLL_CTL_MOD);
		}
	}
}

static int socket_fd(struct pktstore *ps)
{
	return ((struct socket_state *)ps->be_state)->epfd;
}

const struct ps_backend_ops ps_backend_socket = {
	.name = "recv",
	.path = PKTSTORE_PATH_RECV,
	.init = socket_init,
	.fini = socket_fini,
	.attach = socket_attach,
	.detach = socket_detach,
	.poll = socket_poll,
	.space_freed = socket_space_freed,
	.fd = socket_fd,
};
