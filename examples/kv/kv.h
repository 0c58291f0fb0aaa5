/* SPDX-License-Identifier: MIT */
/*
 * kv.h - pktstore-kv internals shared by its parts.
 *
 * The model in a few lines. Every client connection is a pktstore flow; its
 * byte stream, as received, is the write-ahead log. Commands are parsed
 * straight from the persisted records, and the key index points at value
 * bytes inside those records, so a value is written once, by the kernel.
 *
 * Each command has a position: (id of the record that completes it, index
 * in that record), and a time: that record's receive time. Record ids follow
 * persist order, so positions order all commands of all connections; the
 * server applies commands in position order and recovery replays them in the
 * same order, at the same times, so expiry decides the same way.
 *
 * A command whose effect depends on what the keyspace held (INCR, SET NX,
 * EXPIRE, RENAME, a transaction...) is not replayed: replay cannot know
 * what the keyspace held, because records of values overwritten since are
 * gone. Its effects are recorded instead, in one record of the server's own
 * flow appended before the reply (unit.c), and replay applies them at the
 * command's position.
 *
 * Space comes back in two ways. A record is released as soon as nothing
 * refers to it (no live value, no tombstone, no reply in flight) and it is
 * the oldest record of its flow and ends on a command boundary outside a
 * transaction, so replay can always start parsing at a flow's first
 * surviving byte. A cleaning pass (compact.c) goes further: it copies every
 * value older than a horizon H into the server's own flow, appends a
 * checkpoint saying "ignore positions below H, and start flow F at offset
 * B_F in this state", and then releases everything before each B_F.
 * Tombstones only need to outlive the values they hide, so they are dropped
 * by the pass that puts their position below H.
 */
#ifndef KV_H
#define KV_H

#include <pktstore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "http.h"
#include "resp.h"

/* Flow tags: tell connection protocols and the server's own log apart. */
#define KV_TAG_RESP 0x6b762d7265737032ull      /* "kv-resp2" */
#define KV_TAG_RESP_AUTH 0x6b762d7265737061ull /* "kv-respa": AUTH required first */
#define KV_TAG_HTTP 0x6b762d6874747031ull      /* "kv-http1" */
#define KV_TAG_META 0x6b762d6d65746131ull      /* "kv-meta1" */

/* Keys longer than this are refused by every command: a key and its value
 * must fit one record of the server's flow with room to spare (main.c
 * keeps the value limit 8 KiB below the segment size). */
#define KV_MAX_KEY 4096
#define KV_DBS 16
#define KV_FLOW_BUCKETS 4096
#define KV_POS(id, idx) (((uint64_t)(id) << 21) | ((uint64_t)(idx) << 1))
#define KV_POS_AFTER(id) (((uint64_t)(id) << 21) | 0x1fffffu)

enum kv_proto { KV_RESP = 1, KV_HTTP = 2, KV_META = 3 };

struct kflow;
struct conn;
struct krec;

struct kstate {
	struct krec *rec;
	uint64_t from_seq;
};
struct replay;
struct unit;

/* A record the server holds. */
struct krec {
	uint64_t id, seq;
	uint64_t ts_ms;      /* receive (or append) time, ms since the epoch */
	const char *data;
	uint32_t len;
	uint32_t refs;       /* values, tombstones, log entries, replies in flight */
	uint64_t cstart;     /* start of the first command that completes here or later */
	struct kflow *flow;
	struct krec *next;   /* next record of the same flow (meta: of all meta records) */
	struct krec *prev;   /* ... and the one before: a meta record goes from anywhere */
	uint8_t parsed;
	uint8_t ends_clean;  /* replay may start right after it: no command nor
				transaction straddles its end */
};

/* A slice of a record; a command's pin lists every record it touches, so
 * that replay can still parse it, with len 0 where no value byte lies. */
struct span {
	struct krec *rec;
	uint32_t off, len;
};

/*
 * A value version, a tombstone or a log entry: what keeps records alive.
 * A version recorded by a unit (unit.c) also holds the meta record that
 * says so (urec), and the one with its latest expiry change (xrec).
 */
struct pin {
	uint64_t pos;        /* where it was defined: a pass moves it if below its horizon */
	uint64_t expire_ms;  /* absolute, ms since the epoch; 0: none */
	uint64_t vid;        /* unique per version: WATCH compares them */
	struct krec *urec, *xrec;
	char *heap;          /* the value before its unit's record exists */
	uint32_t vlen;
	uint32_t n;
	uint8_t pending;     /* made by a unit that has not committed yet */
	struct span s[];
};

