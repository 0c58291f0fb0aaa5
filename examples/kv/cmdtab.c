/* SPDX-License-Identifier: MIT */
/*
 * cmdtab.c - the command table: every RESP command pktstore-kv knows, with
 * Redis's arity, its flags (write/read/admin, and whether replay runs it:
 * see cmd.h), its handler, and what COMMAND reports about it. Nothing else
 * decides which command runs where: the driver looks at the flags.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmd.h"

#define W CMD_WRITE
#define R CMD_READ
#define A CMD_ADMIN
#define M CMD_DENYOOM
#define F CMD_FAST
#define NA CMD_NOAUTH
#define NM CMD_NOMULTI
#define RP CMD_REPLAY
#define LS (CMD_LOADING | CMD_STALE)

void c_config_get(struct cmdctx *), c_config_set(struct cmdctx *),
	c_config_resetstat(struct cmdctx *), c_config_rewrite(struct cmdctx *);
void c_client_id(struct cmdctx *), c_client_getname(struct cmdctx *),
	c_client_setname(struct cmdctx *), c_client_setinfo(struct cmdctx *),
	c_client_list(struct cmdctx *), c_client_info(struct cmdctx *);
void c_function_flush(struct cmdctx *), c_function_list(struct cmdctx *);
void c_script_load(struct cmdctx *), c_script_exists(struct cmdctx *),
	c_script_flush(struct cmdctx *);
static void c_command_count(struct cmdctx *), c_command_info(struct cmdctx *),
	c_command_docs(struct cmdctx *), c_command_list(struct cmdctx *), c_help(struct cmdctx *);

#define SUB(n, ar, fl, fn, sum) { n, ar, fl, fn, 0, 0, 0, 0, NULL, sum, NULL, NULL }
#define HELP SUB("help", 2, LS, c_help, "Show helpful text about the different subcommands")

static const struct kv_cmd config_sub[] = {
	SUB("get", -3, A | LS, c_config_get, "Get the values of configuration parameters"),
	SUB("set", -4, A | LS, c_config_set, "Set configuration parameters to the given values"),
	SUB("resetstat", 2, A | LS, c_config_resetstat, "Reset the stats returned by INFO"),
	SUB("rewrite", 2, A | LS, c_config_rewrite, "Rewrite the configuration file"),
	HELP,
	{ 0 },
};

static const struct kv_cmd client_sub[] = {
	SUB("id", 2, LS, c_client_id, "Returns the client ID for the current connection"),
	SUB("getname", 2, LS, c_client_getname, "Get the current connection name"),
	SUB("setname", 3, LS, c_client_setname, "Set the current connection name"),
	SUB("setinfo", 4, LS, c_client_setinfo, "Set client or connection specific info"),
	SUB("list", -2, A | LS, c_client_list, "Get the list of client connections"),
	SUB("info", 2, LS, c_client_info, "Returns information about the current client connection."),
	HELP,
	{ 0 },
};

static const struct kv_cmd command_sub[] = {
	SUB("count", 2, LS, c_command_count, "Get total number of Redis commands"),
	SUB("info", -2, LS, c_command_info, "Get array of specific Redis command details, or all when no argument is given."),
	SUB("docs", -2, LS, c_command_docs, "Get array of specific Redis command documentation"),
	SUB("list", -2, LS, c_command_list, "Get an array of Redis command names"),
	HELP,
	{ 0 },
};

static const struct kv_cmd function_sub[] = {
	SUB("flush", -2, W | CMD_NOSCRIPT, c_function_flush, "Deleting all functions (there are none)"),
	SUB("list", -2, CMD_NOSCRIPT, c_function_list, "List information about all the functions (none)"),
	HELP,
	{ 0 },
};

static const struct kv_cmd script_sub[] = {
	SUB("load", 3, CMD_NOSCRIPT | LS, c_script_load, "Load a script pktstore-kv recognises into the script cache"),
	SUB("exists", -3, CMD_NOSCRIPT | LS, c_script_exists, "Check existence of scripts in the script cache."),
	SUB("flush", -2, CMD_NOSCRIPT, c_script_flush, "Remove all the scripts from the script cache."),
	HELP,
	{ 0 },
};

#define CMDV(n, ar, fl, fn, v, fk, lk, st, g, since, sum) \
	{ n, ar, fl, fn, fk, lk, st, v, g, sum, since, NULL }
#define CMD(n, ar, fl, fn, fk, lk, st, g, since, sum) CMDV(n, ar, fl, fn, 0, fk, lk, st, g, since, sum)
#define CONTAINER(n, ar, fl, fn, g, since, sum, sub) { n, ar, fl, fn, 0, 0, 0, 0, g, sum, since, sub }

static const struct kv_cmd table[] = {
	/* strings */
	CMD("get", 2, R | F, c_get, 1, 1, 1, "string", "1.0.0", "Get the value of a key"),
	CMD("set", -3, W | M | RP, c_set, 1, 1, 1, "string", "1.0.0", "Set the string value of a key"),
	CMD("setnx", 3, W | M | F, c_setnx, 1, 1, 1, "string", "1.0.0", "Set the value of a key, only if the key does not exist"),
	CMD("setex", 4, W | M | RP, c_setex, 1, 1, 1, "string", "2.0.0", "Set the value and expiration of a key"),
	CMDV("psetex", 4, W | M | RP, c_setex, V_MS, 1, 1, 1, "string", "2.6.0", "Set the value and expiration in milliseconds of a key"),
	CMD("getset", 3, W | M | F | RP, c_getset, 1, 1, 1, "string", "1.0.0", "Set the string value of a key and return its old value"),
	CMD("getdel", 2, W | F | RP, c_getdel, 1, 1, 1, "string", "6.2.0", "Get the value of a key and delete the key"),
	CMD("getex", -2, W | F, c_getex, 1, 1, 1, "string", "6.2.0", "Get the value of a key and optionally set its expiration"),
	CMD("mget", -2, R | F, c_mget, 1, -1, 1, "string", "1.0.0", "Get the values of all the given keys"),
	CMD("mset", -3, W | M | RP, c_mset, 1, -1, 2, "string", "1.0.1", "Set multiple keys to multiple values"),
	CMD("msetnx", -3, W | M, c_msetnx, 1, -1, 2, "string", "1.0.1", "Set multiple keys to multiple values, only if none of the keys exist"),
	CMD("append", 3, W | M | F, c_append, 1, 1, 1, "string", "2.0.0", "Append a value to a key"),
	CMD("strlen", 2, R | F, c_strlen, 1, 1, 1, "string", "2.2.0", "Get the length of the value stored in a key"),
	CMD("getrange", 4, R, c_getrange, 1, 1, 1, "string", "2.4.0", "Get a substring of the string stored at a key"),
	CMD("substr", 4, R, c_getrange, 1, 1, 1, "string", "1.0.0", "Get a substring of the string stored at a key"),
	CMD("setrange", 4, W | M, c_setrange, 1, 1, 1, "string", "2.2.0", "Overwrite part of a string at key starting at the specified offset"),
	CMD("incr", 2, W | M | F, c_incr, 1, 1, 1, "string", "1.0.0", "Increment the integer value of a key by one"),
	CMDV("decr", 2, W | M | F, c_incr, V_NEG, 1, 1, 1, "string", "1.0.0", "Decrement the integer value of a key by one"),
	CMD("incrby", 3, W | M | F, c_incrby, 1, 1, 1, "string", "1.0.0", "Increment the integer value of a key by the given amount"),
	CMDV("decrby", 3, W | M | F, c_incrby, V_NEG, 1, 1, 1, "string", "1.0.0", "Decrement the integer value of a key by the given number"),
	CMD("incrbyfloat", 3, W | M | F, c_incrbyfloat, 1, 1, 1, "string", "2.6.0", "Increment the float value of a key by the given amount"),
	/* keys */
	CMD("del", -2, W | RP, c_del, 1, -1, 1, "generic", "1.0.0", "Delete a key"),
	CMD("unlink", -2, W | F | RP, c_del, 1, -1, 1, "generic", "4.0.0", "Delete a key"),
	CMD("exists", -2, R | F, c_exists, 1, -1, 1, "generic", "1.0.0", "Determine if a key exists"),
	CMD("touch", -2, R | F, c_exists, 1, -1, 1, "generic", "3.2.1", "Alters the last access time of a key(s). Returns the number of existing keys specified."),
	CMD("type", 2, R | F, c_type, 1, 1, 1, "generic", "1.0.0", "Determine the type stored at key"),
	CMD("expire", -3, W | F, c_expire, 1, 1, 1, "generic", "1.0.0", "Set a key's time to live in seconds"),
	CMDV("pexpire", -3, W | F, c_expire, V_MS, 1, 1, 1, "generic", "2.6.0", "Set a key's time to live in milliseconds"),
	CMDV("expireat", -3, W | F, c_expire, V_ABS, 1, 1, 1, "generic", "1.2.0", "Set the expiration for a key as a UNIX timestamp"),
	CMDV("pexpireat", -3, W | F, c_expire, V_MS | V_ABS, 1, 1, 1, "generic", "2.6.0", "Set the expiration for a key as a UNIX timestamp specified in milliseconds"),
	CMD("ttl", 2, R | F, c_ttl, 1, 1, 1, "generic", "1.0.0", "Get the time to live for a key in seconds"),
	CMDV("pttl", 2, R | F, c_ttl, V_MS, 1, 1, 1, "generic", "2.6.0", "Get the time to live for a key in milliseconds"),
	CMDV("expiretime", 2, R | F, c_ttl, V_ABS, 1, 1, 1, "generic", "7.0.0", "Get the expiration Unix timestamp for a key"),
	CMDV("pexpiretime", 2, R | F, c_ttl, V_MS | V_ABS, 1, 1, 1, "generic", "7.0.0", "Get the expiration Unix timestamp for a key in milliseconds"),
	CMD("persist", 2, W | F, c_persist, 1, 1, 1, "generic", "2.2.0", "Remove the expiration from a key"),
	CMD("rename", 3, W, c_rename, 1, 2, 1, "generic", "1.0.0", "Rename a key"),
	CMDV("renamenx", 3, W | F, c_rename, V_NX, 1, 2, 1, "generic", "1.0.0", "Rename a key, only if the new key does not exist"),
	CMD("copy", -3, W | M, c_copy, 1, 2, 1, "generic", "6.2.0", "Copy a key"),
	CMD("keys", 2, R, c_keys, 0, 0, 0, "generic", "1.0.0", "Find all keys matching the given pattern"),
	CMD("scan", -2, R, c_scan, 0, 0, 0, "generic", "2.8.0", "Incrementally iterate the keys space"),
	CMD("randomkey", 1, R, c_randomkey, 0, 0, 0, "generic", "1.0.0", "Return a random key from the keyspace"),
	CMD("dbsize", 1, R | F, c_dbsize, 0, 0, 0, "server", "1.0.0", "Return the number of keys in the selected database"),
	CMD("flushall", -1, W | RP, c_flushall, 0, 0, 0, "server", "1.0.0", "Remove all keys from all databases"),
	CMD("flushdb", -1, W | RP, c_flushdb, 0, 0, 0, "server", "1.0.0", "Remove all keys from the current database"),
	CMD("select", 2, F | LS, c_select, 0, 0, 0, "connection", "1.0.0", "Change the selected database for the current connection"),
	/* transactions: replay follows MULTI/EXEC/DISCARD for their state only */
	CMD("multi", 1, F | NM | RP | LS, c_multi, 0, 0, 0, "transactions", "1.2.0", "Mark the start of a transaction block"),
	CMD("exec", 1, NM | RP | LS, c_exec, 0, 0, 0, "transactions", "1.2.0", "Execute all commands issued after MULTI"),
	CMD("discard", 1, F | NM | RP | LS, c_discard, 0, 0, 0, "transactions", "2.0.0", "Discard all commands issued after MULTI"),
	CMD("watch", -2, F | NM | LS, c_watch, 1, -1, 1, "transactions", "2.2.0", "Watch the given keys to determine execution of the MULTI/EXEC block"),
	CMD("unwatch", 1, F | LS, c_unwatch, 0, 0, 0, "transactions", "2.2.0", "Forget about all watched keys"),
	/* connection */
	CMD("ping", -1, F, c_ping, 0, 0, 0, "connection", "1.0.0", "Ping the server"),
	CMD("echo", 2, F, c_echo, 0, 0, 0, "connection", "1.0.0", "Echo the given string"),
	CMD("quit", -1, NA | NM | RP | F | LS, c_quit, 0, 0, 0, "connection", "1.0.0", "Close the connection"),
	CMD("auth", -2, NA | F | LS, c_auth, 0, 0, 0, "connection", "1.0.0", "Authenticate to the server"),
	CMD("hello", -1, NA | F | LS, c_hello, 0, 0, 0, "connection", "6.0.0", "Handshake with Redis"),
	CMD("reset", 1, NA | NM | RP | F | LS, c_reset, 0, 0, 0, "connection", "6.2.0", "Reset the connection"),
	CONTAINER("client", -2, LS, NULL, "connection", "2.4.0", "A container for client connection commands", client_sub),
	/* server */
	CMD("info", -1, LS, c_info, 0, 0, 0, "server", "1.0.0", "Get information and statistics about the server"),
	CONTAINER("config", -2, A | LS, NULL, "server", "2.0.0", "A container for server configuration commands", config_sub),
	CONTAINER("command", -1, LS, c_command, "server", "2.8.13", "Get array of Redis command details", command_sub),
	CMD("lastsave", 1, F | LS, c_lastsave, 0, 0, 0, "server", "1.0.0", "Get the UNIX time stamp of the last successful save to disk"),
	CMD("time", 1, F | LS, c_time, 0, 0, 0, "server", "2.6.0", "Return the current server time"),
	CMD("wait", 3, 0, c_wait, 0, 0, 0, "generic", "3.0.0", "Wait for the synchronous replication of all the write commands sent in the context of the current connection"),
	CONTAINER("function", -2, CMD_NOSCRIPT, NULL, "scripting", "7.0.0", "A container for function commands", function_sub),
	/* scripting: only the scripts script.c recognises */
	CMD("eval", -3, CMD_NOSCRIPT | M, c_eval, 0, 0, 0, "scripting", "2.6.0", "Execute a Lua script server side"),
	CMD("evalsha", -3, CMD_NOSCRIPT | M, c_evalsha, 0, 0, 0, "scripting", "2.6.0", "Execute a Lua script server side"),
	CONTAINER("script", -2, CMD_NOSCRIPT, NULL, "scripting", "2.6.0", "A container for Lua scripts management commands", script_sub),
};

