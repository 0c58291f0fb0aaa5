/* SPDX-License-Identifier: MIT */
/*
 * Zero-copy receive. No NIC here can do it (lo refuses, eth0 is virtio), so:
 *  - the real fallback: zcrx asked for on lo, the reason reported, data
 *    still persisted through the buffer ring, and the area given back;
 *  - the completion handling driven with synthetic completions over a real
 *    arena: area-offset decoding, records in place (no copy), refill-ring
 *    returns on release, a full refill ring, bad offsets, copy mode and
 *    the -ENOSPC re-arm.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../lib/internal.h"
#include "../lib/recv_zcrx.h"
#include "util.h"

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(zcrx, .fini = cleanup);

Test(zcrx, falls_back_on_lo_with_a_reason)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 16 << 20, .zcrx = "lo:0" };
	struct pktstore *ps;
	struct pktstore_stats st;
	int c, s;
	uint64_t flow;

	/* The automatic choice is the subject: a path forced for the rest of
	 * the suite would skip zcrx and leave no reason. */
	unsetenv("PKTSTORE_RECV_PATH");
	arena_path(MEDIUM_TMPFS, "zcrx", path, sizeof(path));
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_str_neq(st.recv_path_name, "zcrx");
	cr_assert(strncmp(st.fallback_reason, "zcrx: lo:0: ", 12) == 0, "reason: %s",
		  st.fallback_reason);
	/* The area it tried was given back. */
	cr_assert_geq(st.segments_free + 4, st.segments);
	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	send_stream(c, 9, 0, 100000);
	recv_expect(ps, flow, 9, 0, 100000);
	cr_assert_eq(pktstore_close(ps), 0);
	close(c);
	close(s);

	/* Demanded, it is an error. */
	o.flags = 0;
	o.recv_path = PKTSTORE_PATH_ZCRX;
	cr_assert_lt(pktstore_open(path, &o, &ps), 0);
	o.zcrx = NULL;
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL, "zcrx demanded, no queue named");
	/* A malformed spec is a reason too, not a failure. */
	o.recv_path = PKTSTORE_PATH_AUTO;
	o.zcrx = "lo";
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert(strstr(st.fallback_reason, "bad zcrx interface"), "%s", st.fallback_reason);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(zcrx, parse)
{
	char ifn[IF_NAMESIZE];
	unsigned q;

	cr_assert_eq(ps_zcrx_parse("eth1:3", ifn, &q), 0);
	cr_assert_str_eq(ifn, "eth1");
	cr_assert_eq(q, 3);
	cr_assert_eq(ps_zcrx_parse("enp1s0f0np0:15", ifn, &q), 0);
	cr_assert_eq(q, 15);
	cr_assert_eq(ps_zcrx_parse("eth1", ifn, &q), -EINVAL);
	cr_assert_eq(ps_zcrx_parse(":3", ifn, &q), -EINVAL);
	cr_assert_eq(ps_zcrx_parse("eth1:", ifn, &q), -EINVAL);
	cr_assert_eq(ps_zcrx_parse("eth1:x", ifn, &q), -EINVAL);
	cr_assert_eq(ps_zcrx_parse("averyveryverylongifname:1", ifn, &q), -EINVAL);
}

/* The synthetic rig: a real store whose backend is the zcrx completion
 * logic over a fake refill ring; nothing is submitted to a kernel. */
struct rig {
	struct pktstore *ps;
	struct zcrx_state z;
	struct ps_backend_ops ops;
	const struct ps_backend_ops *saved_be;
	void *saved_state;
	uint32_t rq_mem[64 + 8 * 4];
	struct ps_flow *f;
	uint64_t flow;
};

static int no_poll(struct pktstore *ps, struct ps_flow *only, bool wait)
{
	(void)ps, (void)only, (void)wait;
	return 0;
}

