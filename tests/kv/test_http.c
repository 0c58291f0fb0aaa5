/* SPDX-License-Identifier: MIT */
/* HTTP parser: exact requests, every split of the stream, hostile input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http.h"

static const struct kv_limits lim = {
	.max_args = 64, .max_bulk = 1 << 20, .copy_max = 16, .max_line = 1024,
};

static const char *mname[] = { "OTHER", "GET", "HEAD", "PUT", "POST", "DELETE" };

/* Requests rendered as "METHOD target body ka=N;" (body from the stream). */
static int run(const char *in, size_t n, const size_t *cuts, size_t ncuts, char *out, size_t cap)
{
	struct http_parser p;
	http_init(&p, &lim);
	size_t pos = 0, o = 0;
	int r = KV_NEED;
	out[0] = 0;
	for (size_t c = 0; c <= ncuts && r != KV_ERR; c++) {
		size_t end = c < ncuts ? cuts[c] : n;
		while (pos < end) {
			size_t used;
			r = http_parse(&p, pos, in + pos, end - pos, &used);
			pos += used;
			if (r == KV_ERR)
				break;
			if (r == KV_HEAD)
				o += (size_t)snprintf(out + o, cap - o, "100 ");
			if (r != KV_DONE)
				continue;
			const struct http_req *q = &p.req;
			cr_assert(q->body_seq + q->body_len <= n);
			o += (size_t)snprintf(out + o, cap - o, "%s %.*s %.*s ka=%d;", mname[q->method],
					      (int)q->target_len, q->target, (int)q->body_len,
					      in + q->body_seq, q->keep_alive);
		}
	}
	if (r == KV_ERR)
		o += (size_t)snprintf(out + o, cap - o, "ERR(%d)", p.status);
	else if (http_busy(&p))
		o += (size_t)snprintf(out + o, cap - o, "PARTIAL");
	http_free(&p);
	return r;
}

static void whole(const char *in, char *out, size_t cap)
{
	run(in, strlen(in), NULL, 0, out, cap);
}

static const char *pipeline =
	"PUT /kv/alpha HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	"GET /kv/alpha HTTP/1.1\r\nHost: x\r\n\r\n"
	"POST /log HTTP/1.1\r\ncontent-length:3\r\nExpect: 100-continue\r\n\r\nabc"
	"DELETE /kv/alpha HTTP/1.0\r\n\r\n"
	"GET /kv/b HTTP/1.1\nConnection: close\n\n";

static const char *pipeline_expect = "PUT /kv/alpha hello ka=1;GET /kv/alpha  ka=1;"
				     "100 POST /log abc ka=1;DELETE /kv/alpha  ka=0;"
				     "GET /kv/b  ka=0;";

Test(http, pipelined)
{
	char out[512];
	whole(pipeline, out, sizeof(out));
	cr_assert_str_eq(out, pipeline_expect);
}

Test(http, split_at_every_byte_boundary)
{
	size_t n = strlen(pipeline);
	char out[512];
	for (size_t k = 0; k <= n; k++) {
		run(pipeline, n, &k, 1, out, sizeof(out));
		cr_assert_str_eq(out, pipeline_expect, "split at %zu", k);
	}
	size_t cuts[512];
	for (size_t k = 0; k < n; k++)
		cuts[k] = k + 1;
	run(pipeline, n, cuts, n, out, sizeof(out));
	cr_assert_str_eq(out, pipeline_expect);
}

Test(http, body_is_located_not_copied)
{
	struct http_parser p;
	http_init(&p, &lim);
	const char *in = "POST /kv/k HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd";
	size_t used;
	cr_assert_eq(http_parse(&p, 500, in, strlen(in), &used), KV_DONE);
	cr_assert_eq(p.req.body_seq, 500 + strlen(in) - 4);
	cr_assert_eq(p.req.body_len, 4);
	cr_assert_eq(p.req_start, 500);
	http_free(&p);
}

struct bad {
	const char *in, *expect;
};

Test(http, malformed)
{
	static const struct bad cases[] = {
		{ "GARBAGE\r\n\r\n", "ERR(400)" },
		{ "GET /x\r\n\r\n", "ERR(400)" },
		{ "GET /x HTTP/2.0\r\n\r\n", "ERR(505)" },
		{ "GET /x HTTP/1.1\r\nNoColon\r\n\r\n", "ERR(400)" },
		{ "PUT /x HTTP/1.1\r\nContent-Length: 12a\r\n\r\n", "ERR(400)" },
		{ "PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "ERR(400)" },
		{ "PUT /x HTTP/1.1\r\nContent-Length: 5000000000\r\n\r\n", "ERR(413)" },
		{ "PUT /x HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", "ERR(400)" },
		{ "PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "ERR(501)" },
		{ "PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", "PARTIAL" },
		{ "\r\n\r\nGET /x HTTP/1.1\r\n\r\n", "GET /x  ka=1;" },
		{ "BREW /pot HTTP/1.1\r\n\r\n", "OTHER /pot  ka=1;" },
	};
	char out[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		whole(cases[i].in, out, sizeof(out));
		cr_assert_str_eq(out, cases[i].expect, "case %zu", i);
	}
}

Test(http, header_block_is_bounded)
{
	static char in[4096];
	size_t o = (size_t)snprintf(in, sizeof(in), "GET / HTTP/1.1\r\n");
	while (o < 2000)
		o += (size_t)snprintf(in + o, sizeof(in) - o, "X-Pad: aaaaaaaaaaaaaaaa\r\n");
	char out[256];
	run(in, o, NULL, 0, out, sizeof(out));
	cr_assert_str_eq(out, "ERR(431)");
}
