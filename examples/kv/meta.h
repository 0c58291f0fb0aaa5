/* SPDX-License-Identifier: MIT */
/*
 * meta.h - the server's own flow: what pktstore-kv writes besides what its
 * clients sent (meta.c has the format).
 */
#ifndef KV_META_H
#define KV_META_H

#include "kv.h"

/* Bytes a value takes in a meta record besides its key and bytes (a VAL2
 * entry: header and fixed fields). The space rules charge it per value. */
#define KV_META_ENTRY 48

/* Entry types. VAL, CKPT and REF are those of arenas written before
 * databases, expiry and transactions; they are still read. */
enum meta_type {
	META_VAL = 1,    /* pos, key, value: key had this value (db 0, no expiry) */
	META_CKPT = 2,   /* hpos, (flow, offset)...: replay starts each flow there */
	META_SUM = 3,    /* (flow, first_seq, next_seq, records)...: a clean close */
	META_REF = 4,    /* pos: the write at pos was refused (OOM) */
	META_VAL2 = 5,   /* pos, db, key, expiry, value bytes in the entry */
	META_SETREF = 6, /* pos, db, key, expiry, value = bytes of a flow's stream */
	META_DEL = 7,    /* pos, db, key: the key went */
	META_FLUSH = 8,  /* pos, db (or all): every key of it went */
	META_EXPIRE = 9, /* pos, db, key, expiry (0: none): the key's expiry changed */
	META_FSTATE = 10, /* pos, flow, seq, db, authed: a connection's state from seq on */
	META_CKPT2 = 11, /* hpos, (flow, offset, db, authed)... */
	META_START = 12, /* (empty) a session started: its time is "now" */
};

#define META_ALL_DBS 0xffffffffu

/* A positioned entry, decoded: what replay applies at pos. */
struct meta_eff {
	int type;
	uint64_t pos, expire_ms, flow, seq;
	uint32_t db, authed;
	const char *key;
	uint32_t klen;
	uint32_t voff, vlen;   /* VAL, VAL2: the value inside the record */
};

/* One connection's restart point in a checkpoint. */
struct kv_flow_state {
	uint64_t flow, offset;
	uint32_t db, authed;
};

/* One flow in the closing summary (meta.c, damage.c). */
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
	void (*effect)(struct kv_server *, struct krec *, uint64_t pos, uint32_t off, void *arg);
	void (*ckpt)(struct kv_server *, struct krec *, uint64_t hpos, uint32_t n,
		     const struct kv_flow_state *states, void *arg);
	void (*summary)(struct kv_server *, struct krec *, struct kv_summary *sum,
			void *arg); /* owns sum->flows */
	void (*refused)(struct kv_server *, struct krec *, uint64_t pos, uint32_t off, void *arg);
};

/* A growing buffer of entries; with a max, one that would pass it fails,
 * and so does every entry after it (err), so that a record that could
 * never be written does not grow first. */
struct mbuf {
	char *p;
	uint32_t len, cap;
	uint32_t max; /* 0: none */
	int err;      /* -EMSGSIZE once an entry would have passed max */
};

int meta_open(struct kv_server *s);
int meta_append(struct kv_server *s, const void *buf, uint32_t len, struct krec **out);
int meta_refuse(struct kv_server *s, uint64_t pos);
int meta_parse(struct kv_server *s, struct krec *r, const struct meta_sink *sink, void *arg);
int meta_decode(const struct krec *r, uint32_t off, struct meta_eff *e);
int meta_write_summary(struct kv_server *s);
int meta_mark_start(struct kv_server *s);

/* Entry builders; each returns the offset of the entry's value bytes (VAL2)
 * or of the entry, or -ENOMEM. */
int mbuf_val2(struct mbuf *b, uint64_t pos, uint32_t db, uint64_t expire_ms, const char *key,
	      uint32_t klen, const char *val, uint32_t vlen);
int mbuf_setref(struct mbuf *b, uint64_t pos, uint32_t db, uint64_t expire_ms, const char *key,
		uint32_t klen, uint64_t flow, uint64_t seq, uint32_t vlen);
int mbuf_del(struct mbuf *b, uint64_t pos, uint32_t db, const char *key, uint32_t klen);
int mbuf_flush(struct mbuf *b, uint64_t pos, uint32_t db);
int mbuf_expire(struct mbuf *b, uint64_t pos, uint32_t db, uint64_t expire_ms, const char *key,
		uint32_t klen);
int mbuf_fstate(struct mbuf *b, uint64_t pos, uint64_t flow, uint64_t from_seq, uint32_t db,
		uint32_t authed);
int mbuf_ckpt2(struct mbuf *b, uint64_t hpos, uint32_t n, const struct kv_flow_state *st);
/* Room for a VAL2 entry whose value the caller copies in at the offset returned. */
int mbuf_val2_room(struct mbuf *b, uint64_t pos, uint32_t db, uint64_t expire_ms,
		   const char *key, uint32_t klen, uint32_t vlen);
void mbuf_free(struct mbuf *b);

/* damage.c: what the arena lost, found before replay */
#define KV_EDAMAGED 1 /* recover(): damage found and --repair not given */
int damage_scan(struct kv_server *s, const struct pktstore_stats *st, uint64_t last_meta,
		const struct kv_summary *sum);
void damage_report(struct kv_server *s);
int damage_repair(struct kv_server *s);
void damage_free(void);
int flow_extent(struct pktstore *ps, uint64_t flow, struct kv_sum_flow *out);

#endif
