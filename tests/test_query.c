/* SPDX-License-Identifier: MIT */
/* get and every range form, release, append to local flows, CRC checks. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static char path[256];
static struct pktstore *ps;
static uint64_t flow;
static struct pktstore_rec recs[512];
static int nrecs;

/* 200 records of 100..299 bytes on one flow, one send and receive each. */
static void setup(void)
{
	int c, s;

	arena_path(MEDIUM_TMPFS, "query", path, sizeof(path));
	ps = store_open(path, 16 << 20, PKTSTORE_PATH_AUTO);
	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 9, &flow), 0);
	uint64_t off = 0;

	nrecs = 0;
	for (int i = 0; i < 200; i++) {
		size_t n = 100 + (size_t)i;

		send_stream(c, 3, off, n);
		for (uint64_t got = 0; got < n;) {
			int k = pktstore_recv_persist(ps, flow, &recs[nrecs], 1, 0);

			cr_assert_eq(k, 1);
			got += recs[nrecs++].len;
		}
		off += n;
	}
	cr_assert_eq(pktstore_detach(ps, flow), 0);
	close(c);
	close(s);
}

static void teardown(void)
{
	if (ps)
		pktstore_close(ps);
	ps = NULL;
	unlink(path);
}

TestSuite(query, .init = setup, .fini = teardown);

Test(query, get_every_record)
{
	for (int i = 0; i < nrecs; i++) {
		struct pktstore_rec r;

		cr_assert_eq(pktstore_get(ps, recs[i].id, &r, 0), 0);
		cr_assert_eq(r.seq, recs[i].seq);
		cr_assert_eq(r.len, recs[i].len);
		cr_assert_eq(r.data, recs[i].data);
		cr_assert_eq(r.ts_ns, recs[i].ts_ns);
		cr_assert(i == 0 || r.ts_ns >= recs[i - 1].ts_ns);
		cr_assert(i == 0 || r.id > recs[i - 1].id);
	}
	struct pktstore_rec r;

	cr_assert_eq(pktstore_get(ps, recs[nrecs - 1].id + 1, &r, 0), -ENOENT);
	cr_assert_eq(pktstore_get(ps, 0, &r, 0), -EINVAL);
}

Test(query, seq_range_spanning_records)
{
	/* Bytes [150, 1000) start inside record 1 and end inside a later one. */
	struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = flow, .lo = 150, .hi = 1000 };
	struct pktstore_rec out[16];
	int n = pktstore_range(ps, &q, out, 16);
	int first = 0, last = 0;

	for (int i = 0; i < nrecs; i++) {
		if (recs[i].seq <= 150 && recs[i].seq + recs[i].len > 150)
			first = i;
		if (recs[i].seq < 1000 && recs[i].seq + recs[i].len >= 1000)
			last = i;
	}
	cr_assert_eq(n, last - first + 1);
	for (int i = 0; i < n; i++)
		cr_assert_eq(out[i].id, recs[first + i].id);
	/* Paging with a small max. */
	cr_assert_eq(pktstore_range(ps, &q, out, 2), 2);
	cr_assert_eq(out[0].id, recs[first].id);
	/* An empty interval and one past the end. */
	q.lo = q.hi = 500;
	cr_assert_eq(pktstore_range(ps, &q, out, 16), 0);
	q.lo = 1u << 30;
	q.hi = UINT64_MAX;
	cr_assert_eq(pktstore_range(ps, &q, out, 16), 0);
}

Test(query, id_and_time_ranges)
{
	struct pktstore_rec out[512];
	struct pktstore_query q = { .kind = PKTSTORE_BY_ID, .lo = recs[10].id, .hi = recs[20].id };

	cr_assert_eq(pktstore_range(ps, &q, out, 512), 10);
	cr_assert_eq(out[0].id, recs[10].id);
	cr_assert_eq(out[9].id, recs[19].id);
	q.flow = flow;
	cr_assert_eq(pktstore_range(ps, &q, out, 512), 10);
	q.flow = flow + 1000;
	cr_assert_eq(pktstore_range(ps, &q, out, 512), -ENOENT);

	q = (struct pktstore_query){ .kind = PKTSTORE_BY_TIME, .lo = recs[50].ts_ns,
				     .hi = recs[nrecs - 1].ts_ns + 1 };
	int n = pktstore_range(ps, &q, out, 512);
	int expect = 0;

	for (int i = 0; i < nrecs; i++)
		expect += recs[i].ts_ns >= q.lo && recs[i].ts_ns < q.hi;
	cr_assert_eq(n, expect);
	q.flow = flow;
	cr_assert_eq(pktstore_range(ps, &q, out, 512), expect);
	q.kind = 99;
	cr_assert_eq(pktstore_range(ps, &q, out, 512), -EINVAL);
}

