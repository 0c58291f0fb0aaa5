/* SPDX-License-Identifier: MIT */
/*
 * The cleaner (PKTSTORE_MOVABLE): a few small records that stay must not pin
 * an arena whose live bytes are far below its size. Records it moves keep
 * their ids, flows, seqs and bytes, across a clean reopen and a kill -9.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(cleaner, .fini = cleanup);

#define HOLDERS 11 /* one segment fewer than the arena has: a movable store keeps the last free one for the cleaner */
#define BIG (24u << 10)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Every segment ends up holding one small record of a holder flow and
 * nothing else: big records fill the rest and are released. */
static void pin_every_segment(struct pktstore *ps, uint64_t *holder, uint64_t *hid)
{
	static char big[BIG];
	struct pktstore_rec r;
	uint64_t bulk, ids[64];
	unsigned nb = 0;

	cr_assert_eq(pktstore_flow_create(ps, 0, &bulk), 0);
	for (int h = 0; h < HOLDERS; h++) {
		char small[36];

		cr_assert_eq(pktstore_flow_create(ps, 0, &holder[h]), 0);
		fill_stream((uint64_t)h, 0, (uint8_t *)small, sizeof(small));
		/* Two big ones, then the small one: it sits at the end. */
		for (int k = 0; k < 2; k++) {
			cr_assert_eq(pktstore_append(ps, bulk, big, sizeof(big), &r), 0);
			cr_assert_lt(nb, 64);
			ids[nb++] = r.id;
		}
		cr_assert_eq(pktstore_append(ps, holder[h], small, sizeof(small), &r), 0);
		hid[h] = r.id;
	}
	cr_assert_eq(pktstore_release_batch(ps, ids, nb), 0);
}

static void check_holders(struct pktstore *ps, const uint64_t *holder, const uint64_t *hid)
{
	for (int h = 0; h < HOLDERS; h++) {
		struct pktstore_rec g;
		char want[36];

		{ int gr = pktstore_get(ps, hid[h], &g, 0); cr_assert_eq(gr, 0, "holder %d's record is gone: %s", h, pktstore_strerror(gr)); }
		fill_stream((uint64_t)h, 0, (uint8_t *)want, sizeof(want));
		cr_assert_eq(g.flow, holder[h]);
		cr_assert_eq(g.seq, 0);
		cr_assert_eq(g.len, sizeof(want));
		cr_assert(!memcmp(g.data, want, sizeof(want)), "holder %d's bytes changed", h);
		cr_assert_eq(pktstore_crc32c(0, g.data, g.len), g.crc32c);
	}
}

/* The segments of a 1 MiB arena, each pinned by 36 live bytes: without the cleaner
 * the next big append fails although 432 bytes are live. */
static struct pktstore *pinned_store(unsigned flags, uint64_t *holder, uint64_t *hid)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | flags, .size = 1 << 20,
				   .segment_size = 64 << 10, .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore *ps;

	arena_path(MEDIUM_TMPFS, "cleaner", path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	pin_every_segment(ps, holder, hid);
	return ps;
}