struct kflow {
	uint64_t id;
	int proto;
	struct krec *head, *tail, *hint;
	uint32_t nrecs;
	uint32_t nheld;         /* of them, records something refers to (refs > 0) */
	uint64_t next_seq;      /* stream offset after the last byte taken */
	uint64_t skip_to;       /* replay: bytes before this are already accounted for */
	uint64_t release_limit; /* records ending at or before this may go */
	uint64_t broken_at;     /* where parsing stopped, once broken */
	uint32_t cmd_idx;       /* commands completed in the record being parsed */
	uint8_t broken;         /* the rest of the stream is ignored */
	uint8_t closed;         /* no more bytes will arrive */
	uint8_t started;
	/* Connection state replay needs: recorded (FSTATE, checkpoints) or
	 * rebuilt from the stream (the transaction being queued). */
	uint8_t need_auth;      /* accepted while a password was required */
	uint8_t authed;
	uint8_t in_multi;
	uint8_t db;
	uint64_t multi_start;   /* stream offset of the MULTI being queued */
	/* The meta records holding its db/AUTH states, oldest first, each with
	 * the stream offset from which it holds; replay starting anywhere in
	 * the stream still held needs the one in force there and those after. */
	struct kstate *states;
	uint32_t nstates, statecap;
	struct resp_parser resp;
	struct http_parser http;
	struct conn *conn;
	struct kflow *hnext;    /* flow hash chain */
};

/* Output: text packed into blocks, values sent from the arena. */
struct oblk;
struct oitem {
	const char *p;
	uint32_t len;
	struct oblk *blk;       /* text: the block holding it */
	struct krec *pin;       /* arena bytes: the record holding them */
};

struct out_mark {
	uint32_t qtail, last_len;
	uint64_t qbytes;
};

struct queued;
struct watch;

struct conn {
	int fd;
	int proto;
	struct kflow *flow;
	struct oitem *q;
	uint32_t qhead, qtail, qcap;
	uint64_t qbytes;        /* bytes queued, text and arena */
	uint64_t qdram;         /* DRAM held by text blocks */
	struct oblk *blk;       /* the block text goes to */
	uint8_t closing;        /* close once the output is flushed */
	uint8_t detached;
	uint8_t discard;        /* output is dropped (overflow): writes still apply */
	uint8_t blocked;        /* the store refused output: wait for its
				   PKTSTORE_REC_WRITABLE event */
	uint8_t dirty;          /* on the server's list of connections to serve */
	uint8_t ended;          /* its stream ended (or hung up): it sends nothing more */
	uint8_t gone;           /* the peer reset or a send failed: nothing more reaches it */
	uint8_t lingering;      /* our side is shut down; draining the peer's */
	uint8_t fin_watch;      /* ... and the store watches fd for the peer's FIN */
	uint8_t multi_dirty;    /* a command was refused while queueing: EXECABORT */
	uint8_t watch_dirty;    /* a watched key changed: EXEC answers nil */
	uint64_t close_deadline_ns;
	uint64_t close_acked;   /* reply bytes the peer had acknowledged then */
	uint64_t sent;          /* bytes pktstore_send() took for this connection */
	uint64_t id;            /* CLIENT ID */
	uint64_t created_ms, last_ms;
	char *name, *lib_name, *lib_ver;
	const char *last_cmd;
	struct queued *mq;      /* commands queued by MULTI */
	uint32_t nmq, mqcap;
	uint64_t mq_bytes;
	struct watch **watched; /* keys this connection watches */
	uint32_t nwatched, watchcap;
	struct conn *next, *prev;
	struct conn *dnext;     /* the list of connections to serve */
};

struct kentry {
	struct kentry *next;
	struct pin *ver;
	uint32_t hash, klen;
	char key[];
};

struct keyspace {
	struct kentry **b;
	uint64_t nb, n, nexpires;
	uint64_t expire_cursor; /* active expiry walks the buckets in turn */
};

struct kv_config {
	const char *arena;
	int repair;             /* --repair: cut damaged streams instead of refusing */
	uint64_t size;
	const char *resp_addr, *http_addr;
	uint32_t max_value;
	uint32_t max_clients;
	uint64_t max_output;    /* bytes queued for one client before it is cut off */
	uint64_t maxmemory;     /* CONFIG SET maxmemory: a lower bound than the arena's (0: none) */
	uint64_t full_timeout_ns; /* full this long with nothing released: close the
				     connections holding unfinished commands (0: never) */
	const char *zcrx;       /* --zcrx IF:QUEUE, or NULL */
	char *requirepass;      /* NULL: no AUTH needed */
};

