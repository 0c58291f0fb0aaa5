/* SPDX-License-Identifier: MIT */
/* The arena file is untrusted input: bad arguments, missing, empty,
 * garbage, truncated and bit-flipped arenas get a clear error or a safe
 * open, never a crash; undamaged records stay readable. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../lib/media.h"
#include "util.h"

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(arena, .fini = cleanup);

static void write_file(const char *p, const void *buf, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

static void poke(const char *p, uint64_t off, const void *buf, size_t n)
{
	int fd = open(p, O_WRONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static int try_open(const char *p)
{
	struct pktstore *ps = NULL;
	int ret = pktstore_open(p, NULL, &ps);

	if (!ret)
		cr_assert_eq(pktstore_close(ps), 0);
	return ret;
}

/* An arena with `n` appended records of known content. */
static void make_arena(const char *p, int n)
{
	struct pktstore *ps = store_open(p, 4 << 20, PKTSTORE_PATH_RECV);
	uint64_t flow;
	uint8_t buf[700];

	cr_assert_eq(pktstore_flow_create(ps, 1, &flow), 0);
	for (int i = 0; i < n; i++) {
		fill_stream(11, (uint64_t)i * sizeof(buf), buf, sizeof(buf));
		cr_assert_eq(pktstore_append(ps, flow, buf, sizeof(buf), NULL), 0);
	}
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(arena, bad_arguments)
{
	struct pktstore *ps;
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 4096 };

	arena_path(MEDIUM_TMPFS, "args", path, sizeof(path));
	cr_assert_eq(pktstore_open(NULL, NULL, &ps), -EINVAL);
	cr_assert_eq(pktstore_open(path, NULL, NULL), -EINVAL);
	cr_assert_eq(pktstore_open(path, NULL, &ps), -ENOENT);
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL, "too small");
	o.size = 4 << 20;
	o.flags = 1 << 7;
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL, "unknown flag");
	o.flags = PKTSTORE_CREATE;
	o.segment_size = 1000;
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL, "segment not a page multiple");
	o.segment_size = 0;
	o.recv_path = 17;
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL);
	o.recv_path = PKTSTORE_PATH_AUTO;
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	o.flags |= PKTSTORE_EXCL;
	struct pktstore *ps2;

	cr_assert_eq(pktstore_open(path, &o, &ps2), -EEXIST);

	uint64_t flow;
	int pfd[2];
	struct pktstore_rec r;

	cr_assert_eq(pipe(pfd), 0);
	cr_assert_eq(pktstore_attach(ps, pfd[0], 0, &flow), -ENOTSOCK);
	int udp = socket(AF_INET, SOCK_DGRAM, 0);
	int tcp = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_eq(pktstore_attach(ps, udp, 0, &flow), -EPROTOTYPE);
	cr_assert_eq(pktstore_attach(ps, tcp, 0, &flow), -ENOTCONN);
	cr_assert_eq(pktstore_attach(ps, -1, 0, &flow), -EINVAL);
	cr_assert_eq(pktstore_recv_persist(ps, 12345, &r, 1, 0), -ENOENT);
	cr_assert_eq(pktstore_recv_persist(ps, 1, &r, 0, 0), -EINVAL);
	cr_assert_eq(pktstore_recv_persist(ps, 1, &r, 1, 1 << 9), -EINVAL);
	cr_assert_eq(pktstore_detach(ps, 12345), -ENOENT);
	cr_assert_eq(pktstore_release(ps, 12345), -ENOENT);
	cr_assert_eq(pktstore_release(ps, 0), -EINVAL);
	cr_assert_eq(pktstore_get(ps, 1, &r, 1 << 5), -EINVAL);
	struct pktstore_query q = { .kind = PKTSTORE_BY_ID, .lo = 5, .hi = 4 };

	cr_assert_eq(pktstore_range(ps, &q, &r, 1), -EINVAL);
	cr_assert_eq(pktstore_flow_create(ps, 0, &flow), 0);
	static char big[2 << 20];

	cr_assert_eq(pktstore_append(ps, flow, big, sizeof(big), NULL), -EMSGSIZE);
	/* An errno value reads as the OS says: a missing file opened is not
	 * "no such record", a full disk is not "arena full". */
	cr_assert_str_eq(pktstore_strerror(-ENOSPC), strerror(ENOSPC));
	cr_assert_str_eq(pktstore_strerror(-ENOENT), strerror(ENOENT));
	cr_assert_str_eq(pktstore_strerror(-EINVAL), "Invalid argument");
	cr_assert(strstr(pktstore_strerror(PKTSTORE_EFLOWS), "Flow table full"));
	cr_assert(strstr(pktstore_strerror(PKTSTORE_EBROKEN), "failed persist"));
	cr_assert_str_eq(pktstore_strerror(-99999), "Unknown error");
	cr_assert_str_eq(pktstore_strerror(5), "Unknown error");
	cr_assert_eq(pktstore_close(ps), 0);
	close(pfd[0]);
	close(pfd[1]);
	close(udp);
	close(tcp);
}

