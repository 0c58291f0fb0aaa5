/* SPDX-License-Identifier: MIT */
/* The 1.0 interface: structs that can grow without breaking programs built
 * against an older header, per-flow user data, trimming a stream in the
 * middle of a record (durably, on a full arena too), and reading a stream
 * across records by copy or by iovec. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../lib/media.h"
#include "util.h"

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(api, .fini = cleanup);

Test(api, version)
{
	cr_assert_eq(pktstore_version(), PKTSTORE_VERSION);
	cr_assert_eq(PKTSTORE_VERSION, PKTSTORE_VERSION_MAJOR * 10000 + PKTSTORE_VERSION_MINOR * 100 +
						 PKTSTORE_VERSION_PATCH);
}

/* A caller built against a shorter pktstore_opts (an older header) and one
 * built against a longer one (a newer header) both work; the newer one's
 * extra fields must be zero, since this library cannot honour them. */
Test(api, options_sized_by_the_caller)
{
	struct {
		struct pktstore_opts o;
		uint64_t newer[2];
	} big = { .o = { .flags = PKTSTORE_CREATE, .size = 2 << 20 } };
	struct pktstore *ps;

	arena_path(MEDIUM_TMPFS, "opts", path, sizeof(path));
	cr_assert_eq(pktstore_open_ex(path, &big.o, offsetof(struct pktstore_opts, mode), &ps), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	big.newer[1] = 1;
	cr_assert_eq(pktstore_open_ex(path, &big.o, sizeof(big), &ps), -E2BIG);
	big.newer[1] = 0;
	cr_assert_eq(pktstore_open_ex(path, &big.o, sizeof(big), &ps), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	cr_assert_eq(pktstore_open_ex(path, &big.o, 3, &ps), -EINVAL);
}

/* The application's explicit receive path wins over PKTSTORE_RECV_PATH;
 * the environment only fills in the automatic choice. */
Test(api, explicit_receive_path_wins_over_the_environment)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 2 << 20,
				   .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore_stats st;
	struct pktstore *ps;

	arena_path(MEDIUM_TMPFS, "envpath", path, sizeof(path));
	cr_assert_eq(setenv("PKTSTORE_RECV_PATH", "no-such-path", 1), 0);
	cr_assert_eq(pktstore_open(path, &o, &ps), 0, "an explicit path must not read the variable");
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.recv_path, PKTSTORE_PATH_RECV);
	cr_assert_eq(pktstore_close(ps), 0);
	o.recv_path = PKTSTORE_PATH_AUTO;
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL, "automatic: the variable is read");
	cr_assert_eq(setenv("PKTSTORE_RECV_PATH", "recv", 1), 0);
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_str_eq(st.recv_path_name, "recv");
	cr_assert_eq(pktstore_close(ps), 0);
	unsetenv("PKTSTORE_RECV_PATH");
}