#define NCMDS (sizeof(table) / sizeof(table[0]))

static uint64_t calls[NCMDS]; /* INFO commandstats */

uint64_t cmd_calls(const struct kv_cmd *c)
{
	return c >= table && c < table + NCMDS ? calls[c - table] : 0;
}

void cmd_reset_calls(void)
{
	memset(calls, 0, sizeof(calls));
}

static int name_is(const char *name, const char *s, uint32_t len)
{
	return strlen(name) == len && !strncasecmp(name, s, len);
}

const struct kv_cmd *cmd_lookup(const char *name, uint32_t len)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (name_is(table[i].name, name, len))
			return &table[i];
	return NULL;
}

const struct kv_cmd *cmd_sub_lookup(const struct kv_cmd *cmd, const char *name, uint32_t len)
{
	for (const struct kv_cmd *s = cmd->sub; s && s->name; s++)
		if (name_is(s->name, name, len))
			return s;
	return NULL;
}

uint32_t cmd_count(void)
{
	return NCMDS;
}

const struct kv_cmd *cmd_at(uint32_t i)
{
	return i < NCMDS ? &table[i] : NULL;
}

static int arity_ok(int arity, uint32_t argc)
{
	return arity > 0 ? argc == (uint32_t)arity : argc >= (uint32_t)-arity;
}

