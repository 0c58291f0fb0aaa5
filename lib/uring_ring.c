/* SPDX-License-Identifier: MIT */
/*
 * uring_ring.c - the io_uring ring both io_uring backends use (see
 * uring_ring.h): setup, per-flow multishot receives, hang-up polls of
 * starved flows, polling and reaping, cancelling, and pktstore_fd().
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "uring_ring.h"

/*
 * Deferred task running (Linux 6.1): the kernel completes receives when the
 * receiving thread next enters it instead of interrupting it, which on a
 * busy server is the difference between fighting the network stack for the
 * socket lock and batching (3x the requests at 16 loopback connections in
 * bench/). The ring's eventfd is then no truthful signal (see ready_add()).
 * It binds the ring to one thread: the ring starts disabled and the first
 * thread that attaches or receives enables it and becomes the store's
 * receiving thread. Older kernels refuse the flags: retry without them,
 * unless the backend needs them.
 */
int ps_ring_init(struct ps_ring *r, struct pktstore *ps, const struct ps_ring_setup *s)
{
	unsigned common = IORING_SETUP_CQSIZE | s->flags;
	struct io_uring_params p = {
		.flags = common | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
			 (s->start_enabled ? 0 : IORING_SETUP_R_DISABLED),
		.cq_entries = 4096,
	};
	int ret;

	r->ps = ps;
	r->send_from_arena = s->send_from_arena;
	r->epfd = r->evfd = -1;
	for (unsigned i = 0; i < PS_WATCH_MAX; i++)
		r->watch[i].fd = -1;
	ps_be_arena(ps, &r->ar);
	r->nfl = r->ar.max_flows ? r->ar.max_flows : 1;
	r->fl = calloc(r->nfl, sizeof(*r->fl));
	r->sending = calloc(r->nfl, sizeof(*r->sending));
	if (!r->fl || !r->sending)
		return -ENOMEM;
	ret = io_uring_queue_init_params(256, &r->ring, &p);
	r->deferred = !ret;
	if (ret == -EINVAL && !s->must_defer) {
		p = (struct io_uring_params){ .flags = common, .cq_entries = 4096 };
		ret = io_uring_queue_init_params(256, &r->ring, &p);
	}
	if (ret) {
		ps_be_fallback(ps, "io_uring_setup: %s", strerror(-ret));
		return ret;
	}
	r->live = true;
	r->enabled = s->start_enabled || !r->deferred;
	return 0;
}

/*
 * What pktstore_fd() returns: an epoll set holding the ring's eventfd,
 * which the kernel signals when it posts completions, and the socket of
 * each flow with a receive posted (watched for data and hang-up) or a
 * hang-up poll (watched for that alone). The eventfd alone is no truthful
 * signal: with deferred task running the work for a socket waits for our
 * next io_uring_enter, and on some kernels (Linux 6.12) the eventfd stays
 * quiet meanwhile, so an event loop waiting on it moved only on its own
 * timeout. A socket is readable exactly while the kernel has such work, run
 * or not; the eventfd covers completions posted inside our own enters that
 * no poll reaped (a receive armed at attach finds bytes waiting). A flow
 * with nothing posted (starved with its hang-up reported, ended, detached)
 * leaves the set, so bytes left in its socket do not keep the fd readable.
 */
int ps_ring_ready(struct ps_ring *r)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->evfd < 0)
		return -errno;
	ret = io_uring_register_eventfd(&r->ring, r->evfd);
	if (ret) {
		ps_be_fallback(r->ps, "io_uring eventfd registration: %s", strerror(-ret));
		return ret;
	}
	return epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) ? -errno : 0;
}

int ps_ring_fd(struct ps_ring *r)
{
	r->fd_given = true;
	return r->epfd;
}

void ps_ring_fini(struct ps_ring *r)
{
	if (r->live)
		io_uring_queue_exit(&r->ring);
	r->live = false;
	if (r->evfd >= 0)
		close(r->evfd);
	if (r->epfd >= 0)
		close(r->epfd);
	r->evfd = r->epfd = -1;
	for (uint32_t i = 0; r->fl && i < r->nfl; i++) {
		ps_sendq_free(&r->fl[i].out, r->ps);
		ps_sendq_free(&r->fl[i].pend, r->ps);
		free(r->fl[i].msg);
	}
	free(r->fl);
	free(r->sending);
	r->fl = NULL;
	r->sending = NULL;
}

/* Bring f's entry in the readiness set to what is posted for it now. A
 * send still in flight after the enter that submitted it is waiting for
 * room in the socket, and is watched for that: the kernel retries it then,
 * in deferred work that waits for our next enter. (Sends that go out at
 * once, nearly all, cost no epoll_ctl.) */
