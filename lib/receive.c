/* SPDX-License-Identifier: MIT */
/*
 * receive.c - the receive calls of the API: attach and detach sockets,
 * receive durable records (ingest.c does the work), the pollable fd, and
 * sends to an attached flow's peer.
 */
#include <errno.h>
#include <sys/socket.h>

#include "internal.h"

int pktstore_recv_persist(struct pktstore *ps, uint64_t flow, struct pktstore_rec *recs,
			  unsigned max, unsigned flags)
{
	if (!ps || !recs || !max || max > INT32_MAX || flags & ~PKTSTORE_NONBLOCK)
		return -EINVAL;

	if (ps->a.rdonly)
		return -EROFS;

	struct ps_flow *f = ps_flow_get(ps, flow);

	if (!f)
		return -ENOENT;
	if (f->kind != PS_FLOW_SOCKET)
		return -EINVAL;
	for (bool polled = false;;) {
		int ret = ps_settle(ps, true);

		if (ret)
			return ret;
		/* A detached flow whose last releases that commit made durable
		 * is gone: nothing more comes from it. */
		if (ps_flow_get(ps, flow) != f)
			return 0;
		unsigned n = ps_deliver(ps, f, recs, max);

		if (n)
			return (int)n;
		if (f->run == PS_RUN_ENDED) {
			f->end_reported = true;
			return f->end_status;
		}
		if (f->run != PS_RUN_ACTIVE)
			return 0;
		/* Full: one look without waiting first, which reaps what the
		 * backend has (an end of stream still comes through) and
		 * quiets pktstore_fd() until space returns. */
		if (ps_out_of_space(ps, f) && polled)
			return -ENOSPC;
		if (polled && flags & PKTSTORE_NONBLOCK)
			return -EAGAIN;
		ret = ps->be->poll(ps, f, !(flags & PKTSTORE_NONBLOCK) && !ps_out_of_space(ps, f));
		if (ret < 0)
			return ret;
		polled = true;
	}
}

int pktstore_recv_persist_any(struct pktstore *ps, struct pktstore_rec *recs, unsigned max,
			      unsigned flags)
{
	if (!ps || !recs || !max || max > INT32_MAX || flags & ~PKTSTORE_NONBLOCK)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	for (bool polled = false;;) {
		/* Releases alone, with nothing to hand out, ride on the commit
		 * after the wait (ps_releases_may_wait). */
		bool defer = !polled && ps_releases_may_wait(ps);
		int ret = defer ? 0 : ps_settle(ps, true);

		if (ret)
			return ret;
		unsigned n = ps_deliver_any(ps, recs, max);

		if (ps->nfired)
			n += ps_watch_deliver(ps, recs + n, max - n);
		if (n)
			return (int)n;
		/* With no flow receiving and no fd watched nothing can
		 * arrive, but the backend must still reap what did and clear
		 * its fd, or an event loop waiting on pktstore_fd() would
		 * spin: one look without waiting. */
		bool idle = !ps->active_flows && !ps->nwatch;

		if (polled && idle)
			return 0;
		if (polled && ps_out_of_space(ps, NULL))
			return -ENOSPC;
		if (polled && flags & PKTSTORE_NONBLOCK)
			return -EAGAIN;
		ret = ps->be->poll(ps, NULL,
				   !(flags & PKTSTORE_NONBLOCK) && !idle && !ps_out_of_space(ps, NULL));
		if (ret < 0) {
			/* A signal or a failure ends the wait: the releases
			 * left to it are made durable before the return. */
			int s = defer ? ps_settle(ps, false) : 0;

			return s ? s : ret;
		}
		polled = true;
	}
}

int pktstore_watch(struct pktstore *ps, int fd, void *user)
{
	if (!ps || fd < 0)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	if (ps->broken)
		return PKTSTORE_EBROKEN;
	if (!ps->be->watch)
		return -EOPNOTSUPP;
	return ps_watch_add(ps, fd, user);
}

