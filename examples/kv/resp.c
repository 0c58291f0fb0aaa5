/* SPDX-License-Identifier: MIT */
/*
 * resp.c - RESP2 requests: multibulk and inline commands, with Redis's
 * limits and error texts. Memory grows with what the client actually sent,
 * never with what it announced.
 */
#include "resp.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	S_BEGIN,     /* between commands */
	S_COUNT,     /* digits of *count */
	S_COUNT_LF,
	S_DOLLAR,    /* expecting '$' of the next argument */
	S_LEN,       /* digits of $len */
	S_LEN_LF,
	S_DATA,
	S_DATA_CR,
	S_DATA_LF,
	S_INLINE,    /* collecting an inline command line */
};

void resp_init(struct resp_parser *p, const struct kv_limits *lim)
{
	memset(p, 0, sizeof(*p));
	p->lim = *lim;
}

void resp_free(struct resp_parser *p)
{
	free(p->argv);
	free(p->copy_off);
	free(p->buf);
	memset(p, 0, sizeof(*p));
}

int resp_busy(const struct resp_parser *p)
{
	return p->state != S_BEGIN;
}

static int fail(struct resp_parser *p, const char *why)
{
	p->err = why;
	return KV_ERR;
}

static int reserve_args(struct resp_parser *p, uint32_t n)
{
	if (n <= p->argv_cap)
		return 0;
	uint32_t cap = p->argv_cap ? p->argv_cap : 8;
	while (cap < n)
		cap *= 2;
	struct kv_arg *a = realloc(p->argv, cap * sizeof(*a));
	if (!a)
		return -1;
	p->argv = a;
	uint32_t *o = realloc(p->copy_off, cap * sizeof(*o));
	if (!o)
		return -1;
	p->copy_off = o;
	p->argv_cap = cap;
	return 0;
}

static int reserve_buf(struct resp_parser *p, uint32_t extra)
{
	uint64_t need = (uint64_t)p->buf_len + extra;
	if (need <= p->buf_cap)
		return 0;
	uint32_t cap = p->buf_cap ? p->buf_cap : 256;
	while (cap < need)
		cap *= 2;
	char *b = realloc(p->buf, cap);
	if (!b)
		return -1;
	p->buf = b;
	p->buf_cap = cap;
	return 0;
}

/* Copies live in one buffer that may move while the command grows; pointers
 * are handed out only once the command is complete. */
static void publish(struct resp_parser *p)
{
	for (uint32_t i = 0; i < p->argc; i++)
		p->argv[i].copy = p->copy_off[i] == UINT32_MAX ? NULL : p->buf + p->copy_off[i];
}

/* What a command of more than this many arguments, or copied bytes, grew
 * goes back when the next one starts: a connection does not keep the
 * arrays of the largest command it ever sent. */
#define KEEP_ARGS 1024
#define KEEP_BYTES (1u << 20)

static void start_command(struct resp_parser *p, uint64_t seq)
{
	if (p->argv_cap > KEEP_ARGS) {
		free(p->argv);
		free(p->copy_off);
		p->argv = NULL;
		p->copy_off = NULL;
		p->argv_cap = 0;
	}
	if (p->buf_cap > KEEP_BYTES) {
		free(p->buf);
		p->buf = NULL;
		p->buf_cap = 0;
	}
	p->argc = 0;
	p->buf_len = 0;
	p->cmd_start = seq;
	p->num = 0;
	p->ndigits = 0;
	p->negative = 0;
}

/* A digit of a length field: refuse early, before the client sends gigabytes. */
static int digit(struct resp_parser *p, char c, uint64_t max)
{
	if (c == '-' && p->ndigits == 0 && !p->negative) {
		p->negative = 1;
		return 0;
	}
	if (c < '0' || c > '9')
		return -1;
	p->num = p->num * 10 + (uint64_t)(c - '0');
	p->ndigits++;
	if (p->num > max || p->ndigits > 10)
		return -2;
	return 0;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	       : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
						   : -1;
}

/*
 * Split the line in buf[0, line) as Redis's sdssplitargs does: white space
 * separates arguments; "..." takes \n \r \t \b \a and \xHH escapes,
 * '...' takes \'; a closing quote must end its argument; a NUL ends the
 * line. Unescaped arguments are written after the line in buf. An argument
 * keeps its stream range when its bytes are one (no escape, quotes only
 * around it). Returns -1 on unbalanced quotes.
 */