Test(arena, not_an_arena)
{
	static uint8_t junk[1 << 20];

	arena_path(MEDIUM_FILE, "junk", path, sizeof(path));
	write_file(path, junk, 0);
	cr_assert_eq(try_open(path), -EUCLEAN, "empty file without CREATE");
	srand(1);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)rand();
	write_file(path, junk, sizeof(junk));
	cr_assert_eq(try_open(path), -EUCLEAN);
	/* CREATE never clobbers a file that is not an arena. */
	struct pktstore *ps;
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 4 << 20 };

	cr_assert_eq(pktstore_open(path, &o, &ps), -EUCLEAN);
	write_file(path, junk, 100);
	cr_assert_eq(try_open(path), -EUCLEAN, "shorter than a superblock");
}

Test(arena, one_store_per_arena)
{
	struct pktstore *a, *b;

	arena_path(MEDIUM_TMPFS, "twice", path, sizeof(path));
	a = store_open(path, 4 << 20, PKTSTORE_PATH_RECV);
	cr_assert_eq(pktstore_open(path, NULL, &b), -EBUSY);
	cr_assert_eq(pktstore_close(a), 0);
	cr_assert_eq(pktstore_open(path, NULL, &b), 0);
	cr_assert_eq(pktstore_close(b), 0);
}

/* A create that died before its superblocks were written left a file of
 * the right size with nothing in it: create again starts over. */
Test(arena, interrupted_create_starts_over)
{
	arena_path(MEDIUM_FILE, "interrupted", path, sizeof(path));
	cr_assert_eq(truncate(path, 0) == 0 || errno == ENOENT, 1);
	int fd = open(path, O_RDWR | O_CREAT, 0644);

	cr_assert(fd >= 0);
	cr_assert_eq(ftruncate(fd, 4 << 20), 0);
	cr_assert_eq(pwrite(fd, "old", 3, 1 << 20), 3); /* stale bytes past the superblocks */
	close(fd);
	cr_assert_eq(try_open(path), -EUCLEAN, "without CREATE it is not an arena");
	make_arena(path, 3);
	struct pktstore *ps = store_open(path, 0, PKTSTORE_PATH_RECV);
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.recovered_records, 3);
	cr_assert_eq(st.arena_size, 4 << 20);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(arena, truncated_and_grown)
{
	arena_path(MEDIUM_FILE, "trunc", path, sizeof(path));
	make_arena(path, 10);
	cr_assert_eq(truncate(path, 2 << 20), 0);
	cr_assert_eq(try_open(path), -EUCLEAN);
	cr_assert_eq(truncate(path, 8 << 20), 0);
	cr_assert_eq(try_open(path), -EUCLEAN);
}

Test(arena, superblock_second_copy)
{
	struct ps_superblock bad;

	arena_path(MEDIUM_TMPFS, "sb", path, sizeof(path));
	make_arena(path, 10);
	memset(&bad, 0xA5, sizeof(bad));
	poke(path, 0, &bad, sizeof(bad));

	struct pktstore *ps = store_open(path, 0, PKTSTORE_PATH_RECV);
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.superblock_repairs, 1);
	cr_assert_eq(st.recovered_records, 10);
	cr_assert_eq(pktstore_close(ps), 0);

	/* Repaired: both copies good again. Now damage both. */
	poke(path, 0, &bad, sizeof(bad));
	poke(path, PS_SB_SIZE, &bad, sizeof(bad));
	cr_assert_eq(try_open(path), -EUCLEAN);
}

