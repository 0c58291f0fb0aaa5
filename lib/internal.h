/* SPDX-License-Identifier: MIT */
/*
 * internal.h - the store's DRAM state and the contracts between lib/ files.
 *
 * The files in layers; a file calls only into layers above it in this list
 * (backends are reached downward only through their ops table), as
 * docs/ARCHITECTURE.md draws it:
 *
 * the medium
 *   crc.c         CRC32C
 *   codec.c       encode, decode and checksum the on-media structures
 *   persist.c     flush/drain, chosen by the mapping's granularity
 *   arena.c       map the file with libpmem2, create/validate the layout,
 *                 the superblocks
 * the store's state
 *   segments.c    who owns each data segment (free, kernel, bump, sealed)
 *   flowtab.c     the persisted flow table; the ready list
 *   index.c       per-flow and global record order in DRAM
 *   desclog.c     the descriptor log: make, commit and release records;
 *                 every change of a slot's state
 *   recovery.c    rebuild DRAM state from the descriptor log at open
 *   cleaner.c     move records out of sparse segments (PKTSTORE_MOVABLE)
 * receiving
 *   backend.c     the services backend.h offers backends; starved flows
 *   watch.c       other fds a receive call waits for (pktstore_watch)
 *   ingest.c      backend landings -> records -> commit -> delivery
 *   uring_send.c  the bytes pktstore_send() queues on the io_uring paths:
 *                 copied, or held in the arena
 *   uring_ring.c  what both io_uring backends share: the ring, arming,
 *                 polling, reaping, cancelling, hang-up polls, sends,
 *                 pktstore_fd()
 *   recv_uring.c  io_uring multishot recv into an arena buffer ring
 *   recv_zcrx.c   io_uring zero-copy receive: the NIC writes into the arena
 *   recv_socket.c plain recv(2) into the arena
 *   backends.c    the list of backends, best first
 * the API, by noun
 *   flows.c       flow create, info, list, user pointer, trim, delete
 *   receive.c     attach, detach, recv_persist(_any), fd, send
 *   records.c     append, get, release
 *   query.c       range, read, readv
 *   store.c       open, close, stats, strerror, version
 *
 * headers
 *   clock.h         the wall and monotonic clocks
 *   backend.h       the backend contract: the only header backends include
 *   uring_ring.h    ... and uring_ring.c's, for the io_uring backends
 *   recv_zcrx.h     the zcrx backend's state, for its unit test
 *   media.h         the on-media format
 *   compat_uring.h  io_uring ABI newer than liburing 2.3's headers
 *   profile.h       per-stage cycle counters of the benchmark build
 */
#ifndef PKTSTORE_INTERNAL_H
#define PKTSTORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pktstore.h"
#include "backend.h"
#include "clock.h"
#include "fastdiv.h"
#include "media.h"
#include "profile.h"

_Static_assert(PS_FLOW_ID_MAX == 1ull << PS_BE_FLOW_ID_BITS, "one flow id range");

struct pktstore;
struct pmem2_map;
struct pmem2_source;

/* ---------------------------------------------------------------- persist.c */

/* Ranges waiting for one flush pass and one drain; adjacent ranges merge so a
 * batch of records packed in one segment costs one flush run. */
#define PS_FLUSH_SET_MAX 64
struct ps_flush_set {
	unsigned n;
	int err; /* from an early flush, reported at commit */
	struct {
		uint64_t off, len;
	} r[PS_FLUSH_SET_MAX];
};

struct ps_persist {
	enum pktstore_granularity gran;
	char *base;
	uint64_t size;
	/* At page granularity libpmem2 aborts when msync fails; we call msync
	 * ourselves there so the error reaches the caller instead. */
	void (*pm_flush)(const void *p, size_t len);
	void (*pm_drain)(void);
};

int ps_flush_range(struct ps_persist *pp, uint64_t off, uint64_t len);
#ifdef PKTSTORE_POWERFAIL
/* Provided by the power-failure emulator of the test build. */
void ps_powerfail_flush(const char *base, uint64_t size, uint64_t off, uint64_t len);
void ps_powerfail_drain(const char *base, uint64_t size);
#endif
int ps_drain(struct ps_persist *pp);
int ps_persist_range(struct ps_persist *pp, uint64_t off, uint64_t len);
void ps_flush_set_add(struct ps_persist *pp, struct ps_flush_set *fs, uint64_t off,
		      uint64_t len);
