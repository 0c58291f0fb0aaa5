/* SPDX-License-Identifier: MIT */
/*
 * Distinct stores share nothing: several threads each open, fill, read and
 * close a store of their own at the same moment. Run under ThreadSanitizer
 * (make test-tsan), any state the library keeps outside a store shows up as
 * a race; in the plain build it still checks each store's records.
 * Not a Criterion test: Criterion 2.4 binaries cannot run under TSan.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pktstore.h"

#define THREADS 4
#define RECORDS 200

static pthread_barrier_t start;

static void *one_store(void *arg)
{
	long t = (long)arg;
	char path[128];
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 4 << 20,
				   .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore *ps;
	uint64_t flow;
	uint8_t buf[300];
	struct pktstore_rec r;
	const char *dir = getenv("PKTSTORE_TEST_PM_DIR"); /* as tests/util.c */

	snprintf(path, sizeof(path), "%s/pktstore-tsan-%d-%ld.arena", dir && *dir ? dir : "/dev/shm",
		 (int)getpid(), t);
	unlink(path);
	pthread_barrier_wait(&start);
	if (pktstore_open(path, &o, &ps) || pktstore_flow_create(ps, (uint64_t)t, &flow))
		return (void *)1;
	for (int i = 0; i < RECORDS; i++) {
		memset(buf, (int)(t * 31 + i), sizeof(buf));
		if (pktstore_append(ps, flow, buf, (uint32_t)(1 + i % sizeof(buf)), &r) ||
		    pktstore_get(ps, r.id, &r, 0) || r.len != 1 + i % sizeof(buf) ||
		    ((const uint8_t *)r.data)[0] != (uint8_t)(t * 31 + i))
			return (void *)2;
	}
	if (pktstore_close(ps))
		return (void *)3;
	unlink(path);
	return NULL;
}

int main(void)
{
	pthread_t th[THREADS];
	int bad = 0;

	pthread_barrier_init(&start, NULL, THREADS);
	for (long t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, one_store, (void *)t);
	for (int t = 0; t < THREADS; t++) {
		void *ret;

		pthread_join(th[t], &ret);
		if (ret) {
			fprintf(stderr, "distinct_stores: thread %d failed (%ld)\n", t, (long)ret);
			bad = 1;
		}
	}
	printf("distinct_stores: %d stores on %d threads: %s\n", THREADS, THREADS,
	       bad ? "FAILED" : "ok");
	return bad;
}