Test(cleaner, without_it_small_records_pin_the_arena)
{
	uint64_t holder[HOLDERS], hid[HOLDERS], local;
	static char big[BIG];
	struct pktstore *ps = pinned_store(0, holder, hid);
	int ret = 0;

	cr_assert_eq(pktstore_flow_create(ps, 0, &local), 0);
	for (int i = 0; i < 64 && !ret; i++)
		ret = pktstore_append(ps, local, big, sizeof(big), NULL);
	cr_assert_eq(ret, -ENOSPC, "the premise: pinned segments fill the arena");
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(cleaner, live_bytes_bound_the_space)
{
	uint64_t holder[HOLDERS], hid[HOLDERS], local;
	static char big[BIG];
	struct pktstore_rec r;
	struct pktstore_stats st;
	struct pktstore *ps = pinned_store(PKTSTORE_MOVABLE, holder, hid);

	cr_assert_eq(pktstore_flow_create(ps, 0, &local), 0);
	/* 400 big appends through a 1 MiB arena: 9.6 MiB, each released. */
	for (int i = 0; i < 400; i++) {
		int ret = pktstore_append(ps, local, big, sizeof(big), &r);

		cr_assert_eq(ret, 0, "append %d: %s", i, pktstore_strerror(ret));
		cr_assert_eq(pktstore_release(ps, r.id), 0);
	}
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_gt(st.cleaned_segments, 0);
	cr_assert_gt(st.moved_records, 0);
	check_holders(ps, holder, hid);
	cr_assert_eq(pktstore_close(ps), 0);

	/* The moved records are where their descriptors say, after a reopen. */
	struct pktstore_opts o = { .flags = PKTSTORE_MOVABLE, .recv_path = PKTSTORE_PATH_RECV };

	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.records, HOLDERS);
	cr_assert_eq(st.invalid_descriptors, 0);
	cr_assert_eq(st.damaged_records, 0);
	check_holders(ps, holder, hid);
	/* Released after a move, a record stays released. */
	cr_assert_eq(pktstore_release(ps, hid[0]), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_get(ps, hid[0], &r, 0), -ENOENT);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* Received bytes too: idle clients that sent a few bytes each, while one
 * client streams 8 MiB through a 1 MiB arena that the server releases. */
static void idle_clients(enum pktstore_recv_path rp)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | PKTSTORE_MOVABLE, .size = 1 << 20,
				   .segment_size = 64 << 10, .recv_path = rp };
	struct pktstore *ps;
	struct pktstore_rec r[64];
	int hc[HOLDERS], hs[HOLDERS], bc, bs;
	uint64_t hflow[HOLDERS], bflow, got = 0, held = 0;
	const uint64_t total = 8u << 20;

	arena_path(MEDIUM_TMPFS, "cleaner-net", path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	skip_if_path_missing(rp, ret, path);
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	tcp_pair(&bc, &bs);
	cr_assert_eq(pktstore_attach(ps, bs, 0, &bflow), 0);
	struct sender *snd = sender_start(bc, 99, 0, total, 0);
	uint64_t deadline = now_ms() + 60000;

	for (int h = 0; h < HOLDERS; h++) {
		tcp_pair(&hc[h], &hs[h]);
		cr_assert_eq(pktstore_attach(ps, hs[h], 1, &hflow[h]), 0);
	}
	int next_holder = 0;

	while (got < total) {
		cr_assert_lt(now_ms(), deadline, "jammed at %lu of %lu bytes",
			     (unsigned long)got, (unsigned long)total);
		/* A holder speaks up now and then, between the bulk bytes. */
		if (next_holder < HOLDERS && got >= (uint64_t)next_holder * (total / 16)) {
			send_stream(hc[next_holder], (uint64_t)next_holder, 0, 2);
			next_holder++;
		}
		int n = pktstore_recv_persist_any(ps, r, 64, PKTSTORE_NONBLOCK);

		if (n == -EAGAIN) {
			usleep(200);
			continue;
		}
		cr_assert_gt(n, 0, "%s", pktstore_strerror(n));
		for (int i = 0; i < n; i++) {
			if (r[i].flow != bflow) {
				held += r[i].len; /* kept: an unfinished message */
				continue;
			}
			cr_assert_eq(r[i].seq, got);
			cr_assert(check_stream(99, got, r[i].data, r[i].len));
			got += r[i].len;
			cr_assert_eq(pktstore_release(ps, r[i].id), 0);
		}
	}
	sender_join(snd);
	/* Every holder's two bytes are still there, wherever they moved. */
	for (int h = 0; h < next_holder; h++) {
		char b[2], want[2];
		uint64_t deadline2 = now_ms() + 5000;

		while (pktstore_read(ps, hflow[h], 0, b, 2) != 2) {
			cr_assert_lt(now_ms(), deadline2, "holder %d's bytes never came", h);
			pktstore_recv_persist_any(ps, r, 64, PKTSTORE_NONBLOCK);
			usleep(1000);
		}
		fill_stream((uint64_t)h, 0, (uint8_t *)want, 2);
		cr_assert(!memcmp(b, want, 2), "holder %d's bytes changed", h);
	}
	for (int h = 0; h < HOLDERS; h++) {
		close(hc[h]);
		close(hs[h]);
	}
	close(bc);
	close(bs);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(cleaner, idle_clients_recv) { idle_clients(PKTSTORE_PATH_RECV); }
Test(cleaner, idle_clients_uring_inc) { idle_clients(PKTSTORE_PATH_URING_INC); }
Test(cleaner, idle_clients_uring_fixed) { idle_clients(PKTSTORE_PATH_URING_FIXED); }

/* kill -9 while the cleaner moves records: after each kill every holder's
 * record is intact under its id (the moved mark and the new place are
 * durable in either order of the kill). */
Test(cleaner, kill_while_cleaning)
{
	uint64_t holder[HOLDERS], hid[HOLDERS];
	struct pktstore *ps = pinned_store(PKTSTORE_MOVABLE, holder, hid);
	struct pktstore_opts o = { .flags = PKTSTORE_MOVABLE, .recv_path = PKTSTORE_PATH_RECV };

	cr_assert_eq(pktstore_close(ps), 0);
	for (int round = 0; round < 12; round++) {
		pid_t pid = fork();

		cr_assert_geq(pid, 0);
		if (pid == 0) {
			static char big[BIG];
			struct pktstore_rec r;
			uint64_t local;

			if (pktstore_open(path, &o, &ps) || pktstore_flow_create(ps, 0, &local))
				_exit(1);
			for (;;) {
				if (pktstore_append(ps, local, big, sizeof(big), &r) ||
				    pktstore_release(ps, r.id))
					_exit(2);
			}
		}
		usleep(2000 + 3000 * (unsigned)round);
		kill(pid, SIGKILL);
		int status;

		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFSIGNALED(status), "the writer stopped by itself: %d",
			  WEXITSTATUS(status));
		cr_assert_eq(pktstore_open(path, &o, &ps), 0);
		struct pktstore_stats st;

		cr_assert_eq(pktstore_stats(ps, &st), 0);
		cr_assert_eq(st.damaged_records, 0);
		check_holders(ps, holder, hid);
		cr_assert_eq(pktstore_close(ps), 0);
	}
}

