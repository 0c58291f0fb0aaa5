/* SPDX-License-Identifier: MIT */
/*
 * release.c - what freeing a record costs, per record: pktstore_release()
 * one call per record, pktstore_release_batch() in groups, and the
 * amortised cost inside a steady stream of appends (each record released
 * after the next one is appended), which is where a release deferred into
 * the next commit's drain shows what it still costs. Small records on a
 * local flow, so the release and not the copy is what is timed.
 *
 * Every round makes a fresh arena and measures every mode once, the modes
 * in turn, so a slow moment of the machine lands on all of them. One line
 * per mode and round:
 *   release mode=single|batch|steady round=R records=N ns_per_record=X
 * steady: (append-and-release loop - append-only loop) / N, on one arena
 * that has already held N records.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <pktstore.h>

#include "frame.h"

#define RECORD 64
#define BATCH 64

struct arena {
	struct pktstore *ps;
	uint64_t flow;
};

static int make(const char *path, uint64_t size, struct arena *a)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | PKTSTORE_EXCL, .size = size,
				   .bytes_per_record = 128 };
	int ret;

	unlink(path);
	ret = pktstore_open(path, &o, &a->ps);
	if (!ret && (ret = pktstore_flow_create(a->ps, 1, &a->flow)))
		pktstore_close(a->ps);
	if (ret)
		fprintf(stderr, "release: create %s: %s\n", path, pktstore_strerror(ret));
	return ret;
}

static void done(const char *path, struct arena *a)
{
	pktstore_close(a->ps);
	unlink(path);
}

/* Append n records, their ids in ids[]; the elapsed ns, or 0 on failure. */
static uint64_t append_n(struct arena *a, uint64_t n, uint64_t *ids)
{
	static const uint8_t buf[RECORD] = { 1, 2, 3 };
	struct pktstore_rec r;
	uint64_t t0 = now_ns();

	for (uint64_t i = 0; i < n; i++) {
		int ret = pktstore_append(a->ps, a->flow, buf, RECORD, &r);

		if (ret) {
			fprintf(stderr, "release: append: %s\n", pktstore_strerror(ret));
			return 0;
		}
		ids[i] = r.id;
	}
	return now_ns() - t0;
}

static int single(struct arena *a, uint64_t n, uint64_t *ids, double *ns)
{
	if (!append_n(a, n, ids))
		return 1;
	uint64_t t0 = now_ns();

	for (uint64_t i = 0; i < n; i++) {
		int ret = pktstore_release(a->ps, ids[i]);

		if (ret) {
			fprintf(stderr, "release: pktstore_release: %s\n", pktstore_strerror(ret));
			return 1;
		}
	}
	*ns = (double)(now_ns() - t0) / (double)n;
	return 0;
}

static int batch(struct arena *a, uint64_t n, uint64_t *ids, double *ns)
{
	if (!append_n(a, n, ids))
		return 1;
	uint64_t t0 = now_ns();

	for (uint64_t i = 0; i < n; i += BATCH) {
		unsigned k = n - i < BATCH ? (unsigned)(n - i) : BATCH;
		int ret = pktstore_release_batch(a->ps, ids + i, k);

		if (ret) {
			fprintf(stderr, "release: pktstore_release_batch: %s\n",
				pktstore_strerror(ret));
			return 1;
		}
	}
	*ns = (double)(now_ns() - t0) / (double)n;
	return 0;
}

/* Release every record in ids[] and commit (untimed). */
static int release_all(struct arena *a, uint64_t n, const uint64_t *ids)
{
	int ret = 0;

	for (uint64_t i = 0; i < n && !ret; i += BATCH)
		ret = pktstore_release_batch(a->ps, ids + i,
					     n - i < BATCH ? (unsigned)(n - i) : BATCH);
	if (!ret)
		ret = pktstore_sync(a->ps);
	if (ret)
		fprintf(stderr, "release: release_all: %s\n", pktstore_strerror(ret));
	return ret;
}

/* Appends with a release of the previous record after each, against the
 * same appends alone, both on one arena whose DRAM index has already held
 * n records (a warm-up round, released): appends alone would otherwise
 * pay for growing the index, first page touches and all, and the appends
 * that release keep it small, which made the difference come out below
 * zero. */
static int steady(const char *path, uint64_t size, uint64_t n, uint64_t *ids, double *ns)
{
	static const uint8_t buf[RECORD] = { 4, 5, 6 };
	struct arena a;
	struct pktstore_rec r;
	uint64_t prev = 0;

	if (make(path, size, &a))
		return 1;
	if (!append_n(&a, n, ids) || release_all(&a, n, ids))
		goto fail;

	uint64_t alone = append_n(&a, n, ids);

	if (!alone || release_all(&a, n, ids))
		goto fail;
	uint64_t t0 = now_ns();

	for (uint64_t i = 0; i < n; i++) {
		int ret = pktstore_append(a.ps, a.flow, buf, RECORD, &r);

		if (!ret && prev)
			ret = pktstore_release(a.ps, prev);
		if (ret) {
			fprintf(stderr, "release: steady: %s\n", pktstore_strerror(ret));
			goto fail;
		}
		prev = r.id;
	}
	uint64_t both = now_ns() - t0;

	done(path, &a);
	*ns = ((double)both - (double)alone) / (double)n;
	return 0;
fail:
	done(path, &a);
	return 1;
}

static const char usage[] =
	"usage: release --path ARENA [--records N] [--rounds R] [--size BYTES]\n"
	"       release --help | --version\n"
	"  ARENA is a scratch file (made and removed); put it on the medium measured\n";

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "path", required_argument, NULL, 'p' },
		{ "records", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	const char *path = NULL;
	uint64_t n = 100000, size = 128ull << 20;
	int rounds = 3, c;

	while ((c = getopt_long(argc, argv, "hV", lo, NULL)) != -1) {
		switch (c) {
		case 'p': path = optarg; break;
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'r': rounds = atoi(optarg); break;
		case 's': {
			int ret = parse_size(optarg, INT64_MAX, &size);

			if (ret) {
				size_error("release", "--size", optarg, ret, INT64_MAX);
				return 2;
			}
			break;
		}
		case 'h': fputs(usage, stdout); return 0;
		case 'V': print_version(argv[0]); return 0;
		default: goto bad;
		}
	}
	if (!path || !n || n > 100000000 || rounds < 1 || optind != argc)
		goto bad;

	uint64_t *ids = malloc(n * sizeof(*ids));

	if (!ids)
		return 1;
	for (int r = 1; r <= rounds; r++) {
		static const char *const names[] = { "single", "batch", "steady" };

		for (int m = 0; m < 3; m++) {
			struct arena a;
			double ns = 0;
			int ret;

			if (m == 2) {
				ret = steady(path, size, n, ids, &ns);
			} else {
				if (make(path, size, &a))
					return 1;
				ret = (m ? batch : single)(&a, n, ids, &ns);
				done(path, &a);
			}
			if (ret)
				return 1;
			printf("release mode=%s round=%d records=%" PRIu64 " ns_per_record=%.1f\n",
			       names[m], r, n, ns);
			fflush(stdout);
		}
	}
	free(ids);
	return 0;
bad:
	fputs(usage, stderr);
	return 2;
}
