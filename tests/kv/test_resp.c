/* SPDX-License-Identifier: MIT */
/* RESP parser: exact arguments, every split of the stream, hostile input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "resp.h"

static const struct kv_limits lim = {
	.max_args = 64, .max_bulk = 1 << 20, .copy_max = 16, .max_line = 4096,
};

/* Commands rendered as "arg|arg|...;" using stream offsets into the input,
 * and checking that each DRAM copy matches the stream. */
static int run(const char *in, size_t n, const size_t *cuts, size_t ncuts, char *out, size_t cap)
{
	struct resp_parser p;
	resp_init(&p, &lim);
	size_t pos = 0, o = 0;
	int r = KV_NEED;
	out[0] = 0;
	for (size_t c = 0; c <= ncuts && r != KV_ERR; c++) {
		size_t end = c < ncuts ? cuts[c] : n;
		while (pos < end) {
			size_t used;
			r = resp_parse(&p, pos, in + pos, end - pos, &used);
			pos += used;
			if (r == KV_ERR)
				break;
			if (r != KV_DONE)
				continue;
			for (uint32_t a = 0; a < p.argc; a++) {
				const struct kv_arg *g = &p.argv[a];
				const char *bytes = g->copy;
				if (g->seq == KV_ARG_SYNTHETIC) {
					/* Unescaped inline argument: only its copy holds it. */
					cr_assert_not_null(g->copy);
				} else {
					cr_assert(g->seq + g->len <= n);
					if (g->copy)
						cr_assert(!memcmp(g->copy, in + g->seq, g->len));
					bytes = in + g->seq;
				}
				o += (size_t)snprintf(out + o, cap - o, "%.*s%s", (int)g->len, bytes,
						      a + 1 < p.argc ? "|" : ";");
			}
		}
	}
	if (r == KV_ERR)
		o += (size_t)snprintf(out + o, cap - o, "ERR(%s)", p.err);
	else if (resp_busy(&p))
		o += (size_t)snprintf(out + o, cap - o, "PARTIAL");
	resp_free(&p);
	return r;
}

static void whole(const char *in, char *out, size_t cap)
{
	run(in, strlen(in), NULL, 0, out, cap);
}

Test(resp, single_set)
{
	char out[256];
	whole("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nhello\r\n", out, sizeof(out));
	cr_assert_str_eq(out, "SET|key|hello;");
}

Test(resp, pipelined_and_inline)
{
	char out[512];
	whole("*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nSET a  b\n\r\n"
	      "*0\r\n*-1\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
	      out, sizeof(out));
	cr_assert_str_eq(out, "PING;GET|k;PING;SET|a|b;ECHO|;");
}

Test(resp, long_argument_is_located_not_copied)
{
	struct resp_parser p;
	resp_init(&p, &lim);
	const char *in = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$20\r\n01234567890123456789\r\n";
	size_t used;
	cr_assert_eq(resp_parse(&p, 1000, in, strlen(in), &used), KV_DONE);
	cr_assert_eq(used, strlen(in));
	cr_assert_eq(p.argc, 3);
	cr_assert_null(p.argv[2].copy);
	cr_assert_eq(p.argv[2].seq, 1000 + 25);
	cr_assert_eq(p.argv[2].len, 20);
	cr_assert_eq(p.cmd_start, 1000);
	cr_assert_eq(resp_busy(&p), 0);
	resp_free(&p);
}

static const char *pipeline =
	"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$25\r\nvalue-spanning-many-bytes\r\n"
	"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
	"PING\r\n"
	"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$2\r\n22\r\n"
	"*1\r\n$6\r\nDBSIZE\r\n";

static const char *pipeline_expect = "SET|key|value-spanning-many-bytes;GET|key;PING;"
				     "MSET|a|1|b|22;DBSIZE;";

Test(resp, split_at_every_byte_boundary)
{
	size_t n = strlen(pipeline);
	char out[512];
	for (size_t k = 0; k <= n; k++) {
		run(pipeline, n, &k, 1, out, sizeof(out));
		cr_assert_str_eq(out, pipeline_expect, "split at %zu", k);
	}
	for (size_t a = 1; a < n; a += 3)
		for (size_t b = a; b < n; b += 5) {
			size_t cuts[2] = { a, b };
			run(pipeline, n, cuts, 2, out, sizeof(out));
			cr_assert_str_eq(out, pipeline_expect, "split at %zu,%zu", a, b);
		}
}

Test(resp, one_byte_at_a_time)
{
	size_t n = strlen(pipeline);
	size_t cuts[512];
	for (size_t k = 0; k < n; k++)
		cuts[k] = k + 1;
	char out[512];
	run(pipeline, n, cuts, n, out, sizeof(out));
	cr_assert_str_eq(out, pipeline_expect);
}

Test(resp, incomplete_command_stays_partial)
{
	char out[256];
	whole("*2\r\n$3\r\nGET\r\n$3\r\nke", out, sizeof(out));
	cr_assert_str_eq(out, "PARTIAL");
}

struct bad {
	const char *in, *expect;
};

