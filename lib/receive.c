/* SPDX-License-Identifier: MIT */
/*
 * receive.c - from a backend's landings to durable records in the caller's
 * hands.
 *
 *   backend poll -> ps_land() -> record (CRC, descriptor, flush set)
 *                -> ps_commit() (one drain for the batch) -> delivery
 *
 * Delivery only ever hands out records that a commit has already made
 * durable. A landing that finds no free descriptor waits, in arrival order,
 * in the stall queue; later landings queue behind it so no flow's stream is
 * reordered. Flows with records to deliver sit on the ready list, which is
 * what recv_persist_any() walks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

/* Turn one landing into a record (or an end of stream). -ENOSPC: no
 * descriptor free, try again later. */
static int land_one(struct pktstore *ps, const struct ps_landing *l)
{
	struct ps_flow *f = l->f;

	if (l->status <= 0) {
		if (f->run == PS_RUN_NONE)
			return 0; /* detached meanwhile: nobody waits for its end */
		if (f->run == PS_RUN_ACTIVE)
			ps->active_flows--;
		ps_flow_starve(ps, f, false); /* nothing more to wait for */
		f->run = PS_RUN_ENDED;
		f->end_status = l->status;
		ps_ready_push(ps, f);
		return 0;
	}
	int ret = ps_record_make(ps, f, l->off, l->len, 0, NULL);

	if (!ret)
		ps_ready_push(ps, f);
	return ret;
}

static int stall_push(struct pktstore *ps, const struct ps_landing *l)
{
	if (ps->stall_n == ps->stall_cap) {
		size_t cap = ps->stall_cap ? ps->stall_cap * 2 : 64;
		struct ps_landing *q = malloc(cap * sizeof(*q));

		if (!q)
			return -ENOMEM;
		for (size_t i = 0; i < ps->stall_n; i++)
			q[i] = ps->stall[(ps->stall_head + i) % ps->stall_cap];
		free(ps->stall);
		ps->stall = q;
		ps->stall_cap = cap;
		ps->stall_head = 0;
	}
	if (!ps->stall_n)
		ps->st.enospc_events++; /* waiting for a descriptor is waiting for space */
	ps->stall[(ps->stall_head + ps->stall_n) % ps->stall_cap] = *l;
	ps->stall_n++;
	l->f->stalled++; /* the flow outlives a detach until these are records */
	return 0;
}

static void stall_drain(struct pktstore *ps)
{
	while (ps->stall_n) {
		struct ps_flow *f = ps->stall[ps->stall_head].f;

		if (land_one(ps, &ps->stall[ps->stall_head]))
			return;
		ps->stall_head = (ps->stall_head + 1) % ps->stall_cap;
		ps->stall_n--;
		f->stalled--;
		ps_flow_maybe_reclaim(ps, f);
	}
}

void ps_land(struct pktstore *ps, struct ps_flow *f, uint64_t off, uint32_t len, int status)
{
	struct ps_landing l = { .f = f, .off = off, .len = len, .status = status };

	/* The stream ended while bytes of it wait for a descriptor: the end
	 * follows them, but the application may be waiting for this very
	 * client to go before it releases anything, so it hears now. */
	if (status <= 0 && f->stalled && !ps->desc_free)
		ps_hangup_notice(ps, f);

	/* The bytes are in the arena now: their segment is busy until the
	 * record made from them is released. */
	if (status > 0)
		ps_seg_ref(ps, ps_seg_of(ps, off), len);
	/* Data waits its turn behind every stalled landing (first come,
	 * first served for descriptors); an end of stream needs no descriptor
	 * and only has to follow its own flow's bytes. */
	bool queue = status > 0 ? ps->stall_n > 0 : f->stalled > 0;

	if (queue || land_one(ps, &l)) {
		if (stall_push(ps, &l) && !ps->broken)
			ps->broken = -ENOMEM;
	}
}