Test(query, release_frees_and_hides)
{
	struct pktstore_stats before, after;
	struct pktstore_rec r, out[512];

	cr_assert_eq(pktstore_stats(ps, &before), 0);
	for (int i = 0; i < nrecs; i += 2)
		cr_assert_eq(pktstore_release(ps, recs[i].id), 0);
	cr_assert_eq(pktstore_release(ps, recs[0].id), -ENOENT);
	cr_assert_eq(pktstore_get(ps, recs[0].id, &r, 0), -ENOENT);
	cr_assert_eq(pktstore_get(ps, recs[1].id, &r, 0), 0);
	cr_assert_eq(pktstore_stats(ps, &after), 0);
	cr_assert_eq(after.records, before.records - (uint64_t)(nrecs + 1) / 2);
	/* The slots free with the commit that makes the releases durable. */
	cr_assert_eq(after.descriptors_free, before.descriptors_free);
	cr_assert_eq(pktstore_sync(ps), 0);
	cr_assert_eq(pktstore_stats(ps, &after), 0);
	cr_assert_eq(after.descriptors_free, before.descriptors_free + (uint64_t)(nrecs + 1) / 2);
	cr_assert_eq(pktstore_release(ps, recs[0].id), -ENOENT);

	struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = flow, .hi = UINT64_MAX };
	int n = pktstore_range(ps, &q, out, 512);

	cr_assert_eq(n, nrecs / 2);
	for (int i = 0; i < n; i++)
		cr_assert_eq(out[i].id, recs[2 * i + 1].id);

	/* Released records stay gone after reopen. */
	cr_assert_eq(pktstore_close(ps), 0);
	ps = store_open(path, 0, PKTSTORE_PATH_AUTO);
	cr_assert_eq(pktstore_range(ps, &q, out, 512), nrecs / 2);
	cr_assert_eq(pktstore_get(ps, recs[2].id, &r, 0), -ENOENT);

	/* Releasing every record of a closed flow reclaims the flow. */
	for (int i = 1; i < nrecs; i += 2)
		cr_assert_eq(pktstore_release(ps, recs[i].id), 0);
	struct pktstore_flow_info fi;

	cr_assert_eq(pktstore_sync(ps), 0);
	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), -ENOENT);
	cr_assert_eq(pktstore_stats(ps, &after), 0);
	cr_assert_eq(after.records, 0);
	cr_assert_eq(after.descriptors_free, after.descriptors);
	/* Every segment is free but the few lent to the kernel for receiving. */
	cr_assert_geq(after.segments_free + 4, after.segments);
}

Test(query, crc_mismatch_is_reported)
{
	struct pktstore_rec r;
	uint8_t *p = (uint8_t *)recs[7].data + 3;

	*p ^= 0x40; /* the media rots under a live store */
	cr_assert_eq(pktstore_get(ps, recs[7].id, &r, 0), -EBADMSG);
	cr_assert_eq(pktstore_get(ps, recs[7].id, &r, PKTSTORE_NO_VERIFY), 0);
	cr_assert_eq(pktstore_get(ps, recs[8].id, &r, 0), 0);

	/* Recovery finds it too, and keeps reporting it. */
	cr_assert_eq(pktstore_close(ps), 0);
	ps = store_open(path, 0, PKTSTORE_PATH_AUTO);
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.damaged_records, 1);
	cr_assert_eq(st.recovered_records, (uint64_t)nrecs - 1);
	cr_assert_eq(pktstore_get(ps, recs[7].id, &r, 0), -EBADMSG);
	cr_assert_eq(pktstore_get(ps, recs[7].id, &r, PKTSTORE_NO_VERIFY), -EBADMSG);
	cr_assert_eq(pktstore_get(ps, recs[6].id, &r, 0), 0);
	cr_assert_eq(pktstore_release(ps, recs[7].id), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.damaged_records, 0);
}

/* A closed flow whose only records left are damaged is kept, at open and
 * after its last good record goes, so the damage stays attributed to a
 * flow the application can see and delete; it is reclaimed when the
 * damaged record is released. */
