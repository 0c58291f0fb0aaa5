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
 * "Leaves" means a reset or a FIN that reached this socket: a zero window
 * holds back a FIN queued behind unsent bytes, and kernels before 6.10 drop
 * a bare FIN at a zero window (pktstore_recv_persist_any(3) says so).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"

#define RECV_MAX (256u * 1024)   /* bytes asked for in one recv(2) */
#define RECV_MIN 4096u           /* smaller tails of a segment are skipped */
#define RECVS_PER_FLOW 16        /* fairness between ready flows */
/* An epoll entry of a watched fd (pktstore_watch) carries its number with
 * this bit, above every flow id. */
#define WATCH_BIT (1ull << 63)

/* What the epoll set holds of an attached flow, by flow slot. */
struct sock_flow {
	bool in_set;
	bool ended;    /* its end of stream landed: its bytes are not read again */
	bool want_out; /* a send waits for room (EPOLLOUT) */
};

struct socket_state {
	int epfd;
	struct ps_be_arena ar;
	struct sock_flow *fl;
};

/* Bring f's entry in the set to what f waits for: its bytes (only its
 * hang-up while starved, nothing once that was reported but the reset or
 * error epoll always reports), and room while a send waits for it. A flow
 * whose stream ended and that waits for no room leaves the set: its socket
 * stays readable (EOF) and would wake every wait. */
static int watch(struct pktstore *ps, struct ps_flow *f)
{
	struct socket_state *s = ps_be_state(ps);
	struct sock_flow *sf = &s->fl[ps_flow_slot(f)];
	struct epoll_event ev = { .data.u64 = ps_flow_id(f) };

	if (!sf->ended)
		ev.events = !ps_flow_starved(f) ? EPOLLIN | EPOLLRDHUP
			    : ps_flow_hup_noticed(f) ? 0 : EPOLLRDHUP;
	if (sf->want_out)
		ev.events |= EPOLLOUT;
	if (sf->ended && !ev.events) {
		if (sf->in_set)
			epoll_ctl(s->epfd, EPOLL_CTL_DEL, ps_flow_fd(f), NULL);
		sf->in_set = false;
		return 0;
	}
	if (epoll_ctl(s->epfd, sf->in_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, ps_flow_fd(f), &ev))
		return -errno;
	sf->in_set = true;
	return 0;
}

static void starve(struct pktstore *ps, struct ps_flow *f)
{
	ps_flow_starve(ps, f, true);
	watch(ps, f);
}

/* f's stream ended (status 0: EOF, or -errno); a send may still wait for
 * room. */
static void end_flow(struct pktstore *ps, struct ps_flow *f, int status)
{
	struct socket_state *s = ps_be_state(ps);

	s->fl[ps_flow_slot(f)].ended = true;
	watch(ps, f);
	ps_land(ps, f, 0, 0, status);
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
	int unread = 0;

	if (ioctl(ps_flow_fd(f), FIONREAD, &unread))
		unread = 0;
	if (unread <= 0) {
		end_flow(ps, f, 0);
		return;
	}
	ps_hangup_notice(ps, f);
	watch(ps, f);
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
	ps_be_arena(ps, &s->ar);
	ps_be_set_state(ps, s);
	s->fl = calloc(s->ar.max_flows ? s->ar.max_flows : 1, sizeof(*s->fl));
	return s->fl ? 0 : -ENOMEM;
}

static void socket_fini(struct pktstore *ps)
{
	struct socket_state *s = ps_be_state(ps);

	if (!s)
		return;
	close(s->epfd);
	free(s->fl);
	free(s);
	ps_be_set_state(ps, NULL);
}

static int socket_attach(struct pktstore *ps, struct ps_flow *f)
{
	struct socket_state *s = ps_be_state(ps);

	s->fl[ps_flow_slot(f)] = (struct sock_flow){ 0 };
	return watch(ps, f);
}

