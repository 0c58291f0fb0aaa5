/* SPDX-License-Identifier: MIT */
/*
 * server.c - listeners and connections, driven by the store itself.
 *
 * There is no event loop here. The listeners, a timerfd that paces the
 * housekeeping and a signalfd are watched by the store (pktstore_watch),
 * replies go out through its ring (pktstore_send, reply.c), and one
 * blocking pktstore_recv_persist_any() per round waits for all of it: on
 * the io_uring receive paths that call is the round's one system call. It
 * submits the replies queued in the last round, waits, and hands back
 * records, ends of streams, room to send and the watched descriptors'
 * events.
 *
 * The library reads every connection; this file accepts, hands replies to
 * the store and closes. A reply is queued only after the records completing
 * its command came back from pktstore_recv_persist_any(), which is the
 * acknowledgement rule: nothing is answered before it is durable.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cmd.h"

#define BATCH 256
/* A command or a transaction may straddle this many records before its
 * sender is cut off: a trickling client cannot pin unbounded arena
 * descriptors. */
#define MAX_PARTIAL_RECORDS 4096
#define CLOSE_GRACE_NS 2000000000ull
/* The housekeeping's pace: slow-client deadlines, lingering closes, active
 * expiry, cleaning passes that wait for their back-off. */
#define TICK_NS 50000000ll

static int stop;
/* The watches' user pointers: which descriptor an event is for. */
static char tag_resp, tag_http, tag_timer, tag_signal;

/* Serve c after this batch: hand its replies to the store, move a closing
 * connection on. */
static void mark(struct kv_server *s, struct conn *c)
{
	if (!c || c->dirty)
		return;
	c->dirty = 1;
	c->dnext = s->dirty;
	s->dirty = c;
}

static void process(struct kv_server *s, const struct pktstore_rec *pr);

/* After detaching, pick up what the library persisted but has not handed
 * out: those commands are in the log and replay would apply them, so the
 * live index must apply them too. */
static void detach(struct kv_server *s, struct conn *c)
{
	struct kflow *f = c->flow;
	if (c->detached)
		return;
	c->detached = 1;
	int rc = pktstore_detach(s->ps, f->id);
	static struct kv_ratelimit rl;
	if (rc < 0)
		kv_log_limited(&rl, "detach of flow %llu: %s", (unsigned long long)f->id,
			       pktstore_strerror(rc));
	c->discard = 1;
	struct pktstore_rec recs[64];
	for (;;) {
		struct pktstore_query q = { PKTSTORE_BY_SEQ, f->id, f->next_seq, UINT64_MAX };
		int n = pktstore_range(s->ps, &q, recs, 64);
		int progress = 0;
		for (int i = 0; i < n; i++)
			if (recs[i].len && recs[i].seq >= f->next_seq) {
				process(s, &recs[i]);
				progress = 1;
			}
		if (n <= 0 || !progress)
			break;
	}
}

void conn_close(struct kv_server *s, struct conn *c)
{
	struct kflow *f = c->flow;
	detach(s, c);
	out_free(s, c);
	multi_free(s, c);
	free(c->name);
	free(c->lib_name);
	free(c->lib_ver);
	if (c->fin_watch)
		pktstore_unwatch(s->ps, c->fd); /* no event for it follows */
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->dirty) {
		struct conn **pp = &s->dirty;
		while (*pp != c)
			pp = &(*pp)->dnext;
		*pp = c->dnext;
	}
	s->nconns--;
	f->conn = NULL;
	f->closed = 1;
	free(c);
	flow_try_release(s, f);
}

