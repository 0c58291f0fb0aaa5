/* SPDX-License-Identifier: MIT */
/*
 * Power loss at thousands of points. A child process runs a workload of
 * appends, network receives, releases and a close/reopen on the
 * PKTSTORE_POWERFAIL build of the library, logging every record the API
 * returned as durable (and every release that returned). At a chosen
 * flush or drain the emulator loses power and writes the image a real
 * machine could have been left with. The parent opens that image with the
 * same library and checks the durability contract:
 *   - every record returned (and not released) is there, byte-identical;
 *   - every record presented holds the bytes sent at its seq (nothing
 *     garbage, nothing torn is served);
 *   - a flow's records never overlap; a released record never comes back;
 *   - stats, id order and per-flow order agree.
 * PKTSTORE_POWERFAIL_POINTS (default 2000) crash points, chosen with a seed
 * that is printed (PKTSTORE_POWERFAIL_SEED replays it).
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

#define STEPS 240
#define MAXLIVE 4096

struct log_entry {
	char type; /* 'R' returned record, 'P' release called, 'X' release
		      returned, 'E' end of workload */
	uint64_t id, flow, seq;
	uint32_t len;
};

static int logfd;

static void log_write(char type, uint64_t id, uint64_t flow, uint64_t seq, uint32_t len)
{
	struct log_entry e = { .type = type, .id = id, .flow = flow, .seq = seq, .len = len };

	if (write(logfd, &e, sizeof(e)) != sizeof(e))
		_exit(90);
}

/* ------------------------------------------------------- the child's work */

static struct pktstore_rec live[MAXLIVE];
static unsigned nlive;

static void keep(const struct pktstore_rec *r)
{
	log_write('R', r->id, r->flow, r->seq, r->len);
	if (nlive < MAXLIVE)
		live[nlive++] = *r;
}

static void release_at(struct pktstore *ps, unsigned i)
{
	/* A release cut short by the power loss may or may not be durable. */
	log_write('P', live[i].id, live[i].flow, live[i].seq, live[i].len);
	if (pktstore_release(ps, live[i].id))
		_exit(91);
	log_write('X', live[i].id, live[i].flow, live[i].seq, live[i].len);
	live[i] = live[--nlive];
}

static void loopback_pair(int *c, int *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &al))
		_exit(92);
	*c = socket(AF_INET, SOCK_STREAM, 0);
	if (*c < 0 || connect(*c, (struct sockaddr *)&a, sizeof(a)))
		_exit(92);
	*s = accept(l, NULL, NULL);
	if (*s < 0)
		_exit(92);
	close(l);
}

static struct pktstore *open_store(const char *path)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 2 << 20,
				   .segment_size = 64 << 10, .bytes_per_record = 512,
				   .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore *ps;

	if (pktstore_open(path, &o, &ps))
		_exit(93);
	return ps;
}

static void workload(const char *path, unsigned seed)
{
	struct pktstore *ps = open_store(path);
	uint64_t local, net, net_sent = 0;
	int c, s;
	uint8_t buf[4096];
	struct pktstore_rec r[64];

	if (pktstore_flow_create(ps, 1, &local))
		_exit(94);
	loopback_pair(&c, &s);
	if (pktstore_attach(ps, s, 2, &net))
		_exit(94);
	for (int step = 0; step < STEPS; step++) {
		unsigned op = (unsigned)rand_r(&seed) % 10;

		if (step == STEPS / 2) {
			/* A clean close and reopen in the middle. */
			if (pktstore_close(ps))
				_exit(95);
			close(c);
			close(s);
			ps = open_store(path);
			loopback_pair(&c, &s);
			if (pktstore_attach(ps, s, 2, &net))
				_exit(94);
			net_sent = 0;
		} else if (op < 4) {
			uint32_t len = 1 + (uint32_t)rand_r(&seed) % 2000;
			struct pktstore_flow_info fi;
			int ret;

			pktstore_flow_info(ps, local, &fi);
			fill_stream(local, fi.next_seq, buf, len);
			while ((ret = pktstore_append(ps, local, buf, len, &r[0])) == -ENOSPC && nlive)
				release_at(ps, 0);
			if (ret)
				_exit(96);
			keep(&r[0]);
		} else if (op < 8) {
			size_t len = 1 + (size_t)rand_r(&seed) % 3000;
			uint64_t want = net_sent + len;

			fill_stream(net, net_sent, buf, len);
			if (send(c, buf, len, 0) != (ssize_t)len)
				_exit(97);
			net_sent = want;
			for (uint64_t got = 0; got < len;) {
				int n = pktstore_recv_persist(ps, net, r, 64, 0);

				if (n == -ENOSPC && nlive) {
					release_at(ps, 0);
					continue;
				}
				if (n <= 0)
					_exit(98);
				for (int i = 0; i < n; i++) {
					keep(&r[i]);
					got += r[i].len;
				}
			}
		} else if (nlive) {
			release_at(ps, (unsigned)rand_r(&seed) % nlive);
		}
	}
	log_write('E', pf_events(), 0, 0, 0);
	_exit(0);
}