static int split_inline(struct resp_parser *p, uint32_t line)
{
	const char *b = p->buf;
	uint32_t i = 0, o = line;
	for (;;) {
		while (i < line && b[i] && isspace((unsigned char)b[i]))
			i++;
		if (i == line || !b[i])
			return 0;
		uint32_t start = i, out = o;
		int dq = 0, sq = 0, plain = 1, quoted_at_start = b[i] == '"' || b[i] == '\'';
		for (;;) {
			if (i == line || !b[i]) {
				if (dq || sq)
					return -1;
				break;
			}
			char c = b[i];
			if (dq) {
				if (c == '\\' && i + 3 < line && b[i + 1] == 'x' && hexval(b[i + 2]) >= 0 &&
				    hexval(b[i + 3]) >= 0) {
					p->buf[o++] = (char)(hexval(b[i + 2]) * 16 + hexval(b[i + 3]));
					i += 4;
					plain = 0;
				} else if (c == '\\' && i + 1 < line && b[i + 1]) {
					char e = b[i + 1];
					p->buf[o++] = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t'
						    : e == 'b' ? '\b' : e == 'a' ? '\a' : e;
					i += 2;
					plain = 0;
				} else if (c == '"') {
					break;
				} else {
					p->buf[o++] = c;
					i++;
				}
			} else if (sq) {
				if (c == '\\' && i + 1 < line && b[i + 1] == '\'') {
					p->buf[o++] = '\'';
					i += 2;
					plain = 0;
				} else if (c == '\'') {
					break;
				} else {
					p->buf[o++] = c;
					i++;
				}
			} else if (isspace((unsigned char)c)) {
				break;
			} else if (c == '"' || c == '\'') {
				if (i != start)
					plain = 0; /* a quote in the middle: not one slice */
				dq = c == '"';
				sq = c == '\'';
				i++;
			} else {
				p->buf[o++] = c;
				i++;
			}
		}
		if (dq || sq) {
			/* The closing quote must end the argument. */
			i++;
			if (i < line && b[i] && !isspace((unsigned char)b[i]))
				return -1;
		}
		if (p->argc == p->lim.max_args)
			return fail(p, "too many arguments"), -2;
		if (reserve_args(p, p->argc + 1))
			return fail(p, "out of memory"), -2;
		uint64_t seq = KV_ARG_SYNTHETIC;
		if (plain)
			seq = p->line_seq + start + (uint32_t)quoted_at_start;
		p->argv[p->argc] = (struct kv_arg){ .seq = seq, .len = o - out };
		p->copy_off[p->argc] = out;
		p->argc++;
	}
}

/* A length field's digits and its CR LF, all within data[*i, len): the
 * value, or -1 for anything the byte-at-a-time path must judge (no digit, a
 * sign, more than 10 digits, above max, not followed by CR LF, cut short). */
static int64_t fast_len(const char *data, size_t len, size_t *i, uint64_t max)
{
	size_t j = *i;
	uint64_t v = 0;
	unsigned nd = 0;

	while (j < len && data[j] >= '0' && data[j] <= '9') {
		if (++nd > 10)
			return -1;
		v = v * 10 + (uint64_t)(data[j++] - '0');
	}
	if (!nd || v > max || j + 1 >= len || data[j] != '\r' || data[j + 1] != '\n')
		return -1;
	*i = j + 2;
	return (int64_t)v;
}

/*
 * The common case in one pass: a whole, well-formed multibulk command in
 * data[0, len) (data[0] is its '*'). It keeps exactly what the state
 * machine below would keep for the same bytes. Anything else (cut short,
 * malformed, an empty array) returns 0 with nothing kept, and the state
 * machine parses the same bytes from the start, errors and all. The
 * argument array grows only for arguments whose headers are in data: each
 * takes at least 6 bytes ("$0\r\n\r\n"), so a count the bytes cannot hold
 * goes the slow way, which grows it one argument at a time.
 */
static int fast_multibulk(struct resp_parser *p, uint64_t seq, const char *data, size_t len,
			  size_t *used)
{
	const struct kv_limits *lim = &p->lim;
	size_t i = 1;
	int64_t n = fast_len(data, len, &i, lim->max_args);

	if (n <= 0 || (uint64_t)n > (len - i) / 6 || reserve_args(p, (uint32_t)n))
		return 0;
	for (uint32_t a = 0; a < (uint32_t)n; a++) {
		if (i >= len || data[i] != '$')
			goto slow;
		i++;
		int64_t l = fast_len(data, len, &i, lim->max_bulk);

		if (l < 0 || len - i < (uint64_t)l + 2 || data[i + (size_t)l] != '\r' ||
		    data[i + (size_t)l + 1] != '\n')
			goto slow;
		uint32_t m = (uint32_t)l;

		p->argv[a] = (struct kv_arg){ .seq = seq + i, .len = m };
		p->copy_off[a] = UINT32_MAX;
		if (m <= lim->copy_max &&
		    (uint64_t)p->buf_len + m <= (lim->copy_total ? lim->copy_total : lim->max_line) &&
		    reserve_buf(p, m) == 0) {
			p->copy_off[a] = p->buf_len;
			memcpy(p->buf + p->buf_len, data + i, m);
			p->buf_len += m;
		}
		i += (size_t)m + 2;
	}
	p->argc = p->want = (uint32_t)n;
	publish(p);
	*used = i;
	return 1;
slow:
	start_command(p, seq);
	return 0;
}