struct kv_stats {
	uint64_t commands, connections, rejected_connections, expired_keys;
	uint64_t hits, misses, net_in, net_out, errors;
	uint64_t evicted_clients; /* closed by the full-arena timeout */
};

struct kv_server {
	struct kv_config cfg;
	struct pktstore *ps;
	struct kv_limits resp_lim, http_lim;
	struct keyspace ks[KV_DBS];
	struct kflow **fh;        /* flows by id */
	uint64_t fh_n;
	uint64_t meta_flow;
	struct krec *ckpt;        /* newest checkpoint record */
	uint64_t hpos;            /* positions below this are ignored (replay) */
	uint64_t last_id;         /* highest record id applied from a connection */
	uint64_t now_ms;          /* time of the newest record applied */
	uint64_t next_vid;
	struct pin **tombs;
	uint64_t ntombs, tombs_cap;
	struct pin **log;         /* write-ahead log entries, oldest first */
	uint64_t log_head, log_tail, log_cap, log_bytes, log_keep;
	uint64_t nconns, next_client_id;
	struct conn *conns;
	struct watch_table *watches;
	struct script_cache *scripts;
	struct conn *dirty;       /* connections to serve after a batch */
	int resp_fd, http_fd, timer_fd, signal_fd;
	int sock_flags;           /* accept4() flags of connections (server.c) */
	int replaying;
	uint64_t start_ms;
	struct kv_stats st;
	uint64_t passes, relocated_bytes, released;
	uint64_t full_since_ns;   /* receiving found the arena full since then (0: not full) */
	/* Space (compact.c): every live value is charged what it takes in a
	 * meta record, packing waste included; writes that would take the
	 * charge past limit are refused (OOM), and a cleaning pass starts while
	 * free space can still take the values that must move plus reserve. */
	uint64_t live_charge;     /* all live keys */
	uint64_t conn_charge;     /* ... whose value still lies in a connection's records */
	uint64_t limit, reserve;
	uint64_t arena_limit;     /* the bound the arena's size sets; limit may be lower */
	uint32_t stage_cap;       /* largest meta record a pass makes for small values */
	uint64_t next_pass_ns, retry_ns, pass_backoff_ns, pass_stamp;
	uint64_t oom_replies;
	uint32_t segment_size;
	uint16_t resp_port, http_port;
};

/* Room for one more element of *arr (capacity *cap, n used): doubles. */
static inline int kv_grow(void *arr, uint32_t *cap, uint32_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	uint32_t c = *cap ? 2 * *cap : 8;
	void *p = realloc(*(void **)arr, (size_t)c * elem);
	if (!p)
		return -1;
	*(void **)arr = p;
	*cap = c;
	return 0;
}

/* keyspace.c: per database, key -> version; every change of a live key goes
 * through ks_put/ks_remove, which journal it when a unit may roll back. */
int ks_init(struct kv_server *s);
void ks_free(struct kv_server *s);
struct kentry *ks_find(struct kv_server *s, int db, const char *key, uint32_t klen);
struct kentry *ks_lookup(struct kv_server *s, int db, const char *key, uint32_t klen,
			 uint64_t now_ms);
int ks_put(struct kv_server *s, struct unit *u, int db, const char *key, uint32_t klen,
	   struct pin *ver);
int ks_remove(struct kv_server *s, struct unit *u, int db, const char *key, uint32_t klen);
uint64_t ks_flush(struct kv_server *s, struct unit *u, int db);
void ks_expire_now(struct kv_server *s, int db, struct kentry *e);
void ks_active_expire(struct kv_server *s, uint32_t budget);
uint64_t ks_purge_expired(struct kv_server *s, uint64_t now_ms);
uint64_t ks_keys(const struct kv_server *s);
int ks_expired(const struct pin *v, uint64_t now_ms);
uint64_t ks_charge(const struct kv_server *s, uint32_t klen, uint64_t vlen);
uint64_t ks_charge_of(struct kv_server *s, int db, const char *key, uint32_t klen);
void ks_account(struct kv_server *s, const struct kentry *e, int sign);
int ks_fits(const struct kv_server *s, uint64_t add, uint64_t sub);
int ks_full(const struct kv_server *s);
uint64_t ks_scan(struct kv_server *s, int db, uint64_t cursor, uint64_t count,
		 void (*fn)(void *, struct kentry *), void *arg);
