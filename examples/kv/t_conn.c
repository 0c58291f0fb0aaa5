/* SPDX-License-Identifier: MIT */
/*
 * t_conn.c - the connection's own commands: PING, ECHO, QUIT, SELECT,
 * AUTH, HELLO, RESET, CLIENT. A connection's database and whether it has
 * authenticated are recorded (FSTATE, unit.c): the SELECT or AUTH that set
 * them may be in records released long before the commands they govern.
 * A failed AUTH records nothing and changes nothing.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cmd.h"
#include "watch.h"

#define KV_REDIS_VERSION "7.0.15"

void c_ping(struct cmdctx *x)
{
	if (x->argc > 2)
		return r_arity(x);
	if (x->argc == 1)
		return r_status(x, "PONG");
	r_bulk(x, arg(x, 1), x->argv[1].len);
}

void c_echo(struct cmdctx *x)
{
	r_bulk(x, arg(x, 1), x->argv[1].len);
}

/* Later commands on this connection are never run, so replay must not run
 * them either. */
void c_quit(struct cmdctx *x)
{
	r_ok(x);
	x->f->broken = 1;
	if (x->f->conn)
		x->f->conn->closing = 1;
}

void c_select(struct cmdctx *x)
{
	int64_t db;
	if (arg_i64(x, 1, &db))
		return;
	if (db < 0 || db >= KV_DBS)
		return r_err(x, "ERR DB index is out of range");
	if (db != x->f->db) {
		if (!recorded(x))
			return;
		int rc = eff_state(x->u, (int)db, x->f->authed);
		if (rc < 0)
			return r_persist_failed(x, rc);
	}
	r_ok(x);
}

/* 0 when (user, pass) is the configured password of the default user. */
int auth_check(struct kv_server *s, const char *user, uint32_t ulen, const char *pass,
	       uint32_t plen)
{
	const char *want = s->cfg.requirepass;
	if (!want)
		return user && !(ulen == 7 && !memcmp(user, "default", 7)) ? -1 : 0;
	if (user && !(ulen == 7 && !memcmp(user, "default", 7)))
		return -1;
	size_t wl = strlen(want);
	unsigned diff = wl != plen;
	for (size_t i = 0; i < plen; i++)
		diff |= (unsigned)(uint8_t)pass[i] ^ (unsigned)(uint8_t)want[i < wl ? i : 0];
	return diff ? -1 : 0;
}

/* The connection is authenticated from here on (recorded once). */
static int authenticate(struct cmdctx *x)
{
	if (x->f->authed)
		return 0;
	if (!recorded(x))
		return -1;
	int rc = eff_state(x->u, x->f->db, 1);
	if (rc < 0)
		r_persist_failed(x, rc);
	return rc;
}

static void wrongpass(struct cmdctx *x)
{
	r_err(x, "WRONGPASS invalid username-password pair or user is disabled.");
}

void c_auth(struct cmdctx *x)
{
	if (x->argc > 3)
		return r_syntax(x);
	if (!x->s->cfg.requirepass && x->argc == 2)
		return r_err(x, "ERR AUTH <password> called without any password configured for the "
				"default user. Are you sure your configuration is correct?");
	uint32_t p = x->argc - 1;
	int bad = x->argc == 3 ? auth_check(x->s, arg(x, 1), x->argv[1].len, arg(x, p), x->argv[p].len)
			       : auth_check(x->s, NULL, 0, arg(x, p), x->argv[p].len);
	if (bad)
		return wrongpass(x);
	if (authenticate(x) == 0)
		r_ok(x);
}

static int set_name(struct cmdctx *x, uint32_t i)
{
	const char *n = arg(x, i);
	for (uint32_t k = 0; k < x->argv[i].len; k++)
		if (n[k] < '!' || n[k] > '~') {
			r_err(x, "ERR Client names cannot contain spaces, newlines or special "
				 "characters.");
			return -1;
		}
	struct conn *c = x->f->conn;
	if (!c)
		return 0;
	free(c->name);
	c->name = NULL;
	if (x->argv[i].len && (c->name = malloc(x->argv[i].len + 1))) {
		memcpy(c->name, n, x->argv[i].len);
		c->name[x->argv[i].len] = 0;
	}
	return 0;
}