/* Whether the command and its subcommand exist and have their arguments;
 * replies Redis's error otherwise. */
int cmd_check(struct cmdctx *x)
{
	const struct kv_cmd *c = x->cmd;
	if (!arity_ok(c->arity, x->argc)) {
		r_arity(x);
		return -1;
	}
	if (!c->sub || (c->fn && x->argc == 1))
		return 0;
	const struct kv_cmd *s = cmd_sub_lookup(c, arg(x, 1), x->argv[1].len);
	if (!s) {
		char up[32];
		size_t n = strlen(c->name);
		for (size_t i = 0; i <= n && i < sizeof(up); i++)
			up[i] = (char)(c->name[i] >= 'a' && c->name[i] <= 'z' ? c->name[i] - 32 : c->name[i]);
		r_errf(x, "ERR unknown subcommand '%.*s'. Try %s HELP.",
		       (int)(x->argv[1].len < 128 ? x->argv[1].len : 128), arg(x, 1), up);
		return -1;
	}
	if (!arity_ok(s->arity, x->argc)) {
		r_errf(x, "ERR wrong number of arguments for '%s|%s' command", c->name, s->name);
		return -1;
	}
	return 0;
}

/* Run it (cmd_check passed): the subcommand's handler for a container. */
void cmd_run(struct cmdctx *x)
{
	const struct kv_cmd *c = x->cmd;
	if (!x->rp && c >= table && c < table + NCMDS)
		calls[c - table]++;
	if (c->sub && !(c->fn && x->argc == 1)) {
		const struct kv_cmd *s = cmd_sub_lookup(c, arg(x, 1), x->argv[1].len);
		x->sub = s;
		s->fn(x);
		return;
	}
	c->fn(x);
}