struct kentry *ks_random(struct kv_server *s, int db, uint64_t now_ms);

/* store.c: records, pins and release */
int kv_proto_of_tag(uint64_t tag, int *need_auth);
struct kflow *flow_get(struct kv_server *s, uint64_t id);
struct kflow *flow_add(struct kv_server *s, uint64_t id, int proto);
void flow_forget(struct kv_server *s, struct kflow *f);
void store_free(struct kv_server *s);
struct krec *rec_add(struct kv_server *s, struct kflow *f, const struct pktstore_rec *r);
struct pin *pin_alloc(uint32_t n);
struct pin *pin_command(struct kv_server *s, struct kflow *f, uint64_t pos, uint64_t cstart,
			uint64_t cend, uint64_t vseq, uint32_t vlen);
struct pin *pin_range(struct kv_server *s, struct kflow *f, uint64_t pos, uint64_t seq,
		      uint32_t len);
struct pin *pin_meta(struct kv_server *s, struct krec *r, uint64_t pos, uint32_t off,
		     uint32_t len);
struct pin *pin_clone(struct kv_server *s, const struct pin *p);
void pin_drop(struct kv_server *s, struct pin *p);
int pin_in_meta(const struct pin *p);
uint32_t pin_copy(const struct pin *v, uint32_t from, char *buf, uint32_t cap);
void rec_unref(struct kv_server *s, struct krec *r);

/* One more reference to r; its flow counts the records held, so that
 * whether a closed flow can go whole is known without walking it. */
static inline void rec_ref(struct krec *r)
{
	if (!r->refs++)
		r->flow->nheld++;
}
void rec_hold(struct krec **slot, struct krec *r);
void flow_try_release(struct kv_server *s, struct kflow *f);
void flow_set_state(struct kflow *f, int db, int authed, struct krec *r,
		    uint64_t from_seq);
void flow_drop_states(struct kv_server *s, struct kflow *f, uint64_t before_seq);
void tomb_add(struct kv_server *s, struct pin *p);
void log_add(struct kv_server *s, struct pin *p);
void log_trim(struct kv_server *s, uint64_t below_pos);

/* driver.c: the parse-and-apply loop shared by the live server and replay */
int flow_feed(struct kv_server *s, struct kflow *f, struct krec *r, struct replay *rp);
int flow_busy(const struct kflow *f);
uint64_t flow_cmd_start(const struct kflow *f);
uint64_t flow_unfinished_from(const struct kflow *f);

/* http_exec.c: the HTTP API */
void exec_http(struct kv_server *s, struct kflow *f, struct http_parser *p, uint64_t pos,
	       uint64_t now_ms, struct conn *c, struct replay *rp);
const char *http_reason(int status);

/* reply.c: output queues */
void out_text(struct conn *c, const char *s, size_t n);
#define out_lit(c, s) out_text((c), "" s, sizeof(s) - 1)
void out_fmt(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void out_num(struct conn *c, char type, int64_t v);
void out_pin(struct conn *c, const struct pin *v);
void out_pin_range(struct conn *c, const struct pin *v, uint32_t from, uint32_t len);
void out_mark(const struct conn *c, struct out_mark *m);
void out_rewind(struct kv_server *s, struct conn *c, const struct out_mark *m);
int out_flush(struct kv_server *s, struct conn *c);
int out_in_socket(const struct conn *c);
uint64_t out_acked(const struct conn *c);
void out_free(struct kv_server *s, struct conn *c);
void out_set_limit(uint64_t bytes);

/* compact.c: the cleaning pass */
int compact_pass(struct kv_server *s);
void compact_maybe(struct kv_server *s);
void space_init(struct kv_server *s, const struct pktstore_stats *st);

/* recovery.c */
int recover(struct kv_server *s, uint64_t *keys, uint64_t *ns);
int replay_refused(const struct replay *rp, uint64_t pos);
void replay_effects_before(struct kv_server *s, struct replay *rp, uint64_t pos);

/* server.c */
int server_run(struct kv_server *s);
const char *addr_check(const char *addr);
void conn_close(struct kv_server *s, struct conn *c);

/* main.c */
uint64_t now_ns(void);
uint64_t wall_ms(void);
void kv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A message that could repeat in a loop: at most one every 10 s, with a
 * count of the ones left out. */
struct kv_ratelimit {
	uint64_t next_ns, suppressed;
};
void kv_log_limited(struct kv_ratelimit *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
