/* SPDX-License-Identifier: MIT */
/*
 * cmd.h - the RESP commands: one table (cmdtab.c) of name, arity, flags and
 * handler, and what a handler gets.
 */
#ifndef KV_CMD_H
#define KV_CMD_H

#include "kv.h"
#include "unit.h"

/* Flags, as COMMAND reports them, and what the driver does with them. */
enum {
	CMD_WRITE = 1 << 0,    /* changes the keyspace */
	CMD_READ = 1 << 1,     /* reads it */
	CMD_ADMIN = 1 << 2,
	CMD_DENYOOM = 1 << 3,  /* may add data: refused when full */
	CMD_FAST = 1 << 4,
	CMD_NOAUTH = 1 << 5,   /* allowed before AUTH */
	CMD_NOMULTI = 1 << 6,  /* runs at once inside MULTI instead of being queued */
	CMD_REPLAY = 1 << 7,   /* replay runs it: its effect follows from its bytes,
				  or it only keeps the transaction state */
	CMD_LOADING = 1 << 8,
	CMD_STALE = 1 << 9,
	CMD_NOSCRIPT = 1 << 10,
};

struct cmdctx;
typedef void (*cmd_fn)(struct cmdctx *x);

struct kv_cmd {
	const char *name;
	int arity;            /* n: exactly n words; -n: at least n */
	unsigned flags;
	cmd_fn fn;
	int first_key, last_key, key_step;
	int variant;          /* handlers shared by several commands tell them apart */
	const char *group, *summary, *since;
	const struct kv_cmd *sub; /* subcommands (CONFIG GET...), ended by a NULL name */
};

/* What one command runs with. */
struct cmdctx {
	struct kv_server *s;
	struct kflow *f;
	struct conn *c;          /* NULL: nobody to answer (replay, a dropped client) */
	struct replay *rp;       /* NULL: live */
	struct unit *u;
	const struct kv_cmd *cmd;
	const struct kv_cmd *sub;  /* the subcommand of a container (CONFIG GET...) */
	const struct kv_arg *argv;
	uint32_t argc;
	uint64_t pos, now_ms;
	int db;
	char *gather;            /* arguments gathered from the stream (a chain) */
	struct krec *gather_at;  /* the record the last one started in */
};

const struct kv_cmd *cmd_lookup(const char *name, uint32_t len);
const struct kv_cmd *cmd_sub_lookup(const struct kv_cmd *cmd, const char *name, uint32_t len);
uint32_t cmd_count(void);
const struct kv_cmd *cmd_at(uint32_t i);
int cmd_check(struct cmdctx *x);  /* arity and subcommand; replies the error */
void cmd_run(struct cmdctx *x);
uint64_t cmd_calls(const struct kv_cmd *c);
void cmd_reset_calls(void);

/* Arguments. */
const char *arg(struct cmdctx *x, uint32_t i);
int arg_is(struct cmdctx *x, uint32_t i, const char *word);
int arg_i64(struct cmdctx *x, uint32_t i, int64_t *out);  /* replies the error */
int arg_key(struct cmdctx *x, uint32_t i);                /* replies the error */
void arg_free(struct cmdctx *x);

/* Replies (nothing when x->c is NULL). */
void r_ok(struct cmdctx *x);
void r_int(struct cmdctx *x, int64_t v);
void r_nil(struct cmdctx *x);
void r_nil_array(struct cmdctx *x);
void r_array(struct cmdctx *x, uint64_t n);
void r_bulk(struct cmdctx *x, const char *p, size_t n);
void r_bulk_str(struct cmdctx *x, const char *p);
void r_status(struct cmdctx *x, const char *p);
void r_value(struct cmdctx *x, const struct pin *v);
void r_err(struct cmdctx *x, const char *msg);
void r_errf(struct cmdctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void r_syntax(struct cmdctx *x);
void r_arity(struct cmdctx *x);
void r_not_int(struct cmdctx *x);
void r_oom(struct cmdctx *x);
void r_persist_failed(struct cmdctx *x, int rc);

/* Whether this command's effect is recorded (see unit.h). Live: yes, from
 * now on. Replay: the command is not run; its record does the change. */
int recorded(struct cmdctx *x);
/* Whether the write at x->pos is refused for lack of room (OOM). */
int refused(struct cmdctx *x, uint64_t add, uint64_t sub);
/* The live version of a key at the command's time, or NULL. */
struct kentry *lookup(struct cmdctx *x, int db, uint32_t keyarg);
struct kentry *lookup_key(struct cmdctx *x, int db, const char *key, uint32_t klen);

/* Handlers, by file. */
void c_get(struct cmdctx *), c_set(struct cmdctx *), c_setnx(struct cmdctx *),
	c_setex(struct cmdctx *), c_getset(struct cmdctx *), c_getdel(struct cmdctx *),
	c_getex(struct cmdctx *), c_mget(struct cmdctx *), c_mset(struct cmdctx *),
	c_msetnx(struct cmdctx *), c_append(struct cmdctx *), c_strlen(struct cmdctx *),
	c_getrange(struct cmdctx *), c_setrange(struct cmdctx *), c_incr(struct cmdctx *),
	c_incrby(struct cmdctx *), c_incrbyfloat(struct cmdctx *);
void c_del(struct cmdctx *), c_exists(struct cmdctx *), c_type(struct cmdctx *),
	c_expire(struct cmdctx *), c_ttl(struct cmdctx *), c_persist(struct cmdctx *),
	c_rename(struct cmdctx *), c_copy(struct cmdctx *), c_keys(struct cmdctx *),
	c_scan(struct cmdctx *), c_randomkey(struct cmdctx *), c_dbsize(struct cmdctx *),
	c_flushall(struct cmdctx *), c_flushdb(struct cmdctx *);
void c_multi(struct cmdctx *), c_exec(struct cmdctx *), c_discard(struct cmdctx *),
	c_watch(struct cmdctx *), c_unwatch(struct cmdctx *);
void c_ping(struct cmdctx *), c_echo(struct cmdctx *), c_quit(struct cmdctx *),
	c_select(struct cmdctx *), c_auth(struct cmdctx *), c_hello(struct cmdctx *),
	c_reset(struct cmdctx *);
void c_info(struct cmdctx *), c_command(struct cmdctx *), c_lastsave(struct cmdctx *),
	c_time(struct cmdctx *), c_wait(struct cmdctx *);
void c_eval(struct cmdctx *), c_evalsha(struct cmdctx *);
/* Scripts in the cache (at most 500; INFO memory's number_of_cached_scripts). */
uint32_t script_cached(const struct kv_server *s);
void script_free(struct kv_server *s);

/* Variants of the shared handlers. */
enum { V_MS = 1, V_ABS = 2, V_NX = 4, V_NEG = 8 };

/* t_multi.c: the transaction being queued (live) */
int multi_queue(struct cmdctx *x);
void multi_free(struct kv_server *s, struct conn *c);

/* t_conn.c: tell the client about a failed AUTH */
int auth_check(struct kv_server *s, const char *user, uint32_t ulen, const char *pass,
	       uint32_t plen);

#endif