/* ------------------------------------------------------- the parent's check */

struct expect {
	uint64_t id, flow, seq;
	uint32_t len;
	int released; /* 1: release called, 2: release returned */
};

static size_t read_log(const char *p, struct expect *ex, size_t max, uint64_t *events)
{
	FILE *f = fopen(p, "rb");
	struct log_entry e;
	size_t n = 0;

	cr_assert(f);
	*events = 0;
	while (fread(&e, sizeof(e), 1, f) == 1) {
		if (e.type == 'E') {
			*events = e.id;
		} else if (e.type == 'R') {
			cr_assert_lt(n, max);
			ex[n++] = (struct expect){ e.id, e.flow, e.seq, e.len, 0 };
		} else if (e.type == 'P' || e.type == 'X') {
			for (size_t i = 0; i < n; i++)
				if (ex[i].id == e.id && ex[i].flow == e.flow && ex[i].seq == e.seq)
					ex[i].released = e.type == 'P' ? 1 : 2;
		}
	}
	fclose(f);
	return n;
}

static void check_image(const char *image, const struct expect *ex, size_t nex, uint64_t point)
{
	struct pktstore *ps = NULL;
	int ret = pktstore_open(image, NULL, &ps);

	if (ret == -EUCLEAN && nex == 0)
		return; /* power lost while the arena was being created */
	cr_assert_eq(ret, 0, "point %lu: open: %s", (unsigned long)point, pktstore_strerror(ret));

	/* Every record returned and not released is there, byte for byte. */
	for (size_t i = 0; i < nex; i++) {
		if (ex[i].released)
			continue;
		struct pktstore_rec r;

		ret = pktstore_get(ps, ex[i].id, &r, 0);
		cr_assert_eq(ret, 0, "point %lu: returned record %lu (flow %lu seq %lu) lost: %s",
			     (unsigned long)point, (unsigned long)ex[i].id,
			     (unsigned long)ex[i].flow, (unsigned long)ex[i].seq,
			     pktstore_strerror(ret));
		cr_assert(r.flow == ex[i].flow && r.seq == ex[i].seq && r.len == ex[i].len,
			  "point %lu: record %lu changed: flow %lu seq %lu len %u, now flow %lu seq %lu len %u",
			  (unsigned long)point, (unsigned long)ex[i].id, (unsigned long)ex[i].flow,
			  (unsigned long)ex[i].seq, ex[i].len, (unsigned long)r.flow,
			  (unsigned long)r.seq, r.len);
		cr_assert(check_stream(r.flow, r.seq, r.data, r.len));
	}

	/* Everything presented is bytes that were sent; flows never overlap;
	 * released records stay gone. */
	struct pktstore_flow_info fi[8];
	int nf = pktstore_flows(ps, 0, fi, 8);
	uint64_t presented = 0;

	cr_assert_geq(nf, 0);
	for (int k = 0; k < nf; k++) {
		struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = fi[k].id,
					    .hi = UINT64_MAX };
		struct pktstore_rec out[128];
		uint64_t end = 0;
		int n;

		while ((n = pktstore_range(ps, &q, out, 128)) > 0) {
			for (int i = 0; i < n; i++) {
				struct pktstore_rec g;

				cr_assert_geq(out[i].seq, end, "point %lu: overlap",
					      (unsigned long)point);
				cr_assert_eq(pktstore_get(ps, out[i].id, &g, 0), 0);
				cr_assert(check_stream(out[i].flow, out[i].seq, out[i].data,
						       out[i].len),
					  "point %lu: garbage served at flow %lu seq %lu",
					  (unsigned long)point, (unsigned long)out[i].flow,
					  (unsigned long)out[i].seq);
				for (size_t e = 0; e < nex; e++)
					cr_assert(!(ex[e].released == 2 && ex[e].flow == out[i].flow &&
						    ex[e].seq == out[i].seq),
						  "point %lu: released record back",
						  (unsigned long)point);
				end = out[i].seq + out[i].len;
				presented++;
			}
			q.lo = end;
		}
		cr_assert_geq(n, 0);
	}
	struct pktstore_stats st;
	struct pktstore_query all = { .kind = PKTSTORE_BY_ID, .hi = UINT64_MAX };
	static struct pktstore_rec out[MAXLIVE];

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.records, presented);
	cr_assert_eq((uint64_t)pktstore_range(ps, &all, out, MAXLIVE), presented);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* Run the workload (the same for every point of a run: `seed`) in a child
 * that loses power at `point` (0: never), tearing lines with `tear_seed`. */
