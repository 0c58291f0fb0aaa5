/* SPDX-License-Identifier: MIT */
/*
 * watch.h - WATCH: keys a connection's next EXEC depends on. Live only:
 * an EXEC that WATCH aborts changes nothing and records nothing, so replay
 * never needs to know.
 */
#ifndef KV_WATCH_H
#define KV_WATCH_H

#include "kv.h"

/* One (connection, key) pair, in its hash chain and its connection's list. */
struct watch {
	struct watch *next;   /* hash chain */
	struct conn *conn;
	uint32_t hash, klen;
	uint8_t db;
	uint8_t expired;      /* the key was already expired when watched */
	char key[];
};

/* Every watched key by hash: a write looks at the pairs of its own key only. */
struct watch_table {
	struct watch **b;
	uint64_t nb, n;
};

int watch_add(struct kv_server *s, struct conn *c, int db, const char *key, uint32_t klen,
	      uint64_t now_ms);
void watch_clear(struct kv_server *s, struct conn *c);
void watch_touch(struct kv_server *s, int db, const char *key, uint32_t klen);
void watch_flushed(struct kv_server *s, int db);
int watch_expired_since(struct kv_server *s, const struct conn *c, uint64_t now_ms);

#endif
