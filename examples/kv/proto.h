/* SPDX-License-Identifier: MIT */
/*
 * proto.h - what the protocol parsers share.
 *
 * Both parsers consume a flow's byte stream as a sequence of chunks (one per
 * arena record) and never see a socket. An argument is reported as a range of
 * the stream, so a value can be served from wherever the kernel put it; short
 * arguments (keys, command names, numbers) are also copied to a small DRAM
 * buffer so they can be hashed and compared without walking records.
 */
#ifndef KV_PROTO_H
#define KV_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum kv_parse_result {
	KV_NEED = 0, /* chunk fully consumed, the current item is incomplete */
	KV_DONE = 1, /* one request is complete; more may follow in the chunk */
	KV_HEAD = 2, /* HTTP only: headers complete and the client waits for 100-continue */
	KV_ERR = -1, /* malformed; the stream cannot be resynchronised */
};

struct kv_arg {
	uint64_t seq;     /* stream offset of the first byte */
	uint32_t len;
	const char *copy; /* DRAM copy, or NULL when too long to copy */
};

struct kv_limits {
	uint32_t max_args;  /* arguments per RESP command */
	uint32_t max_bulk;  /* bytes in one RESP argument or HTTP body */
	uint32_t copy_max;  /* arguments up to this length are copied */
	uint32_t max_line;  /* RESP inline command line / HTTP header block */
	uint32_t copy_total; /* bytes of copies per command (0: max_line) */
};

#endif
