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
 * in that record). Record ids follow persist order, so positions order all
 * commands of all connections; the server applies commands in position order
 * and recovery replays them in the same order.
 *
 * Space comes back in two ways. A record is released as soon as nothing
 * refers to it (no live value, no tombstone, no reply in flight) and it is
 * the oldest record of its flow and ends on a command boundary, so replay can
 * always start parsing at a flow's first surviving byte. A cleaning pass
 * (compact.c) goes further: it copies every value older than a horizon H into
 * the server's own local flow, appends a checkpoint saying "ignore positions
 * below H, and start flow F at offset B_F", and then releases everything
 * before each B_F. Tombstones only need to outlive the values they hide, so
 * they are dropped by the pass that puts their position below H.
 */
#ifndef KV_H
#define KV_H

#include <pktstore.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

#include "http.h"
#include "resp.h"

/* Flow tags: tell connection protocols and the server's own log apart. */
#define KV_TAG_RESP 0x6b762d7265737032ull /* "kv-resp2" */
#define KV_TAG_HTTP 0x6b762d6874747031ull /* "kv-http1" */
#define KV_TAG_META 0x6b762d6d65746131ull /* "kv-meta1" */

#define KV_MAX_KEY 512
#define KV_POS(id, idx) (((uint64_t)(id) << 21) | ((uint64_t)(idx) << 1))
#define KV_POS_AFTER(id) (((uint64_t)(id) << 21) | 0x1fffffu)

enum kv_proto { KV_RESP = 1, KV_HTTP = 2, KV_META = 3 };

struct kflow;
struct conn;

/* A record the server holds. */
struct krec {
	uint64_t id, seq;
	const char *data;
	uint32_t len;
	uint32_t refs;       /* values, tombstones, log entries, replies in flight */
	uint64_t cstart;     /* start of the first command that completes here or later */
	struct kflow *flow;
	struct krec *next;   /* next record of the same flow (meta: of all meta records) */
	uint8_t parsed;
	uint8_t ends_clean;  /* no command straddles the end of this record */
};

/* A slice of a record; a command's pin lists every record it touches, so
 * that replay can still parse it, with len 0 where no value byte lies. */
struct span {
	struct krec *rec;
	uint32_t off, len;
};

/* Pinned command: a value version, a tombstone or a log entry. */
struct pin {
	uint64_t pos;
	uint32_t vlen;
	uint32_t n;
	struct span s[];
};

struct kflow {
	uint64_t id;
	int proto;
	struct krec *head, *tail, *hint;
	uint32_t nrecs;
	uint64_t next_seq;      /* stream offset after the last byte taken */
	uint64_t skip_to;       /* replay: bytes before this are already accounted for */
	uint64_t release_limit; /* records ending at or before this may go */
	uint64_t broken_at;     /* where parsing stopped, once broken */
	uint32_t cmd_idx;       /* commands completed in the record being parsed */
	uint8_t broken;         /* the rest of the stream is ignored */
	uint8_t closed;         /* no more bytes will arrive */
	uint8_t started;
	struct resp_parser resp;
	struct http_parser http;
	struct conn *conn;
	struct kflow *hnext;    /* flow hash chain */
};

struct oitem {
	const char *p;
	uint32_t len;
	uint32_t cap;           /* room in own for appending small replies */
	uint32_t alloc;         /* size of own */
	char *own;
	struct krec *pin;
};

struct conn {
	int fd;
	int proto;
	struct kflow *flow;
	struct oitem *q;
	uint32_t qhead, qtail, qcap;
	uint64_t qbytes;
	uint64_t qdram;         /* DRAM held by queued replies */
	uint8_t closing;        /* close once the output is flushed */
	uint8_t detached;
	uint8_t discard;        /* output is dropped (overflow): writes still apply */
	uint8_t polled;         /* fd is in the epoll set for EPOLLOUT */
	uint8_t lingering;      /* our side is shut down; draining the peer's */
	uint64_t close_deadline_ns;
	struct conn *next, *prev;
};

struct kentry {
	struct kentry *next;
	struct pin *ver;
	uint32_t hash, klen;
	char key[];
};

struct keyspace {
	struct kentry **b;
	uint64_t nb, n;
};

struct kv_config {
	const char *arena;
	int repair;             /* --repair: cut damaged streams instead of refusing */
	uint64_t size;
	const char *resp_addr, *http_addr;
	uint32_t max_value;
	uint32_t max_clients;
	const char *zcrx;       /* --zcrx IF:QUEUE, or NULL */
};

struct kv_server {
	struct kv_config cfg;
	struct pktstore *ps;
	struct kv_limits resp_lim, http_lim;
	struct keyspace ks;
	struct kflow **fh;        /* flows by id */
	uint64_t fh_n;
	uint64_t meta_flow;
	struct krec *ckpt;        /* newest checkpoint record */
	uint64_t hpos;            /* positions below this are ignored (replay) */
	uint64_t last_id;         /* highest record id applied from a connection */
	struct pin **tombs;
	uint64_t ntombs, tombs_cap;
	struct pin **log;         /* write-ahead log entries, oldest first */
	uint64_t log_head, log_tail, log_cap, log_bytes, log_keep;
	uint64_t nconns;
	struct conn *conns;
	int ep, resp_fd, http_fd;
	int replaying;
	uint64_t passes, relocated_bytes, released;
	/* Space (compact.c): every live value is charged what it takes in a
	 * meta record, packing waste included; writes that would take the
	 * charge past limit are refused (OOM), and a cleaning pass starts while
	 * free space can still take the values that must move plus reserve. */
	uint64_t live_charge;     /* all live keys */
	uint64_t conn_charge;     /* ... whose value still lies in a connection's records */
	uint64_t limit, reserve;
	uint32_t stage_cap;       /* largest meta record a pass makes for small values */
	uint64_t next_pass_ns, retry_ns, pass_backoff_ns, pass_stamp;
	uint64_t oom_replies;
	uint32_t segment_size;
	uint16_t resp_port, http_port;
};

