/* SPDX-License-Identifier: MIT */
/*
 * t_server.c - INFO, CONFIG, LASTSAVE, TIME, WAIT, FUNCTION: what clients
 * and tools (redis-cli --stat, redis-benchmark) ask the server about
 * itself. Nothing here is durable: CONFIG SET lasts until the next start.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cmd.h"
#include "util.h"

#define KV_REDIS_VERSION "7.0.15"

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	for (int tries = 0; tries < 2; tries++) {
		va_list ap;
		va_start(ap, fmt);
		int n = b->p ? vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap) : -1;
		va_end(ap);
		if (n >= 0 && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (n >= 0 && cap < b->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return;
		b->p = p;
		b->cap = cap;
	}
}

static void human(char *buf, size_t len, uint64_t n)
{
	if (n < 1024)
		snprintf(buf, len, "%" PRIu64 "B", n);
	else if (n < (1ull << 20))
		snprintf(buf, len, "%.2fK", (double)n / 1024);
	else if (n < (1ull << 30))
		snprintf(buf, len, "%.2fM", (double)n / (1 << 20));
	else
		snprintf(buf, len, "%.2fG", (double)n / (1 << 30));
}

enum { SEC_DEFAULT = 1, SEC_ALL = 2 };

static const struct {
	const char *name;
	int in;
} sections[] = {
	{ "server", SEC_DEFAULT }, { "clients", SEC_DEFAULT }, { "memory", SEC_DEFAULT },
	{ "persistence", SEC_DEFAULT }, { "stats", SEC_DEFAULT }, { "replication", SEC_DEFAULT },
	{ "cpu", SEC_DEFAULT }, { "modules", SEC_DEFAULT }, { "errorstats", SEC_DEFAULT },
	{ "cluster", SEC_DEFAULT }, { "keyspace", SEC_DEFAULT }, { "commandstats", SEC_ALL },
	{ "latencystats", SEC_ALL },
};
#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

static void section(struct kv_server *s, struct sbuf *b, size_t i)
{
	char h1[32], h2[32];
	const char *n = sections[i].name;
	if (b->len)
		sb_printf(b, "\r\n");
	if (!strcmp(n, "server")) {
		struct utsname u;
		uname(&u);
		uint64_t up = (wall_ms() - s->start_ms) / 1000;
		sb_printf(b, "# Server\r\nredis_version:%s\r\npktstore_kv_version:%d.%d.%d\r\n"
			  "redis_mode:standalone\r\nos:%s %s %s\r\narch_bits:64\r\n"
			  "multiplexing_api:epoll\r\nprocess_id:%d\r\ntcp_port:%u\r\n"
			  "uptime_in_seconds:%" PRIu64 "\r\nuptime_in_days:%" PRIu64 "\r\n"
			  "config_file:\r\n",
			  KV_REDIS_VERSION, PKTSTORE_VERSION_MAJOR, PKTSTORE_VERSION_MINOR,
			  PKTSTORE_VERSION_PATCH, u.sysname, u.release, u.machine, (int)getpid(),
			  s->resp_port, up, up / 86400);
	} else if (!strcmp(n, "clients")) {
		sb_printf(b, "# Clients\r\nconnected_clients:%" PRIu64 "\r\nmaxclients:%u\r\n"
			  "blocked_clients:0\r\ntracking_clients:0\r\n",
			  s->nconns, s->cfg.max_clients);
	} else if (!strcmp(n, "memory")) {
		human(h1, sizeof(h1), s->live_charge);
		human(h2, sizeof(h2), s->limit);
		sb_printf(b, "# Memory\r\nused_memory:%" PRIu64 "\r\nused_memory_human:%s\r\n"
			  "maxmemory:%" PRIu64 "\r\nmaxmemory_human:%s\r\n"
			  "maxmemory_policy:noeviction\r\noom_replies:%" PRIu64 "\r\n"
			  "number_of_cached_scripts:%" PRIu32 "\r\n",
			  s->live_charge, h1, s->limit, h2, s->oom_replies, script_cached(s));
	} else if (!strcmp(n, "persistence")) {
		struct pktstore_stats st;
		if (pktstore_stats(s->ps, &st) < 0)
			memset(&st, 0, sizeof(st));
		static const char *gran[] = { "byte", "cache line", "page" };
		sb_printf(b, "# Persistence\r\nloading:0\r\nasync_loading:0\r\n"
			  "rdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\n"
			  "rdb_last_save_time:%" PRIu64 "\r\naof_enabled:0\r\n"
			  "aof_rewrite_in_progress:0\r\narena:%s\r\ngranularity:%s\r\nrecv_path:%s\r\n"
			  "arena_segments:%" PRIu64 "\r\narena_segments_free:%" PRIu64 "\r\n"
			  "records:%" PRIu64 "\r\nrecord_bytes:%" PRIu64 "\r\n"
			  "cleaning_passes:%" PRIu64 "\r\nrelocated_bytes:%" PRIu64 "\r\n"
			  "released_records:%" PRIu64 "\r\nlog_bytes:%" PRIu64 "\r\n"
			  "log_entries:%" PRIu64 "\r\nlog_keep_bytes:%" PRIu64 "\r\n",
			  s->now_ms / 1000, s->cfg.arena,
			  gran[st.granularity <= PKTSTORE_GRAN_PAGE ? st.granularity : 2],
			  st.recv_path_name, st.segments, st.segments_free, st.records, st.record_bytes,
			  s->passes, s->relocated_bytes, s->released, s->log_bytes,
			  s->log_tail - s->log_head, s->log_keep);
	} else if (!strcmp(n, "stats")) {
		sb_printf(b, "# Stats\r\ntotal_connections_received:%" PRIu64 "\r\n"
			  "total_commands_processed:%" PRIu64 "\r\ninstantaneous_ops_per_sec:0\r\n"
			  "total_net_input_bytes:0\r\ntotal_net_output_bytes:0\r\n"
			  "rejected_connections:%" PRIu64 "\r\nexpired_keys:%" PRIu64 "\r\n"
			  "evicted_keys:0\r\nevicted_clients:%" PRIu64 "\r\n"
			  "keyspace_hits:%" PRIu64 "\r\nkeyspace_misses:%" PRIu64
			  "\r\npubsub_channels:0\r\npubsub_patterns:0\r\ntotal_error_replies:%" PRIu64
			  "\r\n",
			  s->st.connections, s->st.commands, s->st.rejected_connections,
			  s->st.expired_keys, s->st.evicted_clients, s->st.hits, s->st.misses,
			  s->st.errors);
	} else if (!strcmp(n, "replication")) {
		sb_printf(b, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
			  "master_failover_state:no-failover\r\n"
			  "master_replid:0000000000000000000000000000000000000000\r\n"
			  "master_repl_offset:0\r\nrepl_backlog_active:0\r\n");
	} else if (!strcmp(n, "cpu")) {
		struct rusage self, kids;
		getrusage(RUSAGE_SELF, &self);
		getrusage(RUSAGE_CHILDREN, &kids);
		sb_printf(b, "# CPU\r\nused_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n"
			  "used_cpu_sys_children:%ld.%06ld\r\nused_cpu_user_children:%ld.%06ld\r\n",
			  (long)self.ru_stime.tv_sec, (long)self.ru_stime.tv_usec,
			  (long)self.ru_utime.tv_sec, (long)self.ru_utime.tv_usec,
			  (long)kids.ru_stime.tv_sec, (long)kids.ru_stime.tv_usec,
			  (long)kids.ru_utime.tv_sec, (long)kids.ru_utime.tv_usec);
	} else if (!strcmp(n, "modules")) {
		sb_printf(b, "# Modules\r\n");
	} else if (!strcmp(n, "errorstats")) {
		sb_printf(b, "# Errorstats\r\n");
	} else if (!strcmp(n, "cluster")) {
		sb_printf(b, "# Cluster\r\ncluster_enabled:0\r\n");
	} else if (!strcmp(n, "keyspace")) {
		sb_printf(b, "# Keyspace\r\n");
		for (int d = 0; d < KV_DBS; d++)
			if (s->ks[d].n)
				sb_printf(b, "db%d:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0\r\n", d,
					  s->ks[d].n, s->ks[d].nexpires);
	} else if (!strcmp(n, "commandstats")) {
		sb_printf(b, "# Commandstats\r\n");
		for (uint32_t i = 0; i < cmd_count(); i++) {
			const struct kv_cmd *c = cmd_at(i);
			uint64_t calls = cmd_calls(c);
			if (calls)
				sb_printf(b, "cmdstat_%s:calls=%" PRIu64 ",usec=0,usec_per_call=0.00,"
					  "rejected_calls=0,failed_calls=0\r\n",
					  c->name, calls);
		}
	} else if (!strcmp(n, "latencystats")) {
		sb_printf(b, "# Latencystats\r\n");
	}
}

void c_info(struct cmdctx *x)
{
	int want[NSECTIONS] = { 0 };
	if (x->argc == 1)
		for (size_t i = 0; i < NSECTIONS; i++)
			want[i] = sections[i].in == SEC_DEFAULT;
	for (uint32_t a = 1; a < x->argc; a++)
		for (size_t i = 0; i < NSECTIONS; i++)
			if (arg_is(x, a, sections[i].name) ||
			    (arg_is(x, a, "default") && sections[i].in == SEC_DEFAULT) ||
			    arg_is(x, a, "all") || arg_is(x, a, "everything"))
				want[i] = 1;
	struct sbuf b = { 0 };
	for (size_t i = 0; i < NSECTIONS; i++)
		if (want[i])
			section(x->s, &b, i);
	r_bulk(x, b.p ? b.p : "", b.len);
	free(b.p);
}

/* A size as CONFIG SET takes it: digits with an optional k/kb/m/mb/g/gb. */
static int config_size(const char *p, uint32_t n, uint64_t *out)
{
	uint64_t mul = 1;
	char buf[32];
	if (!n || n >= sizeof(buf))
		return -1;
	memcpy(buf, p, n);
	buf[n] = 0;
	for (uint32_t i = 0; i < n; i++)
		buf[i] = (char)(buf[i] >= 'A' && buf[i] <= 'Z' ? buf[i] + 32 : buf[i]);
	static const struct {
		const char *suf;
		uint64_t mul;
	} u[] = { { "kb", 1024 }, { "mb", 1 << 20 }, { "gb", 1 << 30 },
		  { "k", 1000 }, { "m", 1000000 }, { "g", 1000000000 } };
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		size_t sl = strlen(u[i].suf);
		if (n > sl && !strcmp(buf + n - sl, u[i].suf)) {
			mul = u[i].mul;
			buf[n - sl] = 0;
			n -= (uint32_t)sl;
			break;
		}
	}
	int64_t v;
	if (str_to_i64(buf, n, &v) || v < 0 || (uint64_t)v > UINT64_MAX / mul)
		return -1;
	*out = (uint64_t)v * mul;
	return 0;
}

