/* SPDX-License-Identifier: MIT */
/*
 * recovery.c - how long pktstore_open() takes on an arena that holds many
 * records, and the rate of its scan. A child process fills the arena with
 * pktstore_append() on a local flow (sizes 64..256 B) and either closes it
 * cleanly or exits without closing (a dirty shutdown); the parent then
 * times the open that rebuilds the index and reads pktstore_stats().
 * --rounds repeats the pair (clean, then dirty), each on a fresh arena, so
 * that both cases get the same share of a noisy machine.
 */
#include <inttypes.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pktstore.h>

#include "frame.h"

static int fill(const char *path, uint64_t size, uint64_t n, int clean)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | PKTSTORE_EXCL, .size = size,
				   .bytes_per_record = 256 };
	struct pktstore *ps;
	uint64_t flow;
	uint8_t buf[256];
	int ret = pktstore_open(path, &o, &ps);

	if (ret || (ret = pktstore_flow_create(ps, 1, &flow))) {
		fprintf(stderr, "recovery: create %s: %s\n", path, pktstore_strerror(ret));
		return 1;
	}
	srand(7);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();

	uint64_t t0 = now_ns(), bytes = 0;

	for (uint64_t i = 0; i < n; i++) {
		uint32_t len = 64 + (uint32_t)(rand() % 193);

		buf[0] = (uint8_t)i;
		ret = pktstore_append(ps, flow, buf, len, NULL);
		if (ret) {
			fprintf(stderr, "recovery: append %" PRIu64 ": %s\n", i,
				pktstore_strerror(ret));
			return 1;
		}
		bytes += len;
	}
	uint64_t dt = now_ns() - t0;

	printf("fill records=%" PRIu64 " bytes=%" PRIu64 " secs=%.3f append_ns=%.1f\n", n, bytes,
	       dt / 1e9, (double)dt / (double)n);
	fflush(stdout);
	if (clean)
		pktstore_close(ps);
	return 0;
}

static int reopen(const char *path, const char *label, int round)
{
	struct pktstore *ps;
	struct pktstore_stats st;
	uint64_t t0 = now_ns();
	int ret = pktstore_open(path, NULL, &ps);
	uint64_t dt = now_ns() - t0;

	if (ret) {
		fprintf(stderr, "recovery: open %s: %s\n", path, pktstore_strerror(ret));
		return 1;
	}
	pktstore_stats(ps, &st);
	printf("open shutdown=%s round=%d dirty=%d open_ms=%.2f recovery_ms=%.2f records=%" PRIu64
	       " record_bytes=%" PRIu64 " descriptors=%" PRIu64 " rec_per_s=%.0f gb_per_s=%.3f"
	       " ns_per_slot=%.1f\n",
	       label, round, st.dirty_shutdown, dt / 1e6, st.recovery_ns / 1e6, st.recovered_records,
	       st.record_bytes, st.descriptors, st.recovered_records / (dt / 1e9),
	       st.record_bytes / (double)dt, (double)st.recovery_ns / (double)st.descriptors);
	pktstore_close(ps);
	return 0;
}

static const char usage[] = "usage: recovery --path ARENA [--records N] [--size BYTES] [--rounds R]\n"
			   "       recovery --help | --version\n";

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "path", required_argument, NULL, 'p' },
		{ "records", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *path = NULL;
	uint64_t n = 1000000, size = 512ull << 20;
	int rounds = 1, c;

	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (c) {
		case 'p': path = optarg; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 's': {
			int ret = parse_size(optarg, INT64_MAX, &size);

			if (ret) {
				size_error("recovery", "--size", optarg, ret, INT64_MAX);
				return 2;
			}
			break;
		}
		case 'r': rounds = atoi(optarg); break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': print_version(argv[0]); return 0;
		default: goto bad;
		}
	}
	if (!path || rounds < 1 || rounds > 100)
		goto bad;
	for (int k = 0; k < 2 * rounds; k++) {
		int clean = !(k & 1), round = k / 2 + 1;

		unlink(path);
		fflush(stdout);
		pid_t pid = fork();

		if (!pid)
			_exit(fill(path, size, n, clean));
		int status;

		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			return 1;
		if (reopen(path, clean ? "clean" : "dirty", round) ||
		    (clean && reopen(path, "clean-again", round)))
			return 1;
	}
	unlink(path);
	return 0;
bad:
	fputs(usage, stderr);
	return 2;
}
