/* SPDX-License-Identifier: MIT */
/*
 * Power loss at thousands of points. A child process runs a workload on the
 * PKTSTORE_POWERFAIL build of the library and logs everything the API
 * returned as durable: records, releases (durable once a later call that
 * commits returns), trims, flow deletions, opens and closes. At a chosen event (a flush, a drain, or the first store to a
 * metadata page between them: emulator.h) the emulator loses power and
 * writes the image a real machine could have been left with. The parent
 * opens that image with the same library and checks the durability
 * contract:
 *   - every record returned (and not released, trimmed or deleted) is there,
 *     byte-identical;
 *   - every record presented holds the bytes sent at its seq (nothing
 *     garbage, nothing torn is served);
 *   - a flow's records never overlap; a released record (once a later call
 *     committed), a trimmed stretch or a deleted flow never comes back;
 *   - stats, id order and per-flow order agree; a crash while open is
 *     reported as a dirty shutdown;
 *   - each superblock copy that was not being written is enough alone.
 * Every third image is then opened by a second generation that keeps
 * writing and loses power again (at times during its recovery); its image
 * is checked against both generations' logs.
 *
 * The workloads reach the receive paths (recv(2) and both io_uring paths),
 * full-arena back-pressure and the stall queue, detach with reclaim of flow
 * slots, a wrapping descriptor log with id-limit raises, trim and flow
 * deletion, the cleaner (PKTSTORE_MOVABLE), and a clean reopen midway.
 * PKTSTORE_POWERFAIL_POINTS (default 1400) crash points are spread over
 * them, chosen with a seed that is printed (PKTSTORE_POWERFAIL_SEED replays
 * it). scripts/mutate.sh checks that removing any persistence point of the
 * library makes this test fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../util.h"
#include "emulator.h"

#define MAXLIVE 4096
#define MAXSOCK 6
#define MAXLOCAL 4
#define SKIP_STATUS 77
#define PS_SB_BYTES 4096 /* one superblock copy (lib/media.h) */

/* ------------------------------------------------------------ workloads */

struct workload {
	const char *name;
	enum pktstore_recv_path path;
	uint64_t size;
	uint32_t seg, bytes_per_record, max_flows;
	unsigned flags;   /* PKTSTORE_MOVABLE */
	int steps;
	unsigned nsock;   /* socket flows at a time */
	unsigned maxlen;  /* largest send or append */
	bool fill;        /* receive without releasing until the arena is full */
	bool churn;       /* detach and re-attach sockets, delete local flows */
	bool trim;
	bool reopen;      /* a clean close and reopen at the middle */
	bool holders;     /* small records that stay: the cleaner's work */
};