void c_hello(struct cmdctx *x)
{
	int64_t ver = 2;
	uint32_t j = 1;
	if (x->argc > 1) {
		if (arg_i64(x, 1, &ver) == -1)
			return;
		j = 2;
		if (ver < 2 || ver > 3)
			return r_err(x, "NOPROTO unsupported protocol version");
		if (ver == 3)
			return r_err(x, "NOPROTO sorry, pktstore-kv speaks RESP2 only (HELLO 2)");
	}
	int auth = -1, name = -1;
	for (; j < x->argc; j++) {
		if (arg_is(x, j, "AUTH") && j + 2 < x->argc) {
			auth = (int)j + 1;
			j += 2;
		} else if (arg_is(x, j, "SETNAME") && j + 1 < x->argc) {
			name = (int)++j;
		} else {
			return r_errf(x, "ERR Syntax error in HELLO option '%.*s'",
				      (int)(x->argv[j].len < 128 ? x->argv[j].len : 128), arg(x, j));
		}
	}
	if (auth >= 0) {
		uint32_t a = (uint32_t)auth;
		if (auth_check(x->s, arg(x, a), x->argv[a].len, arg(x, a + 1), x->argv[a + 1].len))
			return wrongpass(x);
		if (authenticate(x))
			return;
	}
	if (x->f->need_auth && !x->f->authed)
		return r_err(x, "NOAUTH HELLO must be called with the client already authenticated, "
				"otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
				"authenticate the client and select the RESP protocol version at the "
				"same time");
	if (name >= 0 && set_name(x, (uint32_t)name))
		return;
	r_array(x, 14);
	r_bulk_str(x, "server");
	r_bulk_str(x, "redis");
	r_bulk_str(x, "version");
	r_bulk_str(x, KV_REDIS_VERSION);
	r_bulk_str(x, "proto");
	r_int(x, 2);
	r_bulk_str(x, "id");
	r_int(x, x->f->conn ? (int64_t)x->f->conn->id : 0);
	r_bulk_str(x, "mode");
	r_bulk_str(x, "standalone");
	r_bulk_str(x, "role");
	r_bulk_str(x, "master");
	r_bulk_str(x, "modules");
	r_array(x, 0);
}

void c_reset(struct cmdctx *x)
{
	struct kflow *f = x->f;
	if (f->in_multi) {
		/* The transaction state is rebuilt from the stream in replay. */
		f->in_multi = 0;
		if (f->conn && !x->rp)
			multi_free(x->s, f->conn);
	}
	if (!recorded(x))
		return;
	struct conn *c = f->conn;
	if (c) {
		multi_free(x->s, c);
		c->multi_dirty = c->watch_dirty = 0;
		free(c->name);
		c->name = NULL;
	}
	int authed = !f->need_auth;
	if (f->db != 0 || f->authed != authed) {
		int rc = eff_state(x->u, 0, authed);
		if (rc < 0)
			return r_persist_failed(x, rc);
	}
	r_status(x, "RESET");
}

