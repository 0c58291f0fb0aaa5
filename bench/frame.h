/* SPDX-License-Identifier: MIT */
/*
 * frame.h - the one request framing every benchmark server speaks, the ack,
 * and the small socket and clock helpers the servers and the load generator
 * share.
 *
 *   request = 4-byte little-endian payload length, then the payload
 *   ack     = 8-byte little-endian count of the connection's stream bytes
 *             (headers included) that are durable once the ack is sent;
 *             the client knows what it sent, so it checks every ack
 *
 * The HTTP mode of the recv(2) servers (for wrk) replaces both with one
 * POST carrying a Content-Length body and a fixed 200 reply.
 */
#ifndef BENCH_FRAME_H
#define BENCH_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 4
#define FRAME_ACK 8
#define FRAME_MAX_PAYLOAD (16u << 20)

static inline void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/*
 * Streaming parser for bytes that arrive in pieces that ignore request
 * boundaries (pkt-records): a header may straddle two pieces, one piece may
 * end several requests.
 */
struct frame_stream {
	uint64_t pos;      /* stream bytes consumed */
	uint32_t need;     /* payload bytes still to come */
	uint8_t hdr[FRAME_HDR];
	uint8_t hdr_have;
	bool in_payload;
};

/* Consume n bytes; on_end(arg, end) is called with the stream position just
 * past each request that these bytes complete. -EPROTO on a bad length. */
int frame_stream_feed(struct frame_stream *fs, const uint8_t *p, size_t n,
		      void (*on_end)(void *arg, uint64_t end), void *arg);

/*
 * Parsers for a contiguous buffer: 0 when the buffer holds no complete
 * request yet, -EPROTO on garbage, else the request's size in the buffer;
 * *payload and *len locate its body.
 */
long frame_next(const uint8_t *buf, size_t n, const uint8_t **payload, size_t *len);
long http_next(const uint8_t *buf, size_t n, const uint8_t **payload, size_t *len);

extern const char http_reply[];
extern const size_t http_reply_len;

uint64_t now_ns(void);
/* "HOST:PORT" -> listening, non-blocking TCP socket, or -errno. */
const char *split_hostport(const char *hostport, char *buf, size_t n);
int tcp_listen(const char *hostport);
int set_nonblock(int fd);
/* Write all of buf to a non-blocking socket, waiting in poll() if full. */
int send_all(int fd, const void *buf, size_t len);
/* parse_size(), size_error(), print_version(): tools/size.h, shared with
 * the pktstore tool. */
#include "size.h"

#endif