/* keyspace.c */
int ks_init(struct keyspace *ks);
void ks_free(struct kv_server *s);
struct kentry *ks_get(struct keyspace *ks, const char *key, uint32_t klen);
int ks_set(struct kv_server *s, const char *key, uint32_t klen, struct pin *ver);
int ks_del(struct kv_server *s, const char *key, uint32_t klen);
void ks_flush(struct kv_server *s);
uint64_t ks_charge(const struct kv_server *s, uint32_t klen, uint64_t vlen);
uint64_t ks_charge_of(struct kv_server *s, const char *key, uint32_t klen);
void ks_account(struct kv_server *s, const struct kentry *e, int sign);
int ks_fits(const struct kv_server *s, uint64_t add, uint64_t sub);

/* store.c: records, pins and release */
struct kflow *flow_get(struct kv_server *s, uint64_t id);
struct kflow *flow_add(struct kv_server *s, uint64_t id, int proto);
void flow_forget(struct kv_server *s, struct kflow *f);
void store_free(struct kv_server *s);
struct krec *rec_add(struct kv_server *s, struct kflow *f, const struct pktstore_rec *r);
struct pin *pin_command(struct kflow *f, uint64_t pos, uint64_t cstart, uint64_t cend,
			uint64_t vseq, uint32_t vlen);
struct pin *pin_meta(struct krec *r, uint64_t pos, uint32_t off, uint32_t len);
void pin_drop(struct kv_server *s, struct pin *p);
int pin_in_meta(const struct pin *p);
void rec_unref(struct kv_server *s, struct krec *r);
void flow_try_release(struct kv_server *s, struct kflow *f);
int flow_feed(struct kv_server *s, struct kflow *f, struct krec *r);
void tomb_add(struct kv_server *s, struct pin *p);
void log_add(struct kv_server *s, struct pin *p);
void log_trim(struct kv_server *s, uint64_t below_pos);

/* exec.c: commands, shared by the live server and replay */
void exec_resp(struct kv_server *s, struct kflow *f, struct resp_parser *p, uint64_t pos,
	       struct conn *c);
void exec_http(struct kv_server *s, struct kflow *f, struct http_parser *p, uint64_t pos,
	       struct conn *c);
const char *http_reason(int status);

/* reply.c: output queues */
void out_text(struct conn *c, const char *s, size_t n);
#define out_lit(c, s) out_text((c), "" s, sizeof(s) - 1)
void out_fmt(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void out_pin(struct conn *c, const struct pin *v);
void out_range(struct conn *c, struct kflow *f, uint64_t seq, uint32_t len);
int out_flush(struct kv_server *s, struct conn *c);
void out_free(struct kv_server *s, struct conn *c);

/* compact.c */
int meta_open(struct kv_server *s);
int meta_set_value(struct kv_server *s, uint64_t pos, const char *key, uint32_t klen,
		   const char *val, uint32_t vlen, struct pin **out);
int compact_pass(struct kv_server *s);
void compact_maybe(struct kv_server *s);
void space_init(struct kv_server *s, const struct pktstore_stats *st);
/* Bytes a value takes in a meta record besides key and value. */
#define KV_META_ENTRY 32

/* One flow in the closing summary (compact.c, damage.c). */
struct kv_sum_flow {
	uint64_t flow, first_seq, next_seq, records;
};

struct kv_summary {
	uint64_t rec_id;                      /* the summary record */
	uint64_t meta_records, meta_next_seq; /* the server's flow just before it */
	uint32_t n;
	struct kv_sum_flow *flows;
};

/* What meta_parse() finds in a meta record. */
struct meta_sink {
	void (*val)(struct kv_server *, struct krec *, uint64_t pos, uint32_t koff, uint32_t klen,
		    uint32_t voff, uint32_t vlen);
	void (*ckpt)(struct kv_server *, struct krec *, uint64_t hpos, uint32_t n,
		     const uint64_t *pairs);
	void (*summary)(struct kv_server *, struct krec *, struct kv_summary *sum); /* owns sum->flows */
	void (*refused)(struct kv_server *, struct krec *, uint64_t pos, uint32_t off);
};
int meta_refuse(struct kv_server *s, uint64_t pos);
int meta_parse(struct kv_server *s, struct krec *r, const struct meta_sink *sink);
int meta_write_summary(struct kv_server *s);

/* damage.c: what the arena lost, found before replay */
#define KV_EDAMAGED 1 /* recover(): damage found and --repair not given */
int damage_scan(struct kv_server *s, const struct pktstore_stats *st, uint64_t last_meta,
		const struct kv_summary *sum);
void damage_report(struct kv_server *s);
int damage_repair(struct kv_server *s);
void damage_free(void);
int flow_extent(struct pktstore *ps, uint64_t flow, struct kv_sum_flow *out);

/* recovery.c */
int recover(struct kv_server *s, uint64_t *keys, uint64_t *ns);
int replay_refused(struct kv_server *s, uint64_t pos);
void replay_vals_before(struct kv_server *s, uint64_t pos);

/* server.c */
int server_run(struct kv_server *s);
const char *addr_check(const char *addr);
void conn_close(struct kv_server *s, struct conn *c);

uint64_t now_ns(void);
void kv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A message that could repeat in a loop: at most one every 10 s, with a
 * count of the ones left out. */
struct kv_ratelimit {
	uint64_t next_ns, suppressed;
};
void kv_log_limited(struct kv_ratelimit *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
