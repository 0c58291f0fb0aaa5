/* SPDX-License-Identifier: MIT */
/* Flow lifetime: a flow's slot comes back once nothing refers to it (and not
 * before: bytes waiting for a descriptor still belong to their flow), local
 * flows can be deleted, and a long-running server never runs out of slots. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(lifetime, .fini = cleanup);

/* Skip the test when this kernel lacks the receive path (and only then). */
static void need_path(enum pktstore_recv_path rp)
{
	char p[256];
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 2 << 20,
				   .segment_size = 64 << 10, .recv_path = rp };
	struct pktstore *ps;

	arena_path(MEDIUM_TMPFS, "probe", p, sizeof(p));
	int ret = pktstore_open(p, &o, &ps);

	skip_if_path_missing(rp, ret, p);
	unlink(p);
	cr_assert_eq(ret, 0, "open on %d: %s", (int)rp, pktstore_strerror(ret));
	cr_assert_eq(pktstore_close(ps), 0);
}

static struct pktstore *open_small(enum pktstore_recv_path rp, uint32_t max_flows,
				   uint32_t bytes_per_record)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 2 << 20,
				   .segment_size = 64 << 10, .max_flows = max_flows,
				   .bytes_per_record = bytes_per_record, .recv_path = rp };
	struct pktstore *ps = NULL;
	int ret = pktstore_open(path, &o, &ps);

	cr_assert_eq(ret, 0, "open: %s", pktstore_strerror(ret));
	return ps;
}

/* Received bytes wait in the stall queue when every descriptor is in use;
 * detaching their flow used to free it under them (a use after free, then
 * a record persisted with a heap address as its flow id). */
static void detach_while_stalled(enum pktstore_recv_path rp)
{
	arena_path(MEDIUM_TMPFS, "stall", path, sizeof(path));
	struct pktstore *ps = open_small(rp, 8, 64 << 10);
	struct pktstore_stats st;
	uint64_t local, net;
	struct pktstore_rec r[8];
	uint64_t first = 0;
	uint8_t byte = 1;
	int c, s, ret;

	cr_assert_eq(pktstore_flow_create(ps, 1, &local), 0);
	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 2, &net), 0);
	/* Use every descriptor but one, then the last with the network. */
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	for (uint64_t i = 0; i + 1 < st.descriptors; i++) {
		cr_assert_eq(pktstore_append(ps, local, &byte, 1, &r[0]), 0);
		if (!first)
			first = r[0].id;
	}
	send_stream(c, 9, 0, 100);
	uint64_t got = 0;

	while (got < 100) {
		int n = pktstore_recv_persist_any(ps, r, 8, 0);

		cr_assert_gt(n, 0, "%s", pktstore_strerror(n));
		got += r[0].len;
		cr_assert_eq(n, 1);
	}
	cr_assert_eq(pktstore_release(ps, r[0].id), 0); /* the flow has no record now */
	/* The network then fills the last free descriptor's place twice over. */
	cr_assert_eq(pktstore_append(ps, local, &byte, 1, &r[0]), 0);
	send_stream(c, 9, 100, 200);
	usleep(20000);
	ret = pktstore_recv_persist_any(ps, r, 8, PKTSTORE_NONBLOCK);
	cr_assert(ret == -ENOSPC || ret == -EAGAIN, "%s", pktstore_strerror(ret));
	cr_assert_eq(pktstore_detach(ps, net), 0);

	/* A descriptor comes free: the waiting bytes become net's record. */
	cr_assert_eq(pktstore_release(ps, first), 0);
	ret = pktstore_recv_persist_any(ps, r, 8, PKTSTORE_NONBLOCK);
	struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = net, .hi = UINT64_MAX };
	int n = pktstore_range(ps, &q, r, 8);

	/* recv(2) leaves bytes in the socket when no descriptor is free; the
	 * io_uring paths may already have them in a lent buffer. Either way,
	 * what was taken from the socket becomes net's record. */
	if (rp == PKTSTORE_PATH_RECV)
		cr_assert_leq(n, 1);
	else
		cr_assert_eq(n, 1, "the bytes taken from the socket before detach are a record");
	if (n == 1) {
		cr_assert_eq(r[0].flow, net);
		cr_assert_eq(r[0].seq, 100);
		cr_assert(check_stream(9, 100, r[0].data, r[0].len));
	}
	struct pktstore_flow_info fi;

	if (n == 1) {
		cr_assert_eq(pktstore_flow_info(ps, net, &fi), 0);
		cr_assert_eq(fi.state, PKTSTORE_FLOW_CLOSED);
	} else {
		cr_assert_eq(pktstore_flow_info(ps, net, &fi), -ENOENT, "no record: slot reclaimed");
	}
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(lifetime, detach_while_stalled_recv)
{
	detach_while_stalled(PKTSTORE_PATH_RECV);
}