/* The settings CONFIG knows: what GET shows and what SET may change. */
enum { P_MAXMEMORY, P_POLICY, P_MAXCLIENTS, P_DATABASES, P_PORT, P_BIND, P_SAVE, P_AOF,
       P_FSYNC, P_BULK, P_OBUF, P_TIMEOUT, P_NPARAMS };
static const char *params[P_NPARAMS] = {
	"maxmemory", "maxmemory-policy", "maxclients", "databases", "port", "bind", "save",
	"appendonly", "appendfsync", "proto-max-bulk-len", "client-output-buffer-limit", "timeout",
};

static void param_value(struct kv_server *s, int p, char *buf, size_t len)
{
	switch (p) {
	case P_MAXMEMORY: snprintf(buf, len, "%" PRIu64, s->cfg.maxmemory); break;
	case P_POLICY: snprintf(buf, len, "noeviction"); break;
	case P_MAXCLIENTS: snprintf(buf, len, "%u", s->cfg.max_clients); break;
	case P_DATABASES: snprintf(buf, len, "%d", KV_DBS); break;
	case P_PORT: snprintf(buf, len, "%u", s->resp_port); break;
	case P_BIND:
		snprintf(buf, len, "%.*s", (int)(strrchr(s->cfg.resp_addr, ':') - s->cfg.resp_addr),
			 s->cfg.resp_addr);
		break;
	case P_SAVE: snprintf(buf, len, "%s", ""); break;
	case P_AOF: snprintf(buf, len, "no"); break;
	case P_FSYNC: snprintf(buf, len, "always"); break;
	case P_BULK: snprintf(buf, len, "%u", s->cfg.max_value); break;
	case P_OBUF:
		snprintf(buf, len, "normal %" PRIu64 " %" PRIu64 " 0 slave 0 0 0 pubsub 0 0 0",
			 s->cfg.max_output, s->cfg.max_output);
		break;
	case P_TIMEOUT: snprintf(buf, len, "0"); break;
	}
}