static void rig_up(struct rig *r, bool in_place)
{
	memset(r, 0, sizeof(*r));
	arena_path(MEDIUM_TMPFS, in_place ? "zrig" : "zrigcopy", path, sizeof(path));
	r->ps = store_open(path, 8 << 20, PKTSTORE_PATH_RECV);
	cr_assert_eq(ps_zcrx_area_setup(r->ps, &r->z, in_place, 1 << 20), 0);
	/* Refill ring of 8 entries: head at 0, tail at 64, entries at 128. */
	ps_zcrx_rq_attach(&r->z, r->rq_mem, 8, 0, 64, 128);
	r->z.token = 5ull << PS_IORING_ZCRX_AREA_SHIFT;
	r->ops = *ps_backend_by_path(PKTSTORE_PATH_ZCRX);
	r->ops.poll = no_poll;
	r->saved_be = r->ps->be;
	r->saved_state = r->ps->be_state;
	r->ps->be = &r->ops;
	r->ps->be_state = &r->z;
	cr_assert_eq(pktstore_flow_create(r->ps, 0, &r->flow), 0);
	r->f = ps_flow_get(r->ps, r->flow);
	cr_assert(r->f);
	/* The ring's per-flow state: the receive counts as posted, so a
	 * resume does not submit anything. */
	r->z.r.fl = calloc(r->ps->a.sb.max_flows, sizeof(*r->z.r.fl));
	cr_assert(r->z.r.fl);
	ps_ring_flow(&r->z.r, r->f)->armed = true;
}

static void rig_down(struct rig *r)
{
	r->ps->be = r->saved_be;
	r->ps->be_state = r->saved_state;
	if (!r->z.in_place)
		munmap(r->z.area, r->z.area_len);
	free(r->z.backlog);
	free(r->z.waits);
	free(r->z.r.fl);
	cr_assert_eq(pktstore_close(r->ps), 0);
}

/* Deliver what the completions made, durably committed. */
static int collect(struct rig *r, struct pktstore_rec *out, unsigned max)
{
	r->f->run = PS_RUN_ACTIVE; /* let the any-call count it as receiving */
	r->ps->active_flows++;
	int n = pktstore_recv_persist_any(r->ps, out, max, PKTSTORE_NONBLOCK);

	r->ps->active_flows--;
	r->f->run = PS_RUN_NONE;
	return n;
}

static uint32_t *rq_tail(struct rig *r)
{
	return r->z.ktail;
}

Test(zcrx, completion_becomes_a_record_in_place)
{
	struct rig r;
	struct pktstore_rec rec[8];

	rig_up(&r, true);
	cr_assert(r.z.in_place);
	fill_stream(1, 0, (uint8_t *)r.z.area + 8192, 1000);
	fill_stream(1, 1000, (uint8_t *)r.z.area + 12288, 500);
	ps_zcrx_complete(r.ps, &r.z, r.f, 1000, IORING_CQE_F_MORE, r.z.token | 8192);
	ps_zcrx_complete(r.ps, &r.z, r.f, 500, IORING_CQE_F_MORE, r.z.token | 12288);
	cr_assert_eq(collect(&r, rec, 8), 2);
	/* Zero copy: the record's bytes are where the NIC put them. */
	cr_assert_eq(rec[0].data, r.z.area + 8192);
	cr_assert_eq(rec[1].data, r.z.area + 12288);
	cr_assert_eq(rec[0].seq, 0);
	cr_assert_eq(rec[1].seq, 1000);
	cr_assert(check_stream(1, 0, rec[0].data, 1000));
	cr_assert_eq(rec[0].crc32c, pktstore_crc32c(0, rec[0].data, 1000));
	cr_assert_eq(*rq_tail(&r), 0, "nothing handed back while the records live");

	/* Release hands the buffer back through the refill ring, once the
	 * release is durable: the kernel may overwrite it then. */
	cr_assert_eq(pktstore_release(r.ps, rec[1].id), 0);
	cr_assert_eq(*rq_tail(&r), 0, "handed back before the release is durable");
	cr_assert_eq(pktstore_sync(r.ps), 0);
	cr_assert_eq(*rq_tail(&r), 1);
	struct ps_zcrx_rqe *e = &r.z.rqes[0];

	cr_assert_eq(e->off, r.z.token | 12288);
	cr_assert_eq(e->len, 500);
	rig_down(&r);
}

Test(zcrx, refill_ring_full_keeps_order)
{
	struct rig r;
	struct pktstore_rec rec[16];
	uint64_t ids[12];

	rig_up(&r, true);
	for (int i = 0; i < 12; i++)
		ps_zcrx_complete(r.ps, &r.z, r.f, 100, IORING_CQE_F_MORE,
				 r.z.token | (uint64_t)(i * 4096));
	cr_assert_eq(collect(&r, rec, 16), 12);
	for (int i = 0; i < 12; i++)
		ids[i] = rec[i].id;
	cr_assert_eq(pktstore_release_batch(r.ps, ids, 12), 0);
	cr_assert_eq(pktstore_sync(r.ps), 0);
	/* 8 fit the ring; 4 wait in order. */
	cr_assert_eq(*rq_tail(&r), 8);
	cr_assert_eq(r.z.nbacklog, 4);
	/* The kernel consumes 5 entries: the next poll moves the rest. */
	*r.z.khead = 5;
	ps_zcrx_flush_backlog(&r.z);
	cr_assert_eq(*rq_tail(&r), 12);
	cr_assert_eq(r.z.nbacklog, 0);
	for (int i = 8; i < 12; i++)
		cr_assert_eq(r.z.rqes[i & 7].off, r.z.token | (uint64_t)(i * 4096));
	rig_down(&r);
}