static void watch(struct ps_ring *r, struct ps_flow *f)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	uint32_t want = (rf->armed ? EPOLLIN | EPOLLRDHUP : rf->hup_watch ? EPOLLRDHUP : 0) |
			(rf->sending && rf->await_room ? EPOLLOUT : 0);

	if (want == rf->watched)
		return;
	struct epoll_event ev = { .events = want, .data.u64 = ps_flow_id(f) };
	int op = !rf->watched ? EPOLL_CTL_ADD : !want ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

	/* A failed add leaves it unwatched, to be tried again at the next
	 * change; a failed delete means the socket is gone already. */
	if (!epoll_ctl(r->epfd, op, ps_flow_fd(f), &ev) || op == EPOLL_CTL_DEL)
		rf->watched = want;
}

int ps_ring_enable(struct ps_ring *r)
{
	if (r->enabled)
		return 0;
	int ret = ps_uring_enable_rings(&r->ring);

	r->enabled = !ret;
	return ret;
}

struct io_uring_sqe *ps_ring_sqe(struct ps_ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	if (!sqe) {
		io_uring_submit(&r->ring);
		sqe = io_uring_get_sqe(&r->ring);
	}
	return sqe;
}

int ps_ring_arm(struct ps_ring *r, struct ps_flow *f)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	int ret = ps_ring_enable(r);

	if (ret)
		return ret;
	if (rf->cancelling)
		return -ECANCELED; /* detach is waiting for the end of the last one */
	struct io_uring_sqe *sqe = ps_ring_sqe(r);

	if (!sqe)
		return -EBUSY;
	r->prep_recv(r, sqe, ps_flow_fd(f));
	io_uring_sqe_set_data64(sqe, ps_flow_id(f));
	rf->armed = true;
	watch(r, f);
	ret = io_uring_submit(&r->ring);
	return ret < 0 ? ret : 0;
}

/*
 * A starved flow has no receive posted, so nothing would notice its peer
 * leaving until space returns, and the application, waiting for space,
 * would keep a dead client's socket in CLOSE_WAIT. A one-shot poll for the
 * hang-up ends the stream instead (UD_HUP in its user_data).
 */
void ps_ring_starve(struct ps_ring *r, struct ps_flow *f)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	struct io_uring_sqe *sqe;

	ps_flow_starve(r->ps, f, true);
	if (rf->hup_watch || rf->cancelling || ps_flow_hup_noticed(f) || !ps_flow_receiving(f) ||
	    ps_ring_enable(r) || !(sqe = ps_ring_sqe(r)))
		return;
	io_uring_prep_poll_add(sqe, ps_flow_fd(f), POLLRDHUP);
	io_uring_sqe_set_data64(sqe, ps_flow_id(f) | UD_HUP);
	rf->hup_watch = true;
	watch(r, f);
	io_uring_submit(&r->ring);
}

/* The hang-up poll fired (or was cancelled). With nothing unread, the
 * stream has ended; with bytes unread, the application hears of it once
 * (see recv_socket.c) and the poll is not posted again for this flow. */
static void hangup_done(struct ps_ring *r, struct ps_flow *f, int res)
{
	struct pktstore *ps = r->ps;
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	int unread = 0;

	rf->hup_watch = false;
	if (res < 0 || !ps_flow_starved(f) || !ps_flow_receiving(f) || rf->armed)
		return; /* cancelled, or receiving again: the receive sees the end */
	if (ioctl(ps_flow_fd(f), FIONREAD, &unread))
		unread = 0;
	if (unread <= 0) {
		ps_land(ps, f, 0, 0, 0);
		return;
	}
	/* Bytes wait. If the buffers were only short for a moment (they come
	 * back as completions are reaped), receive them: a hang-up while
	 * full is for an arena that has no room. */
	ps_resume_starved(ps);
	if (!ps_flow_starved(f))
		return;
	ps_hangup_notice(ps, f);
}

/* Bytes queued for f behind the send in flight. */
#define SEND_QUEUE_MAX (4u << 20)

/* Post the send of out from out_sent (the ring is enabled). io_uring
 * waits for room itself, mostly, on a non-blocking socket too; but a send
 * it has polled for once and found no room for again (a wake-up without
 * room, as the peer's FIN gives) goes to a worker, where a non-blocking
 * socket fails it with -EAGAIN: send_done then waits for room itself. */