/* Only receive and append calls may move records (pktstore_open(3)): a
 * detach, with free segments short and sockets still sending, must leave
 * every data pointer reading what it read. It used to clean, and the
 * segment it freed went to the kernel for other flows' bytes. */
Test(cleaner, detach_moves_nothing)
{
	enum { NF = 6, SEG = 64 << 10 };
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | PKTSTORE_MOVABLE, .size = 602112,
				   .segment_size = SEG, .max_flows = 16,
				   .recv_path = PKTSTORE_PATH_URING_FIXED };
	static char buf[SEG];
	struct pktstore *ps;
	struct pktstore_rec r;
	struct pktstore_stats st;
	int cl[NF], sv[NF];
	uint64_t fl[NF], local, keep = 0, fill[16];
	unsigned nfill = 0;

	arena_path(MEDIUM_TMPFS, "cleaner-detach", path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	skip_if_path_missing(PKTSTORE_PATH_URING_FIXED, ret, path);
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	for (int i = 0; i < NF; i++) {
		tcp_pair(&cl[i], &sv[i]);
		cr_assert_eq(pktstore_attach(ps, sv[i], (uint64_t)i, &fl[i]), 0);
	}
	cr_assert_eq(pktstore_flow_create(ps, 9, &local), 0);
	/* Small records that stay, each in a segment filled by one that goes. */
	for (int i = 0; i < 8; i++) {
		memset(buf, 'K' + i, 64);
		if (pktstore_append(ps, local, buf, 40, &r))
			break;
		if (!keep)
			keep = r.id;
		cr_assert_eq(pktstore_stats(ps, &st), 0);
		if (pktstore_append(ps, local, buf, st.segments_free <= 2 ? SEG / 2 : SEG - 40, &r))
			break;
		fill[nfill++] = r.id;
		if (st.segments_free <= 2)
			break;
	}
	cr_assert_eq(pktstore_get(ps, keep, &r, 0), 0);
	const char *p = r.data;
	char saved[40];

	memcpy(saved, p, sizeof(saved));
	cr_assert_eq(pktstore_release_batch(ps, fill, nfill), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	uint64_t moved = st.moved_records;

	memset(buf, 'X', sizeof(buf));
	for (int k = 0; k < NF; k++) {
		for (int j = k; j < NF; j++)
			cr_assert_eq(send(cl[j], buf, sizeof(buf), MSG_DONTWAIT), (ssize_t)sizeof(buf));
		usleep(20000);
		cr_assert_eq(pktstore_detach(ps, fl[k]), 0);
		cr_assert_eq(pktstore_stats(ps, &st), 0);
		cr_assert_eq(st.moved_records, moved, "detach %d moved records", k);
		cr_assert(!memcmp(p, saved, sizeof(saved)), "detach %d: a data pointer changed", k);
	}
	for (int i = 0; i < NF; i++) {
		close(cl[i]);
		close(sv[i]);
	}
	cr_assert_eq(pktstore_close(ps), 0);
}