static void c_help(struct cmdctx *x)
{
	const struct kv_cmd *c = x->cmd;
	uint32_t n = 0;
	for (const struct kv_cmd *s = c->sub; s->name; s++)
		n++;
	r_array(x, 1 + 2 * (uint64_t)n);
	out_fmt(x->c, "+%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n", c->name);
	for (const struct kv_cmd *s = c->sub; s->name; s++) {
		out_fmt(x->c, "+%s\r\n", s->name);
		out_fmt(x->c, "+    %s\r\n", s->summary);
	}
}

/* COMMAND's flags words. */
static void reply_flags(struct cmdctx *x, unsigned fl)
{
	static const struct {
		unsigned bit;
		const char *word;
	} words[] = {
		{ CMD_WRITE, "write" }, { CMD_READ, "readonly" }, { CMD_DENYOOM, "denyoom" },
		{ CMD_ADMIN, "admin" }, { CMD_NOSCRIPT, "noscript" }, { CMD_LOADING, "loading" },
		{ CMD_STALE, "stale" }, { CMD_FAST, "fast" }, { CMD_NOAUTH, "no_auth" },
	};
	uint32_t n = 0;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		n += !!(fl & words[i].bit);
	r_array(x, n);
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (fl & words[i].bit)
			r_status(x, words[i].word);
}