Test(resp, malformed)
{
	static const struct bad cases[] = {
		{ "*x\r\n", "ERR(invalid multibulk length)" },
		{ "*\r\n", "ERR(invalid multibulk length)" },
		{ "*65\r\n", "ERR(invalid multibulk length)" },
		{ "*99999999999999999999\r\n", "ERR(invalid multibulk length)" },
		{ "*1\r\n$4\r\nPINGX\r\n", "ERR(expected CR after bulk data)" },
		{ "*1\r\n$4\r\nPING\rX", "ERR(expected LF after bulk data)" },
		{ "*1\r\n:4\r\n", "ERR(expected '$', got ':')" },
		{ "*1\r\n$-1\r\n", "ERR(invalid bulk length)" },
		{ "*1\r\n$4294967296\r\n", "ERR(invalid bulk length)" },
		{ "*1\r\n$1048577\r\n", "ERR(invalid bulk length)" },
		{ "*1\r\n$3x\r\n", "ERR(invalid bulk length)" },
		{ "*1\rX", "ERR(expected LF after multibulk length)" },
		{ "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$", "GET|k;PARTIAL" },
	};
	char out[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		whole(cases[i].in, out, sizeof(out));
		cr_assert_str_eq(out, cases[i].expect, "case %zu", i);
	}
}

Test(resp, gigabyte_length_rejected_before_data)
{
	struct resp_parser p;
	resp_init(&p, &lim);
	const char *in = "*2\r\n$3\r\nSET\r\n$2000000000\r\n";
	size_t used;
	cr_assert_eq(resp_parse(&p, 0, in, strlen(in), &used), KV_ERR);
	cr_assert_lt(used, strlen(in));
	resp_free(&p);
}

Test(resp, inline_line_is_bounded)
{
	static char line[5000];
	memset(line, 'a', sizeof(line));
	char out[256];
	run(line, sizeof(line), NULL, 0, out, sizeof(out));
	cr_assert_str_eq(out, "ERR(too big inline request)");
}

Test(resp, too_many_inline_args)
{
	static char line[300];
	size_t o = 0;
	for (int i = 0; i < 70; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, "a ");
	line[o++] = '\n';
	char out[256];
	run(line, o, NULL, 0, out, sizeof(out));
	cr_assert_str_eq(out, "ERR(too many arguments)");
}

/* Inline commands are split as Redis splits them. */
Test(resp, inline_quotes_and_escapes)
{
	static const struct bad cases[] = {
		{ "SET \"a b\" \"c d\"\r\n", "SET|a b|c d;" },
		{ "SET k \"x\\x41\\ny\"\n", "SET|k|xA\ny;" },
		{ "SET j 'a\"b'\n", "SET|j|a\"b;" },
		{ "SET j 'it\\'s'\n", "SET|j|it's;" },
		{ "SET e \"\"\n", "SET|e|;" },
		{ "SET a\"b c\" v\n", "SET|ab c|v;" },
		{ "set \"\"\"k\"\"\" v\r\n", "ERR(unbalanced quotes in request)" },
		{ "SET \"open\n", "ERR(unbalanced quotes in request)" },
		{ "SET 'open\n", "ERR(unbalanced quotes in request)" },
		{ "  \t PING  \r\n", "PING;" },
		{ "\"\\q\\\\\"\n", "q\\;" },
	};
	char out[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		whole(cases[i].in, out, sizeof(out));
		cr_assert_str_eq(out, cases[i].expect, "case %zu", i);
	}
}

/* A quoted argument without escapes is still a slice of the stream. */
Test(resp, inline_quoted_argument_keeps_its_range)
{
	struct resp_parser p;
	resp_init(&p, &lim);
	const char *in = "SET \"a b\" \"x\\ny\"\n";
	size_t used;
	cr_assert_eq(resp_parse(&p, 100, in, strlen(in), &used), KV_DONE);
	cr_assert_eq(p.argc, 3);
	cr_assert_eq(p.argv[1].seq, 100 + 5);
	cr_assert_eq(p.argv[1].len, 3);
	cr_assert_eq(p.argv[2].seq, KV_ARG_SYNTHETIC);
	cr_assert_eq(p.argv[2].len, 3);
	cr_assert(!memcmp(p.argv[2].copy, "x\ny", 3));
	resp_free(&p);
}

/* Arguments are counted as they come, not reserved as announced: 20,000
 * of them parse, and an announced count of 2^31 costs nothing up front. */
Test(resp, many_arguments)
{
	static const struct kv_limits big = {
		.max_args = 0x7fffffff, .max_bulk = 1 << 20, .copy_max = 16, .max_line = 4096,
		.copy_total = 1 << 20,
	};
	struct resp_parser p;
	resp_init(&p, &big);
	static char in[20000 * 12 + 32];
	size_t n = (size_t)snprintf(in, sizeof(in), "*20000\r\n");
	for (int i = 0; i < 20000; i++)
		n += (size_t)snprintf(in + n, sizeof(in) - n, "$5\r\n%05d\r\n", i);
	size_t used;
	cr_assert_eq(resp_parse(&p, 0, in, n, &used), KV_DONE);
	cr_assert_eq(p.argc, 20000);
	cr_assert(!memcmp(p.argv[19999].copy, "19999", 5));
	resp_free(&p);
	resp_init(&p, &big);
	const char *huge = "*2147483647\r\n$1\r\na\r\n";
	cr_assert_eq(resp_parse(&p, 0, huge, strlen(huge), &used), KV_NEED);
	cr_assert_lt(p.argv_cap, 1024);
	resp_free(&p);
	resp_init(&p, &big);
	const char *over = "*2147483648\r\n";
	cr_assert_eq(resp_parse(&p, 0, over, strlen(over), &used), KV_ERR);
	cr_assert_str_eq(p.err, "invalid multibulk length");
	resp_free(&p);
}
