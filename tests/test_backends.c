/* SPDX-License-Identifier: MIT */
/*
 * The one list of receive backends (lib/backend.c) drives the names
 * PKTSTORE_RECV_PATH takes, the range of recv_path and the choice: every
 * path a store reports by name opens again by that name, an unknown path or
 * name is refused before any file is made, and zcrx is tried only with a
 * NIC queue named.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "util.h"

static char path[256];

static void cleanup(void)
{
	unsetenv("PKTSTORE_RECV_PATH");
	unlink(path);
}

TestSuite(backends, .init = cleanup, .fini = cleanup);

static bool exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

/* Open by path number, then again by the name the store reported. */
static void name_round_trip(enum pktstore_recv_path rp)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 4 << 20,
				   .segment_size = 64 << 10, .recv_path = rp };
	struct pktstore_stats st;
	struct pktstore *ps;

	arena_path(MEDIUM_TMPFS, "backends", path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	skip_if_path_missing(rp, ret, path);
	cr_assert_eq(ret, 0, "%s", pktstore_strerror(ret));
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.recv_path, rp);
	cr_assert_eq(pktstore_close(ps), 0);

	char name[sizeof(st.recv_path_name)];

	memcpy(name, st.recv_path_name, sizeof(name));
	cr_assert_eq(setenv("PKTSTORE_RECV_PATH", name, 1), 0);
	o.flags = 0;
	o.recv_path = PKTSTORE_PATH_AUTO;
	cr_assert_eq(pktstore_open(path, &o, &ps), 0, "PKTSTORE_RECV_PATH=%s", name);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.recv_path, rp, "PKTSTORE_RECV_PATH=%s gave %s", name, st.recv_path_name);
	cr_assert_eq(pktstore_close(ps), 0);
	unsetenv("PKTSTORE_RECV_PATH");
	unlink(path);
}

Test(backends, uring_inc_by_name)
{
	name_round_trip(PKTSTORE_PATH_URING_INC);
}

Test(backends, uring_fixed_by_name)
{
	name_round_trip(PKTSTORE_PATH_URING_FIXED);
}

Test(backends, recv_by_name)
{
	name_round_trip(PKTSTORE_PATH_RECV);
}

Test(backends, unknown_paths_make_no_file)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 4 << 20 };
	struct pktstore *ps;

	arena_path(MEDIUM_TMPFS, "backends", path, sizeof(path));
	o.recv_path = (enum pktstore_recv_path)(PKTSTORE_PATH_ZCRX + 1);
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL);
	cr_assert(!exists(path));
	o.recv_path = PKTSTORE_PATH_AUTO;
	cr_assert_eq(setenv("PKTSTORE_RECV_PATH", "uring", 1), 0);
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL);
	cr_assert(!exists(path));
	cr_assert_eq(setenv("PKTSTORE_RECV_PATH", "auto", 1), 0);
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(backends, zcrx_needs_a_queue_named)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 4 << 20,
				   .recv_path = PKTSTORE_PATH_ZCRX };
	struct pktstore_stats st;
	struct pktstore *ps;
	char *saved = getenv("PKTSTORE_ZCRX") ? strdup(getenv("PKTSTORE_ZCRX")) : NULL;

	unsetenv("PKTSTORE_ZCRX");
	arena_path(MEDIUM_TMPFS, "backends", path, sizeof(path));
	/* Demanded without a queue: refused before the arena is made. */
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL);
	cr_assert(!exists(path));
	/* Automatic without a queue: not tried, and no reason given for it. */
	o.recv_path = PKTSTORE_PATH_AUTO;
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_str_neq(st.recv_path_name, "zcrx");
	cr_assert_null(strstr(st.fallback_reason, "zcrx"), "%s", st.fallback_reason);
	cr_assert_eq(pktstore_close(ps), 0);
	if (saved) {
		setenv("PKTSTORE_ZCRX", saved, 1);
		free(saved);
	}
}