int ps_flush_set_flush(struct ps_persist *pp, struct ps_flush_set *fs);

/* ----------------------------------------------------------------- crc.c */
uint32_t ps_crc32c_update(uint32_t crc, const void *buf, size_t len);

static inline uint32_t ps_crc32c(const void *buf, size_t len)
{
	return ps_crc32c_update(0, buf, len);
}

/* --------------------------------------------------------------- codec.c */
enum ps_desc_kind {
	PS_DK_EMPTY,    /* never used: all zero */
	PS_DK_LIVE,     /* a record, as far as the descriptor can tell */
	PS_DK_RELEASED, /* carries a release mark */
	PS_DK_INVALID,  /* torn or damaged */
};

uint32_t ps_sb_crc(const struct ps_superblock *sb);
uint32_t ps_flow_entry_crc(const struct ps_flow_entry *e);
void ps_desc_encode(struct ps_desc *d);
/* The value of the last 8-byte word (mark, crc) that releases d. */
uint64_t ps_desc_release_word(const struct ps_desc *d);
/* ... and the one that lets d's data_off change (cleaner.c). */
uint64_t ps_desc_moved_word(const struct ps_desc *d);
/* slots: division by the descriptor count (id -> slot). */
enum ps_desc_kind ps_desc_decode(const struct ps_desc *d, uint64_t slot, const struct ps_div *slots);
/* A flow entry's trim word (media.h): seq below 2^56, checked on decode. */
#define PS_TRIM_SEQ_MAX ((1ull << 56) - 1)
uint64_t ps_trim_encode(uint64_t flow_id, uint64_t seq);
int ps_trim_decode(uint64_t flow_id, uint64_t word, uint64_t *seq);

/* --------------------------------------------------------------- arena.c */
struct ps_arena {
	int fd;
	struct pmem2_map *map;
	struct pmem2_source *src;
	char *base;
	uint64_t size;
	struct ps_superblock sb; /* validated copy of the layout */
	struct ps_superblock *sb_pm[2];
	struct ps_flow_entry *flows_pm;
	struct ps_desc *descs_pm;
	bool rdonly;
	bool created;      /* this open made the file: a failed open removes it */
	bool formatted;    /* this open made the arena, marked in use already */
	bool dirty_shutdown, unsafe_shutdown;
	unsigned sb_repaired;
};

int ps_arena_open(struct pktstore *ps, const char *path, const struct pktstore_opts *o);
int ps_arena_mark(struct pktstore *ps, bool in_use);
int ps_arena_sync(struct pktstore *ps);
void ps_arena_close(struct ps_arena *a);
int ps_layout_compute(struct ps_superblock *sb, uint64_t size, uint32_t seg_size,
		      uint32_t max_flows, uint32_t bytes_per_record);
int ps_superblock_check(const struct ps_superblock *sb, uint64_t file_size);

/* ------------------------------------------------------------ segments.c */
enum ps_seg_state {
	PS_SEG_FREE = 0,
	PS_SEG_KERNEL, /* handed to a receive backend's buffers */
	PS_SEG_BUMP,   /* the user-space bump allocator's current segment */
	PS_SEG_SEALED, /* no new bytes land here; free when its last record goes */
	PS_SEG_CLEANING, /* sealed, its records being moved out (cleaner.c) */
};

struct ps_segments {
	uint64_t n, nfree;
	uint32_t size;
	struct ps_div div;  /* by size */
	uint8_t *state;
	uint32_t *refs;     /* records (and landings not yet recorded) inside */
	uint32_t *live;     /* ... and the bytes they hold */
	uint32_t *tail;     /* sealed: first byte after its last record, as
			       found at open; the rest may take appends */
	uint32_t *free_stack;
	/* Bump allocators for bytes placed by user space: HOT for recv(2) and
	 * append, COLD for records the cleaner moves, so that records which
	 * stay gather in segments of their own instead of pinning the
	 * segments new bytes pass through. */
	struct ps_bump {
		int64_t seg;   /* -1: none */
		uint32_t used;
	} bump[2];
};

enum ps_bump_kind { PS_BUMP_HOT, PS_BUMP_COLD };