static const struct workload workloads[] = {
	{ .name = "recv", .path = PKTSTORE_PATH_RECV, .size = 2 << 20, .seg = 64 << 10,
	  .bytes_per_record = 512, .steps = 240, .nsock = 1, .maxlen = 3000, .reopen = true },
	{ .name = "uring-inc", .path = PKTSTORE_PATH_URING_INC, .size = 2 << 20, .seg = 64 << 10,
	  .bytes_per_record = 512, .steps = 200, .nsock = 3, .maxlen = 3000, .reopen = true },
	{ .name = "uring-fixed", .path = PKTSTORE_PATH_URING_FIXED, .size = 4 << 20,
	  .seg = 64 << 10, .bytes_per_record = 512, .steps = 200, .nsock = 3, .maxlen = 3000,
	  .reopen = true },
	/* 1 MiB with few descriptors: the log wraps, ids raise the limit, the
	 * arena fills and receives wait for space with bytes in the stall queue;
	 * 10 flow slots for 3 sockets, 2 local flows and a later generation's
	 * 3 more force reclaim. */
	{ .name = "full", .path = PKTSTORE_PATH_AUTO, .size = 1 << 20, .seg = 32 << 10,
	  .bytes_per_record = 8192, .max_flows = 10, .steps = 120, .nsock = 3, .maxlen = 6000,
	  .fill = true, .churn = true },
	{ .name = "full-recv", .path = PKTSTORE_PATH_RECV, .size = 1 << 20, .seg = 32 << 10,
	  .bytes_per_record = 8192, .max_flows = 10, .steps = 120, .nsock = 3, .maxlen = 6000,
	  .fill = true, .churn = true },
	{ .name = "trim", .path = PKTSTORE_PATH_AUTO, .size = 2 << 20, .seg = 64 << 10,
	  .bytes_per_record = 512, .max_flows = 16, .steps = 240, .nsock = 2, .maxlen = 2500,
	  .trim = true, .churn = true, .reopen = true },
	{ .name = "movable", .path = PKTSTORE_PATH_AUTO, .size = 512 << 10, .seg = 32 << 10,
	  .bytes_per_record = 512, .max_flows = 16, .flags = PKTSTORE_MOVABLE, .steps = 500,
	  .nsock = 1, .maxlen = 16000, .holders = true, .reopen = true },
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

/* ------------------------------------------------------------ the log */

struct log_entry {
	char type; /* 'R' returned record, 'P'/'X' release called/returned,
		      'K' a call that commits returned (the releases before
		      it are durable),
		      't'/'T' trim called/returned (seq), 'd'/'D' flow delete
		      called/returned, 'o'/'O' open called/returned,
		      'C'/'c' close called/returned,
		      'S' what the run reached (id: enospc events, flow:
		      segments cleaned, seq: highest id returned, len:
		      descriptor slots), 'E' end of workload (id: events) */
	uint64_t id, flow, seq;
	uint32_t len;
	uint64_t ts; /* 'R': the record's timestamp, which a descriptor that
			came back from the dead would still carry */
};

static int logfd;

static void log_rec(char type, const struct pktstore_rec *r)
{
	struct log_entry e = { .type = type, .id = r->id, .flow = r->flow, .seq = r->seq,
			       .len = r->len, .ts = r->ts_ns };

	if (write(logfd, &e, sizeof(e)) != sizeof(e))
		_exit(90);
}

static void log_write(char type, uint64_t id, uint64_t flow, uint64_t seq, uint32_t len)
{
	struct log_entry e = { .type = type, .id = id, .flow = flow, .seq = seq, .len = len };

	if (write(logfd, &e, sizeof(e)) != sizeof(e))
		_exit(90);
}

/* ------------------------------------------------------- the child's work */

struct sock {
	int c, s;
	uint64_t flow, sent, got;
};

static struct {
	const struct workload *w;
	unsigned seed;
	struct pktstore *ps;
	struct pktstore_rec live[MAXLIVE];
	unsigned nlive;
	struct sock sk[MAXSOCK];
	uint64_t local[MAXLOCAL];
	unsigned nlocal;
	uint64_t enospc, cleaned; /* earlier sessions' stats, added up */
	uint64_t top_id;          /* the highest record id returned */
	uint8_t buf[1 << 16];
} c;

static unsigned rnd(unsigned n)
{
	return n ? (unsigned)rand_r(&c.seed) % n : 0;
}

static void keep(const struct pktstore_rec *r)
{
	log_rec('R', r);
	if (r->id > c.top_id)
		c.top_id = r->id;
	if (c.nlive < MAXLIVE)
		c.live[c.nlive++] = *r;
}

static void forget_at(unsigned i)
{
	c.live[i] = c.live[--c.nlive];
}

/* A call that commits (pktstore_release(3)) returned: the releases before
 * it must stay gone. */
static void committed(void)
{
	log_write('K', 0, 0, 0, 0);
}

static void release_at(unsigned i)
{
	/* A release is durable only once a later call commits; one cut short by
	 * the power loss may or may not be. */
	log_rec('P', &c.live[i]);
	if (pktstore_release(c.ps, c.live[i].id))
		_exit(91);
	log_rec('X', &c.live[i]);
	forget_at(i);
}

/* Half of what is live, in one batch: room for whatever waits. */
static void release_some(void)
{
	static uint64_t ids[MAXLIVE];
	unsigned n = (c.nlive + 1) / 2;

	if (!n)
		return;
	for (unsigned i = 0; i < n; i++) {
		ids[i] = c.live[i].id;
		log_rec('P', &c.live[i]);
	}
	if (pktstore_release_batch(c.ps, ids, n))
		_exit(91);
	for (unsigned i = 0; i < n; i++)
		log_rec('X', &c.live[i]);
	memmove(c.live, c.live + n, (c.nlive - n) * sizeof(c.live[0]));
	c.nlive -= n;
}

static void release_flow(uint64_t flow)
{
	for (unsigned i = 0; i < c.nlive;)
		if (c.live[i].flow == flow)
			release_at(i);
		else
			i++;
}

static void loopback_pair(int *cl, int *sv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		_exit(92);
	*cl = socket(AF_INET, SOCK_STREAM, 0);
	if (*cl < 0 || connect(*cl, (struct sockaddr *)&a, sizeof(a)))
		_exit(92);
	*sv = accept(l, NULL, NULL);
	if (*sv < 0)
		_exit(92);
	close(l);
}

static void sock_attach(struct sock *k)
{
	loopback_pair(&k->c, &k->s);
	if (pktstore_attach(c.ps, k->s, 2, &k->flow))
		_exit(94);
	k->sent = k->got = 0;
}

static void sock_close(struct sock *k)
{
	close(k->c);
	close(k->s);
}

static void open_store(const char *path, bool first)
{
	const struct workload *w = c.w;
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | w->flags, .size = w->size,
				   .segment_size = w->seg, .bytes_per_record = w->bytes_per_record,
				   .max_flows = w->max_flows, .recv_path = w->path };

	log_write('o', 0, 0, 0, 0);
	int ret = pktstore_open(path, &o, &c.ps);

	if (ret && first && w->path != PKTSTORE_PATH_RECV && w->path != PKTSTORE_PATH_AUTO)
		_exit(SKIP_STATUS); /* the kernel lacks this receive path */
	if (ret)
		_exit(93);
	log_write('O', 0, 0, 0, 0);
}

static void close_store(void)
{
	struct pktstore_stats st;

	if (pktstore_stats(c.ps, &st))
		_exit(95);
	c.enospc += st.enospc_events;
	c.cleaned += st.cleaned_segments;
	log_write('C', 0, 0, 0, 0);
	if (pktstore_close(c.ps))
		_exit(95);
	log_write('c', 0, 0, 0, 0);
	committed();
	c.ps = NULL;
}

/* Records that show up (received, or an earlier generation's) and end
 * events: keep the records, drop the events. */
static void take(const struct pktstore_rec *r, int n)
{
	for (int i = 0; i < n; i++) {
		if (r[i].flags & (PKTSTORE_REC_END | PKTSTORE_REC_HANGUP))
			continue;
		for (unsigned k = 0; k < c.w->nsock; k++)
			if (c.sk[k].flow == r[i].flow)
				c.sk[k].got += r[i].len;
		keep(&r[i]);
	}
}