Test(arena, newer_format_version)
{
	struct ps_superblock sb;
	int fd;

	arena_path(MEDIUM_TMPFS, "ver", path, sizeof(path));
	make_arena(path, 1);
	fd = open(path, O_RDWR);
	cr_assert_eq(pread(fd, &sb, sizeof(sb), 0), (ssize_t)sizeof(sb));
	sb.version = 99;
	sb.crc = pktstore_crc32c(0, &sb, offsetof(struct ps_superblock, crc));
	cr_assert_eq(pwrite(fd, &sb, sizeof(sb), 0), (ssize_t)sizeof(sb));
	cr_assert_eq(pwrite(fd, &sb, sizeof(sb), PS_SB_SIZE), (ssize_t)sizeof(sb));
	close(fd);
	cr_assert_eq(try_open(path), -EPROTONOSUPPORT);
}

/* Flip random bytes in the flow table and descriptor log: open succeeds,
 * the damage is counted, every record get() serves is intact. */
Test(arena, random_metadata_damage)
{
	struct ps_superblock sb;
	char pristine[300];
	int fd;

	arena_path(MEDIUM_TMPFS, "flip", path, sizeof(path));
	snprintf(pristine, sizeof(pristine), "%s.orig", path);
	make_arena(pristine, 200);
	fd = open(pristine, O_RDONLY);
	cr_assert_eq(pread(fd, &sb, sizeof(sb), 0), (ssize_t)sizeof(sb));
	close(fd);

	srand(12345);
	for (int round = 0; round < 60; round++) {
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "cp %s %s", pristine, path);
		cr_assert_eq(system(cmd), 0);
		for (int k = 0; k < 1 + round % 8; k++) {
			uint64_t span = sb.data_off + 200 * 700 - sb.flow_off;
			uint64_t off = sb.flow_off + (uint64_t)rand() % span;
			uint8_t b = (uint8_t)(1u << (rand() % 8)), cur;

			fd = open(path, O_RDWR);
			cr_assert_eq(pread(fd, &cur, 1, (off_t)off), 1);
			cur ^= b;
			cr_assert_eq(pwrite(fd, &cur, 1, (off_t)off), 1);
			close(fd);
		}
		/* Odd rounds scrub at open (PKTSTORE_VERIFY) and must count
		 * exactly what get() then serves. Even rounds trust the
		 * superblock's verified_id and hash nothing: get() still never
		 * serves damaged bytes, and what it found is counted at the
		 * next open. */
		struct pktstore_opts o = { .flags = round % 2 ? PKTSTORE_VERIFY : 0 };
		struct pktstore *ps = NULL;

		cr_assert_eq(pktstore_open(path, &o, &ps), 0, "round %d", round);
		struct pktstore_stats st;
		struct pktstore_rec r;
		uint64_t good = 0, bad = 0;

		cr_assert_eq(pktstore_stats(ps, &st), 0);
		for (uint64_t id = 1; id <= 200; id++) {
			int ret = pktstore_get(ps, id, &r, 0);

			if (ret == 0) {
				cr_assert(check_stream(11, r.seq, r.data, r.len), "id %lu", id);
				good++;
			} else {
				cr_assert(ret == -ENOENT || ret == -EBADMSG);
				bad++;
			}
		}
		if (round % 2) {
			cr_assert_eq(good, st.records);
			cr_assert_eq(bad, 200 - st.records);
		} else {
			cr_assert_geq(st.records, good);
			cr_assert_eq(good + bad, 200);
		}
		cr_assert_eq(pktstore_close(ps), 0);
		if (round % 2 == 0) {
			cr_assert_eq(pktstore_open(path, NULL, &ps), 0, "round %d", round);
			cr_assert_eq(pktstore_stats(ps, &st), 0);
			cr_assert_eq(st.records, good, "round %d: damage get() met was forgotten",
				     round);
			cr_assert_eq(pktstore_close(ps), 0);
		}
	}
	unlink(pristine);
}