int resp_parse(struct resp_parser *p, uint64_t seq, const char *data, size_t len, size_t *used)
{
	size_t i = 0;

	while (i < len) {
		char c = data[i];
		switch (p->state) {
		case S_BEGIN:
			start_command(p, seq + i);
			if (c == '*') {
				size_t n;

				if (fast_multibulk(p, seq + i, data + i, len - i, &n)) {
					*used = i + n;
					return KV_DONE;
				}
				p->state = S_COUNT;
				i++;
			} else if (c == '\r' || c == '\n') {
				i++; /* blank lines between commands are allowed, as in Redis */
			} else {
				p->state = S_INLINE;
				p->line_seq = seq + i;
			}
			break;
		case S_COUNT:
			i++;
			if (c == '\r' && p->ndigits) {
				p->state = S_COUNT_LF;
				break;
			}
			if (digit(p, c, p->lim.max_args))
				return *used = i, fail(p, "invalid multibulk length");
			break;
		case S_COUNT_LF:
			i++;
			if (c != '\n')
				return *used = i, fail(p, "expected LF after multibulk length");
			if (p->negative || p->num == 0) {
				p->state = S_BEGIN; /* empty or null array: nothing to run */
				break;
			}
			p->want = (uint32_t)p->num;
			p->state = S_DOLLAR;
			break;
		case S_DOLLAR:
			i++;
			if (c != '$') {
				snprintf(p->errbuf, sizeof(p->errbuf), "expected '$', got '%c'", c);
				return *used = i, fail(p, p->errbuf);
			}
			if (reserve_args(p, p->argc + 1))
				return *used = i, fail(p, "out of memory");
			p->num = 0;
			p->ndigits = 0;
			p->negative = 0;
			p->state = S_LEN;
			break;
		case S_LEN:
			i++;
			if (c == '\r' && p->ndigits && !p->negative) {
				p->state = S_LEN_LF;
				break;
			}
			if (digit(p, c, p->lim.max_bulk) || p->negative)
				return *used = i, fail(p, "invalid bulk length");
			break;
		case S_LEN_LF: {
			i++;
			if (c != '\n')
				return *used = i, fail(p, "expected LF after bulk length");
			uint32_t n = (uint32_t)p->num;
			p->argv[p->argc] = (struct kv_arg){ .seq = seq + i, .len = n };
			p->copy_off[p->argc] = UINT32_MAX;
			if (n <= p->lim.copy_max &&
			    (uint64_t)p->buf_len + n <= (p->lim.copy_total ? p->lim.copy_total : p->lim.max_line) &&
			    reserve_buf(p, n) == 0)
				p->copy_off[p->argc] = p->buf_len;
			p->remaining = n;
			p->state = n ? S_DATA : S_DATA_CR;
			break;
		}
		case S_DATA: {
			size_t take = len - i < p->remaining ? len - i : p->remaining;
			if (p->copy_off[p->argc] != UINT32_MAX) {
				memcpy(p->buf + p->buf_len, data + i, take);
				p->buf_len += (uint32_t)take;
			}
			i += take;
			p->remaining -= (uint32_t)take;
			if (!p->remaining)
				p->state = S_DATA_CR;
			break;
		}
		case S_DATA_CR:
			i++;
			if (c != '\r')
				return *used = i, fail(p, "expected CR after bulk data");
			p->state = S_DATA_LF;
			break;
		case S_DATA_LF:
			i++;
			if (c != '\n')
				return *used = i, fail(p, "expected LF after bulk data");
			p->argc++;
			if (p->argc < p->want) {
				p->state = S_DOLLAR;
				break;
			}
			p->state = S_BEGIN;
			publish(p);
			*used = i;
			return KV_DONE;
		case S_INLINE: {
			const char *nl = memchr(data + i, '\n', len - i);
			size_t take = nl ? (size_t)(nl - (data + i)) : len - i;
			if ((uint64_t)p->buf_len + take > p->lim.max_line)
				return *used = i, fail(p, "too big inline request");
			if (reserve_buf(p, (uint32_t)take))
				return *used = i, fail(p, "out of memory");
			memcpy(p->buf + p->buf_len, data + i, take);
			p->buf_len += (uint32_t)take;
			i += take;
			if (!nl)
				break;
			i++; /* the LF */
			if (p->buf_len && p->buf[p->buf_len - 1] == '\r')
				p->buf_len--;
			p->state = S_BEGIN;
			/* Room for the unescaped arguments after the line. */
			if (reserve_buf(p, p->buf_len + 1))
				return *used = i, fail(p, "out of memory");
			int rc = split_inline(p, p->buf_len);
			if (rc == -1)
				return *used = i, fail(p, "unbalanced quotes in request");
			if (rc < 0)
				return *used = i, KV_ERR;
			if (!p->argc)
				break;
			publish(p);
			*used = i;
			return KV_DONE;
		}
		}
	}
	*used = i;
	return KV_NEED;
}