int ps_segments_init(struct ps_segments *s, uint64_t n, uint32_t size);
void ps_segments_fini(struct ps_segments *s);
void ps_segments_build_free(struct ps_segments *s); /* after recovery counted refs */
int64_t ps_seg_take(struct pktstore *ps, enum ps_seg_state as);
int64_t ps_seg_take_run(struct pktstore *ps, uint64_t max, uint64_t *n);
void ps_seg_give_run(struct pktstore *ps, uint64_t first, uint64_t n);
void ps_seg_note_extent(struct ps_segments *s, uint64_t seg, uint32_t end);
void ps_seg_ref(struct pktstore *ps, uint64_t seg, uint32_t len);
void ps_seg_unref(struct pktstore *ps, uint64_t seg, uint32_t len);
void ps_seg_cleaned(struct pktstore *ps, uint64_t seg);
void ps_seg_seal(struct pktstore *ps, uint64_t seg);
int64_t ps_seg_take_tail(struct pktstore *ps, uint32_t min, enum ps_seg_state as,
			 uint32_t *start);
int ps_bump_reserve(struct pktstore *ps, enum ps_bump_kind k, uint32_t min, uint64_t *off,
		    uint32_t *avail);
void ps_bump_commit(struct pktstore *ps, enum ps_bump_kind k, uint32_t used);

/* -------------------------------------------------------- index / flows */
struct ps_ent {
	uint64_t id, seq, ts;
};

struct ps_index {
	struct ps_ent *e;
	size_t n, cap;
	size_t dead; /* entries whose record was released; squeezed out lazily */
};

enum ps_flow_run {
	PS_RUN_NONE = 0,  /* closed, or local */
	PS_RUN_ACTIVE,    /* attached: the backend receives for it */
	PS_RUN_ENDED,     /* the socket reached EOF or an error */
};

struct ps_flow {
	uint64_t id;
	uint32_t slot;
	int fd;
	enum ps_flow_state kind;
	enum ps_flow_run run;
	int end_status;        /* 0 EOF, or -errno */
	bool end_reported;
	bool hup_noticed;      /* hang-up while starved: seen by the backend */
	bool hup_reported;     /* ... and handed to the application */
	bool want_writable;    /* a send took less than it was given */
	bool writable;         /* ... and it can take more now: to report */
	bool starved;          /* receiving waits for free space */
	bool in_ready;
	uint64_t next_seq;     /* seq of the next record */
	uint64_t delivered_seq;
	uint64_t live;
	uint64_t damaged;      /* records kept as damaged: the flow stays for them */
	uint64_t releasing;    /* released, the release not yet durable: the
				  flow's entry must stay until it is */
	uint64_t trim_seq;     /* the stream below is gone (pktstore_trim) */
	void *user;            /* pktstore_flow_set_user() */
	struct ps_index idx;   /* records in seq order */
	struct ps_flow *ready_next, *ready_prev;
	uint32_t stalled;      /* landings in the stall queue: they point here */
};

/* ----------------------------------------------------------- flowtab.c */
int ps_flows_load(struct pktstore *ps);
struct ps_flow *ps_flow_get(struct pktstore *ps, uint64_t id);
int ps_flow_new(struct pktstore *ps, enum ps_flow_state kind, int fd, uint64_t tag,
		struct ps_flow **out);
int ps_flow_close_entry(struct pktstore *ps, struct ps_flow *f);
/* Durably write one aligned word of an entry: atomic under power loss. */
int ps_flow_word_persist(struct pktstore *ps, uint64_t *word, uint64_t value);
/* Forget a flow whose entry is durably free. */
void ps_flow_drop(struct pktstore *ps, struct ps_flow *f);
void ps_flow_maybe_reclaim(struct pktstore *ps, struct ps_flow *f);
void ps_flow_fill_info(struct pktstore *ps, struct ps_flow *f, struct pktstore_flow_info *fi);
void ps_flows_free(struct pktstore *ps);
/* The ready list: flows with records or an end of stream to deliver. */
void ps_ready_push(struct pktstore *ps, struct ps_flow *f);
void ps_ready_push_front(struct pktstore *ps, struct ps_flow *f);
struct ps_flow *ps_ready_pop(struct pktstore *ps);

/* ------------------------------------------------------------- index.c */
int ps_index_reserve(struct ps_index *ix, size_t n);
int ps_index_push(struct ps_index *ix, uint64_t id, uint64_t seq, uint64_t ts);
void ps_index_free(struct ps_index *ix);
void ps_index_squeeze(struct pktstore *ps, struct ps_index *ix);
/* First entry whose field (offsetof seq, id or ts in struct ps_ent: all
 * grow along the array) is >= key. */