/* The short-buffer CRC32C path and the ISA-L path agree, at every length
 * around the switch, and both match the standard check value. */
Test(arena, crc32c_paths_agree)
{
	static unsigned char buf[1024];

	cr_assert_eq(pktstore_crc32c(0, "123456789", 9), 0xE3069283);
	srand(7);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)rand();
	for (size_t len = 0; len <= 600; len++) {
		/* Split so one half takes the short path and the whole does not. */
		uint32_t whole = pktstore_crc32c(0, buf, len);
		uint32_t split = pktstore_crc32c(pktstore_crc32c(0, buf, len / 3), buf + len / 3,
						 len - len / 3);

		cr_assert_eq(whole, split, "length %zu", len);
	}
}

/* Pages of [lo, hi) in this process's mapping of the file at path that
 * have a page-table entry: what the library has touched since it mapped
 * it (plus the kernel's fault-around, a few pages). */
static size_t pages_mapped(const char *path, uint64_t lo, uint64_t hi)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	int pm = open("/proc/self/pagemap", O_RDONLY);
	char line[512];
	size_t n = 0;
	long page = sysconf(_SC_PAGESIZE);
	int found = 0;

	cr_assert(maps && pm >= 0);
	while (fgets(line, sizeof(line), maps)) {
		unsigned long start, end, off;

		if (!strstr(line, path) ||
		    sscanf(line, "%lx-%lx %*s %lx", &start, &end, &off) != 3 || off)
			continue;
		found = 1;
		for (uint64_t a = start + lo; a < start + hi && a < end; a += (uint64_t)page) {
			uint64_t e;

			cr_assert_eq(pread(pm, &e, sizeof(e), (off_t)(a / (uint64_t)page * 8)),
				     (ssize_t)sizeof(e));
			n += (e >> 63) & 1;
		}
		break;
	}
	fclose(maps);
	close(pm);
	cr_assert(found, "no mapping of %s in /proc/self/maps", path);
	return n;
}

/* A new arena says at once that no record id was handed out: an open of it
 * (the creating one included) reads no descriptor slot past the first,
 * rather than the whole log, which is O(arena size): gigabytes on a large
 * device. */
Test(arena, new_arena_bounds_its_scan)
{
	struct ps_superblock sb[2];
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | PKTSTORE_EXCL, .size = 64 << 20 };
	struct pktstore *ps;
	long page = sysconf(_SC_PAGESIZE);
	int fd;

	arena_path(MEDIUM_TMPFS, "fresh", path, sizeof(path));
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &sb[0], sizeof(sb[0]), 0), (ssize_t)sizeof(sb[0]));
	cr_assert_eq(pread(fd, &sb[1], sizeof(sb[1]), PS_SB_SIZE), (ssize_t)sizeof(sb[1]));
	for (int c = 0; c < 2; c++)
		cr_assert(sb[c].id_limit >= 1 && sb[c].id_limit <= sb[c].ndesc,
			  "copy %d: id_limit %lu of %lu slots", c, (unsigned long)sb[c].id_limit,
			  (unsigned long)sb[c].ndesc);

	/* Reopened, the arena is mapped afresh. Touching slot 0 maps its page
	 * and the kernel's fault-around, or on DAX the 2 MiB page holding it:
	 * all within the log's first 4 MiB. Nothing past them may be mapped. */
	const uint64_t near = 4 << 20;
	uint64_t lo = sb[0].desc_off, hi = lo + sb[0].ndesc * sizeof(struct ps_desc);
	size_t npages = (size_t)((hi - lo - near) / (uint64_t)page);

	cr_assert_gt(hi - lo, near + (1 << 20), "the log is too small to tell");
	cr_assert_eq(pktstore_open(path, NULL, &ps), 0);
	size_t touched = pages_mapped(path, lo + near, hi);

	cr_assert_eq(pktstore_close(ps), 0);
	cr_assert_eq(touched, 0,
		     "an open of an empty arena read %zu of the %zu pages past the log's first "
		     "4 MiB", touched, npages);
	close(fd);
	unlink(path);
}