int pktstore_unwatch(struct pktstore *ps, int fd)
{
	if (!ps || fd < 0)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	return ps_watch_remove(ps, fd);
}

int pktstore_fd(struct pktstore *ps)
{
	if (!ps)
		return -EINVAL;
	return ps->be ? ps->be->fd(ps) : -EROFS;
}

/* The recv path's send: straight to the socket. */
static int send_now(struct ps_flow *f, const struct iovec *iov, unsigned iovcnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = iovcnt };
	ssize_t n;

	do
		n = sendmsg(f->fd, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (int)n;
}

#define SEND_IOV_MAX 64    /* iovecs per pktstore_send() */
#define SEND_LEN_MAX (1u << 20)

int pktstore_send(struct pktstore *ps, uint64_t flow, const struct iovec *iov, unsigned iovcnt,
		  unsigned flags)
{
	if (!ps || (!iov && iovcnt) || iovcnt > SEND_IOV_MAX || flags & ~PKTSTORE_SEND_MORE)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;

	struct ps_flow *f = ps_flow_get(ps, flow);
	size_t len = 0;

	if (!f)
		return -ENOENT;
	if (f->kind != PS_FLOW_SOCKET || f->run == PS_RUN_NONE)
		return -EINVAL; /* no socket to send on */
	for (unsigned i = 0; i < iovcnt; i++) {
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EINVAL;
		if (iov[i].iov_len > SEND_LEN_MAX - len)
			return -EMSGSIZE;
		len += iov[i].iov_len;
	}
	if (!len)
		return 0;

	int n = ps->be->send ? ps->be->send(ps, f, iov, iovcnt, len, flags) : send_now(f, iov, iovcnt);

	/* Less taken than given: say when more can go. */
	if (n == -EAGAIN || (n >= 0 && (size_t)n < len)) {
		f->want_writable = true;
		f->writable = false;
		if (ps->be->want_writable)
			ps->be->want_writable(ps, f);
	}
	return n;
}

int pktstore_attach(struct pktstore *ps, int sockfd, uint64_t tag, uint64_t *flow)
{
	int type = 0;
	socklen_t tl = sizeof(type);
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);

	if (!ps || sockfd < 0 || !flow)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	if (ps->broken)
		return PKTSTORE_EBROKEN;
	if (getsockopt(sockfd, SOL_SOCKET, SO_TYPE, &type, &tl))
		return -errno;
	if (type != SOCK_STREAM)
		return -EPROTOTYPE;
	if (getpeername(sockfd, (struct sockaddr *)&peer, &pl))
		return -errno;

	struct ps_flow *f;
	int ret = ps_flow_new(ps, PS_FLOW_SOCKET, sockfd, tag, &f);

	if (ret)
		return ret;
	f->run = PS_RUN_ACTIVE;
	ret = ps->be->attach(ps, f);
	if (ret) {
		f->run = PS_RUN_NONE;
		ps_flow_close_entry(ps, f);
		ps_flow_maybe_reclaim(ps, f);
		return ret;
	}
	ps->active_flows++;
	*flow = f->id;
	return 0;
}

int pktstore_detach(struct pktstore *ps, uint64_t flow)
{
	if (!ps)
		return -EINVAL;

	struct ps_flow *f = ps_flow_get(ps, flow);

	if (!f)
		return -ENOENT;
	if (f->kind != PS_FLOW_SOCKET || f->run == PS_RUN_NONE)
		return -EINVAL; /* also every flow of a read-only store */
	ps->be->detach(ps, f);
	ps_flow_starve(ps, f, false);
	if (f->run == PS_RUN_ACTIVE)
		ps->active_flows--;
	f->run = PS_RUN_NONE;
	f->fd = -1;
	/* The close time first: the commit below may free the flow (its
	 * last records' releases becoming durable). */
	int r = ps_flow_close_entry(ps, f);

	ps_flow_maybe_reclaim(ps, f);
	int ret = ps_settle(ps, false);

	return ret ? ret : r;
}

