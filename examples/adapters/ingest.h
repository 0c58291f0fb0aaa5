/* SPDX-License-Identifier: MIT */
/*
 * ingest.h - the application behind the three adapter examples: a durable
 * ingest server for framed messages (4-byte big-endian length, payload), as
 * an MQTT or log broker would have. Each complete message is acknowledged
 * with the stream position after it (8 bytes, big-endian) once durable, and
 * the flow is trimmed to there, so the arena holds only unfinished
 * messages. The loop around it is the adapter's; this part is the same.
 */
#ifndef INGEST_H
#define INGEST_H

#include <stdint.h>

#include <pktstore.h>

struct ingest {
	struct pktstore *ps;
	int lfd;
	unsigned long messages, closed, fulls;
	unsigned long *drains;            /* the adapter's counter */
	void (*kick)(void *kick_arg);     /* space was freed: drain again */
	void *kick_arg;
};

/* Open the store and the listening socket; print "listening on PORT".
 * Returns 0, -1 after printing --help or --version (exit 0), or an exit
 * status after saying what is wrong with the arguments or the arena. */
int ingest_setup(struct ingest *in, int argc, char **argv);
/* Accept every pending connection and attach it. */
void ingest_accept(struct ingest *in);
/* The adapter callbacks. */
void ingest_records(struct pktstore *ps, struct pktstore_rec *recs, int n, void *arg);
void ingest_status(struct pktstore *ps, int status, void *arg);
/* SIGUSR1 asks for a report line, SIGTERM for the end: polled by the loop. */
extern volatile int ingest_report_wanted, ingest_stop_wanted;
void ingest_report(const struct ingest *in);
void ingest_finish(struct ingest *in);

#endif