static void op_append(void)
{
	const struct workload *w = c.w;
	uint64_t flow = c.local[rnd(c.nlocal)];
	/* With holders: two small records that stay for one big that goes. */
	bool small = w->holders && rnd(3);
	uint32_t len = small ? 1 + rnd(40)
			     : w->holders ? w->maxlen / 2 + rnd(w->maxlen / 2) : 1 + rnd(w->maxlen);
	struct pktstore_flow_info fi;
	struct pktstore_rec r;
	int ret;

	if (pktstore_flow_info(c.ps, flow, &fi))
		_exit(96);
	fill_stream(flow, fi.next_seq, c.buf, len);
	while ((ret = pktstore_append(c.ps, flow, c.buf, len, &r)) == -ENOSPC && c.nlive)
		release_some();
	if (ret) {
		struct pktstore_stats st;

		pktstore_stats(c.ps, &st);
		fprintf(stderr, "append of %u: %s; %lu of %lu segments free, %lu records, %lu bytes live\n",
			len, pktstore_strerror(ret), (unsigned long)st.segments_free,
			(unsigned long)st.segments, (unsigned long)st.records,
			(unsigned long)st.record_bytes);
		_exit(96);
	}
	committed();
	if (small) {
		/* The cleaner's work: small records that stay for good, one
		 * in each segment the bulk passes through. */
		log_rec('R', &r);
		return;
	}
	keep(&r);
	if (w->holders)
		release_at(c.nlive - 1); /* the bulk goes at once */
}

/* Send on every socket, then receive until each has all it was sent; with
 * `fill`, first receive without releasing until the arena is full. */
static bool receive_round(bool until_full);

static void op_receive(void)
{
	/* With `fill`, rounds without releasing until one meets a full arena. */
	for (int round = 0; round < 64; round++)
		if (!receive_round(c.w->fill) || !c.w->fill)
			break;
}

/* One round: true if the arena never filled. */
static bool receive_round(bool hold)
{
	const struct workload *w = c.w;
	struct pktstore_rec r[64];
	uint64_t deadline = (uint64_t)time(NULL) + 20;

	for (unsigned k = 0; k < w->nsock; k++) {
		struct sock *s = &c.sk[k];
		size_t len = 1 + rnd(w->maxlen);

		fill_stream(s->flow, s->sent, c.buf, len);
		if (send(s->c, c.buf, len, 0) != (ssize_t)len)
			_exit(97);
		s->sent += len;
	}
	bool full = false;

	for (;;) {
		bool done = true;

		for (unsigned k = 0; k < w->nsock; k++)
			done &= c.sk[k].got == c.sk[k].sent;
		if (done)
			break;
		if ((uint64_t)time(NULL) > deadline)
			_exit(98); /* wedged */
		int n = pktstore_recv_persist_any(c.ps, r, 64, PKTSTORE_NONBLOCK);

		if (n >= 0 || n == -EAGAIN || n == -ENOSPC)
			committed();
		if (n == -EAGAIN) {
			struct pollfd p = { .fd = pktstore_fd(c.ps), .events = POLLIN };

			poll(&p, 1, 10);
			continue;
		}
		if (n == -ENOSPC) {
			full = true;
			if (!c.nlive)
				_exit(98);
			release_some();
			continue;
		}
		if (n < 0)
			_exit(98);
		take(r, n);
		/* Releases as it goes keep the arena from filling. */
		if ((!hold || full) && c.nlive > 48)
			release_some();
	}
	return !full;
}

static void op_release(void)
{
	if (!c.nlive)
		return;
	if (rnd(4))
		release_at(rnd(c.nlive));
	else
		release_some();
	if (rnd(4))
		return;
	if (pktstore_sync(c.ps))
		_exit(91);
	committed();
}

/* Trim a flow at a random byte of what it holds. */
static void op_trim(void)
{
	if (!c.nlive)
		return;
	uint64_t flow = c.live[rnd(c.nlive)].flow;
	struct pktstore_flow_info fi;

	if (pktstore_flow_info(c.ps, flow, &fi))
		_exit(99);
	if (fi.next_seq <= fi.first_seq)
		return;
	uint64_t seq = fi.first_seq + rnd((unsigned)(fi.next_seq - fi.first_seq)) + 1;

	log_write('t', 0, flow, seq, 0);
	if (pktstore_trim(c.ps, flow, seq))
		_exit(99);
	log_write('T', 0, flow, seq, 0);
	for (unsigned i = 0; i < c.nlive;)
		if (c.live[i].flow == flow && c.live[i].seq + c.live[i].len <= seq)
			forget_at(i);
		else
			i++;
}

/* A socket flow ends: its records go, it detaches, and its flow slot must
 * come back; a local flow is deleted with whatever it holds. */
static void op_churn(void)
{
	if (rnd(2)) {
		struct sock *s = &c.sk[rnd(c.w->nsock)];

		release_flow(s->flow);
		if (pktstore_detach(c.ps, s->flow))
			_exit(100);
		committed();
		sock_close(s);
		sock_attach(s);
	} else {
		unsigned i = rnd(c.nlocal);
		uint64_t flow = c.local[i];

		log_write('d', 0, flow, 0, 0);
		if (pktstore_flow_delete(c.ps, flow))
			_exit(101);
		log_write('D', 0, flow, 0, 0);
		committed();
		for (unsigned k = 0; k < c.nlive;)
			if (c.live[k].flow == flow)
				forget_at(k);
			else
				k++;
		if (pktstore_flow_create(c.ps, 1, &c.local[i]))
			_exit(101);
	}
}

/* Adopt what an open store holds: local flows, and live records (already in
 * the log when an earlier generation left them). */