void c_config_get(struct cmdctx *x)
{
	int hit[P_NPARAMS] = { 0 }, n = 0;
	for (uint32_t a = 2; a < x->argc; a++)
		for (int p = 0; p < P_NPARAMS; p++)
			if (!hit[p] && glob_match(arg(x, a), x->argv[a].len, params[p], strlen(params[p]), 1))
				hit[p] = 1, n++;
	r_array(x, 2 * (uint64_t)n);
	for (int p = 0; p < P_NPARAMS; p++)
		if (hit[p]) {
			char v[128];
			param_value(x->s, p, v, sizeof(v));
			r_bulk_str(x, params[p]);
			r_bulk_str(x, v);
		}
}

static void set_failed(struct cmdctx *x, uint32_t a, const char *why)
{
	r_errf(x, "ERR CONFIG SET failed (possibly related to argument '%.*s') - %s",
	       (int)(x->argv[a].len < 64 ? x->argv[a].len : 64), arg(x, a), why);
}

/* All or nothing, as Redis 7 does: every pair is checked before any is set. */
void c_config_set(struct cmdctx *x)
{
	struct kv_server *s = x->s;
	if (x->argc % 2)
		return r_err(x, "ERR wrong number of arguments for 'config|set' command");
	uint64_t maxmemory = s->cfg.maxmemory, obuf = s->cfg.max_output;
	uint32_t maxclients = s->cfg.max_clients;
	for (uint32_t a = 2; a < x->argc; a += 2) {
		const char *v = arg(x, a + 1);
		uint32_t vl = x->argv[a + 1].len;
		int p = -1;
		for (int i = 0; i < P_NPARAMS; i++)
			if (arg_is(x, a, params[i]))
				p = i;
		uint64_t n;
		switch (p) {
		case P_MAXMEMORY:
			if (config_size(v, vl, &n))
				return set_failed(x, a, "argument couldn't be parsed into an integer");
			maxmemory = n;
			break;
		case P_MAXCLIENTS:
			if (config_size(v, vl, &n) || n < 1 || n > 1000000)
				return set_failed(x, a, "argument must be between 1 and 1000000 inclusive");
			maxclients = (uint32_t)n;
			break;
		case P_OBUF: {
			/* "normal <hard> <soft> <seconds>": the hard limit is the one kept. */
			char buf[128];
			unsigned long long hard, soft, secs;
			if (vl >= sizeof(buf))
				return set_failed(x, a, "wrong format");
			memcpy(buf, v, vl);
			buf[vl] = 0;
			if (sscanf(buf, "normal %llu %llu %llu", &hard, &soft, &secs) != 3 || !hard)
				return set_failed(x, a, "pktstore-kv takes 'normal <hard> <soft> <seconds>' "
							"with a hard limit above 0");
			obuf = hard;
			break;
		}
		case P_POLICY:
			if (!arg_is(x, a + 1, "noeviction"))
				return set_failed(x, a, "pktstore-kv never evicts: noeviction only");
			break;
		case P_SAVE:
			if (vl)
				return set_failed(x, a, "pktstore-kv makes every write durable before its "
							"reply; there are no snapshots");
			break;
		case P_AOF:
			if (!arg_is(x, a + 1, "no"))
				return set_failed(x, a, "pktstore-kv's log is its arena; there is no AOF");
			break;
		case P_FSYNC:
			if (!arg_is(x, a + 1, "always"))
				return set_failed(x, a, "pktstore-kv persists every write before its reply");
			break;
		case P_TIMEOUT:
			if (!arg_is(x, a + 1, "0"))
				return set_failed(x, a, "idle clients are never closed");
			break;
		case P_DATABASES:
		case P_PORT:
		case P_BIND:
		case P_BULK:
			return set_failed(x, a, "can only be set at start-up");
		default:
			return r_errf(x, "ERR Unknown option or number of arguments for CONFIG SET - "
					 "'%.*s'",
				      (int)(x->argv[a].len < 64 ? x->argv[a].len : 64), arg(x, a));
		}
	}
	s->cfg.maxmemory = maxmemory;
	s->limit = maxmemory && maxmemory < s->arena_limit ? maxmemory : s->arena_limit;
	s->cfg.max_clients = maxclients;
	s->cfg.max_output = obuf;
	out_set_limit(obuf);
	r_ok(x);
}