void ps_hangup_notice(struct pktstore *ps, struct ps_flow *f)
{
	if (f->hup_noticed)
		return;
	f->hup_noticed = true;
	ps_ready_push(ps, f);
}

/* Short of free segments in a movable store: free a sparse one. Records
 * made so far are committed first, so only durable records move. */
static int make_room(struct pktstore *ps)
{
	if (!ps_clean_wanted(ps))
		return 0;
	int ret = ps_commit(ps);

	if (!ret)
		ret = ps_clean(ps);
	if (ret && !ps->broken)
		ps->broken = ret;
	return ret;
}

/* Make records from whatever waits, then make them durable. Only calls
 * that may invalidate data pointers (receive, append: pktstore_open(3))
 * let the cleaner move records first. */
static int settle(struct pktstore *ps, bool may_move)
{
	if (ps->broken)
		return PKTSTORE_EBROKEN;
	int ret = may_move ? make_room(ps) : 0;

	if (ret)
		return ret; /* this call saw it fail; later ones get EBROKEN */
	if (ps->space_pending && ps->be && ps->be->space_freed) {
		ps->space_pending = false;
		ps->be->space_freed(ps);
	}
	stall_drain(ps);
	ret = ps_commit(ps);
	if (ret && !ps->broken) {
		ps->broken = ret;
		return ret; /* this call saw it fail; later ones get EBROKEN */
	}
	return ps->broken ? PKTSTORE_EBROKEN : 0;
}

/* Hand out f's durable, undelivered records. */
static unsigned deliver(struct pktstore *ps, struct ps_flow *f, struct pktstore_rec *out,
			unsigned max)
{
	const struct ps_index *ix = &f->idx;
	unsigned n = 0;

	for (size_t i = ps_index_lower_seq(ix, f->delivered_seq); i < ix->n && n < max; i++) {
		if (!ps_record_live(ps, ix->e[i].id))
			continue;
		ps_rec_fill(ps, ps_desc_slot(ps, ix->e[i].id), &out[n]);
		f->delivered_seq = out[n].seq + out[n].len;
		n++;
	}
	if (n < max)
		f->delivered_seq = f->next_seq; /* only released ones were left */
	return n;
}

static bool has_pending(const struct ps_flow *f)
{
	return f->delivered_seq < f->next_seq;
}

/* Receiving cannot progress until the caller releases something. */
static bool out_of_space(const struct pktstore *ps, const struct ps_flow *f)
{
	if (ps->stall_n && !ps->desc_free)
		return true;
	/* A starved flow gets buffers back only with a free segment and a
	 * free descriptor (recv_uring.c refills on both). */
	bool no_room = !ps->seg.nfree || !ps->desc_free;

	return no_room && (f ? f->starved : ps->nstarved > 0);
}

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
		int ret = settle(ps, true);

		if (ret)
			return ret;
		unsigned n = deliver(ps, f, recs, max);

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
		if (out_of_space(ps, f) && polled)
			return -ENOSPC;
		if (polled && flags & PKTSTORE_NONBLOCK)
			return -EAGAIN;
		ret = ps->be->poll(ps, f, !(flags & PKTSTORE_NONBLOCK) && !out_of_space(ps, f));
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
		int ret = settle(ps, true);

		if (ret)
			return ret;

		unsigned n = 0;
		struct ps_flow *f;

		while (n < max && (f = ps_ready_pop(ps))) {
			n += deliver(ps, f, recs + n, max - n);
			if (has_pending(f)) {
				ps_ready_push_front(ps, f); /* out[] is full */
				break;
			}
			if (f->run == PS_RUN_ENDED && !f->end_reported) {
				if (n == max) {
					ps_ready_push_front(ps, f);
					break;
				}
				f->end_reported = true;
				recs[n++] = (struct pktstore_rec){ .status = f->end_status,
								   .flow = f->id,
								   .flags = PKTSTORE_REC_END,
								   .user = f->user };
			} else if (f->run == PS_RUN_ACTIVE && f->hup_noticed && !f->hup_reported) {
				if (n == max) {
					ps_ready_push_front(ps, f);
					break;
				}
				f->hup_reported = true;
				recs[n++] = (struct pktstore_rec){ .status = -ENOBUFS,
								   .flow = f->id,
								   .flags = PKTSTORE_REC_HANGUP,
								   .user = f->user };
			}
			ps_flow_maybe_reclaim(ps, f);
		}
		if (n)
			return (int)n;
		if (!ps->active_flows && polled)
			return 0;
		if (!ps->active_flows) {
			/* Nothing can arrive, but the backend must still reap
			 * what did and clear its fd, or an event loop waiting
			 * on pktstore_fd() would spin. */
			ret = ps->be->poll(ps, NULL, false);
			if (ret < 0)
				return ret;
			polled = true;
			continue;
		}
		if (out_of_space(ps, NULL) && polled)
			return -ENOSPC;
		if (polled && flags & PKTSTORE_NONBLOCK)
			return -EAGAIN;
		ret = ps->be->poll(ps, NULL, !(flags & PKTSTORE_NONBLOCK) && !out_of_space(ps, NULL));
		if (ret < 0)
			return ret;
		polled = true;
	}
}

