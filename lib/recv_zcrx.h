/* SPDX-License-Identifier: MIT */
/*
 * recv_zcrx.h - the io_uring zero-copy receive backend's state, shared with
 * its tests (tests/test_zcrx.c drive the completion handling with synthetic
 * completions, since no NIC here can do zcrx).
 */
#ifndef PKTSTORE_RECV_ZCRX_H
#define PKTSTORE_RECV_ZCRX_H

#include <net/if.h>

#include "uring_ring.h"

struct zcrx_state {
	struct ps_ring r;
	struct ps_be_arena ar;
	char ifname[IF_NAMESIZE];
	unsigned rxq;

	/* The registered area. In place: a run of the arena's own segments,
	 * so a completion is already a record's bytes. Otherwise a private
	 * area, copied once into the arena. */
	bool in_place;
	char *area;
	uint64_t area_len;
	uint64_t area_arena_off; /* in place: arena offset of the area */
	uint64_t seg_first, nsegs;
	uint64_t token;          /* the area's id, already shifted (<< 48) */
	uint32_t zcrx_id;
	bool zcrx_live;          /* registered: the NIC may write the area */

	/* Refill ring: buffers handed back to the kernel. */
	void *rq_mem;
	size_t rq_bytes;
	uint32_t *khead, *ktail;
	struct ps_zcrx_rqe *rqes;
	uint32_t rq_entries, rq_tail;
	/* Returns that found the refill ring full, in order. */
	struct ps_zcrx_rqe *backlog;
	size_t nbacklog, backlog_cap;

	uint64_t bad_completions; /* offsets outside the area: dropped */

	/* Copy mode with no bump space: completions waiting in their area
	 * buffers, in arrival order, for space to be copied; a flow's end of
	 * stream (len 0, its status) waits behind its bytes. */
	struct zcrx_wait {
		uint64_t flow, off;
		uint32_t len;
		int status;
	} *waits;
	size_t nwaits, waits_cap;
};

int ps_zcrx_parse(const char *spec, char *ifname, unsigned *rxq);
/* Choose and map the area: in place when the arena can be pinned. */
int ps_zcrx_area_setup(struct pktstore *ps, struct zcrx_state *z, bool in_place, uint64_t len);
/* Point the refill ring at memory laid out as the kernel reported. */
void ps_zcrx_rq_attach(struct zcrx_state *z, void *mem, uint32_t entries, uint32_t head_off,
		       uint32_t tail_off, uint32_t rqes_off);
/* One RECV_ZC completion for flow f: lands its bytes, or marks f starved
 * when it has to wait for buffers or space. */
void ps_zcrx_complete(struct pktstore *ps, struct zcrx_state *z, struct ps_flow *f, int res,
		      uint32_t cqe_flags, uint64_t zc_off);
/* Give the buffer at area offset `off` back to the kernel. */
void ps_zcrx_give_back(struct zcrx_state *z, uint64_t off, uint32_t len);
void ps_zcrx_flush_backlog(struct zcrx_state *z);
/* Copy what waits for space (copy mode), as far as space allows. */
void ps_zcrx_flush_waits(struct pktstore *ps, struct zcrx_state *z);

#endif