Test(lifetime, detach_while_stalled_uring_fixed)
{
	need_path(PKTSTORE_PATH_URING_FIXED);
	detach_while_stalled(PKTSTORE_PATH_URING_FIXED);
}

Test(lifetime, detach_while_stalled_uring_inc)
{
	need_path(PKTSTORE_PATH_URING_INC);
	detach_while_stalled(PKTSTORE_PATH_URING_INC);
}

/* pktstore_recv_persist() left its flow on the ready list for good, so the
 * slot never came back: with 8 slots the 9th attach failed while no record
 * was live. */
static void slots_come_back(enum pktstore_recv_path rp)
{
	arena_path(MEDIUM_TMPFS, "slots", path, sizeof(path));
	struct pktstore *ps = open_small(rp, 8, 512);

	for (int round = 0; round < 24; round++) {
		uint64_t flow;
		int c, s, n;
		struct pktstore_rec r[16];
		uint64_t got = 0;

		tcp_pair(&c, &s);
		int ret = pktstore_attach(ps, s, (uint64_t)round, &flow);

		cr_assert_eq(ret, 0, "round %d: attach: %s", round, pktstore_strerror(ret));
		send_stream(c, (uint64_t)round, 0, 300);
		shutdown(c, SHUT_WR);
		while ((n = pktstore_recv_persist(ps, flow, r, 16, 0)) > 0) {
			for (int i = 0; i < n; i++) {
				got += r[i].len;
				cr_assert_eq(pktstore_release(ps, r[i].id), 0);
			}
		}
		cr_assert_eq(n, 0, "round %d: %s", round, pktstore_strerror(n));
		cr_assert_eq(got, 300);
		cr_assert_eq(pktstore_detach(ps, flow), 0);
		close(c);
		close(s);
	}
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.flows, 0, "%lu flow slots still taken", (unsigned long)st.flows);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(lifetime, recv_persist_gives_slots_back_recv)
{
	slots_come_back(PKTSTORE_PATH_RECV);
}

Test(lifetime, recv_persist_gives_slots_back_uring_fixed)
{
	need_path(PKTSTORE_PATH_URING_FIXED);
	slots_come_back(PKTSTORE_PATH_URING_FIXED);
}

/* A local flow can be deleted with its records, durably, and its slot is
 * reused: a server that makes one local flow per start keeps starting. */