static void adopt(void)
{
	struct pktstore_flow_info fi[16];
	uint64_t after = 0;
	int n;

	c.nlocal = 0;
	while ((n = pktstore_flows(c.ps, after, fi, 16)) > 0) {
		for (int i = 0; i < n; i++)
			if (fi[i].state == PKTSTORE_FLOW_LOCAL && c.nlocal < MAXLOCAL)
				c.local[c.nlocal++] = fi[i].id;
		after = fi[n - 1].id;
	}
	if (n < 0)
		_exit(102);
	while (c.nlocal < 2)
		if (pktstore_flow_create(c.ps, 1, &c.local[c.nlocal++]))
			_exit(102);

	struct pktstore_query q = { .kind = PKTSTORE_BY_ID, .hi = UINT64_MAX };
	struct pktstore_rec r[64];

	c.nlive = 0;
	while ((n = pktstore_range(c.ps, &q, r, 64)) > 0) {
		for (int i = 0; i < n && c.nlive < MAXLIVE; i++)
			c.live[c.nlive++] = r[i];
		q.lo = r[n - 1].id + 1;
	}
	if (n < 0)
		_exit(102);
}

static void workload(const struct workload *w, const char *path, unsigned seed, bool later)
{
	c.w = w;
	c.seed = seed;
	open_store(path, !later);
	adopt();
	for (unsigned k = 0; k < w->nsock; k++)
		sock_attach(&c.sk[k]);
	for (int step = 0; step < w->steps; step++) {
		unsigned op = rnd(20);

		if (w->reopen && step == w->steps / 2) {
			close_store();
			for (unsigned k = 0; k < w->nsock; k++)
				sock_close(&c.sk[k]);
			open_store(path, false);
			adopt();
			for (unsigned k = 0; k < w->nsock; k++)
				sock_attach(&c.sk[k]);
		} else if (op < 7) {
			op_append();
		} else if (op < 14) {
			op_receive();
		} else if (op < 16 && w->trim) {
			op_trim();
		} else if (op < 17 && w->churn) {
			op_churn();
		} else {
			op_release();
		}
	}
	/* What the run reached, for the parent to hold it to its purpose. */
	struct pktstore_stats st;

	if (pktstore_stats(c.ps, &st))
		_exit(103);
	log_write('S', c.enospc + st.enospc_events, c.cleaned + st.cleaned_segments, c.top_id,
		  (uint32_t)st.descriptors);
	close_store();
	log_write('E', pf_events(), 0, 0, 0);
	_exit(0);
}

/* ------------------------------------------------------- the parent's check */

struct expect {
	uint64_t id, flow, seq;
	uint32_t len;
	int released; /* 1: release called, 2: release returned, 3: and a
			 call that commits returned after it */
	uint64_t ts;
};

struct history {
	struct expect *ex;
	size_t n, max;
	struct log_entry *ops; /* trims and deletes, called or returned */
	size_t nops, maxops;
	char last_session;     /* 'o'/'O' open called/returned, 'C'/'c' close
				  called/returned, 0 */
	uint64_t events;
	struct log_entry reached; /* 'S' */
};

static void read_log(const char *p, struct history *h)
{
	FILE *f = fopen(p, "rb");
	struct log_entry e;

	cr_assert(f);
	h->n = h->nops = 0;
	h->events = 0;
	h->last_session = 0;
	while (fread(&e, sizeof(e), 1, f) == 1) {
		switch (e.type) {
		case 'E':
			h->events = e.id;
			break;
		case 'S':
			h->reached = e;
			break;
		case 'R':
			cr_assert_lt(h->n, h->max);
			h->ex[h->n++] = (struct expect){ e.id, e.flow, e.seq, e.len, 0, e.ts };
			break;
		case 'P':
		case 'X':
			for (size_t i = 0; i < h->n; i++)
				if (h->ex[i].id == e.id && h->ex[i].flow == e.flow &&
				    h->ex[i].seq == e.seq)
					h->ex[i].released = e.type == 'P' ? 1 : 2;
			break;
		case 'K':
			for (size_t i = 0; i < h->n; i++)
				if (h->ex[i].released == 2)
					h->ex[i].released = 3;
			break;
		case 't':
		case 'T':
		case 'd':
		case 'D':
			cr_assert_lt(h->nops, h->maxops);
			h->ops[h->nops++] = e;
			break;
		case 'o':
		case 'O':
		case 'C':
		case 'c':
			h->last_session = e.type;
			break;
		default:
			cr_assert_fail("bad log entry %c", e.type);
		}
	}
	fclose(f);
}

/* May the record of `flow` over [seq, seq+len) be gone? With `returned`,
 * must it be gone (a trim or delete that returned covers it)? The op that
 * says so, or NULL. */
static const struct log_entry *dropped_by(const struct history *h, uint64_t flow, uint64_t seq,
					  uint32_t len, bool returned)
{
	for (size_t i = 0; i < h->nops; i++) {
		const struct log_entry *o = &h->ops[i];

		if (o->flow != flow || (returned && (o->type == 't' || o->type == 'd')))
			continue;
		if (o->type == 'd' || o->type == 'D' || seq + len <= o->seq)
			return o;
	}
	return NULL;
}

static bool dropped(const struct history *h, uint64_t flow, uint64_t seq, uint32_t len,
		    bool returned)
{
	return dropped_by(h, flow, seq, len, returned) != NULL;
}

/* The records an image presents, for the next generation. */
struct present {
	struct expect *r;
	size_t n, max;
};

static uint64_t not_before; /* nonzero: every record presented that the log
			       does not name must be at least this recent */

static bool logged(const struct history *h, uint64_t id)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->ex[i].id == id)
			return true;
	return false;
}

static void check_image(const char *image, const struct history *h, uint64_t point,
			struct present *out)
{
	struct pktstore *ps = NULL;
	int ret = pktstore_open(image, NULL, &ps);

	if (ret == -EUCLEAN && h->n == 0 && (h->last_session == 0 || h->last_session == 'o')) {
		/* Power lost while the arena was being created: what is left
		 * must read as never finished, so the same create again works. */
		const struct workload *w = c.w ? c.w : &workloads[0];
		struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = w->size,
					   .segment_size = w->seg,
					   .bytes_per_record = w->bytes_per_record,
					   .max_flows = w->max_flows, .recv_path = PKTSTORE_PATH_RECV };