static int post_send(struct ps_ring *r, struct ps_flow *f)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	struct io_uring_sqe *sqe;

	if (!rf->msg) {
		rf->msg = calloc(1, sizeof(*rf->msg) + PS_SEND_IOV * sizeof(struct iovec));
		if (!rf->msg)
			return -ENOMEM;
	}
	if (!(sqe = ps_ring_sqe(r)))
		return -EBUSY;
	struct iovec *iov = (struct iovec *)(rf->msg + 1);

	rf->msg->msg_iov = iov;
	rf->msg->msg_iovlen = ps_sendq_iov(&rf->out, &r->ar, rf->out_sent, iov, PS_SEND_IOV);
	/* MSG_WAITALL: the kernel sends it all, waiting for room, before it
	 * completes; a short completion is sent on from where it stopped. */
	io_uring_prep_sendmsg(sqe, ps_flow_fd(f), rf->msg, MSG_NOSIGNAL | MSG_WAITALL);
	io_uring_sqe_set_data64(sqe, ps_flow_id(f) | UD_SEND);
	r->fresh_sends++;
	if (!rf->sending) {
		rf->sending_at = r->nsending;
		r->sending[r->nsending++] = ps_flow_id(f);
	}
	rf->sending = true;
	return 0;
}


/* f's send ended and nothing follows it. */
static void send_over(struct ps_ring *r, struct ps_flow *f)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	uint64_t last = r->sending[--r->nsending];
	struct ps_flow *lf = ps_be_flow(r->ps, last);

	r->sending[rf->sending_at] = last;
	if (lf)
		ps_ring_flow(r, lf)->sending_at = rf->sending_at;
	rf->sending = rf->await_room = false;
}

/* The queued bytes become the send in flight; the sent ones go (and
 * what they held of the arena). */
static int send_next(struct ps_ring *r, struct ps_flow *f)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	struct ps_sendq done = rf->out;

	ps_sendq_clear(&done, r->ps);
	rf->out = rf->pend;
	rf->pend = done;
	rf->out_sent = 0;
	return post_send(r, f);
}

static void send_drop(struct ps_ring *r, struct ps_ring_flow *rf)
{
	ps_sendq_clear(&rf->out, r->ps);
	ps_sendq_clear(&rf->pend, r->ps);
	rf->out_sent = 0;
}

/* Cancel what f has posted with this user_data bit (0: its receive). */
static void post_cancel(struct ps_ring *r, struct ps_flow *f, uint64_t bit)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&r->ring)))
		io_uring_submit_and_wait(&r->ring, 1);
	io_uring_prep_cancel64(sqe, ps_flow_id(f) | bit, 0);
	io_uring_sqe_set_data64(sqe, UD_CANCEL);
}

/* f's send found no room (-EAGAIN): it stays in flight, in a POLLOUT
 * poll whose completion posts it again (room_done). */
static int post_room_poll(struct ps_ring *r, struct ps_flow *f)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	struct io_uring_sqe *sqe = ps_ring_sqe(r);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_poll_add(sqe, ps_flow_fd(f), POLLOUT);
	io_uring_sqe_set_data64(sqe, ps_flow_id(f) | UD_ROOM);
	rf->room_poll = rf->await_room = true;
	return 0;
}

static void room_done(struct ps_ring *r, struct ps_flow *f, int res)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	int ret = res < 0 ? res : 0;

	rf->room_poll = false;
	if (!ret && !rf->cancelling)
		ret = post_send(r, f); /* still listed as sending */
	if (ret || rf->cancelling) {
		send_over(r, f);
		if (!rf->cancelling)
			rf->send_err = ret;
		send_drop(r, rf);
	}
}

static void send_done(struct ps_ring *r, struct ps_flow *f, int res)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);

	if (res == -EAGAIN && !rf->cancelling && !post_room_poll(r, f))
		return;
	send_over(r, f); /* a send that follows lists it again */
	if (rf->cancelling) {
		/* Detach: what was queued behind a send that went out whole
		 * gets one try, cancelled at once if the peer has no room. */
		if (res > 0 && (uint64_t)res >= rf->out.bytes - rf->out_sent && rf->pend.bytes &&
		    !send_next(r, f))
			post_cancel(r, f, UD_SEND);
		else
			send_drop(r, rf);
		return;
	}
	if (res <= 0) {
		/* The peer is gone or the socket failed: what waits cannot
		 * be sent either; the next pktstore_send() reports it. */
		rf->send_err = res ? res : -EPIPE;
		send_drop(r, rf);
		return;
	}
	uint64_t left = rf->out.bytes - rf->out_sent;

	rf->out_sent += (uint64_t)res < left ? (uint64_t)res : left;
	int ret = 0;

	if (rf->out_sent < rf->out.bytes)
		ret = post_send(r, f);
	else if (rf->pend.bytes)
		ret = send_next(r, f);
	else
		ps_sendq_clear(&rf->out, r->ps); /* let go of the arena at once */
	if (ret) {
		rf->send_err = ret;
		send_drop(r, rf);
	}
	/* The queue behind the send in flight is empty: a send refused for
	 * want of room can go now. */
	if (!rf->pend.bytes)
		ps_flow_writable(r->ps, f);
}