Test(zcrx, foreign_offsets_are_never_data)
{
	struct rig r;
	struct pktstore_rec rec[4];

	rig_up(&r, true);
	ps_zcrx_complete(r.ps, &r.z, r.f, 100, IORING_CQE_F_MORE, (7ull << 48) | 4096);
	ps_zcrx_complete(r.ps, &r.z, r.f, 100, IORING_CQE_F_MORE, r.z.token | r.z.area_len);
	ps_zcrx_complete(r.ps, &r.z, r.f, 8192, IORING_CQE_F_MORE,
			 r.z.token | (r.ps->seg.size - 4096)); /* crosses a segment */
	cr_assert_eq(r.z.bad_completions, 3);
	cr_assert_eq(collect(&r, rec, 4), -EAGAIN);
	rig_down(&r);
}

Test(zcrx, copy_mode_copies_once_and_gives_back_at_once)
{
	struct rig r;
	struct pktstore_rec rec[4];

	rig_up(&r, false);
	cr_assert(!r.z.in_place);
	fill_stream(2, 0, (uint8_t *)r.z.area + 4096, 3000);
	ps_zcrx_complete(r.ps, &r.z, r.f, 3000, IORING_CQE_F_MORE, r.z.token | 4096);
	cr_assert_eq(*rq_tail(&r), 1, "returned right after the copy");
	cr_assert_eq(collect(&r, rec, 4), 1);
	cr_assert_neq(rec[0].data, r.z.area + 4096);
	cr_assert(check_stream(2, 0, rec[0].data, 3000));
	rig_down(&r);
}

Test(zcrx, enospc_completion_means_rearm)
{
	struct rig r;

	rig_up(&r, true);
	ps_zcrx_complete(r.ps, &r.z, r.f, -ENOSPC, 0, 0);
	cr_assert(r.f->starved, "waits to be armed again");
	ps_flow_starve(r.ps, r.f, false);
	rig_down(&r);
}

/* Copy mode with the arena full: the completion's bytes wait in their
 * area buffer and become a record once space returns (they were dropped,
 * and the buffer kept for good). */
Test(zcrx, copy_mode_full_arena_keeps_the_bytes)
{
	struct rig r;
	struct pktstore_rec rec[4];
	uint64_t local, ids[256];
	unsigned n = 0;
	static uint8_t chunk[60 << 10];

	rig_up(&r, false);
	cr_assert_eq(pktstore_flow_create(r.ps, 0, &local), 0);
	for (int ret = 0; !ret && n < 256;) {
		struct pktstore_rec a;

		ret = pktstore_append(r.ps, local, chunk, sizeof(chunk), &a);
		if (!ret)
			ids[n++] = a.id;
		else
			cr_assert_eq(ret, -ENOSPC, "%s", pktstore_strerror(ret));
	}
	cr_assert_lt(n, 256, "the arena never filled");
	fill_stream(4, 0, (uint8_t *)r.z.area + 8192, 3000);
	ps_zcrx_complete(r.ps, &r.z, r.f, 3000, IORING_CQE_F_MORE, r.z.token | 8192);
	cr_assert_eq(*rq_tail(&r), 0, "the buffer still holds the only copy");
	int got = collect(&r, rec, 4);

	cr_assert(got == -ENOSPC || got == -EAGAIN, "%d %s", got, pktstore_strerror(got));
	cr_assert_eq(pktstore_release_batch(r.ps, ids, n), 0);
	cr_assert_eq(collect(&r, rec, 4), 1, "the bytes became a record once space returned");
	cr_assert_eq(rec[0].len, 3000);
	cr_assert(check_stream(4, 0, rec[0].data, 3000));
	cr_assert_eq(*rq_tail(&r), 1, "and the buffer went back after the copy");
	rig_down(&r);
}