		ret = pktstore_open(image, &o, &ps);
		cr_assert_eq(ret, 0, "point %lu: an interrupted create blocks the next: %s",
			     (unsigned long)point, pktstore_strerror(ret));
		cr_assert_eq(pktstore_close(ps), 0);
		return;
	}
	cr_assert_eq(ret, 0, "point %lu: open: %s", (unsigned long)point, pktstore_strerror(ret));

	/* Every record returned and not dropped is there, byte for byte. */
	for (size_t i = 0; i < h->n; i++) {
		const struct expect *x = &h->ex[i];

		if (x->released || dropped(h, x->flow, x->seq, x->len, false))
			continue;
		struct pktstore_rec r;

		ret = pktstore_get(ps, x->id, &r, 0);
		cr_assert_eq(ret, 0, "point %lu: returned record %lu (flow %lu seq %lu) lost: %s",
			     (unsigned long)point, (unsigned long)x->id, (unsigned long)x->flow,
			     (unsigned long)x->seq, pktstore_strerror(ret));
		cr_assert(r.flow == x->flow && r.seq == x->seq && r.len == x->len,
			  "point %lu: record %lu changed: flow %lu seq %lu len %u, now flow %lu seq %lu len %u",
			  (unsigned long)point, (unsigned long)x->id, (unsigned long)x->flow,
			  (unsigned long)x->seq, x->len, (unsigned long)r.flow,
			  (unsigned long)r.seq, r.len);
		cr_assert(check_stream(r.flow, r.seq, r.data, r.len));
	}

	/* Everything presented is bytes that were sent; flows never overlap;
	 * released records, trimmed stretches and deleted flows stay gone. */
	uint64_t presented = 0, after = 0;
	struct pktstore_flow_info fi[16];
	int nf;

	while ((nf = pktstore_flows(ps, after, fi, 16)) > 0) {
		for (int k = 0; k < nf; k++) {
			struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = fi[k].id,
						    .hi = UINT64_MAX };
			struct pktstore_rec o[128];
			uint64_t end = 0;
			int n;

			for (size_t i = 0; i < h->nops; i++)
				if (h->ops[i].flow == fi[k].id && h->ops[i].type == 'T')
					cr_assert_geq(fi[k].first_seq, h->ops[i].seq,
						      "point %lu: flow %lu trimmed at %lu starts at %lu",
						      (unsigned long)point, (unsigned long)fi[k].id,
						      (unsigned long)h->ops[i].seq,
						      (unsigned long)fi[k].first_seq);
			while ((n = pktstore_range(ps, &q, o, 128)) > 0) {
				for (int i = 0; i < n; i++) {
					struct pktstore_rec g;

					cr_assert_geq(o[i].seq, end, "point %lu: overlap",
						      (unsigned long)point);
					cr_assert_eq(pktstore_get(ps, o[i].id, &g, 0), 0);
					cr_assert(check_stream(o[i].flow, o[i].seq, o[i].data,
							       o[i].len),
						  "point %lu: garbage served at flow %lu seq %lu",
						  (unsigned long)point, (unsigned long)o[i].flow,
						  (unsigned long)o[i].seq);
					/* Under its own id or another's (a torn
					 * reuse of its slot): the same flow, seq
					 * and timestamp. */
					for (size_t e = 0; e < h->n; e++)
						cr_assert(!(h->ex[e].released == 3 &&
							    (h->ex[e].id == o[i].id ||
							     (h->ex[e].flow == o[i].flow &&
							      h->ex[e].seq == o[i].seq &&
							      h->ex[e].ts == o[i].ts_ns))),
							  "point %lu: released record %lu (flow %lu seq %lu) back as %lu",
							  (unsigned long)point, (unsigned long)h->ex[e].id,
							  (unsigned long)o[i].flow, (unsigned long)o[i].seq,
							  (unsigned long)o[i].id);
					cr_assert(!not_before || o[i].ts_ns >= not_before ||
							  logged(h, o[i].id),
						  "point %lu: a record of the file's earlier life "
						  "(flow %lu seq %lu) served",
						  (unsigned long)point, (unsigned long)o[i].flow,
						  (unsigned long)o[i].seq);
					const struct log_entry *by =
						dropped_by(h, o[i].flow, o[i].seq, o[i].len, true);

					cr_assert(!by,
						  "point %lu: record %lu (flow %lu seq %lu len %u) back after %s at %lu",
						  (unsigned long)point, (unsigned long)o[i].id,
						  (unsigned long)o[i].flow, (unsigned long)o[i].seq, o[i].len,
						  by && by->type == 'T' ? "a trim" : "a flow delete",
						  by ? (unsigned long)by->seq : 0ul);
					if (out) {
						cr_assert_lt(out->n, out->max);
						out->r[out->n++] = (struct expect){
							o[i].id, o[i].flow, o[i].seq, o[i].len, 0,
							o[i].ts_ns
						};
					}
					end = o[i].seq + o[i].len;
					presented++;
				}
				q.lo = end;
			}
			cr_assert_geq(n, 0);
		}
		after = fi[nf - 1].id;
	}
	cr_assert_geq(nf, 0);

	/* Not even as damaged records, bytes and all. */
	struct pktstore_query dq = { .kind = PKTSTORE_DAMAGED, .hi = UINT64_MAX };
	struct pktstore_rec dmg[64];
	int nd;

	while ((nd = pktstore_range(ps, &dq, dmg, 64)) > 0) {
		for (int i = 0; i < nd; i++) {
			cr_assert(!dropped(h, dmg[i].flow, dmg[i].seq, dmg[i].len, true),
				  "point %lu: damaged record %lu of flow %lu seq %lu, trimmed or deleted, back",
				  (unsigned long)point, (unsigned long)dmg[i].id,
				  (unsigned long)dmg[i].flow, (unsigned long)dmg[i].seq);
			for (size_t e = 0; e < h->n; e++)
				cr_assert(!(h->ex[e].released == 3 && h->ex[e].id == dmg[i].id),
					  "point %lu: released record %lu back as damaged",
					  (unsigned long)point, (unsigned long)dmg[i].id);
		}
		dq.lo = dmg[nd - 1].id + 1;
	}
	cr_assert_geq(nd, 0);

	struct pktstore_stats st;
	struct pktstore_query all = { .kind = PKTSTORE_BY_ID, .hi = UINT64_MAX };
	static struct pktstore_rec o[MAXLIVE];

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.records, presented);
	cr_assert_eq((uint64_t)pktstore_range(ps, &all, o, MAXLIVE), presented);
	if (h->last_session == 'O')
		cr_assert_eq(st.dirty_shutdown, 1, "point %lu: a crash while open looks clean",
			     (unsigned long)point);
	if (h->last_session == 'c')
		cr_assert_eq(st.dirty_shutdown, 0, "point %lu: a clean close looks dirty",
			     (unsigned long)point);
	cr_assert_eq(pktstore_close(ps), 0);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "cp -f '%s' '%s'", from, to);
	cr_assert_eq(system(cmd), 0);
}