int pktstore_fd(struct pktstore *ps)
{
	if (!ps)
		return -EINVAL;
	return ps->be ? ps->be->fd(ps) : -EROFS;
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
	if (ps->be->send)
		return ps->be->send(ps, f, iov, iovcnt, len, flags);

	struct msghdr m = { .msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = iovcnt };
	ssize_t n;

	do
		n = sendmsg(f->fd, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (int)n;
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
	int ret = settle(ps, false);
	int r = ps_flow_close_entry(ps, f);

	ps_flow_maybe_reclaim(ps, f);
	return ret ? ret : r;
}

int pktstore_flow_create(struct pktstore *ps, uint64_t tag, uint64_t *flow)
{
	struct ps_flow *f;

	if (!ps || !flow)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	if (ps->broken)
		return PKTSTORE_EBROKEN;

	int ret = ps_flow_new(ps, PS_FLOW_LOCAL, -1, tag, &f);

	if (!ret)
		*flow = f->id;
	return ret;
}

int pktstore_append(struct pktstore *ps, uint64_t flow, const void *data, uint32_t len,
		    struct pktstore_rec *rec)
{
	if (!ps || (!data && len) || !len)
		return -EINVAL;
	if (ps->a.rdonly)
		return -EROFS;
	if (ps->broken)
		return PKTSTORE_EBROKEN;

	struct ps_flow *f = ps_flow_get(ps, flow);

	if (!f)
		return -ENOENT;
	if (f->kind != PS_FLOW_LOCAL)
		return -EINVAL;

	uint64_t off, id;
	uint32_t avail;
	int ret = make_room(ps);

	if (ret)
		return ret;
	ret = ps_bump_reserve(ps, PS_BUMP_HOT, len, &off, &avail);
	if (ret)
		return ret;
	if (!ps->desc_free)
		return -ENOSPC;
	memcpy(ps_ptr(ps, off), data, len);
	ps_bump_commit(ps, PS_BUMP_HOT, len);
	ps_seg_ref(ps, ps_seg_of(ps, off), len);
	ret = ps_record_make(ps, f, off, len, PKTSTORE_REC_APPENDED, &id);
	if (ret) {
		ps_seg_unref(ps, ps_seg_of(ps, off), len);
		return ret;
	}
	/* An appended record is never "delivered": the caller has it. */
	f->delivered_seq = f->next_seq;
	ret = settle(ps, false);
	if (ret)
		return ret;
	if (rec)
		ps_rec_fill(ps, ps_desc_slot(ps, id), rec);
	return 0;
}
