/* SPDX-License-Identifier: MIT */
/*
 * srv.h - the recv(2) server loop shared by the peer systems: one thread,
 * epoll, bytes received into a per-connection DRAM buffer, requests parsed
 * there and handed to a storage backend.
 *
 * Group commit: every request completed in one pass over the ready sockets
 * is staged with append(), then one commit() makes them all durable by the
 * backend's own rules, and only then are their acks sent. Payload pointers
 * stay valid until commit() returns.
 */
#ifndef BENCH_SRV_H
#define BENCH_SRV_H

#include <stddef.h>
#include <stdint.h>

struct srv_opts {
	const char *listen; /* HOST:PORT */
	const char *path;   /* the backend's file or directory */
	uint64_t size;      /* the backend's file size, where it has one */
	int http;           /* HTTP POST framing instead of length + payload */
};

struct backend {
	const char *name;
	int (*open)(const struct srv_opts *o, void **st);
	int (*append)(void *st, const void *payload, size_t len);
	int (*commit)(void *st);
	void (*close)(void *st);
};

/* Parse the common options, run until SIGINT/SIGTERM, print counters. */
int srv_main(int argc, char **argv, const struct backend *be);

#endif