/* Each superblock copy that power did not catch mid-write must be enough:
 * the image with the other one zeroed passes the same checks. */
static void check_each_copy(const char *image, const char *pristine, const struct history *h,
			    uint64_t point)
{
	char p[600], variant[700];
	unsigned char inflight = 3;
	int fd;

	snprintf(p, sizeof(p), "%s%s", image, PF_SB_SUFFIX);
	fd = open(p, O_RDONLY);
	if (fd >= 0) {
		if (read(fd, &inflight, 1) != 1)
			inflight = 3;
		close(fd);
	}
	for (unsigned k = 0; k < 2; k++) {
		if (inflight & (1u << k))
			continue;
		static const uint8_t zero[4096];

		snprintf(variant, sizeof(variant), "%s.only%u", image, k);
		copy_file(pristine, variant);
		fd = open(variant, O_WRONLY);
		cr_assert_geq(fd, 0);
		cr_assert_eq(pwrite(fd, zero, sizeof(zero), (off_t)(1 - k) * 4096),
			     (ssize_t)sizeof(zero));
		close(fd);
		check_image(variant, h, point, NULL);
		unlink(variant);
	}
}

/* A run's scratch files, and the superblock notes beside its images. */
static void remove_files(const char *const *files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char sb[200];

		unlink(files[i]);
		snprintf(sb, sizeof(sb), "%s%s", files[i], PF_SB_SUFFIX);
		unlink(sb);
	}
}

/* Scratch files: in PKTSTORE_POWERFAIL_DIR, else the tests' arena directory
 * PKTSTORE_TEST_PM_DIR (tests/util.c), else /dev/shm. */
static void paths(char (*p)[128], const char *what)
{
	const char *dir = getenv("PKTSTORE_POWERFAIL_DIR");

	if (!dir || !*dir)
		dir = getenv("PKTSTORE_TEST_PM_DIR");

	snprintf(*p, sizeof(*p), "%s/pktstore-pf-%d.%s", dir && *dir ? dir : "/dev/shm",
		 (int)getpid(), what);
}

enum start {
	FRESH,  /* create the arena in a new file */
	LATER,  /* open an existing arena (a later generation) */
	REUSE,  /* create over a file that holds old bytes: a reused device */
};

/* Run a workload in a child that loses power at `point` (0: never). */
static int run_child_from(const struct workload *w, const char *arena, const char *image,
			  const char *logp, uint64_t point, unsigned seed, unsigned tear_seed,
			  enum start start)
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		if (start == FRESH)
			unlink(arena);
		logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | (start == LATER ? 0 : O_TRUNC),
			     0644);
		if (logfd < 0)
			_exit(89);
		if (start == FRESH)
			pf_arm(image, point, tear_seed);
		else
			pf_arm_existing(image, point, tear_seed, arena);
		workload(w, arena, seed, start == LATER);
	}
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == SKIP_STATUS)
		return SKIP_STATUS;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "%s: child failed at point %lu: %s %d", w->name, (unsigned long)point,
		  WIFEXITED(status) ? "exit" : "signal",
		  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	return 0;
}

static int run_child(const struct workload *w, const char *arena, const char *image,
		     const char *logp, uint64_t point, unsigned seed, unsigned tear_seed,
		     bool later)
{
	return run_child_from(w, arena, image, logp, point, seed, tear_seed,
			      later ? LATER : FRESH);
}

/* The log a later generation starts from: what the image presented, plus
 * the earlier trims and deletes that returned. */
static void start_log(const char *logp, const struct present *pr, const struct history *h)
{
	int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert_geq(fd, 0);
	for (size_t i = 0; i < pr->n; i++) {
		struct log_entry e = { 'R', pr->r[i].id, pr->r[i].flow, pr->r[i].seq, pr->r[i].len,
				       pr->r[i].ts };

		cr_assert_eq(write(fd, &e, sizeof(e)), (ssize_t)sizeof(e));
	}
	/* Released for good in the earlier generation: still gone later. */
	for (size_t i = 0; i < h->n; i++) {
		const struct expect *x = &h->ex[i];
		struct log_entry r = { 'R', x->id, x->flow, x->seq, x->len, x->ts };
		struct log_entry rel = { 'X', x->id, x->flow, x->seq, x->len, x->ts };

		if (x->released != 3)
			continue;
		cr_assert_eq(write(fd, &r, sizeof(r)), (ssize_t)sizeof(r));
		cr_assert_eq(write(fd, &rel, sizeof(rel)), (ssize_t)sizeof(rel));
	}
	struct log_entry k = { .type = 'K' };

	cr_assert_eq(write(fd, &k, sizeof(k)), (ssize_t)sizeof(k));
	for (size_t i = 0; i < h->nops; i++)
		if (h->ops[i].type == 'T' || h->ops[i].type == 'D')
			cr_assert_eq(write(fd, &h->ops[i], sizeof(h->ops[i])),
				     (ssize_t)sizeof(h->ops[i]));
	close(fd);
}