Test(query, damaged_records_keep_their_flow)
{
	struct pktstore_flow_info fi;
	struct pktstore_stats st;

	((uint8_t *)recs[7].data)[3] ^= 0x40;
	for (int i = 0; i < nrecs; i++)
		if (i != 7 && i != 8)
			cr_assert_eq(pktstore_release(ps, recs[i].id), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	/* Nothing read it: a scrub finds it. */
	struct pktstore_opts scrub = { .flags = PKTSTORE_VERIFY };

	cr_assert_eq(pktstore_open(path, &scrub, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.damaged_records, 1);
	cr_assert_eq(pktstore_release(ps, recs[8].id), 0);
	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), 0, "the flow went with damage left");
	cr_assert_eq(fi.records, 0);
	cr_assert_eq(pktstore_close(ps), 0);
	ps = store_open(path, 0, PKTSTORE_PATH_AUTO);
	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), 0, "freed at open with damage left");

	struct pktstore_query q = { .kind = PKTSTORE_DAMAGED, .hi = UINT64_MAX };
	struct pktstore_rec d;

	cr_assert_eq(pktstore_range(ps, &q, &d, 1), 1);
	cr_assert_eq(d.flow, flow);
	cr_assert_eq(pktstore_release(ps, recs[7].id), 0);
	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), 0, "gone before its release is durable");
	cr_assert_eq(pktstore_sync(ps), 0);
	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), -ENOENT);
}

Test(query, append_to_local_flow)
{
	uint64_t local;
	struct pktstore_rec r, g;
	char buf[3000];

	memset(buf, 'x', sizeof(buf));
	cr_assert_eq(pktstore_flow_create(ps, 77, &local), 0);
	cr_assert_eq(pktstore_append(ps, local, "hello", 5, &r), 0);
	cr_assert_eq(r.seq, 0);
	cr_assert_eq(r.flags, PKTSTORE_REC_APPENDED);
	cr_assert_eq(pktstore_append(ps, local, buf, sizeof(buf), &r), 0);
	cr_assert_eq(r.seq, 5);
	cr_assert_eq(pktstore_get(ps, r.id, &g, 0), 0);
	cr_assert_eq(memcmp(g.data, buf, sizeof(buf)), 0);
	cr_assert_eq(pktstore_append(ps, flow, "x", 1, &r), -EINVAL, "a network flow");
	cr_assert_eq(pktstore_append(ps, local, buf, 0, &r), -EINVAL);
	cr_assert_eq(pktstore_recv_persist(ps, local, &r, 1, 0), -EINVAL);

	cr_assert_eq(pktstore_close(ps), 0);
	ps = store_open(path, 0, PKTSTORE_PATH_AUTO);
	struct pktstore_flow_info fi;

	cr_assert_eq(pktstore_flow_info(ps, local, &fi), 0);
	cr_assert_eq(fi.state, PKTSTORE_FLOW_LOCAL);
	cr_assert_eq(fi.tag, 77);
	cr_assert_eq(fi.next_seq, 5 + sizeof(buf));
	/* Appends continue the local flow's seq after a reopen. */
	cr_assert_eq(pktstore_append(ps, local, "!", 1, &r), 0);
	cr_assert_eq(r.seq, 5 + sizeof(buf));
}

Test(query, release_batch_is_all_or_nothing)
{
	uint64_t ids[4] = { recs[0].id, recs[1].id, 999999, recs[2].id };
	struct pktstore_rec r;
	struct pktstore_stats before, after;

	cr_assert_eq(pktstore_stats(ps, &before), 0);
	cr_assert_eq(pktstore_release_batch(ps, ids, 4), -ENOENT);
	cr_assert_eq(pktstore_get(ps, recs[0].id, &r, 0), 0, "nothing released");
	ids[2] = recs[1].id; /* a repeated id counts once */
	cr_assert_eq(pktstore_release_batch(ps, ids, 4), 0);
	cr_assert_eq(pktstore_release_batch(ps, ids, 1), -ENOENT, "released twice");
	cr_assert_eq(pktstore_sync(ps), 0);
	cr_assert_eq(pktstore_stats(ps, &after), 0);
	cr_assert_eq(after.records, before.records - 3);
	cr_assert_eq(after.descriptors_free, before.descriptors_free + 3);
	cr_assert_eq(pktstore_get(ps, recs[2].id, &r, 0), -ENOENT);
	cr_assert_eq(pktstore_get(ps, recs[3].id, &r, 0), 0);
	cr_assert_eq(pktstore_release_batch(ps, ids, 0), 0);
	cr_assert_eq(pktstore_release_batch(ps, NULL, 1), -EINVAL);
}
