/* SPDX-License-Identifier: MIT */
/* Bytes sent over loopback TCP come back as durable records, on every
 * receive path and both media, and again after close and reopen. */
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static const char *const path_names[] = { "", "uring-inc", "uring-fixed", "recv" };

static void roundtrip(enum medium m, enum pktstore_recv_path rp)
{
	char path[256];
	const uint64_t total = 3 * 1024 * 1024 + 12345;
	int c, s;

	arena_path(m, path_names[rp], path, sizeof(path));
	struct pktstore *ps = store_open(path, 32 << 20, rp);
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_str_eq(st.recv_path_name, path_names[rp]);
	cr_assert_eq(st.recv_path, rp);
	/* What the medium is: page cache, or DAX at cache-line or byte
	 * granularity (unless libpmem2 is told otherwise). */
	if (!getenv("PMEM2_FORCE_GRANULARITY"))
		cr_assert_eq(st.granularity, medium_granularity(path), "granularity %d on %s",
			     (int)st.granularity, path);

	tcp_pair(&c, &s);
	uint64_t flow;

	cr_assert_eq(pktstore_attach(ps, s, 42, &flow), 0);
	struct sender *snd = sender_start(c, flow, 0, total, 1);
	unsigned nrec = recv_expect(ps, flow, flow, 0, total);

	sender_join(snd);
	struct pktstore_rec r;

	cr_assert_eq(pktstore_recv_persist(ps, flow, &r, 1, 0), 0, "EOF after the stream");
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.records, nrec);
	cr_assert_eq(st.record_bytes, total);
	cr_assert(st.batches <= nrec);
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	close(c);
	close(s);

	/* Reopen on whatever path is best and read it all back by seq. */
	ps = store_open(path, 0, PKTSTORE_PATH_AUTO);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.recovered_records, nrec);
	cr_assert_eq(st.dirty_shutdown, 0);
	struct pktstore_flow_info fi;

	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), 0);
	cr_assert_eq(fi.tag, 42);
	cr_assert_eq(fi.state, PKTSTORE_FLOW_CLOSED);
	cr_assert_eq(fi.next_seq, total);
	cr_assert_eq(fi.family, 2 /* AF_INET */);
	cr_assert_eq(fi.local_addr[0], 127);
	cr_assert_neq(fi.close_ns, 0);

	struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = flow, .lo = 0, .hi = UINT64_MAX };
	struct pktstore_rec out[128];
	uint64_t seq = 0;
	int n;

	while ((n = pktstore_range(ps, &q, out, 128)) > 0) {
		for (int i = 0; i < n; i++) {
			cr_assert_eq(out[i].seq, seq);
			cr_assert(check_stream(flow, seq, out[i].data, out[i].len));
			seq += out[i].len;
		}
		q.lo = seq;
	}
	cr_assert_eq(n, 0);
	cr_assert_eq(seq, total);
	cr_assert_eq(pktstore_close(ps), 0);
	unlink(path);
}

Test(roundtrip, tmpfs_uring_inc) { roundtrip(MEDIUM_TMPFS, PKTSTORE_PATH_URING_INC); }
Test(roundtrip, tmpfs_uring_fixed) { roundtrip(MEDIUM_TMPFS, PKTSTORE_PATH_URING_FIXED); }
Test(roundtrip, tmpfs_recv) { roundtrip(MEDIUM_TMPFS, PKTSTORE_PATH_RECV); }
Test(roundtrip, file_uring_inc) { roundtrip(MEDIUM_FILE, PKTSTORE_PATH_URING_INC); }
Test(roundtrip, file_uring_fixed) { roundtrip(MEDIUM_FILE, PKTSTORE_PATH_URING_FIXED); }
Test(roundtrip, file_recv) { roundtrip(MEDIUM_FILE, PKTSTORE_PATH_RECV); }

/* The batch amortises the drain: a stream of small writes that pile up in the
 * socket comes back with fewer drains than records. */
Test(roundtrip, batches_share_one_drain)
{
	char path[256];
	int c, s;
	uint64_t flow;

	arena_path(MEDIUM_TMPFS, "batch", path, sizeof(path));
	struct pktstore *ps = store_open(path, 16 << 20, PKTSTORE_PATH_AUTO);

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	for (int i = 0; i < 200; i++)
		send_stream(c, 7, (uint64_t)i * 100, 100);
	usleep(50 * 1000); /* let every segment arrive before the first call */
	unsigned nrec = recv_expect(ps, 0 + flow, 7, 0, 20000);
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert(st.batches < nrec || nrec == 1, "%lu drains for %u records",
		  (unsigned long)st.batches, nrec);
	cr_assert_eq(pktstore_close(ps), 0);
	close(c);
	close(s);
	unlink(path);
}