size_t ps_index_lower(const struct ps_index *ix, size_t field, uint64_t key);
size_t ps_index_lower_seq(const struct ps_index *ix, uint64_t seq);

/* ------------------------------------------------------------ desclog.c */
enum ps_desc_state {
	PS_D_FREE = 0,
	PS_D_LIVE = 1,
	PS_D_DAMAGED = 2,
	PS_D_RELEASED = 3, /* marked released; the slot is free once the next
			      commit has made the mark durable */
};
/* Releases waiting for a commit, at most: more commit at once. */
#define PS_RELEASE_BATCH_MAX 4096

void ps_slot_set(struct pktstore *ps, uint64_t slot, const struct ps_desc *d, struct ps_flow *f,
		 enum ps_desc_state to);
int ps_record_make(struct pktstore *ps, struct ps_flow *f, uint64_t data_off, uint32_t len,
		   uint32_t flags, uint64_t *id);
int ps_commit(struct pktstore *ps);
bool ps_desc_extent_ok(const struct pktstore *ps, const struct ps_desc *d);
void ps_rec_fill(const struct pktstore *ps, const struct ps_desc *d, struct pktstore_rec *r);
/* Release records (ids checked by the caller): marked now, durable and
 * their slots and space free at the next ps_commit(). */
int ps_release(struct pktstore *ps, const uint64_t *ids, unsigned n);

/* ------------------------------------------------------------ cleaner.c */
/* PKTSTORE_MOVABLE and free segments short: worth a cleaning pass. */
bool ps_clean_wanted(const struct pktstore *ps);
/* Free one sparse segment by moving its records; 0 or a persist error
 * (which has stopped the store). */
int ps_clean(struct pktstore *ps);

/* ------------------------------------------------------------ recovery.c */
int ps_recover(struct pktstore *ps);

/* ----------------------------------------------------- receive backends */

/* What a backend reports: bytes landed in the arena for a flow, or the end of
 * the flow's stream. The core turns landings into records in order. */
struct ps_landing {
	struct ps_flow *f;
	uint64_t off;
	uint32_t len;
	int status; /* 1: data; 0: EOF; <0: -errno ending the stream */
};

/* The services backends call are declared in backend.h; these are the
 * core's (backend.c). */
int ps_starved_init(struct pktstore *ps);
void ps_starved_fini(struct pktstore *ps);

/* -------------------------------------------------------------- watch.c */
/* pktstore_watch(3): fds a receive call also waits for (PS_WATCH_MAX of
 * them: backend.h). */
struct ps_watch {
	int fd;
	int status;   /* of the report waiting: 0 readable, or -errno */
	void *user;
	bool armed;   /* the backend waits for it */
	bool fired;   /* reported by the backend, not handed out yet */
};

int ps_watch_add(struct pktstore *ps, int fd, void *user);
int ps_watch_remove(struct pktstore *ps, int fd);
/* Event records for the watches that fired, at most max; each is waited
 * for again once handed out. */
unsigned ps_watch_deliver(struct pktstore *ps, struct pktstore_rec *out, unsigned max);

/* ------------------------------------------------------------- ingest.c */
/* Short of free segments in a movable store: free a sparse one. */
int ps_make_room(struct pktstore *ps);
/* Make records from whatever waits, then make them durable; may_move lets
 * the cleaner run first. */
int ps_settle(struct pktstore *ps, bool may_move);
/* A receive call about to wait may leave the releases to its next commit. */
bool ps_releases_may_wait(const struct pktstore *ps);
/* Hand out f's durable, undelivered records. */
unsigned ps_deliver(struct pktstore *ps, struct ps_flow *f, struct pktstore_rec *out,
		    unsigned max);
bool ps_has_pending(const struct ps_flow *f);
/* Records of the ready flows, with their end and hang-up events. */
unsigned ps_deliver_any(struct pktstore *ps, struct pktstore_rec *recs, unsigned max);
/* Receiving cannot progress until the caller releases something (for f,
 * or for any flow when f is NULL). */
bool ps_out_of_space(const struct pktstore *ps, const struct ps_flow *f);

/* ------------------------------------------------------------ the store */

/* What the store counts as it runs; pktstore_stats() reports these beside
 * what it reads off the layout and the rest of the state. */