Test(lifetime, delete_local_flow)
{
	arena_path(MEDIUM_TMPFS, "delete", path, sizeof(path));
	struct pktstore *ps = open_small(PKTSTORE_PATH_RECV, 4, 512);
	uint64_t keep, flow, ids[3];
	struct pktstore_rec r;
	uint8_t buf[64];

	cr_assert_eq(pktstore_flow_create(ps, 1, &keep), 0);
	fill_stream(keep, 0, buf, sizeof(buf));
	cr_assert_eq(pktstore_append(ps, keep, buf, sizeof(buf), &r), 0);
	for (int start = 0; start < 12; start++) {
		cr_assert_eq(pktstore_close(ps), 0);
		ps = open_small(PKTSTORE_PATH_RECV, 4, 512);
		int ret = pktstore_flow_create(ps, 2, &flow);

		cr_assert_eq(ret, 0, "start %d: %s", start, pktstore_strerror(ret));
		for (int i = 0; i < 3; i++) {
			cr_assert_eq(pktstore_append(ps, flow, buf, sizeof(buf), &r), 0);
			ids[i] = r.id;
		}
		cr_assert_eq(pktstore_flow_delete(ps, flow), 0);
		struct pktstore_flow_info fi;

		cr_assert_eq(pktstore_flow_info(ps, flow, &fi), -ENOENT);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(pktstore_get(ps, ids[i], &r, 0), -ENOENT);
		cr_assert_eq(pktstore_append(ps, flow, buf, sizeof(buf), &r), -ENOENT);
	}
	cr_assert_eq(pktstore_close(ps), 0);
	ps = open_small(PKTSTORE_PATH_RECV, 4, 512);
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.flows, 1, "only the kept flow is left");
	cr_assert_eq(st.records, 1);
	cr_assert_eq(st.invalid_descriptors + st.damaged_records, 0);
	cr_assert_eq(pktstore_get(ps, r.id, &r, 0), -ENOENT);

	/* An attached flow is not deleted under its socket; bad ids are refused. */
	int c, s;

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 3, &flow), 0);
	cr_assert_eq(pktstore_flow_delete(ps, flow), -EBUSY);
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	cr_assert_eq(pktstore_flow_delete(ps, 0), -EINVAL);
	cr_assert_eq(pktstore_flow_delete(ps, 999999), -ENOENT);
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* A full flow table has its own error, not the arena's -ENOSPC. */
Test(lifetime, full_flow_table)
{
	arena_path(MEDIUM_TMPFS, "ftable", path, sizeof(path));
	struct pktstore *ps = open_small(PKTSTORE_PATH_RECV, 4, 512);
	uint64_t flow[5];

	for (int i = 0; i < 4; i++)
		cr_assert_eq(pktstore_flow_create(ps, 0, &flow[i]), 0);
	cr_assert_eq(pktstore_flow_create(ps, 0, &flow[4]), PKTSTORE_EFLOWS);
	cr_assert_eq(pktstore_flow_delete(ps, flow[1]), 0);
	cr_assert_eq(pktstore_flow_create(ps, 0, &flow[4]), 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* A deleted flow's id never names another flow, in this session or a later
 * one, after a clean close or a kill -9: an application that keeps flow ids
 * (a checkpoint naming a stream) must not find them reused. */
Test(lifetime, flow_ids_never_reused)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 2 << 20,
				   .segment_size = 64 << 10, .max_flows = 4,
				   .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore *ps;
	uint64_t seen[64];
	unsigned nseen = 0;

	arena_path(MEDIUM_TMPFS, "flowids", path, sizeof(path));
	for (int session = 0; session < 6; session++) {
		pid_t pid = session % 2 ? fork() : 0;

		cr_assert_geq(pid, 0);
		if (pid) {
			/* The child made and deleted flows, then was killed
			 * before it closed: read back what it logged. */
			int status;

			cr_assert_eq(waitpid(pid, &status, 0), pid);
			cr_assert(WIFSIGNALED(status), "the child ended by itself: %d", status);
			FILE *f = fopen("/dev/shm/pktstore-test-flowids.log", "r");
			unsigned long id;

			cr_assert(f);
			while (fscanf(f, "%lu", &id) == 1) {
				for (unsigned i = 0; i < nseen; i++)
					cr_assert_neq(seen[i], id, "flow id %lu given twice", id);
				cr_assert_lt(nseen, 64);
				seen[nseen++] = id;
			}
			fclose(f);
			continue;
		}
		bool child = session % 2;
		FILE *log = child ? fopen("/dev/shm/pktstore-test-flowids.log", "w") : NULL;

		cr_assert_eq(pktstore_open(path, &o, &ps), 0);
		for (int k = 0; k < 5; k++) {
			uint64_t id;

			cr_assert_eq(pktstore_flow_create(ps, 0, &id), 0);
			if (child) {
				fprintf(log, "%lu\n", (unsigned long)id);
				fflush(log);
			} else {
				for (unsigned i = 0; i < nseen; i++)
					cr_assert_neq(seen[i], id, "flow id %lu given twice", (unsigned long)id);
				cr_assert_lt(nseen, 64);
				seen[nseen++] = id;
			}
			/* The newest flow goes at once: its id was the highest. */
			cr_assert_eq(pktstore_flow_delete(ps, id), 0);
		}
		if (child) {
			fclose(log);
			kill(getpid(), SIGKILL);
		}
		cr_assert_eq(pktstore_close(ps), 0);
	}
	unlink("/dev/shm/pktstore-test-flowids.log");
	cr_assert_eq(nseen, 30);
}