static void reply_info(struct cmdctx *x, const struct kv_cmd *c, const char *parent)
{
	char full[64];
	snprintf(full, sizeof(full), "%s%s%s", parent ? parent : "", parent ? "|" : "", c->name);
	r_array(x, 10);
	r_bulk_str(x, full);
	r_int(x, c->arity);
	reply_flags(x, c->flags);
	r_int(x, c->first_key);
	r_int(x, c->last_key);
	r_int(x, c->key_step);
	r_array(x, 0); /* ACL categories */
	r_array(x, 0); /* tips */
	r_array(x, 0); /* key specs */
	uint32_t n = 0;
	for (const struct kv_cmd *s = c->sub; s && s->name; s++)
		n++;
	r_array(x, n);
	for (const struct kv_cmd *s = c->sub; s && s->name; s++)
		reply_info(x, s, c->name);
}

void c_command(struct cmdctx *x)
{
	r_array(x, NCMDS);
	for (size_t i = 0; i < NCMDS; i++)
		reply_info(x, &table[i], NULL);
}

static void c_command_count(struct cmdctx *x)
{
	r_int(x, (int64_t)NCMDS);
}

static void c_command_info(struct cmdctx *x)
{
	if (x->argc == 2)
		return c_command(x);
	r_array(x, x->argc - 2);
	for (uint32_t i = 2; i < x->argc; i++) {
		const struct kv_cmd *c = cmd_lookup(arg(x, i), x->argv[i].len);
		if (c)
			reply_info(x, c, NULL);
		else
			r_nil_array(x);
	}
}

static void reply_doc(struct cmdctx *x, const struct kv_cmd *c, const char *parent)
{
	uint32_t n = 0;
	for (const struct kv_cmd *s = c->sub; s && s->name; s++)
		n++;
	r_array(x, n ? 8 : 6);
	r_bulk_str(x, "summary");
	r_bulk_str(x, c->summary);
	r_bulk_str(x, "since");
	r_bulk_str(x, c->since ? c->since : "1.0.0");
	r_bulk_str(x, "group");
	r_bulk_str(x, c->group ? c->group : "server");
	if (!n)
		return;
	r_bulk_str(x, "subcommands");
	r_array(x, 2 * (uint64_t)n);
	for (const struct kv_cmd *s = c->sub; s->name; s++) {
		char full[64];
		snprintf(full, sizeof(full), "%s|%s", c->name, s->name);
		r_bulk_str(x, full);
		struct kv_cmd tmp = *s;
		tmp.group = c->group;
		tmp.since = c->since;
		reply_doc(x, &tmp, parent);
	}
}

static void c_command_docs(struct cmdctx *x)
{
	if (x->argc == 2) {
		r_array(x, 2 * NCMDS);
		for (size_t i = 0; i < NCMDS; i++) {
			r_bulk_str(x, table[i].name);
			reply_doc(x, &table[i], NULL);
		}
		return;
	}
	uint32_t n = 0;
	for (uint32_t i = 2; i < x->argc; i++)
		n += cmd_lookup(arg(x, i), x->argv[i].len) != NULL;
	r_array(x, 2 * (uint64_t)n);
	for (uint32_t i = 2; i < x->argc; i++) {
		const struct kv_cmd *c = cmd_lookup(arg(x, i), x->argv[i].len);
		if (c) {
			r_bulk_str(x, c->name);
			reply_doc(x, c, NULL);
		}
	}
}

static void c_command_list(struct cmdctx *x)
{
	if (x->argc > 2 && x->argc != 5)
		return r_syntax(x);
	r_array(x, NCMDS);
	for (size_t i = 0; i < NCMDS; i++)
		r_bulk_str(x, table[i].name);
}