/* Whether f's send has its completion in the ring already (went out at
 * once), without reaping it. */
static bool send_completed(struct ps_ring *r, struct ps_flow *f)
{
	struct io_uring_cqe *cqe;
	unsigned head;

	io_uring_for_each_cqe(&r->ring, head, cqe) {
		if (io_uring_cqe_get_data64(cqe) == (ps_flow_id(f) | UD_SEND))
			return true;
	}
	return false;
}

int ps_ring_send(struct ps_ring *r, struct ps_flow *f, const struct iovec *iov, unsigned iovcnt,
		 size_t len, unsigned flags)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);
	int ret = ps_ring_enable(r);

	if (ret)
		return ret;
	if (rf->send_err) {
		ret = rf->send_err;
		rf->send_err = 0;
		return ret;
	}
	if (len > SEND_QUEUE_MAX - rf->pend.bytes)
		return -EAGAIN; /* the peer reads too slowly: receive (reap) first */
	ret = ps_sendq_add(&rf->pend, r->ps, &r->ar, iov, iovcnt, r->send_from_arena);
	if (ret)
		return ret;
	if (!rf->sending) {
		ret = send_next(r, f);
		if (ret) {
			/* Not taken after all: the queue was empty before. */
			ps_sendq_clear(&rf->out, r->ps);
			return ret;
		}
	}
	if (!(flags & PKTSTORE_SEND_MORE)) {
		ret = io_uring_submit(&r->ring);
		if (ret < 0 && ret != -EAGAIN && ret != -EBUSY)
			return ret;
		if (rf->sending && !rf->await_room && !send_completed(r, f)) {
			rf->await_room = true; /* it waits for room: see watch() */
			watch(r, f);
		}
	}
	return (int)len;
}

/*
 * A watched fd waits in a one-shot poll: the completion is its report, and
 * the core asks for the next. It is also in the readiness set while
 * watched, so that a loop around pktstore_fd() hears of it even where the
 * poll's completion waits for our next enter (deferred task running).
 */
int ps_ring_watch(struct ps_ring *r, unsigned i, int fd, bool on)
{
	int ret = ps_ring_enable(r);

	if (ret)
		return ret;
	if (!on) {
		if (r->watch[i].posted) {
			struct io_uring_sqe *sqe;

			while (!(sqe = io_uring_get_sqe(&r->ring)))
				io_uring_submit_and_wait(&r->ring, 1);
			io_uring_prep_cancel64(sqe, UD_WATCH | i, 0);
			io_uring_sqe_set_data64(sqe, UD_CANCEL);
			r->watch[i].posted = false;
			r->watch[i].fd = -1; /* its completion, when it comes, is no report */
			ret = io_uring_submit_and_wait(&r->ring, 1);
			ps_ring_reap(r);
		}
		if (r->watch[i].in_set)
			epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
		r->watch[i].in_set = false;
		return 0;
	}
	struct io_uring_sqe *sqe = ps_ring_sqe(r);

	if (!sqe)
		return -EBUSY;
	if (!r->watch[i].in_set || r->watch[i].fd != fd) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UD_WATCH | i };

		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev))
			return -errno; /* not a fd that can be polled */
		r->watch[i].in_set = true;
	}
	io_uring_prep_poll_add(sqe, fd, POLLIN);
	io_uring_sqe_set_data64(sqe, UD_WATCH | i);
	r->watch[i].fd = fd;
	r->watch[i].posted = true;
	return 0;
}

static void watch_done(struct ps_ring *r, unsigned i, int res)
{
	if (i >= PS_WATCH_MAX || !r->watch[i].posted)
		return; /* cancelled by an unwatch */
	r->watch[i].posted = false;
	ps_watch_fired(r->ps, i, res < 0 ? res : 0);
}