static unsigned env_unsigned(const char *name, unsigned dflt)
{
	const char *e = getenv(name);

	return e && *e ? (unsigned)strtoul(e, NULL, 10) : dflt;
}

static void crash_campaign(const struct workload *w)
{
	char arena[128], image[128], logp[128], arena2[128], image2[128], log2[128], pristine[128];
	unsigned total = env_unsigned("PKTSTORE_POWERFAIL_POINTS", 1400);
	unsigned points = total / NWORKLOADS > 20 ? total / NWORKLOADS : 20;
	unsigned seed = env_unsigned("PKTSTORE_POWERFAIL_SEED", (unsigned)time(NULL));
	static struct expect ex[1 << 16], ex2[1 << 16], pres[MAXLIVE * 4];
	static struct log_entry ops[1 << 14], ops2[1 << 14];
	struct history h = { .ex = ex, .max = 1 << 16, .ops = ops, .maxops = 1 << 14 };
	struct history h2 = { .ex = ex2, .max = 1 << 16, .ops = ops2, .maxops = 1 << 14 };

	paths(&arena, "arena");
	paths(&image, "image");
	paths(&logp, "log");
	paths(&arena2, "arena2");
	paths(&image2, "image2");
	paths(&log2, "log2");
	paths(&pristine, "pristine");
	fprintf(stderr, "powerfail %s: seed %u, %u crash points (replay with PKTSTORE_POWERFAIL_SEED=%u)\n",
		w->name, seed, points, seed);
	c.w = w; /* for check_image's create again */

	/* One run without a crash counts the events. */
	if (run_child(w, arena, image, logp, 0, seed, seed, false) == SKIP_STATUS)
		cr_skip_test("%s: the kernel lacks this receive path", w->name);
	read_log(logp, &h);
	uint64_t events = h.events;

	check_image(arena, &h, 0, NULL); /* closed cleanly at the end */
	cr_assert_gt(events, 100, "the workload made %lu persistence events",
		     (unsigned long)events);
	/* Each workload reaches what it is for. */
	if (w->fill)
		cr_assert_gt(h.reached.id, 0, "%s: the arena never filled", w->name);
	if (w->bytes_per_record >= 8192)
		cr_assert_gt(h.reached.seq, h.reached.len, "%s: the descriptor log never wrapped",
			     w->name);
	if (w->holders)
		cr_assert_gt(h.reached.flow, 0, "%s: the cleaner never ran", w->name);

	unsigned pick = seed;
	uint64_t checked = 0, gen2 = 0, gen2_recovery = 0;

	for (unsigned i = 0; i < points; i++) {
		uint64_t point = 1 + (uint64_t)rand_r(&pick) % events;
		struct present pr = { .r = pres, .max = sizeof(pres) / sizeof(pres[0]) };

		unlink(image);
		run_child(w, arena, image, logp, point, seed, seed + i, false);
		read_log(logp, &h);
		if (access(image, F_OK)) {
			/* Receives batch differently from run to run: this one
			 * ended before its point came. It closed cleanly. */
			cr_assert_lt(h.events, point, "point %lu: no power loss happened",
				     (unsigned long)point);
			check_image(arena, &h, point, NULL);
			checked += h.n;
			continue;
		}
		/* Checking opens the image, which repairs it: keep it as power
		 * left it for the copies' check and the next generation. */
		copy_file(image, pristine);
		check_image(image, &h, point, &pr);
		check_each_copy(image, pristine, &h, point);
		checked += h.n;
		if (i % 3 || (h.n == 0 && pr.n == 0))
			continue;

		/* A second generation on this image, losing power again: a
		 * quarter of the time within its first events (its recovery). */
		uint64_t point2 = rand_r(&pick) % 4 ? 1 + (uint64_t)rand_r(&pick) % events
						    : 1 + (uint64_t)rand_r(&pick) % 24;

		copy_file(pristine, arena2);
		start_log(log2, &pr, &h);
		unlink(image2);
		run_child(w, arena2, image2, log2, point2, seed + 7 * i, seed + 13 * i, true);
		read_log(log2, &h2);
		gen2++;
		gen2_recovery += point2 <= 24;
		if (access(image2, F_OK) == 0) {
			copy_file(image2, pristine);
			check_image(image2, &h2, point2, NULL);
			check_each_copy(image2, pristine, &h2, point2);
		} else {
			check_image(arena2, &h2, point2, NULL); /* it ran to the end */
		}
		checked += h2.n;
	}
	fprintf(stderr, "powerfail %s: %u crash points over %lu events, %lu second generations "
			"(%lu early), %lu returned records checked\n",
		w->name, points, (unsigned long)events, (unsigned long)gen2,
		(unsigned long)gen2_recovery, (unsigned long)checked);
	const char *all[] = { arena, image, logp, arena2, image2, log2, pristine };

	remove_files(all, sizeof(all) / sizeof(all[0]));
}

/* Power lost at each of the first events of an open that finds one
 * superblock copy destroyed (as a torn write leaves it): the open must
 * repair that copy before it rewrites the other, or a second loss leaves
 * none. Every point, not a sample. */
