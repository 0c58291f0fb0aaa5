/* SPDX-License-Identifier: MIT */
/*
 * cliutil.c - why pktstore_open() failed, in words, for the command-line programs.
 * See cliutil.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cliutil.h"

/* ------------------------------------------------------------ open errors */

/*
 * The values pktstore_open(3) accepts in PKTSTORE_RECV_PATH. The library
 * does not export its table, so the documented list is repeated here; the
 * cli test fails if the two drift apart.
 */
static const char *const recv_paths[] = { "auto", "uring-inc", "uring-fixed", "recv", "zcrx" };
#define RECV_PATHS "auto, uring-inc, uring-fixed, recv, zcrx"

static int known_recv_path(const char *s)
{
	for (size_t i = 0; i < sizeof(recv_paths) / sizeof(recv_paths[0]); i++)
		if (!strcmp(s, recv_paths[i]))
			return 1;
	return 0;
}

/*
 * pktstore_open() checks the layout before it touches the file, and an
 * empty path can never be opened: so a probe with path "" fails with
 * -EINVAL when the layout is refused and with -ENOENT when it would be
 * accepted, creating nothing. The receive path is named so that the
 * environment cannot make every probe fail.
 */
static int layout_ok(const struct pktstore_opts *o, uint64_t size)
{
	struct pktstore_opts p = *o;
	struct pktstore *ps;

	p.flags = PKTSTORE_CREATE | PKTSTORE_EXCL;
	p.size = size;
	p.recv_path = PKTSTORE_PATH_RECV;
	p.zcrx = NULL;
	int ret = pktstore_open("", &p, &ps);

	if (!ret) /* cannot happen; do not leak if it ever does */
		pktstore_close(ps);
	return ret != -EINVAL;
}