/* An older caller's stats struct is shorter: nothing past it is written. */
Test(api, stats_sized_by_the_caller)
{
	struct {
		struct pktstore_stats st;
		uint8_t canary[64];
	} s;
	struct pktstore *ps;
	size_t old = offsetof(struct pktstore_stats, broken);

	arena_path(MEDIUM_TMPFS, "stats", path, sizeof(path));
	ps = store_open(path, 2 << 20, PKTSTORE_PATH_RECV);
	memset(&s, 0xa5, sizeof(s));
	cr_assert_eq(pktstore_stats_ex(ps, &s.st, old), 0);
	for (size_t i = old; i < sizeof(s); i++)
		cr_assert_eq(((uint8_t *)&s)[i], 0xa5, "byte %zu written", i);
	cr_assert_eq(s.st.arena_size, 2 << 20);
	/* A newer caller's extra bytes read as zero. */
	cr_assert_eq(pktstore_stats_ex(ps, &s.st, sizeof(s)), 0);
	for (size_t i = 0; i < sizeof(s.canary); i++)
		cr_assert_eq(s.canary[i], 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* Every record and event of a flow carries the flow's user pointer. */
Test(api, flow_user_pointer)
{
	int c, s, tag = 42;
	uint64_t flow;
	struct pktstore_rec r[16];
	struct pktstore_flow_info fi;

	arena_path(MEDIUM_TMPFS, "user", path, sizeof(path));
	struct pktstore *ps = store_open(path, 2 << 20, PKTSTORE_PATH_RECV);

	tcp_pair(&c, &s);
	cr_assert_eq(pktstore_attach(ps, s, 0, &flow), 0);
	cr_assert_eq(pktstore_flow_set_user(ps, flow, &tag), 0);
	cr_assert_eq(pktstore_flow_set_user(ps, flow + 1000, &tag), -ENOENT);
	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), 0);
	cr_assert_eq(fi.user, &tag);
	send_stream(c, 3, 0, 500);
	shutdown(c, SHUT_WR);
	bool ended = false;
	uint64_t got = 0;

	while (!ended) {
		int n = pktstore_recv_persist_any(ps, r, 16, 0);

		cr_assert_gt(n, 0, "%s", pktstore_strerror(n));
		for (int i = 0; i < n; i++) {
			cr_assert_eq(r[i].user, &tag);
			cr_assert_eq(r[i].reserved[0] | r[i].reserved[1] | r[i].reserved[2], 0);
			if (r[i].flags & PKTSTORE_REC_END) {
				cr_assert_eq(r[i].status, 0);
				ended = true;
			} else {
				got += r[i].len;
			}
		}
	}
	cr_assert_eq(got, 500);
	struct pktstore_query q = { .kind = PKTSTORE_BY_SEQ, .flow = flow, .hi = UINT64_MAX };

	cr_assert_gt(pktstore_range(ps, &q, r, 16), 0);
	cr_assert_eq(r[0].user, &tag);
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

static uint64_t five_records(struct pktstore *ps, uint64_t *ids)
{
	uint64_t flow;
	uint8_t buf[100];
	struct pktstore_rec r;

	cr_assert_eq(pktstore_flow_create(ps, 5, &flow), 0);
	for (int i = 0; i < 5; i++) {
		fill_stream(flow, (uint64_t)i * 100, buf, 100);
		cr_assert_eq(pktstore_append(ps, flow, buf, 100, &r), 0);
		ids[i] = r.id;
	}
	return flow;
}

static void check_trimmed_at_250(struct pktstore *ps, uint64_t flow, const uint64_t *ids)
{
	struct pktstore_flow_info fi;
	struct pktstore_rec r;
	uint8_t buf[400];

	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), 0);
	cr_assert_eq(fi.first_seq, 250);
	cr_assert_eq(fi.next_seq, 500);
	cr_assert_eq(fi.records, 3, "the record across 250 stays");
	cr_assert_eq(pktstore_get(ps, ids[0], &r, 0), -ENOENT);
	cr_assert_eq(pktstore_get(ps, ids[1], &r, 0), -ENOENT);
	cr_assert_eq(pktstore_get(ps, ids[2], &r, 0), 0);
	cr_assert_eq(pktstore_read(ps, flow, 100, buf, 10), -ENOENT, "below the trim point");
	cr_assert_eq(pktstore_read(ps, flow, 250, buf, sizeof(buf)), 250);
	cr_assert(check_stream(flow, 250, buf, 250));
	cr_assert_eq(pktstore_read(ps, flow, 500, buf, sizeof(buf)), 0, "the end");
}