void c_config_resetstat(struct cmdctx *x)
{
	memset(&x->s->st, 0, sizeof(x->s->st));
	x->s->oom_replies = 0;
	cmd_reset_calls();
	r_ok(x);
}

void c_config_rewrite(struct cmdctx *x)
{
	r_err(x, "ERR The server is running without a config file");
}

void c_lastsave(struct cmdctx *x)
{
	/* Every acknowledged write is on media: the last save is now. */
	r_int(x, (int64_t)(x->now_ms / 1000));
}

void c_time(struct cmdctx *x)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	char a[24], b[24];
	snprintf(a, sizeof(a), "%ld", (long)tv.tv_sec);
	snprintf(b, sizeof(b), "%ld", (long)tv.tv_usec);
	r_array(x, 2);
	r_bulk_str(x, a);
	r_bulk_str(x, b);
}

/* No replicas: nothing to wait for, and every write already is durable. */
void c_wait(struct cmdctx *x)
{
	int64_t n, timeout;
	if (arg_i64(x, 1, &n) || arg_i64(x, 2, &timeout))
		return;
	if (timeout < 0)
		return r_err(x, "ERR timeout is negative");
	r_int(x, 0);
}

/* There are never any functions: flushing them succeeds, listing shows none. */
void c_function_flush(struct cmdctx *x)
{
	if (x->argc > 3 || (x->argc == 3 && !arg_is(x, 2, "ASYNC") && !arg_is(x, 2, "SYNC")))
		return r_syntax(x);
	r_ok(x);
}

void c_function_list(struct cmdctx *x)
{
	r_array(x, 0);
}
