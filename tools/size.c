/* SPDX-License-Identifier: MIT */
/*
 * size.c - parse and print sizes, print versions. See size.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <pktstore.h>

#include "size.h"

int parse_size(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	unsigned shift = 0;

	/* By hand rather than strtoull: strtoull takes a sign, leading
	 * spaces, and (with base 0) reads "010" as octal. */
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	switch (*p) {
	case 'k': case 'K': shift = 10; p++; break;
	case 'm': case 'M': shift = 20; p++; break;
	case 'g': case 'G': shift = 30; p++; break;
	default: break;
	}
	if (shift && p[0] == 'i' && p[1] == 'B')
		p += 2;
	else if (shift && p[0] == 'B')
		p++;
	if (*p)
		return -EINVAL;
	if (v > (UINT64_MAX >> shift) || (v << shift) > max)
		return -ERANGE;
	*out = v << shift;
	return 0;
}

void size_error(const char *prog, const char *opt, const char *s, int err, uint64_t max)
{
	/* The largest value, also as it may be typed when a suffix fits. */
	static const char sfx[] = "GMK";
	char alt[32] = "";

	for (int i = 0; i < 3; i++) {
		unsigned shift = 30 - 10 * (unsigned)i;

		if (max >> shift && !(max & ((1ull << shift) - 1))) {
			snprintf(alt, sizeof(alt), " (%" PRIu64 "%c)", max >> shift, sfx[i]);
			break;
		}
	}
	if (err == -ERANGE)
		fprintf(stderr, "%s: %s '%s' is too large: at most %" PRIu64 "%s\n", prog, opt, s,
			max, alt);
	else
		fprintf(stderr,
			"%s: %s '%s' is not a size: use decimal digits with an optional K, M or G "
			"suffix (4096, 64K, 1G)\n",
			prog, opt, s);
}

const char *size_text(uint64_t bytes, char buf[32])
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	int u = -1;

	if (bytes < 1024) {
		snprintf(buf, 32, "%" PRIu64 " bytes", bytes);
		return buf;
	}
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	snprintf(buf, 32, "%.1f %s", v, unit[u]);
	return buf;
}

void print_version(const char *prog)
{
	const char *slash = strrchr(prog, '/'); /* argv[0] may be a path */

	printf("%s (libpktstore) %d.%d.%d\n", slash ? slash + 1 : prog, PKTSTORE_VERSION_MAJOR, PKTSTORE_VERSION_MINOR,
	       PKTSTORE_VERSION_PATCH);
}
