/* SPDX-License-Identifier: MIT */
/*
 * http.h - incremental HTTP/1.1 request parser for the key-value API.
 *
 * The header block is collected in a bounded DRAM buffer; the body is only
 * located (stream offset and length), never copied. Chunked bodies are
 * refused: every client this server targets sends Content-Length.
 */
#ifndef KV_HTTP_H
#define KV_HTTP_H

#include "proto.h"

enum http_method { HTTP_OTHER = 0, HTTP_GET, HTTP_HEAD, HTTP_PUT, HTTP_POST, HTTP_DELETE };

struct http_req {
	int method;
	const char *target; /* request target, not NUL-terminated */
	uint32_t target_len;
	uint64_t body_seq;  /* stream offset of the body */
	uint64_t body_len;
	int keep_alive;
	int expect_continue;
};

struct http_parser {
	struct kv_limits lim;
	int state;
	uint64_t req_start;
	uint64_t remaining;  /* body bytes still to come */
	char *buf;           /* header block */
	uint32_t buf_len, buf_cap;
	struct http_req req;
	int status;          /* on KV_ERR: the status code to answer with */
	const char *err;
};

void http_init(struct http_parser *p, const struct kv_limits *lim);
void http_free(struct http_parser *p);

/*
 * Parse from chunk [data, data+len) that starts at stream offset seq.
 * KV_HEAD: headers are complete, the body is not, and the client asked for
 * "100 Continue". KV_DONE: p->req is complete (valid until the next call).
 * KV_ERR: p->status and p->err describe the failure; the stream is lost.
 */
int http_parse(struct http_parser *p, uint64_t seq, const char *data, size_t len, size_t *used);

int http_busy(const struct http_parser *p);

#endif