Test(api, trim_in_the_middle_of_a_record)
{
	uint64_t ids[5];

	arena_path(MEDIUM_TMPFS, "trim", path, sizeof(path));
	struct pktstore *ps = store_open(path, 2 << 20, PKTSTORE_PATH_RECV);
	uint64_t flow = five_records(ps, ids);

	cr_assert_eq(pktstore_trim(ps, flow, 501), -ERANGE);
	cr_assert_eq(pktstore_trim(ps, flow, 250), 0);
	cr_assert_eq(pktstore_trim(ps, flow, 100), 0, "an older point changes nothing");
	check_trimmed_at_250(ps, flow, ids);
	cr_assert_eq(pktstore_close(ps), 0);
	ps = store_open(path, 2 << 20, PKTSTORE_PATH_RECV);
	check_trimmed_at_250(ps, flow, ids);
	/* Trimming everything keeps the stream's position. */
	cr_assert_eq(pktstore_trim(ps, flow, 500), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	ps = store_open(path, 2 << 20, PKTSTORE_PATH_RECV);
	struct pktstore_flow_info fi;

	cr_assert_eq(pktstore_flow_info(ps, flow, &fi), 0);
	cr_assert_eq(fi.records, 0);
	cr_assert_eq(fi.next_seq, 500);
	cr_assert_eq(fi.first_seq, 500);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* The trim point is written before any record is released: an image with
 * the point durable and no release done yet must read as trimmed. */
Test(api, trim_point_alone_survives_a_crash)
{
	uint64_t ids[5];
	struct ps_superblock sb;

	arena_path(MEDIUM_TMPFS, "trimcrash", path, sizeof(path));
	struct pktstore *ps = store_open(path, 2 << 20, PKTSTORE_PATH_RECV);
	uint64_t flow = five_records(ps, ids);

	/* Trim, then undo the releases on the media: what power loss leaves
	 * when it comes between the trim point and the release marks. */
	cr_assert_eq(pktstore_trim(ps, flow, 250), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	int fd = open(path, O_RDWR);

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &sb, sizeof(sb), 0), (ssize_t)sizeof(sb));
	for (int i = 0; i < 5; i++) {
		struct ps_desc d;
		off_t at = (off_t)(sb.desc_off + (ids[i] % sb.ndesc) * sizeof(d));

		cr_assert_eq(pread(fd, &d, sizeof(d), at), (ssize_t)sizeof(d));
		if (d.mark != PS_DESC_RELEASED)
			continue;
		d.mark = 0;
		d.crc = pktstore_crc32c(0, &d, offsetof(struct ps_desc, crc));
		cr_assert_eq(pwrite(fd, &d, sizeof(d), at), (ssize_t)sizeof(d));
	}
	close(fd);
	ps = store_open(path, 2 << 20, PKTSTORE_PATH_RECV);
	check_trimmed_at_250(ps, flow, ids);
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.invalid_descriptors + st.damaged_records, 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* Trim needs no space: it is how a full arena gets space back. */
Test(api, trim_on_a_full_arena)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 1 << 20,
				   .segment_size = 64 << 10, .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore *ps;
	static uint8_t buf[30000];
	struct pktstore_rec r;
	uint64_t flow, end = 0;

	arena_path(MEDIUM_TMPFS, "trimfull", path, sizeof(path));
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_flow_create(ps, 0, &flow), 0);
	while (pktstore_append(ps, flow, buf, sizeof(buf), &r) == 0)
		end = r.seq + r.len;
	cr_assert_eq(pktstore_append(ps, flow, buf, sizeof(buf), &r), -ENOSPC);
	cr_assert_eq(pktstore_trim(ps, flow, end / 2), 0);
	cr_assert_eq(pktstore_append(ps, flow, buf, sizeof(buf), &r), 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(api, readv_points_into_the_arena)
{
	uint64_t ids[5];
	struct iovec iov[8];

	arena_path(MEDIUM_TMPFS, "readv", path, sizeof(path));
	struct pktstore *ps = store_open(path, 2 << 20, PKTSTORE_PATH_RECV);
	uint64_t flow = five_records(ps, ids);

	cr_assert_eq(pktstore_readv(ps, flow, 150, 300, iov, 8, 0), 4);
	uint64_t at = 150;

	for (int i = 0; i < 4; i++) {
		cr_assert(check_stream(flow, at, iov[i].iov_base, iov[i].iov_len));
		at += iov[i].iov_len;
	}
	cr_assert_eq(at, 450);
	cr_assert_eq(pktstore_readv(ps, flow, 0, 500, iov, 2, PKTSTORE_NO_VERIFY), 2, "iovcnt bounds");
	cr_assert_eq(iov[0].iov_len + iov[1].iov_len, 200);
	/* A gap left by a release stops the walk. */
	cr_assert_eq(pktstore_release(ps, ids[2]), 0);
	cr_assert_eq(pktstore_readv(ps, flow, 0, 500, iov, 8, 0), 2);
	cr_assert_eq(pktstore_readv(ps, flow, 250, 10, iov, 8, 0), -ENOENT);
	uint8_t buf[500];

	cr_assert_eq(pktstore_read(ps, flow, 50, buf, sizeof(buf)), 150);
	cr_assert(check_stream(flow, 50, buf, 150));
	cr_assert_eq(pktstore_readv(ps, flow, 0, 10, iov, 0, 0), -EINVAL);
	cr_assert_eq(pktstore_close(ps), 0);
}
