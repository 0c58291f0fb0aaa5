/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for both parsers: however the input is split, the parsers
 * must report the same requests, every argument must lie inside the input,
 * and every DRAM copy must equal the stream bytes. Built as a libFuzzer
 * target with clang (-DKV_FUZZ_LIBFUZZER, -fsanitize=fuzzer), and otherwise
 * as a bounded, deterministic mutation run that ctest executes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "resp.h"

static const struct kv_limits lim = {
	.max_args = 32, .max_bulk = 4096, .copy_max = 64, .max_line = 2048,
};

static void check(int ok)
{
	if (!ok)
		abort();
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	return (h ^ v) * 0x100000001b3ull;
}

/* Digest of everything the parser reports for d[0..n) fed as [0,cut) + [cut,n),
 * or one byte at a time when cut is SIZE_MAX. */
static uint64_t resp_digest(const uint8_t *d, size_t n, size_t cut)
{
	struct resp_parser p;
	resp_init(&p, &lim);
	uint64_t h = 0xcbf29ce484222325ull;
	size_t pos = 0;
	int r = KV_NEED;
	while (pos < n && r != KV_ERR) {
		size_t end = cut == SIZE_MAX ? pos + 1 : pos < cut ? cut : n;
		size_t used;
		r = resp_parse(&p, pos, (const char *)d + pos, end - pos, &used);
		check(used <= end - pos);
		pos += used;
		if (r == KV_DONE) {
			h = mix(h, p.argc);
			for (uint32_t i = 0; i < p.argc; i++) {
				const struct kv_arg *a = &p.argv[i];
				if (a->seq == KV_ARG_SYNTHETIC) {
					/* An unescaped inline argument: its copy is all there
					 * is, and it is never longer than the line it came from. */
					check(a->copy != NULL && a->len <= lim.max_line);
					for (uint32_t k = 0; k < a->len; k++)
						h = mix(h, (uint8_t)a->copy[k]);
				} else {
					check(a->seq + a->len <= n);
					if (a->copy)
						check(!memcmp(a->copy, d + a->seq, a->len));
				}
				h = mix(mix(h, a->seq), a->len);
			}
		}
	}
	h = mix(h, r == KV_ERR ? 1 : resp_busy(&p) ? 2 : 3);
	resp_free(&p);
	return h;
}

static uint64_t http_digest(const uint8_t *d, size_t n, size_t cut)
{
	struct http_parser p;
	http_init(&p, &lim);
	uint64_t h = 0xcbf29ce484222325ull;
	size_t pos = 0;
	int r = KV_NEED;
	while (pos < n && r != KV_ERR) {
		size_t end = cut == SIZE_MAX ? pos + 1 : pos < cut ? cut : n;
		size_t used;
		r = http_parse(&p, pos, (const char *)d + pos, end - pos, &used);
		check(used <= end - pos);
		pos += used;
		if (r == KV_DONE) {
			const struct http_req *q = &p.req;
			check(q->body_seq + q->body_len <= n);
			check(q->body_len <= lim.max_bulk);
			h = mix(mix(mix(h, (uint64_t)q->method), q->body_seq), q->body_len);
			h = mix(mix(h, q->target_len), (uint64_t)q->keep_alive);
		}
	}
	h = mix(h, r == KV_ERR ? (uint64_t)p.status : http_busy(&p) ? 2 : 3);
	http_free(&p);
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (!n)
		return 0;
	size_t cut = d[0] % n;
	check(resp_digest(d, n, n) == resp_digest(d, n, cut));
	check(http_digest(d, n, n) == http_digest(d, n, cut));
	if (n < 512) {
		check(resp_digest(d, n, n) == resp_digest(d, n, SIZE_MAX));
		check(http_digest(d, n, n) == http_digest(d, n, SIZE_MAX));
	}
	return 0;
}

#ifndef KV_FUZZ_LIBFUZZER
static const char *seeds[] = {
	"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
	"PING\r\nSET a b\n*1\r\n$4\r\nPING\r\n*0\r\n*-1\r\n",
	"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$2\r\n22\r\n",
	"PUT /kv/alpha HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /kv/alpha HTTP/1.1\r\n\r\n",
	"POST /log HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc",
	"DELETE /kv/a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"SET \"a b\" \"c\\x41\\n\" 'it\\'s'\r\nGET \"\"\"k\"\"\"\n",
	"MSET a\"b c\" v '' \"\\x4\" \"\\\\\"\n",
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 20000;
	static uint8_t buf[8192];
	static const char tokens[] = "*$\r\n0123456789-: \"'\\x";
	for (long i = 0; i < iters; i++) {
		size_t n = 0;
		for (int k = 1 + (int)(rnd() % 3); k > 0; k--) {
			const char *s = seeds[rnd() % (sizeof(seeds) / sizeof(seeds[0]))];
			size_t l = strlen(s);
			if (n + l < sizeof(buf) / 2) {
				memcpy(buf + n, s, l);
				n += l;
			}
		}
		for (int m = (int)(rnd() % 6); m > 0 && n; m--) {
			size_t at = rnd() % n;
			switch (rnd() % 4) {
			case 0: buf[at] = (uint8_t)rnd(); break;
			case 1: buf[at] = (uint8_t)tokens[rnd() % (sizeof(tokens) - 1)]; break;
			case 2: n = at + 1; break;
			case 3:
				if (n + 8 < sizeof(buf)) {
					memmove(buf + at + 8, buf + at, n - at);
					memset(buf + at, '9', 8);
					n += 8;
				}
				break;
			}
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("%ld inputs, no divergence\n", iters);
	return 0;
}
#endif