static pid_t run_child(const char *arena, const char *image, const char *logp, uint64_t point,
		       unsigned seed, unsigned tear_seed)
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		unlink(arena);
		logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (logfd < 0)
			_exit(89);
		pf_arm(image, point, tear_seed);
		workload(arena, seed);
	}
	int status;

	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: status %d",
		  status);
	return pid;
}

Test(powerfail, crash_at_every_kind_of_point, .timeout = 900)
{
	char arena[128], image[128], logp[128];
	const char *e = getenv("PKTSTORE_POWERFAIL_POINTS");
	long points = e ? atol(e) : 2000;
	unsigned seed = getenv("PKTSTORE_POWERFAIL_SEED")
				? (unsigned)atol(getenv("PKTSTORE_POWERFAIL_SEED"))
				: (unsigned)time(NULL);
	static struct expect ex[1 << 16];
	uint64_t events;

	snprintf(arena, sizeof(arena), "/dev/shm/pktstore-pf-%d.arena", (int)getpid());
	snprintf(image, sizeof(image), "/dev/shm/pktstore-pf-%d.image", (int)getpid());
	snprintf(logp, sizeof(logp), "/dev/shm/pktstore-pf-%d.log", (int)getpid());
	fprintf(stderr, "powerfail: seed %u, %ld crash points (replay with PKTSTORE_POWERFAIL_SEED=%u)\n",
		seed, points, seed);

	/* One run without a crash counts the flushes and drains. */
	run_child(arena, image, logp, 0, seed, seed);
	read_log(logp, ex, sizeof(ex) / sizeof(ex[0]), &events);
	cr_assert_gt(events, 100, "the workload made %lu persistence events", events);

	unsigned pick = seed;
	uint64_t records_checked = 0;

	for (long i = 0; i < points; i++) {
		uint64_t point = 1 + (uint64_t)rand_r(&pick) % events;

		unlink(image);
		run_child(arena, image, logp, point, seed, seed + (unsigned)i);
		cr_assert_eq(access(image, F_OK), 0, "point %lu: no power loss happened",
			     (unsigned long)point);
		size_t n = read_log(logp, ex, sizeof(ex) / sizeof(ex[0]), &(uint64_t){ 0 });

		check_image(image, ex, n, point);
		records_checked += n;
	}
	fprintf(stderr, "powerfail: %ld crash points over %lu events, %lu returned records checked\n",
		points, (unsigned long)events, (unsigned long)records_checked);
	unlink(arena);
	unlink(image);
	unlink(logp);
}
