/* SPDX-License-Identifier: MIT */
/*
 * cleaner.c - what PKTSTORE_MOVABLE costs. Side by side in one run, rounds
 * interleaved:
 *   plain    4 KiB appends, each released at once, in an arena nothing pins
 *            (no cleaning ever needed: the floor);
 *   movable  the same with PKTSTORE_MOVABLE, after every 15th append a
 *            64-byte record that stays for the next 256 of them (a client's
 *            unfinished message, a value not overwritten yet), so small
 *            live records are spread over every segment the bulk passes
 *            through and the cleaner must keep moving them out (without the
 *            flag this workload stops: see the "pinned" line);
 * and prints ns per append, the ratio, and what the cleaner moved.
 *
 *   bench-cleaner --dir DIR [--size BYTES] [--ops N] [--rounds R]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pktstore.h>

#include "frame.h"

#define SEG (64u << 10)
#define BIG 4096u
#define SMALL 64u

struct result {
	double ns_per_op;
	uint64_t ops, cleaned, moved_records, moved_bytes;
	int err;
};

static struct pktstore *open_arena(const char *path, uint64_t size, unsigned flags)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | flags, .size = size,
				   .segment_size = SEG, .bytes_per_record = 1024 };
	struct pktstore *ps;
	int ret;

	unlink(path);
	ret = pktstore_open(path, &o, &ps);
	if (ret) {
		fprintf(stderr, "bench-cleaner: %s: %s\n", path, pktstore_strerror(ret));
		exit(1);
	}
	return ps;
}

#define KEEP 256 /* small records alive at a time */

static struct result run(struct pktstore *ps, uint64_t ops, bool holders)
{
	static uint8_t big[BIG], small[SMALL];
	static uint64_t kept[KEEP];
	struct result res = { 0 };
	struct pktstore_rec r;
	struct pktstore_stats st;
	uint64_t flow, hflow, nkept = 0;

	if (pktstore_flow_create(ps, 3, &flow) || pktstore_flow_create(ps, 4, &hflow))
		exit(1);
	uint64_t t0 = now_ns();

	for (; res.ops < ops; res.ops++) {
		big[res.ops % BIG]++;
		int ret = pktstore_append(ps, flow, big, BIG, &r);

		if (ret) {
			res.err = ret;
			break;
		}
		pktstore_release(ps, r.id);
		if (!holders || res.ops % 15)
			continue;
		if (nkept >= KEEP)
			pktstore_release(ps, kept[nkept % KEEP]);
		ret = pktstore_append(ps, hflow, small, SMALL, &r);
		if (ret) {
			res.err = ret;
			break;
		}
		kept[nkept++ % KEEP] = r.id;
	}
	res.ns_per_op = res.ops ? (double)(now_ns() - t0) / (double)res.ops : 0;
	pktstore_stats(ps, &st);
	res.cleaned = st.cleaned_segments;
	res.moved_records = st.moved_records;
	res.moved_bytes = st.moved_bytes;
	return res;
}

static double median(double *v, int n)
{
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			double t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	const char *dir = "/dev/shm";
	uint64_t size = 8u << 20, ops = 200000;
	int rounds = 3;
	static const struct option lo[] = { { "dir", 1, 0, 'd' }, { "size", 1, 0, 's' },
					    { "ops", 1, 0, 'o' }, { "rounds", 1, 0, 'r' },
					    { 0, 0, 0, 0 } };
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 's': size = strtoull(optarg, NULL, 0); break;
		case 'o': ops = strtoull(optarg, NULL, 0); break;
		case 'r': rounds = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench-cleaner --dir DIR [--size BYTES] [--ops N] "
					"[--rounds R]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 99)
		rounds = 3;
	char path[4096];

	snprintf(path, sizeof(path), "%s/bench-cleaner-%d.arena", dir, (int)getpid());

	/* Without the flag, the same workload stops. */
	struct pktstore *ps = open_arena(path, size, 0);
	struct result pinned = run(ps, ops, true);

	pktstore_close(ps);
	printf("pinned ops %" PRIu64 " stopped_by %s\n", pinned.ops,
	       pinned.err ? pktstore_strerror(pinned.err) : "nothing");

	double plain[99], movable[99];
	struct result last = { 0 };

	for (int i = 0; i < rounds; i++) {
		ps = open_arena(path, size, 0);
		struct result p = run(ps, ops, false);

		pktstore_close(ps);
		ps = open_arena(path, size, PKTSTORE_MOVABLE);
		struct result m = run(ps, ops, true);

		pktstore_close(ps);
		if (p.err || m.err) {
			fprintf(stderr, "bench-cleaner: round %d stopped: %s\n", i + 1,
				pktstore_strerror(p.err ? p.err : m.err));
			unlink(path);
			return 1;
		}
		plain[i] = p.ns_per_op;
		movable[i] = m.ns_per_op;
		last = m;
		printf("round %d plain_ns %.0f movable_ns %.0f\n", i + 1, p.ns_per_op, m.ns_per_op);
	}
	unlink(path);
	double pm = median(plain, rounds), mm = median(movable, rounds);

	printf("cleaner plain_ns %.0f movable_ns %.0f ratio %.2f ops %" PRIu64
	       " cleaned_segments %" PRIu64 " moved_records %" PRIu64 " moved_bytes %" PRIu64
	       " moved_bytes_per_op %.1f\n",
	       pm, mm, mm / pm, ops, last.cleaned, last.moved_records, last.moved_bytes,
	       (double)last.moved_bytes / (double)ops);
	return 0;
}