static void socket_detach(struct pktstore *ps, struct ps_flow *f)
{
	struct socket_state *s = ps_be_state(ps);
	struct sock_flow *sf = &s->fl[ps_flow_slot(f)];

	if (sf->in_set)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, ps_flow_fd(f), NULL);
	*sf = (struct sock_flow){ 0 };
}

/* A send took less than it was given: watch for room too, after the end of
 * the stream as well (a peer that shut down its side may still read). */
static void socket_want_writable(struct pktstore *ps, struct ps_flow *f)
{
	struct socket_state *s = ps_be_state(ps);
	struct sock_flow *sf = &s->fl[ps_flow_slot(f)];

	if (sf->want_out)
		return;
	sf->want_out = true;
	if (watch(ps, f)) {
		sf->want_out = false;
		ps_flow_writable(ps, f); /* cannot watch it: let the caller try */
	}
}

/* Receive what the socket has, up to a fair share. Returns landings made. */
static int recv_flow(struct pktstore *ps, struct ps_flow *f)
{
	struct socket_state *s = ps_be_state(ps);
	int landed = 0;

	for (int i = 0; i < RECVS_PER_FLOW && ps_flow_receiving(f); i++) {
		uint64_t off;
		uint32_t avail;

		/* Without a descriptor the bytes could not become a record:
		 * they wait in the socket instead of the stall queue. */
		if (!ps_be_can_record(ps) ||
		    ps_be_bump_reserve(ps, RECV_MIN < s->ar.seg_size ? RECV_MIN : s->ar.seg_size,
				       &off, &avail)) {
			starve(ps, f);
			break;
		}
		size_t want = avail < RECV_MAX ? avail : RECV_MAX;
		ssize_t n = recv(ps_flow_fd(f), s->ar.base + off, want, MSG_DONTWAIT);

		if (n > 0) {
			ps_be_bump_commit(ps, (uint32_t)n);
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
	struct socket_state *s = ps_be_state(ps);

	if (only) {
		struct pollfd pfd = { .fd = ps_flow_fd(only), .events = POLLIN | POLLRDHUP };
		bool starved = ps_flow_starved(only);

		if (starved)
			pfd.events = ps_flow_hup_noticed(only) ? 0 : POLLRDHUP;
		if (poll(&pfd, 1, wait ? -1 : 0) < 0)
			return -errno;
		if (starved && pfd.revents) {
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
		if (ev[i].data.u64 & WATCH_BIT) {
			ps_watch_fired(ps, (unsigned)(ev[i].data.u64 & ~WATCH_BIT), 0);
			landed++;
			continue;
		}
		struct ps_flow *f = ps_be_flow(ps, ev[i].data.u64);

		struct sock_flow *sf = f ? &s->fl[ps_flow_slot(f)] : NULL;

		/* Room, or a socket that failed: the next send says which. */
		if (sf && sf->want_out && ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
			sf->want_out = false;
			watch(ps, f);
			ps_flow_writable(ps, f);
			landed++;
		}
		if (!f || sf->ended || !ps_flow_receiving(f))
			continue;
		if (!ps_flow_starved(f)) {
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
	ps_resume_starved(ps);
}

static int socket_resume(struct pktstore *ps, struct ps_flow *f)
{
	/* Full interest again once the core has marked it unstarved: the
	 * watch follows ps_flow_starved(), so mark first. */
	ps_flow_starve(ps, f, false);
	watch(ps, f);
	return 0;
}

/* One report per wait: EPOLLONESHOT disables the entry once it fires, and
 * the next wait re-enables it. */
static int socket_watch(struct pktstore *ps, unsigned i, int fd, bool on)
{
	struct socket_state *s = ps_be_state(ps);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = WATCH_BIT | i };

	if (!on)
		return epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL) ? -errno : 0;
	if (!epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev))
		return 0;
	return errno == ENOENT && !epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) ? 0 : -errno;
}

static int socket_fd(struct pktstore *ps)
{
	return ((struct socket_state *)ps_be_state(ps))->epfd;
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
	.resume = socket_resume,
	.fd = socket_fd,
	.watch = socket_watch,
	.want_writable = socket_want_writable,
};