static void client_line(struct cmdctx *x, struct conn *c, char *buf, size_t cap, size_t *len)
{
	struct sockaddr_storage ss, ls;
	socklen_t sl = sizeof(ss), ll = sizeof(ls);
	char addr[64] = "?:0", laddr[64] = "?:0", host[INET6_ADDRSTRLEN];
	if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0 && ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(addr, sizeof(addr), "%s:%u", host, ntohs(a->sin_port));
	}
	if (getsockname(c->fd, (struct sockaddr *)&ls, &ll) == 0 && ls.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ls;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(laddr, sizeof(laddr), "%s:%u", host, ntohs(a->sin_port));
	}
	uint64_t now = x->now_ms;
	int n = snprintf(buf + *len, cap - *len,
			 "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=%s age=%" PRIu64
			 " idle=%" PRIu64 " flags=%s db=%u sub=0 psub=0 ssub=0 multi=%d qbuf=0 "
			 "qbuf-free=0 argv-mem=0 multi-mem=%" PRIu64 " rbs=0 rbp=0 obl=0 oll=%u "
			 "omem=%" PRIu64 " tot-mem=%" PRIu64 " events=r cmd=%s user=default "
			 "lib-name=%s lib-ver=%s redir=-1 resp=2\n",
			 c->id, addr, laddr, c->fd, c->name ? c->name : "",
			 now > c->created_ms ? (now - c->created_ms) / 1000 : 0,
			 now > c->last_ms ? (now - c->last_ms) / 1000 : 0,
			 c->flow->in_multi ? "x" : "N", c->flow->db, c->flow->in_multi ? (int)c->nmq : -1,
			 c->mq_bytes, c->qtail - c->qhead, c->qdram, c->qdram + c->mq_bytes,
			 c->last_cmd ? c->last_cmd : "NULL", c->lib_name ? c->lib_name : "",
			 c->lib_ver ? c->lib_ver : "");
	if (n > 0 && *len + (size_t)n < cap)
		*len += (size_t)n;
}

static int setinfo(struct cmdctx *x)
{
	struct conn *c = x->f->conn;
	char **slot = arg_is(x, 2, "LIB-NAME") ? &c->lib_name : arg_is(x, 2, "LIB-VER") ? &c->lib_ver
											 : NULL;
	if (!slot) {
		r_errf(x, "ERR Unrecognized option '%.*s'",
		       (int)(x->argv[2].len < 64 ? x->argv[2].len : 64), arg(x, 2));
		return -1;
	}
	const char *v = arg(x, 3);
	for (uint32_t k = 0; k < x->argv[3].len; k++)
		if (v[k] < '!' || v[k] > '~') {
			r_errf(x, "ERR %s cannot contain spaces, newlines or special characters.",
			       slot == &c->lib_name ? "lib-name" : "lib-ver");
			return -1;
		}
	free(*slot);
	*slot = NULL;
	if (x->argv[3].len && (*slot = malloc(x->argv[3].len + 1))) {
		memcpy(*slot, v, x->argv[3].len);
		(*slot)[x->argv[3].len] = 0;
	}
	return 0;
}

void c_client_id(struct cmdctx *x)
{
	r_int(x, x->f->conn ? (int64_t)x->f->conn->id : 0);
}

void c_client_getname(struct cmdctx *x)
{
	struct conn *c = x->f->conn;
	if (c && c->name)
		r_bulk_str(x, c->name);
	else
		r_nil(x);
}

void c_client_setname(struct cmdctx *x)
{
	if (set_name(x, 2) == 0)
		r_ok(x);
}

void c_client_setinfo(struct cmdctx *x)
{
	if (x->f->conn && setinfo(x) == 0)
		r_ok(x);
}

static void client_lines(struct cmdctx *x, int all)
{
	size_t cap = 1024 * (size_t)(all ? x->s->nconns + 1 : 1), len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return r_err(x, "ERR out of memory");
	if (!all && x->f->conn)
		client_line(x, x->f->conn, buf, cap, &len);
	for (struct conn *o = all ? x->s->conns : NULL; o; o = o->next)
		if (o->proto == KV_RESP)
			client_line(x, o, buf, cap, &len);
	r_bulk(x, buf, len);
	free(buf);
}

void c_client_list(struct cmdctx *x)
{
	if (x->argc != 2 && !(x->argc == 4 && arg_is(x, 2, "TYPE") && arg_is(x, 3, "normal")))
		return r_syntax(x);
	client_lines(x, 1);
}

void c_client_info(struct cmdctx *x)
{
	client_lines(x, 0);
}
