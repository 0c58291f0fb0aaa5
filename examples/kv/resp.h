/* SPDX-License-Identifier: MIT */
/*
 * resp.h - incremental RESP2 request parser (multibulk and inline commands).
 *
 * Feed it any split of the stream; it keeps only the current command's
 * header state and its short arguments in DRAM, so memory per connection is
 * bounded by the limits whatever the client declares.
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include "proto.h"

struct resp_parser {
	struct kv_limits lim;
	int state;
	uint64_t num;        /* number being read ($len, *count) */
	unsigned ndigits;
	int negative;
	uint32_t want;       /* arguments announced by *count */
	uint32_t remaining;  /* bytes left in the current bulk argument */
	uint64_t cmd_start;  /* stream offset where the current command began */
	uint64_t line_seq;   /* inline: stream offset of buf[0] */
	uint32_t argc, argv_cap;
	struct kv_arg *argv;
	uint32_t *copy_off;  /* offset of each argument's copy in buf, or UINT32_MAX */
	char *buf;
	uint32_t buf_len, buf_cap;
	const char *err;
	char errbuf[48];
};

void resp_init(struct resp_parser *p, const struct kv_limits *lim);
void resp_free(struct resp_parser *p);

/*
 * Parse from chunk [data, data+len) that starts at stream offset seq.
 * *used receives the bytes consumed. On KV_DONE, p->argc/p->argv describe
 * the command until the next call. On KV_ERR, p->err says why.
 *
 * Inline commands are split as Redis splits them (quotes, escapes). An
 * argument whose bytes are not a slice of the stream (it had escapes, or
 * quotes in its middle) has seq KV_ARG_SYNTHETIC and only its copy.
 */
#define KV_ARG_SYNTHETIC UINT64_MAX
int resp_parse(struct resp_parser *p, uint64_t seq, const char *data, size_t len, size_t *used);

/* 1 while a command has started but is not complete. */
int resp_busy(const struct resp_parser *p);

#endif