uint64_t min_arena_size(const struct pktstore_opts *o)
{
	struct pktstore_opts none = { 0 };
	uint64_t lo = 1, hi = 1ull << 50; /* layout_ok(lo) is false, (hi) is true */

	if (!o)
		o = &none;
	if (!layout_ok(o, hi))
		return 0;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (layout_ok(o, mid))
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

long lock_holder(const char *path)
{
	struct stat st;
	char line[256];
	long found = 0;
	FILE *f;

	if (stat(path, &st) || !(f = fopen("/proc/locks", "re")))
		return 0;
	/* "1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF"; waiters have "->". */
	while (!found && fgets(line, sizeof(line), f)) {
		char type[16];
		long pid;
		unsigned maj, min;
		unsigned long ino;

		if (strstr(line, "->") ||
		    sscanf(line, "%*d: %15s %*s %*s %ld %x:%x:%lu", type, &pid, &maj, &min, &ino) != 5)
			continue;
		if (strcmp(type, "FLOCK") || ino != st.st_ino || maj != major(st.st_dev) ||
		    min != minor(st.st_dev) || pid <= 0 || pid == (long)getpid())
			continue;
		char proc[32];

		snprintf(proc, sizeof(proc), "/proc/%ld", pid);
		if (!access(proc, F_OK)) /* the taker may have exited, leaving a child */
			found = pid;
	}
	fclose(f);
	return found;
}

static void process_name(long pid, char *buf, size_t n)
{
	char p[64];
	FILE *f;

	buf[0] = '\0';
	snprintf(p, sizeof(p), "/proc/%ld/comm", pid);
	if ((f = fopen(p, "re"))) {
		if (fgets(buf, (int)n, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

/* Room left on the file system that holds (or would hold) path. */
static int free_space(const char *path, uint64_t *avail)
{
	char copy[PATH_MAX];
	struct statvfs vfs;

	snprintf(copy, sizeof(copy), "%s", path);
	if (statvfs(dirname(copy), &vfs))
		return -1;
	*avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return 0;
}

/* Why -EINVAL: the first rule of pktstore_open(3) the call breaks. */
static void explain_einval(const char *prog, const char *path, const struct pktstore_opts *o)
{
	const char *env = getenv("PKTSTORE_RECV_PATH");
	const char *zcrx = o->zcrx ? o->zcrx : getenv("PKTSTORE_ZCRX");
	struct stat st;
	char a[32], b[32], c[32];

	if (o->recv_path == PKTSTORE_PATH_AUTO && env && *env && !known_recv_path(env)) {
		fprintf(stderr,
			"%s: environment variable PKTSTORE_RECV_PATH='%s' is not a receive path; "
			"allowed: " RECV_PATHS ", or unset it to let the library choose\n",
			prog, env);
		return;
	}
	if ((o->recv_path == PKTSTORE_PATH_ZCRX ||
	     (o->recv_path == PKTSTORE_PATH_AUTO && env && !strcmp(env, "zcrx"))) &&
	    !(zcrx && *zcrx)) {
		fprintf(stderr,
			"%s: the zcrx receive path needs a NIC queue: set PKTSTORE_ZCRX=IFNAME:QUEUE "
			"(for example eth1:3), or choose another PKTSTORE_RECV_PATH (" RECV_PATHS
			")\n", prog);
		return;
	}
	if (!stat(path, &st) && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		fprintf(stderr, "%s: %s: %s; an arena is a regular file or a device DAX node\n",
			prog, path, S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
		return;
	}
	if (!(o->flags & PKTSTORE_CREATE)) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(EINVAL));
		return;
	}
	/* The layout rules of pktstore_open(3). */
	if (o->segment_size % 4096 || o->segment_size > (1u << 30)) {
		fprintf(stderr, "%s: segment size %" PRIu32 " is not allowed: it must be a "
			"multiple of 4096 and at most 1G\n", prog, o->segment_size);
		return;
	}
	if (o->max_flows > (1u << 24)) {
		fprintf(stderr, "%s: %" PRIu32 " flows is not allowed: at most 16777216\n", prog,
			o->max_flows);
		return;
	}
	if (o->bytes_per_record && o->bytes_per_record < 16) {
		fprintf(stderr, "%s: bytes per record %" PRIu32 " is not allowed: at least 16\n",
			prog, o->bytes_per_record);
		return;
	}
	uint64_t min = min_arena_size(o);
	uint64_t size = o->size ? o->size : 64ull << 20;

	if (min && size < min) {
		fprintf(stderr,
			"%s: size %" PRIu64 " (%s) is too small: this layout (%s segments, %" PRIu32
			" flows) needs at least %" PRIu64 " bytes (%s)\n",
			prog, size, size_text(size, a),
			size_text(o->segment_size ? o->segment_size : 1u << 20, b),
			o->max_flows ? o->max_flows : 1024, min, size_text(min, c));
		return;
	}
	fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(EINVAL));
}

void open_error(const char *prog, const char *path, int err, const struct pktstore_opts *o)
{
	struct pktstore_opts none = { 0 };
	bool create = o && o->flags & PKTSTORE_CREATE;
	const char *env = getenv("PKTSTORE_RECV_PATH");
	struct stat st;
	char a[32], b[32];

	if (!o)
		o = &none;
	switch (err) {
	case -EINVAL:
		explain_einval(prog, path, o);
		return;
	case -EBUSY: {
		long pid = lock_holder(path);
		char name[32];

		if (!pid) {
			fprintf(stderr, "%s: %s: held by another process; stop it or use a "
				"read-only copy\n", prog, path);
			return;
		}
		process_name(pid, name, sizeof(name));
		fprintf(stderr, "%s: %s: held by another process (pid %ld%s%s); stop it or use a "
			"read-only copy\n", prog, path, pid, name[0] ? ", " : "", name);
		return;
	}
	case -ENOENT:
		fprintf(stderr, "%s: %s: %s\n", prog, path,
			create ? "its directory does not exist" : "no such file");
		return;
	case -EEXIST:
		fprintf(stderr, "%s: %s: already exists; an arena is never overwritten: remove it "
			"or choose another path\n", prog, path);
		return;
	case -ENOSPC:
	case -EFBIG: {
		/* At open this is the file system, not the arena, being full. */
		uint64_t avail, size = o->size ? o->size : 64ull << 20;

		if (err == -ENOSPC && !free_space(path, &avail))
			fprintf(stderr, "%s: %s: no room for %s: the file system has %s free; "
				"choose a smaller size or another file system\n", prog, path,
				size_text(size, a), size_text(avail, b));
		else
			fprintf(stderr, "%s: %s: the file system refuses a file of %s (%s)\n", prog,
				path, size_text(size, a), strerror(-err));
		return;
	}
	case -EUCLEAN:
		if (!stat(path, &st) && S_ISREG(st.st_mode) && st.st_size == 0) {
			fprintf(stderr, "%s: %s: is empty (0 bytes), not an arena; remove it and "
				"create the arena again\n", prog, path);
			return;
		}
		fprintf(stderr, "%s: %s: Arena is damaged or not a pktstore arena (%s); "
			"'pktstore check' says what is wrong\n", prog, path, strerror(-err));
		return;
	case -EPROTONOSUPPORT:
		fprintf(stderr, "%s: %s: Arena format version not supported by this library "
			"(libpktstore %u)\n", prog, path, pktstore_version());
		return;
	default:
		break;
	}
	if (!(o->flags & PKTSTORE_RDONLY) && o->recv_path == PKTSTORE_PATH_AUTO && env && *env &&
	    strcmp(env, "auto"))
		fprintf(stderr, "%s: %s: %s (the receive path '%s' was asked for by "
			"PKTSTORE_RECV_PATH; unset it to let the library choose)\n", prog, path,
			strerror(-err), env);
	else
		fprintf(stderr, "%s: %s: %s\n", prog, path, pktstore_strerror(err));
}