static void handle_cqe(struct ps_ring *r, const struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);

	if (ud & UD_CANCEL)
		return;
	if (ud & UD_WATCH) {
		watch_done(r, (unsigned)(ud & ~UD_WATCH), cqe->res);
		return;
	}

	struct ps_flow *f = ps_be_flow(r->ps, ud & ~(UD_HUP | UD_SEND | UD_ROOM));

	if (ud & UD_HUP) {
		if (f)
			hangup_done(r, f, cqe->res);
	} else if (ud & UD_SEND) {
		if (f)
			send_done(r, f, cqe->res);
	} else if (ud & UD_ROOM) {
		if (f)
			room_done(r, f, cqe->res);
	} else {
		if (f && !(cqe->flags & IORING_CQE_F_MORE))
			ps_ring_flow(r, f)->armed = false;
		r->on_recv(r->ps, f, cqe);
	}
	if (f) /* what is posted for f changed: so does what the fd watches */
		watch(r, f);
}

unsigned ps_ring_reap(struct ps_ring *r)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&r->ring, head, cqe) {
		handle_cqe(r, cqe);
		n++;
	}
	io_uring_cq_advance(&r->ring, n);
	return n;
}

/*
 * Submit and wait in one enter. A send to a socket with room completes as
 * it is submitted, and its completion alone must not end the wait, or a
 * request would cost two enters: the wait is for one completion more than
 * the sends just posted. A send that has to wait for room (its peer does
 * not read) would then hold the wait until one more event comes: the
 * timeout bounds that to one short wait per such send, after which the
 * caller waits again for anything.
 */
#define SEND_WAIT_NS (2 * 1000 * 1000)

static int submit_and_wait(struct ps_ring *r)
{
	if (!r->fresh_sends)
		return io_uring_submit_and_wait(&r->ring, 1);

	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = SEND_WAIT_NS };
	struct io_uring_cqe *cqe;

	return io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1 + r->fresh_sends, &ts, NULL);
}

int ps_ring_poll(struct ps_ring *r, bool wait)
{
	uint64_t ignored;
	int ret = ps_ring_enable(r);

	if (ret)
		return ret;
	/* Clear the hint before reaping, so a completion arriving meanwhile
	 * leaves the fd readable; nobody waits on it unless pktstore_fd()
	 * was asked for, and a server driving the store by its own calls
	 * saves the read. */
	if (r->fd_given && read(r->evfd, &ignored, sizeof(ignored)) < 0 && errno != EAGAIN)
		return -errno;
	/* Deferred completions run only when we enter the kernel: one enter
	 * submits what waits (sends under PKTSTORE_SEND_MORE) and runs them. */
	if (wait && !io_uring_cq_ready(&r->ring))
		ret = submit_and_wait(r);
	else if (!wait && r->deferred)
		ret = io_uring_submit_and_get_events(&r->ring);
	else
		ret = io_uring_submit(&r->ring);
	r->fresh_sends = 0;
	if (ret == -EINTR)
		return ret; /* like recv(2): a signal ends the wait */
	if (ret < 0 && ret != -EAGAIN && ret != -EBUSY && ret != -ETIME)
		return ret;
	ret = (int)ps_ring_reap(r);
	/* Sends still in flight wait for room: watch for it. */
	for (uint32_t i = 0; i < r->nsending; i++) {
		struct ps_flow *f = ps_be_flow(r->ps, r->sending[i]);

		if (f && !ps_ring_flow(r, f)->await_room) {
			ps_ring_flow(r, f)->await_room = true;
			watch(r, f);
		}
	}
	return ret;
}

void ps_ring_cancel(struct ps_ring *r, struct ps_flow *f)
{
	struct ps_ring_flow *rf = ps_ring_flow(r, f);

	if (rf->armed || rf->hup_watch || rf->sending) {
		rf->cancelling = true;
		/* The hang-up poll and a send hold a reference to the socket:
		 * they must be gone before detach returns, or closing the fd
		 * would not close it. A send still queued (PKTSTORE_SEND_MORE)
		 * goes out in the same submission first: only bytes the peer
		 * has no room for are dropped. */
		if (rf->armed)
			post_cancel(r, f, 0);
		if (rf->hup_watch)
			post_cancel(r, f, UD_HUP);
		if (rf->sending)
			post_cancel(r, f, rf->room_poll ? UD_ROOM : UD_SEND);
		while (rf->armed || rf->hup_watch || rf->sending) {
			int ret = io_uring_submit_and_wait(&r->ring, 1);

			if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
				break;
			ps_ring_reap(r);
		}
	}
	if (rf->sending)
		send_over(r, f); /* the wait above gave up */
	rf->armed = rf->hup_watch = rf->room_poll = rf->cancelling = false;
	send_drop(r, rf);
	rf->send_err = 0;
	watch(r, f);
}