static void refuse(int fd, int proto, const char *why)
{
	static const char resp[] = "-ERR max number of clients reached\r\n";
	static const char http[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n";
	ssize_t w = proto == KV_RESP ? send(fd, resp, sizeof(resp) - 1, MSG_DONTWAIT | MSG_NOSIGNAL)
				     : send(fd, http, sizeof(http) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)w;
	static struct kv_ratelimit rl;
	if (why)
		kv_log_limited(&rl, "connection refused: %s", why);
	close(fd);
}

static void on_accept(struct kv_server *s, int lfd, int proto)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, s->sock_flags | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (s->nconns >= s->cfg.max_clients) {
			s->st.rejected_connections++;
			refuse(fd, proto, NULL);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* The tag says, durably, whether this connection must AUTH first:
		 * replay of its stream follows the same rule. */
		int need_auth = proto == KV_RESP && s->cfg.requirepass;
		uint64_t tag = proto == KV_HTTP ? KV_TAG_HTTP : need_auth ? KV_TAG_RESP_AUTH : KV_TAG_RESP;
		uint64_t id;
		int rc = pktstore_attach(s->ps, fd, tag, &id);
		if (rc < 0) {
			refuse(fd, proto, pktstore_strerror(rc));
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		struct kflow *f = c ? flow_add(s, id, proto) : NULL;
		if (!f) {
			free(c);
			pktstore_detach(s->ps, id);
			refuse(fd, proto, "out of memory");
			continue;
		}
		c->fd = fd;
		c->proto = proto;
		c->flow = f;
		c->id = ++s->next_client_id;
		c->created_ms = c->last_ms = wall_ms();
		f->conn = c;
		f->need_auth = (uint8_t)need_auth;
		f->authed = !need_auth;
		s->st.connections++;
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nconns++;
	}
}

static void process(struct kv_server *s, const struct pktstore_rec *pr)
{
	struct kflow *f = flow_get(s, pr->flow);
	if (!f || f->proto == KV_META)
		return;
	mark(s, f->conn);
	if (!pr->len) {
		if (f->conn) {
			f->conn->closing = 1; /* end of stream: answer what came, then close */
			f->conn->ended = 1;
			/* Reset, not shut down: no reply will be read. */
			if (pr->flags & PKTSTORE_REC_END && pr->status < 0)
				f->conn->gone = 1;
			/* Try the output again: a send that failed (the peer reset)
			 * says so there, and no room will be reported for it. */
			f->conn->blocked = 0;
		}
		return;
	}
	if (f->started && pr->seq < f->next_seq)
		return; /* already taken (seen again after a detach) */
	if (f->closed) {
		/* Bytes that became a record only after the connection closed
		 * (they waited in the store for a descriptor): nobody is left
		 * to answer, the transaction they might end was dropped with
		 * the connection, and the unfinished command they continue may
		 * have given its records back already (flow_try_release). They
		 * go unread. Replay stops at the gap, or runs them unanswered,
		 * as for any command a crash cut off before its reply. */
		static struct kv_ratelimit rl;
		kv_log_limited(&rl, "flow %llu: %u bytes arrived after it closed; dropped",
			       (unsigned long long)f->id, pr->len);
		int rc = pktstore_release(s->ps, pr->id);
		if (rc == 0)
			s->released++;
		return;
	}
	f->started = 1;
	if (pr->id > s->last_id) {
		s->last_id = pr->id;
	} else {
		static int warned;
		if (!warned++)
			kv_log("records arrive out of id order (%llu after %llu): replay order may differ",
			       (unsigned long long)pr->id, (unsigned long long)s->last_id);
	}
	struct krec *r = rec_add(s, f, pr);
	if (!r) {
		static struct kv_ratelimit rl;
		kv_log_limited(&rl, "out of memory: dropping connection");
		if (f->conn)
			f->conn->closing = 1;
		return;
	}
	flow_feed(s, f, r, NULL);
	if (!r->ends_clean && f->conn && !f->broken) {
		/* Records held for the command or transaction still open. */
		uint64_t from = f->in_multi ? f->multi_start : flow_cmd_start(f);
		uint32_t partial = 0;
		/* They are the list's tail (it is in seq order): counted from
		 * there, not walked to from a head that held records may keep
		 * far behind, at each record received. */
		for (struct krec *x = f->tail;
		     x && x->seq + x->len > from && partial <= MAX_PARTIAL_RECORDS; x = x->prev)
			partial++;
		if (partial > MAX_PARTIAL_RECORDS) {
			/* Not "broken": whatever of it was persisted still applies,
			 * as replay would apply it. */
			static struct kv_ratelimit rl;
			kv_log_limited(&rl, "flow %llu: command spans too many records; closing",
				       (unsigned long long)f->id);
			f->conn->closing = 1;
		}
	}
	flow_try_release(s, f);
}

static int by_id(const void *a, const void *b)
{
	const struct pktstore_rec *x = a, *y = b;
	/* Events (ends of streams, room to send, watched descriptors) carry
	 * id 0; they belong after the data. */
	uint64_t i = x->id ? x->id : UINT64_MAX, j = y->id ? y->id : UINT64_MAX;
	return i < j ? -1 : i > j;
}

/*
 * Closing: replies first, then our FIN, then the client's remaining bytes
 * are read and dropped until its FIN or a deadline. Closing with unread
 * input would send a RST that can destroy the error reply in flight. The
 * store watches the socket meanwhile, so the connection goes (and frees its
 * place under --max-clients) as soon as the client's FIN comes, not at the
 * next housekeeping tick.
 */
static int linger_done(struct kv_server *s, struct conn *c, uint64_t now)
{
	if (!c->lingering) {
		shutdown(c->fd, SHUT_WR);
		c->lingering = 1;
		c->close_deadline_ns = now + CLOSE_GRACE_NS;
		c->fin_watch = pktstore_watch(s->ps, c->fd, c) == 0;
	}
	char buf[16384];
	for (int i = 0; i < 4; i++) {
		ssize_t r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return 1;
		if (r < 0)
			break;
	}
	return now > c->close_deadline_ns;
}

/*
 * Hand c's replies to the store; move a closing connection on. It stays
 * attached (its records still apply, unanswered) until every reply is in
 * its socket or the grace is over, because detaching ends the store's
 * sends and would drop what a slow reader has not taken yet; then it is
 * detached and lingers.
 */
static void serve_conn(struct kv_server *s, struct conn *c, uint64_t now)
{
	if (c->qhead != c->qtail && !c->blocked && !c->detached) {
		int rc = out_flush(s, c);
		if (rc < 0) {
			c->closing = 1;
			c->gone = 1;
			out_free(s, c);
		}
	}
	if (!c->closing)
		return;
	if (!c->detached) {
		/* The grace runs from the client's last progress: one still
		 * taking its replies, however slowly, gets them all (its queue
		 * is bounded by --max-output like any client's); one that takes
		 * nothing is cut off after it. */
		uint64_t acked = c->sent ? out_acked(c) : 0;
		if (!c->close_deadline_ns || acked != c->close_acked) {
			c->close_deadline_ns = now + CLOSE_GRACE_NS;
			c->close_acked = acked;
		}
		if (!c->gone && (c->qhead != c->qtail || !out_in_socket(c)) &&
		    now <= c->close_deadline_ns)
			return;
		detach(s, c);
	}
	if (linger_done(s, c, now))
		conn_close(s, c);
}

/* The connections this batch touched. */
static void serve_dirty(struct kv_server *s)
{
	if (!s->dirty)
		return;
	uint64_t now = now_ns();
	while (s->dirty) {
		struct conn *c = s->dirty;
		s->dirty = c->dnext;
		c->dirty = 0;
		serve_conn(s, c, now);
	}
}

/* Every connection: deadlines and lingering closes move on time alone. */
static void housekeeping(struct kv_server *s)
{
	uint64_t ticks;
	if (read(s->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN) {
		static struct kv_ratelimit rl;
		kv_log_limited(&rl, "timer: %s", strerror(errno));
	}
	/* Keys whose time is up go a few at a time (ks_active_expire). */
	ks_active_expire(s, 2000);
	uint64_t now = now_ns();
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (c->closing || (c->qhead != c->qtail && !c->blocked))
			serve_conn(s, c, now);
	}
	compact_maybe(s);
}

static void on_signal(struct kv_server *s)
{
	struct signalfd_siginfo si;
	if (read(s->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		stop = 1;
}

/* Bytes of c's stream that belong to a command (or MULTI) not finished
 * yet: the records holding them stay until it is. */
static uint64_t unfinished_bytes(const struct conn *c)
{
	const struct kflow *f = c->flow;
	uint64_t from = flow_unfinished_from(f);
	return f->broken || c->detached || f->next_seq <= from ? 0 : f->next_seq - from;
}

static int by_unfinished_desc(const void *a, const void *b)
{
	uint64_t x = unfinished_bytes(*(struct conn *const *)a);
	uint64_t y = unfinished_bytes(*(struct conn *const *)b);
	return x < y ? 1 : x > y ? -1 : 0;
}

/*
 * The arena has been full for --full-timeout with nothing released: the
 * space is held by commands still arriving, whose clients may never finish
 * them (or whose goodbye cannot get through: a peer's FIN waits behind the
 * bytes a full store does not read). Nobody else can be served meanwhile, not
 * even a GET, whose bytes need room too. Close the connections holding
 * unfinished commands, largest first, until a quarter of the data region is
 * theirs no more; none of those commands was answered, so nothing
 * acknowledged is lost. Redis's client eviction (maxmemory-clients) is the
 * same choice.
 */
static void evict_unfinished(struct kv_server *s)
{
	struct pktstore_stats st;
	uint64_t want = pktstore_stats(s->ps, &st) == 0 ? st.data_bytes / 4 : UINT64_MAX;
	struct conn **v = malloc((s->nconns ? s->nconns : 1) * sizeof(*v));
	if (!v)
		return;
	uint64_t n = 0;
	for (struct conn *c = s->conns; c; c = c->next)
		if (unfinished_bytes(c))
			v[n++] = c;
	qsort(v, n, sizeof(*v), by_unfinished_desc);
	uint64_t freed = 0;
	for (uint64_t i = 0; i < n && freed < want; i++) {
		uint64_t b = unfinished_bytes(v[i]);
		kv_log("the arena has been full for %llu s: closing client %llu, whose unfinished "
		       "command holds %llu bytes",
		       (unsigned long long)(s->cfg.full_timeout_ns / 1000000000ull),
		       (unsigned long long)v[i]->id, (unsigned long long)b);
		freed += b;
		s->st.evicted_clients++;
		conn_close(s, v[i]);
	}
	free(v);
}

/*
 * The store returns -ENOSPC at once while it is full, blocking or not: it
 * hands out nothing until records are released, and does not wait for the
 * watched descriptors meanwhile. Make room; if nothing was released, wait
 * for the next tick (or a signal) instead of calling again at once, which
 * would spin. A store that stays full with nothing released past
 * --full-timeout loses its unfinished commands (evict_unfinished).
 */
static void out_of_space(struct kv_server *s)
{
	static struct kv_ratelimit rl;
	kv_log_limited(&rl, "the arena is full: receiving waits until records are released");
	uint64_t released = s->released, now = now_ns();
	compact_maybe(s);
	serve_dirty(s);
	if (s->released != released || !s->full_since_ns) {
		s->full_since_ns = now;
		return;
	}
	if (s->cfg.full_timeout_ns && now - s->full_since_ns >= s->cfg.full_timeout_ns) {
		evict_unfinished(s);
		s->full_since_ns = now;
		if (s->released != released)
			return;
	}
	struct pollfd p[2] = { { .fd = s->timer_fd, .events = POLLIN },
			       { .fd = s->signal_fd, .events = POLLIN } };
	if (poll(p, 2, -1) <= 0)
		return;
	if (p[1].revents)
		on_signal(s);
	if (p[0].revents)
		housekeeping(s);
}

/* A watched descriptor's event; status < 0: waiting for it failed, and the
 * store waits for it no more until it is watched again. */
static void on_watched(struct kv_server *s, const struct pktstore_rec *r, int *tick)
{
	if (r->user != &tag_resp && r->user != &tag_http && r->user != &tag_timer &&
	    r->user != &tag_signal) {
		/* A lingering connection's socket (linger_done): a failed
		 * wait leaves it to the housekeeping's deadline. The pointer
		 * is live: conn_close unwatches before it frees, and a batch
		 * holds one event per watched fd at most. */
		struct conn *c = r->user;

		if (r->status < 0) {
			pktstore_unwatch(s->ps, c->fd);
			c->fin_watch = 0;
		} else if (linger_done(s, c, now_ns())) {
			conn_close(s, c);
		}
		return;
	}
	int fd = r->user == &tag_resp ? s->resp_fd : r->user == &tag_http ? s->http_fd
		 : r->user == &tag_timer ? s->timer_fd : s->signal_fd;
	if (r->status < 0) {
		static struct kv_ratelimit rl;
		kv_log_limited(&rl, "waiting for fd %d failed: %s; watching it again", fd,
			       pktstore_strerror(r->status));
		pktstore_unwatch(s->ps, fd);
		int rc = pktstore_watch(s->ps, fd, r->user);
		if (rc < 0) {
			kv_log("cannot watch fd %d: %s", fd, pktstore_strerror(rc));
			stop = 1;
		}
		return;
	}
	if (r->user == &tag_resp)
		on_accept(s, s->resp_fd, KV_RESP);
	else if (r->user == &tag_http)
		on_accept(s, s->http_fd, KV_HTTP);
	else if (r->user == &tag_timer)
		*tick = 1; /* after the batch's records */
	else if (r->user == &tag_signal)
		on_signal(s);
}

/* One round: wait for anything, apply the records in persist order (the
 * order replay will use), then hand the replies to the store, which the
 * next round's call submits. */
static void round_once(struct kv_server *s)
{
	static struct pktstore_rec recs[BATCH];
	int n = pktstore_recv_persist_any(s->ps, recs, BATCH, 0);
	if (n == -ENOSPC)
		return out_of_space(s);
	if (n <= 0) {
		/* No error is expected here (signals come through the signalfd,
		 * and a watched fd keeps the call from returning 0); should one
		 * come, it is not retried faster than the housekeeping. */
		static struct kv_ratelimit rl;
		kv_log_limited(&rl, "receive: %s", n ? pktstore_strerror(n) : "nothing to wait for");
		struct pollfd p = { .fd = s->timer_fd, .events = POLLIN };
		poll(&p, 1, (int)(TICK_NS / 1000000));
		return;
	}
	/* Usually in order already (ids are handed out as records land); glibc's
	 * qsort would copy them all into a merge buffer all the same. */
	for (int i = 1; i < n; i++) {
		if (by_id(&recs[i - 1], &recs[i]) > 0) {
			qsort(recs, (size_t)n, sizeof(recs[0]), by_id);
			break;
		}
	}
	int tick = 0;
	for (int i = 0; i < n; i++) {
		const struct pktstore_rec *r = &recs[i];
		if (r->flags & PKTSTORE_REC_READABLE) {
			on_watched(s, r, &tick);
		} else if (r->flags & PKTSTORE_REC_WRITABLE) {
			struct kflow *f = flow_get(s, r->flow);
			if (f && f->conn) {
				f->conn->blocked = 0;
				mark(s, f->conn);
			}
		} else {
			/* Bytes came in: the store is not stuck full. (Events
			 * alone, such as the timer's, come while it is.) */
			if (r->len)
				s->full_since_ns = 0;
			process(s, r);
		}
	}
	serve_dirty(s);
	if (tick) {
		housekeeping(s);
	} else {
		/* After every batch too, as the keys' clock (the newest record's
		 * time) moves with the batches: a SCAN that skips a key whose time
		 * is up and a DBSIZE right after it must agree, as Redis's do
		 * (whose expiry finds such keys among those with a time). Nothing
		 * to walk without keys that have one. */
		ks_active_expire(s, 2000);
		compact_maybe(s);
	}
}

/* HOST:PORT with HOST an IPv4 or IPv6 address ([::1] too) or localhost;
 * NULL when it parses, else what is wrong. */
static const char *addr_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr)
		return "not HOST:PORT";
	if ((size_t)(colon - addr) >= sizeof(host))
		return "the host is too long";
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535 || end == colon + 1 || colon[1] < '0' || colon[1] > '9')
		return "the port is not a number from 0 to 65535";
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	char *h = host;
	size_t hl = strlen(h);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h[hl - 1] = 0;
		h++;
	}
	if (inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*in4);
	} else if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*in6);
	} else if (!strcmp(h, "localhost")) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*sl = sizeof(*in4);
	} else {
		return "the host is not an IPv4 or IPv6 address nor localhost (names are not "
		       "resolved)";
	}
	return NULL;
}

