/* SPDX-License-Identifier: MIT */
/*
 * frame.c - request framing, HTTP request bounds, socket and clock helpers.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

int frame_stream_feed(struct frame_stream *fs, const uint8_t *p, size_t n,
		      void (*on_end)(void *arg, uint64_t end), void *arg)
{
	while (n) {
		if (!fs->in_payload) {
			size_t take = FRAME_HDR - fs->hdr_have;

			if (take > n)
				take = n;
			memcpy(fs->hdr + fs->hdr_have, p, take);
			fs->hdr_have += (uint8_t)take;
			fs->pos += take;
			p += take;
			n -= take;
			if (fs->hdr_have < FRAME_HDR)
				return 0;
			fs->hdr_have = 0;
			fs->need = get_le32(fs->hdr);
			if (fs->need > FRAME_MAX_PAYLOAD)
				return -EPROTO;
			fs->in_payload = true;
		}
		size_t take = fs->need < n ? fs->need : n;

		fs->need -= (uint32_t)take;
		fs->pos += take;
		p += take;
		n -= take;
		if (!fs->need) {
			fs->in_payload = false;
			on_end(arg, fs->pos);
		}
	}
	return 0;
}

long frame_next(const uint8_t *buf, size_t n, const uint8_t **payload, size_t *len)
{
	if (n < FRAME_HDR)
		return 0;

	uint32_t plen = get_le32(buf);

	if (plen > FRAME_MAX_PAYLOAD)
		return -EPROTO;
	if (n - FRAME_HDR < plen)
		return 0;
	*payload = buf + FRAME_HDR;
	*len = plen;
	return FRAME_HDR + (long)plen;
}

const char http_reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
const size_t http_reply_len = sizeof(http_reply) - 1;

long http_next(const uint8_t *buf, size_t n, const uint8_t **payload, size_t *len)
{
	const uint8_t *end = memmem(buf, n, "\r\n\r\n", 4);

	if (!end)
		return n > 65536 ? -EPROTO : 0;

	size_t head = (size_t)(end - buf) + 4;
	unsigned long clen = 0;

	for (const uint8_t *l = memchr(buf, '\n', head); l && l + 1 < end;
	     l = memchr(l + 1, '\n', (size_t)(buf + head - l - 1))) {
		static const char key[] = "content-length:";

		if ((size_t)(end - l - 1) > sizeof(key) - 1 &&
		    !strncasecmp((const char *)l + 1, key, sizeof(key) - 1)) {
			clen = strtoul((const char *)l + sizeof(key), NULL, 10);
			break;
		}
	}
	if (clen > FRAME_MAX_PAYLOAD)
		return -EPROTO;
	if (n - head < clen)
		return 0;
	*payload = buf + head;
	*len = clen;
	return (long)(head + clen);
}

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* "HOST:PORT" -> host copied into buf, returns the port (NULL if malformed). */
const char *split_hostport(const char *hostport, char *buf, size_t n)
{
	const char *colon = strrchr(hostport, ':');

	if (!colon || (size_t)(colon - hostport) >= n)
		return NULL;
	memcpy(buf, hostport, (size_t)(colon - hostport));
	buf[colon - hostport] = 0;
	return colon + 1;
}

int tcp_listen(const char *hostport)
{
	char host[256];
	const char *port = split_hostport(hostport, host, sizeof(host));

	if (!port)
		return -EINVAL;

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai;

	if (getaddrinfo(host, port, &hints, &ai))
		return -EINVAL;

	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	int ret = 0;

	if (fd < 0)
		ret = -errno;
	else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		 bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 1024))
		ret = -errno;
	freeaddrinfo(ai);
	if (ret) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };

			poll(&pfd, 1, 1000);
		} else if (n < 0 && errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}