struct ps_counters {
	uint64_t records, record_bytes; /* live: kept by ps_slot_set() */
	uint64_t damaged_records;       /* ... likewise */
	uint64_t records_persisted, bytes_persisted, batches;
	uint64_t recovered_records, invalid_descriptors, invalid_flows;
	uint64_t recovery_ns;
	uint64_t enospc_events;
	uint64_t cleaned_segments, moved_records, moved_bytes;
};

struct pktstore {
	struct ps_arena a;
	struct ps_persist pp;
	struct ps_segments seg;
	struct ps_flush_set fs;

	uint64_t desc_free;       /* of sb.ndesc descriptor slots */
	struct ps_div slot_div;  /* by sb.ndesc: id -> slot */
	struct ps_div flow_div;  /* by sb.max_flows: flow id -> table slot */
	uint8_t *desc_state;     /* enum ps_desc_state per descriptor slot */
	uint64_t next_id;
	uint64_t last_ts;
	struct ps_index all;     /* every record in id order */

	struct ps_flow **flows;  /* by slot, sb.max_flows of them */
	uint64_t nflows;
	uint64_t next_flow_id;

	/* Landings that could not become records yet (no free descriptor). */
	struct ps_landing *stall;
	size_t stall_head, stall_n, stall_cap;

	struct ps_flow *ready_head, *ready_tail;
	uint64_t active_flows;   /* attached and not detached */
	struct ps_watch *watch;  /* PS_WATCH_MAX of them, nwatch in use */
	unsigned nwatch, nfired;
	/* Flows waiting for space to receive, in no order; starved_at[slot]
	 * is a flow's place (backend.c). */
	struct ps_flow **starved;
	uint32_t *starved_at;
	size_t nstarved;
	int broken;              /* a failed persist: every call returns it */

	const struct ps_backend_ops *be;
	void *be_state;
	const struct pktstore_opts *opening; /* during open: ps_be_opts() */
	char fallback[128];
	bool uncommitted;        /* records made since the last drain */
	uint64_t *rel;           /* slots released since the last drain */
	size_t rel_n, rel_cap;
	bool space_pending;      /* segments or descriptors freed since the
				    backend last refilled */
	bool movable;            /* PKTSTORE_MOVABLE: the cleaner may run */
	bool verify_all;         /* PKTSTORE_VERIFY: recovery hashes every record */
	/* Below this id no record is known damaged (a failed check at open or
	 * on a read): the superblock's verified_id never passes it, so the
	 * next open checks such a record again and keeps reporting it. */
	uint64_t damage_floor;
	uint64_t verified_synced; /* verified_id as last written on purpose */
	bool clean_hint;         /* bytes were freed since the cleaner last
				    found nothing to do */

	struct ps_counters cnt;
#ifdef PKTSTORE_PROFILE
	struct pktstore_profile prof;
#endif
};

/* The descriptor slot of record id. */
static inline uint64_t ps_slot_of(const struct pktstore *ps, uint64_t id)
{
	return ps_mod(&ps->slot_div, id);
}

static inline struct ps_desc *ps_desc_slot(const struct pktstore *ps, uint64_t id)
{
	return &ps->a.descs_pm[ps_slot_of(ps, id)];
}

/* The data segment that holds arena offset data_off. */
static inline uint64_t ps_seg_of(const struct pktstore *ps, uint64_t data_off)
{
	return ps_div(&ps->seg.div, data_off - ps->a.sb.data_off);
}

/* id names a live record (not released, not damaged, not a stale id of
 * its slot). */
static inline bool ps_record_live(const struct pktstore *ps, uint64_t id)
{
	return ps->desc_state[ps_slot_of(ps, id)] == PS_D_LIVE && ps_desc_slot(ps, id)->id == id;
}

static inline void *ps_ptr(const struct pktstore *ps, uint64_t off)
{
	return ps->a.base + off;
}

/* What the superblock's verified_id may say once everything made so far is
 * durable or checked: whole below next_id, but never past known damage. */
static inline uint64_t ps_verified_now(const struct pktstore *ps)
{
	return ps->next_id < ps->damage_floor ? ps->next_id : ps->damage_floor;
}

/* A read found record id's bytes damaged: the superblock's verified_id is
 * held below it, so the next open checks that record again. */
static inline void ps_note_damage(struct pktstore *ps, uint64_t id)
{
	if (id < ps->damage_floor)
		ps->damage_floor = id;
	if (id < ps->a.sb.verified_id)
		ps->a.sb.verified_id = id;
}

#endif