static void recovery_sweep(const struct workload *w)
{
	char arena[128], broken[128], image[128], logp[128], arena2[128], image2[128],
		log2[128], pristine[128];
	unsigned seed = env_unsigned("PKTSTORE_POWERFAIL_SEED", (unsigned)time(NULL));
	static struct expect ex[1 << 16], ex2[1 << 16], pres[MAXLIVE * 4];
	static struct log_entry ops[1 << 14], ops2[1 << 14];
	struct history h = { .ex = ex, .max = 1 << 16, .ops = ops, .maxops = 1 << 14 };
	struct history h2 = { .ex = ex2, .max = 1 << 16, .ops = ops2, .maxops = 1 << 14 };
	static const uint8_t zero[PS_SB_BYTES];
	unsigned runs = 0;

	paths(&arena, "arena");
	paths(&broken, "broken");
	paths(&image, "image");
	paths(&logp, "log");
	paths(&arena2, "arena2");
	paths(&image2, "image2");
	paths(&log2, "log2");
	paths(&pristine, "pristine");
	run_child(w, arena, image, logp, 0, seed, seed, false);
	read_log(logp, &h);
	for (unsigned k = 0; k < 2; k++) {
		struct present pr = { .r = pres, .max = sizeof(pres) / sizeof(pres[0]) };

		copy_file(arena, broken);
		int fd = open(broken, O_WRONLY);

		cr_assert_geq(fd, 0);
		cr_assert_eq(pwrite(fd, zero, sizeof(zero), (off_t)k * PS_SB_BYTES),
			     (ssize_t)sizeof(zero));
		close(fd);
		copy_file(broken, image);
		check_image(image, &h, 0, &pr);
		for (uint64_t point = 1; point <= 30; point++) {
			copy_file(broken, arena2);
			start_log(log2, &pr, &h);
			unlink(image2);
			run_child(w, arena2, image2, log2, point, seed + (unsigned)point,
				  seed + (unsigned)point, true);
			read_log(log2, &h2);
			runs++;
			if (access(image2, F_OK)) {
				check_image(arena2, &h2, point, NULL);
				continue;
			}
			copy_file(image2, pristine);
			check_image(image2, &h2, point, NULL);
			check_each_copy(image2, pristine, &h2, point);
		}
	}
	fprintf(stderr, "powerfail recovery sweep: %u opens of a half-destroyed superblock, "
			"power lost at each of their first 30 events\n", runs);
	const char *all[] = { arena, broken, image, logp, arena2, image2, log2, pristine };

	remove_files(all, sizeof(all) / sizeof(all[0]));
}

/* Power lost at each event of creating an arena, in a new file and over a
 * file holding an earlier arena's bytes with its superblocks wiped (a
 * reused device): the image is the new arena, or something a create starts
 * over from; never a record of the file's earlier life. */
static void create_sweep(const struct workload *w, bool reuse)
{
	char arena[128], old[128], image[128], logp[128], pristine[128];
	unsigned seed = env_unsigned("PKTSTORE_POWERFAIL_SEED", (unsigned)time(NULL));
	static struct expect ex[1 << 16];
	static struct log_entry ops[1 << 14];
	struct history h = { .ex = ex, .max = 1 << 16, .ops = ops, .maxops = 1 << 14 };
	static const uint8_t zero[2 * PS_SB_BYTES];
	unsigned runs = 0;

	paths(&arena, "arena");
	paths(&old, "old");
	paths(&image, "image");
	paths(&logp, "log");
	paths(&pristine, "pristine");
	if (reuse) {
		run_child(w, old, image, logp, 0, seed, seed, false);
		int fd = open(old, O_WRONLY);

		cr_assert_geq(fd, 0);
		cr_assert_eq(pwrite(fd, zero, sizeof(zero), 0), (ssize_t)sizeof(zero));
		close(fd);
	}
	for (uint64_t point = 1; point <= 400; point++) {
		struct timespec t;

		clock_gettime(CLOCK_REALTIME, &t);
		not_before = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
		if (reuse)
			copy_file(old, arena);
		unlink(image);
		run_child_from(w, arena, image, logp, point, seed, seed + (unsigned)point,
			       reuse ? REUSE : FRESH);
		read_log(logp, &h);
		cr_assert_eq(access(image, F_OK), 0, "point %lu: no power loss happened",
			     (unsigned long)point);
		runs++;
		copy_file(image, pristine);
		check_image(image, &h, point, NULL);
		check_each_copy(image, pristine, &h, point);
		if (h.n > 4)
			break; /* well past the create */
	}
	not_before = 0;
	fprintf(stderr, "powerfail create sweep%s: power lost at each of %u events\n",
		reuse ? " over an old arena" : "", runs);
	const char *all[] = { arena, old, image, logp, pristine };

	remove_files(all, sizeof(all) / sizeof(all[0]));
}

TestSuite(powerfail, .timeout = 900);

Test(powerfail, create_sweep) { create_sweep(&workloads[0], false); }
Test(powerfail, create_over_old_bytes) { create_sweep(&workloads[0], true); }

Test(powerfail, recovery_sweep) { recovery_sweep(&workloads[0]); }

Test(powerfail, recv) { crash_campaign(&workloads[0]); }
Test(powerfail, uring_inc) { crash_campaign(&workloads[1]); }
Test(powerfail, uring_fixed) { crash_campaign(&workloads[2]); }
Test(powerfail, full) { crash_campaign(&workloads[3]); }
Test(powerfail, full_recv) { crash_campaign(&workloads[4]); }
Test(powerfail, trim) { crash_campaign(&workloads[5]); }
Test(powerfail, movable) { crash_campaign(&workloads[6]); }
