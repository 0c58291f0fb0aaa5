/* SPDX-License-Identifier: MIT */
/*
 * unit.h - one command, or one transaction, and what it changes.
 *
 * A unit is either replayed or recorded. A replayed unit is one whose
 * effect replay can compute from its own bytes (SET, DEL, MSET, FLUSHALL):
 * the versions it makes pin the command's records, and replay runs it
 * again. A recorded unit is one whose effect depends on what the keyspace
 * held (INCR, SET NX, EXPIRE, RENAME, EXEC, SELECT...): replay cannot
 * compute it, because records of versions overwritten since are gone, so
 * every change it makes is staged as an entry, all of them are appended as
 * one record of the server's flow before the reply, and replay applies
 * that record at the unit's position instead of running the command. The
 * record is appended whole or not at all; if it cannot be, the unit rolls
 * back (its journal restores every key it touched) and the client gets an
 * error: no change without its record, live or after a crash.
 */
#ifndef KV_UNIT_H
#define KV_UNIT_H

#include "kv.h"
#include "meta.h"

struct undo {
	uint8_t db;
	uint32_t klen;
	char *key;
	struct pin *old; /* NULL: the key did not exist */
};

struct made {
	struct pin *p;
	int32_t heap_off;  /* its bytes' offset in the staged record, or -1 */
	uint8_t expiry;    /* the record holds its expiry change (xrec) */
};

struct unit {
	struct kv_server *s;
	struct kflow *f;
	uint64_t pos;
	uint64_t cstart;   /* replayed units: the command's first byte */
	uint64_t cend;     /* the stream offset after it */
	uint8_t record;
	uint8_t deleted;   /* a key went: the unit is also a tombstone */
	uint8_t state;     /* the connection's state changed to (db, authed) */
	uint8_t db, authed;
	struct undo *undo;
	uint32_t nundo, undocap;
	struct made *made;
	uint32_t nmade, madecap;
	struct mbuf mb;
};

void unit_begin(struct unit *u, struct kv_server *s, struct kflow *f, uint64_t pos,
		uint64_t cstart, uint64_t cend);
/* Live: from now on the unit is recorded. */
void unit_set_recorded(struct unit *u);
int unit_journals(const struct unit *u);
void unit_journal(struct kv_server *s, struct unit *u, int db, const char *key, uint32_t klen,
		  struct pin *old);
/* Append the record if there is one and keep the changes (0), or undo them
 * all (-errno). Frees what the unit held either way. */
int unit_end(struct unit *u);

/* The changes, each staged as an entry when the unit is recorded. */
int eff_set_stream(struct unit *u, int db, const char *key, uint32_t klen, uint64_t seq,
		   uint32_t vlen, uint64_t expire_ms);
int eff_set_bytes(struct unit *u, int db, const char *key, uint32_t klen, const char *val,
		  uint32_t vlen, uint64_t expire_ms);
int eff_set_copy(struct unit *u, int db, const char *key, uint32_t klen, const struct pin *src,
		 uint64_t expire_ms);
int eff_expire(struct unit *u, int db, struct kentry *e, uint64_t expire_ms);
int eff_del(struct unit *u, int db, const char *key, uint32_t klen);
uint64_t eff_flush(struct unit *u, int db);
int eff_state(struct unit *u, int db, int authed);

#endif