const char *addr_check(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	return addr_parse(addr, &ss, &sl);
}

static int listen_on(const char *addr, uint16_t *port_out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (addr_parse(addr, &ss, &sl))
		return -EINVAL;
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 511) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*port_out = ntohs(ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
	return fd;
}

int server_run(struct kv_server *s)
{
	s->resp_fd = listen_on(s->cfg.resp_addr, &s->resp_port);
	if (s->resp_fd < 0) {
		kv_log("cannot listen on %s: %s", s->cfg.resp_addr, strerror(-s->resp_fd));
		return 1;
	}
	/* No HTTP listener without an address: it has no AUTH (main.c). */
	s->http_fd = s->cfg.http_addr ? listen_on(s->cfg.http_addr, &s->http_port) : -1;
	if (s->cfg.http_addr && s->http_fd < 0) {
		kv_log("cannot listen on %s: %s", s->cfg.http_addr, strerror(-s->http_fd));
		return 1;
	}
	/* Accepted sockets are non-blocking: on the recv(2) path
	 * pktstore_send() writes to them on this thread, and a slow reader
	 * must not stop the server; the io_uring paths wait for room
	 * themselves. */
	s->sock_flags = SOCK_NONBLOCK;
	/* SIGINT and SIGTERM arrive as a readable signalfd in the store's own
	 * wait: a blocking io_uring wait is no place to count on EINTR. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	s->signal_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec tick = { .it_interval = { 0, TICK_NS }, .it_value = { 0, TICK_NS } };
	if (s->signal_fd < 0 || s->timer_fd < 0 || timerfd_settime(s->timer_fd, 0, &tick, NULL) < 0) {
		kv_log("cannot make the timer or the signal fd: %s", strerror(errno));
		return 1;
	}
	struct {
		int fd;
		void *tag;
	} w[] = { { s->resp_fd, &tag_resp }, { s->http_fd, &tag_http },
		  { s->timer_fd, &tag_timer }, { s->signal_fd, &tag_signal } };
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		int rc = w[i].fd < 0 ? 0 : pktstore_watch(s->ps, w[i].fd, w[i].tag);
		if (rc < 0) {
			kv_log("the store cannot watch fd %d: %s", w[i].fd, pktstore_strerror(rc));
			return 1;
		}
	}
	out_set_limit(s->cfg.max_output);
	const char *ra = s->cfg.resp_addr, *ha = s->cfg.http_addr;
	if (ha)
		kv_log("RESP on %.*s:%u, HTTP on %.*s:%u", (int)(strrchr(ra, ':') - ra), ra,
		       s->resp_port, (int)(strrchr(ha, ':') - ha), ha, s->http_port);
	else
		kv_log("RESP on %.*s:%u, HTTP off (it has no AUTH: --http turns it on)",
		       (int)(strrchr(ra, ':') - ra), ra, s->resp_port);

	while (!stop)
		round_once(s);
	kv_log("shutting down");
	while (s->conns)
		conn_close(s, s->conns);
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		if (w[i].fd >= 0) {
			pktstore_unwatch(s->ps, w[i].fd);
			close(w[i].fd);
		}
	return 0;
}
