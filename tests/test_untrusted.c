/* SPDX-License-Identifier: MIT */
/* Arena files crafted by hand, with valid checksums, as an attacker or a
 * rotting medium could leave them: nothing in them may crash the library,
 * bring back a released record or make a later write vanish. Also what a
 * create leaves behind: nothing on failure, a private file on success. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "../lib/media.h"
#include "util.h"

static char path[256];

static void cleanup(void)
{
	unlink(path);
}

TestSuite(untrusted, .fini = cleanup);

static void pread_all(const char *p, uint64_t off, void *buf, size_t n)
{
	int fd = open(p, O_RDONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void pwrite_all(const char *p, uint64_t off, const void *buf, size_t n)
{
	int fd = open(p, O_WRONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void read_sb(const char *p, struct ps_superblock *sb)
{
	pread_all(p, 0, sb, sizeof(*sb));
}

/* Write sb into both copies with a checksum that holds. */
static void write_sb_both(const char *p, struct ps_superblock *sb)
{
	sb->crc = pktstore_crc32c(0, sb, offsetof(struct ps_superblock, crc));
	pwrite_all(p, 0, sb, sizeof(*sb));
	pwrite_all(p, PS_SB_SIZE, sb, sizeof(*sb));
}

static void desc_read(const char *p, const struct ps_superblock *sb, uint64_t slot,
		      struct ps_desc *d)
{
	pread_all(p, sb->desc_off + slot * sizeof(*d), d, sizeof(*d));
}

static void desc_write(const char *p, const struct ps_superblock *sb, uint64_t slot,
		       const struct ps_desc *d)
{
	pwrite_all(p, sb->desc_off + slot * sizeof(*d), d, sizeof(*d));
}

static struct pktstore *open_rw(const char *p)
{
	struct pktstore *ps = NULL;
	int ret = pktstore_open(p, NULL, &ps);

	cr_assert_eq(ret, 0, "open: %s", pktstore_strerror(ret));
	return ps;
}

/* A store with one local flow and n appended 100-byte records. */
static uint64_t make_records(const char *p, int n, uint64_t *ids)
{
	struct pktstore *ps = store_open(p, 4 << 20, PKTSTORE_PATH_RECV);
	uint64_t flow;
	uint8_t buf[100];
	struct pktstore_rec r;

	cr_assert_eq(pktstore_flow_create(ps, 7, &flow), 0);
	for (int i = 0; i < n; i++) {
		fill_stream(flow, (uint64_t)i * sizeof(buf), buf, sizeof(buf));
		cr_assert_eq(pktstore_append(ps, flow, buf, sizeof(buf), &r), 0);
		if (ids)
			ids[i] = r.id;
	}
	cr_assert_eq(pktstore_close(ps), 0);
	return flow;
}

/* desc_off near 2^64: desc_off + ndesc * 64 wraps around and used to pass
 * the layout check, and the first descriptor read faulted. */
Test(untrusted, superblock_offsets_that_wrap)
{
	struct ps_superblock sb;

	arena_path(MEDIUM_TMPFS, "wrap", path, sizeof(path));
	make_records(path, 3, NULL);
	read_sb(path, &sb);
	struct ps_superblock good = sb;

	sb.desc_off = 0 - sb.ndesc * sizeof(struct ps_desc);
	write_sb_both(path, &sb);
	struct pktstore *ps = NULL;

	cr_assert_eq(pktstore_open(path, NULL, &ps), -EUCLEAN);

	/* The same through the data offset and the flow table. */
	sb = good;
	sb.data_off = 0 - sb.nsegs * sb.seg_size;
	write_sb_both(path, &sb);
	cr_assert_eq(pktstore_open(path, NULL, &ps), -EUCLEAN);
	sb = good;
	sb.ndesc = (0 - sb.desc_off) / sizeof(struct ps_desc) + 1;
	write_sb_both(path, &sb);
	cr_assert_eq(pktstore_open(path, NULL, &ps), -EUCLEAN);

	write_sb_both(path, &good);
	ps = open_rw(path);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* A valid descriptor whose id is near the top of the id space made the next
 * id wrap to 0, the free marker: append then "succeeded" with id 0 and the
 * record was gone after reopen. */
Test(untrusted, huge_record_id)
{
	struct ps_superblock sb;
	struct ps_desc d;

	arena_path(MEDIUM_TMPFS, "bigid", path, sizeof(path));
	uint64_t flow = make_records(path, 1, NULL);

	read_sb(path, &sb);
	desc_read(path, &sb, 1, &d);
	cr_assert_eq(d.id, 1);
	/* Move it to the slot UINT64_MAX names, with a checksum that holds. */
	uint64_t big = UINT64_MAX;
	uint64_t slot = big % sb.ndesc;

	desc_write(path, &sb, 1, &(struct ps_desc){ 0 });
	sb.id_limit = 0; /* unknown: open scans every slot */
	write_sb_both(path, &sb);
	d.id = big;
	d.crc = pktstore_crc32c(0, &d, offsetof(struct ps_desc, crc));
	desc_write(path, &sb, slot, &d);

	struct pktstore *ps = open_rw(path);
	struct pktstore_stats st;
	struct pktstore_rec r;
	uint8_t buf[100];

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.invalid_descriptors, 1, "an id beyond the id space is not a record");
	fill_stream(flow, 0, buf, sizeof(buf));
	cr_assert_eq(pktstore_append(ps, flow, buf, sizeof(buf), &r), 0);
	cr_assert_neq(r.id, 0);
	uint64_t id = r.id;

	cr_assert_eq(pktstore_close(ps), 0);
	ps = open_rw(path);
	cr_assert_eq(pktstore_get(ps, id, &r, 0), 0, "the appended record survives reopen");
	cr_assert(check_stream(flow, 0, r.data, r.len));
	cr_assert_eq(pktstore_close(ps), 0);
}

/* A release used to clear only the id word. The id of a released record at
 * the top of the log was then handed out again after a reopen, and a power
 * loss that tore the new descriptor could leave its id word over the old 56
 * bytes: the old record, checksum valid, back from the dead. */
Test(untrusted, released_record_stays_released)
{
	struct ps_superblock sb;
	uint64_t ids[4];

	arena_path(MEDIUM_TMPFS, "rel", path, sizeof(path));
	uint64_t flow = make_records(path, 4, ids);
	struct pktstore *ps = open_rw(path);

	cr_assert_eq(pktstore_release(ps, ids[3]), 0);
	cr_assert_eq(pktstore_close(ps), 0);

	/* Ids are never handed out twice, even across sessions. */
	ps = open_rw(path);
	struct pktstore_rec r;
	uint8_t buf[100];

	fill_stream(flow, 400, buf, sizeof(buf));
	cr_assert_eq(pktstore_append(ps, flow, buf, sizeof(buf), &r), 0);
	cr_assert_gt(r.id, ids[3], "id %lu reused", (unsigned long)r.id);
	cr_assert_eq(pktstore_close(ps), 0);

	/* The torn write itself: the released slot gets back the id word its
	 * record had, every other byte as the release left it. */
	read_sb(path, &sb);
	uint64_t slot = ids[3] % sb.ndesc;
	struct ps_desc d;

	desc_read(path, &sb, slot, &d);
	d.id = ids[3];
	desc_write(path, &sb, slot, &d);
	ps = open_rw(path);
	cr_assert_eq(pktstore_get(ps, ids[3], &r, 0), -ENOENT, "a released record came back");
	cr_assert_eq(pktstore_close(ps), 0);
}

/* A zeroed id word used to look exactly like a release: the record vanished
 * and nothing reported it. Now a release leaves its own mark, and a zeroed
 * word over a live descriptor is damage that open counts. */
Test(untrusted, zeroed_id_word_is_reported)
{
	struct ps_superblock sb;
	uint64_t ids[3];

	arena_path(MEDIUM_TMPFS, "zero", path, sizeof(path));
	make_records(path, 3, ids);
	struct pktstore *ps = open_rw(path);

	cr_assert_eq(pktstore_release(ps, ids[0]), 0); /* a real release */
	cr_assert_eq(pktstore_close(ps), 0);
	read_sb(path, &sb);
	uint64_t zero = 0;

	pwrite_all(path, sb.desc_off + (ids[1] % sb.ndesc) * sizeof(struct ps_desc), &zero, 8);

	struct pktstore_opts ro = { .flags = PKTSTORE_RDONLY };
	struct pktstore_stats st;

	cr_assert_eq(pktstore_open(path, &ro, &ps), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.records, 1);
	cr_assert_eq(st.invalid_descriptors, 1, "the zeroed word is damage, the release is not");
	cr_assert_eq(pktstore_close(ps), 0);
}

/* Received bytes are nobody else's business: a new arena is 0600. */
Test(untrusted, new_arena_is_private)
{
	struct stat st;

	arena_path(MEDIUM_TMPFS, "mode", path, sizeof(path));
	mode_t old = umask(0);

	make_records(path, 1, NULL);
	umask(old);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", (unsigned)(st.st_mode & 0777));
}

/* A create that fails leaves nothing behind, so the retry is a plain create
 * again (it used to find a 0-byte file: "File exists", then "damaged"). */
Test(untrusted, failed_create_leaves_nothing)
{
	struct pktstore *ps = NULL;
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 1ull << 60 };

	arena_path(MEDIUM_FILE, "fail", path, sizeof(path));
	int ret = pktstore_open(path, &o, &ps);

	cr_assert_lt(ret, 0, "a 1 EiB arena cannot be allocated");
	cr_assert_eq(access(path, F_OK), -1, "%s left behind after %s", path,
		     pktstore_strerror(ret));

	/* Too small a size is refused before the file is made. */
	o.size = 4096;
	cr_assert_eq(pktstore_open(path, &o, &ps), -EINVAL);
	cr_assert_eq(access(path, F_OK), -1);

	/* A backend that cannot start fails the open after the file exists. */
	o = (struct pktstore_opts){ .flags = PKTSTORE_CREATE | PKTSTORE_EXCL, .size = 4 << 20,
				    .recv_path = PKTSTORE_PATH_ZCRX, .zcrx = "nonexistent0:0" };
	ret = pktstore_open(path, &o, &ps);
	cr_assert_lt(ret, 0);
	cr_assert_eq(access(path, F_OK), -1, "%s left behind after %s", path,
		     pktstore_strerror(ret));

	/* And the retry succeeds. */
	o = (struct pktstore_opts){ .flags = PKTSTORE_CREATE | PKTSTORE_EXCL, .size = 4 << 20 };
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* A flow id limit at the top of the range: the next flow's id must stay
 * below what the io_uring backends use as tag bits (a flow whose id was
 * 2^62 had its receives taken for hang-up polls, and close hung), and
 * raising the limit must not write a superblock the next open refuses. */
Test(untrusted, flow_id_limit_at_the_top)
{
	static const uint64_t limits[] = { PS_FLOW_ID_MAX, PS_FLOW_ID_MAX - 3 };

	for (unsigned k = 0; k < 2; k++) {
		struct ps_superblock sb;
		struct pktstore *ps;
		uint64_t flow;

		arena_path(MEDIUM_TMPFS, "flowlimit", path, sizeof(path));
		make_records(path, 1, NULL);
		read_sb(path, &sb);
		sb.flow_id_limit = limits[k];
		write_sb_both(path, &sb);
		ps = open_rw(path);
		int ret = pktstore_flow_create(ps, 1, &flow);

		cr_assert(ret == 0 || ret == -EOVERFLOW, "flow_create: %s", pktstore_strerror(ret));
		if (!ret)
			cr_assert_lt(flow, PS_FLOW_ID_MAX, "flow id %lu", (unsigned long)flow);
		cr_assert_eq(pktstore_close(ps), 0);
		ret = pktstore_open(path, NULL, &ps);
		cr_assert_eq(ret, 0, "limit %lu: reopen: %s", (unsigned long)limits[k],
			     pktstore_strerror(ret));
		cr_assert_eq(pktstore_close(ps), 0);
	}
}

/* Flow ids from a crafted limit that carry the bits the io_uring backends
 * tag their user data with (2^60 watched fds, 2^61 sends): a flow attached
 * there must still receive and send, and detach and close must return. (A
 * receive of flow 2^61 + k was taken for a send's completion, and of flow
 * 2^60 + k for a watched fd's.) */
static void tag_bits(uint64_t limit, enum pktstore_recv_path rp)
{
	struct ps_superblock sb;
	struct pktstore *ps;
	struct pktstore_opts o = { .recv_path = rp };
	struct pktstore_rec rec;
	uint64_t flow;
	int c, s;
	char buf[8];

	arena_path(MEDIUM_TMPFS, "tagbits", path, sizeof(path));
	make_records(path, 1, NULL);
	read_sb(path, &sb);
	sb.flow_id_limit = limit;
	write_sb_both(path, &sb);
	int ret = pktstore_open(path, &o, &ps);

	if (ret == -EUCLEAN || ret == -EINVAL) {
		/* A limit no flow id may reach is damage, and said to be. */
		cr_assert_geq(limit, PS_FLOW_ID_MAX, "limit %#llx refused: %s",
			      (unsigned long long)limit, pktstore_strerror(ret));
		return;
	}
	cr_assert_eq(ret, 0, "open: %s", pktstore_strerror(ret));
	tcp_pair(&c, &s);
	ret = pktstore_attach(ps, s, 0, &flow);
	if (ret == -EOVERFLOW)
		goto out; /* no id left below the tag bits: refused, not mixed */
	cr_assert_eq(ret, 0, "attach: %s", pktstore_strerror(ret));
	cr_assert_eq(send(c, "hello", 5, 0), 5);
	ret = pktstore_recv_persist(ps, flow, &rec, 1, 0);
	cr_assert_eq(ret, 1, "flow %#llx: recv_persist: %s", (unsigned long long)flow,
		     pktstore_strerror(ret));
	cr_assert_eq(rec.len, 5);
	cr_assert_eq(memcmp(rec.data, "hello", 5), 0);
	struct iovec v = { "world", 5 };

	cr_assert_eq(pktstore_send(ps, flow, &v, 1, 0), 5);
	cr_assert_eq(pktstore_release(ps, rec.id), 0);
	cr_assert_eq(recv(c, buf, 5, MSG_WAITALL), 5, "the reply never came");
	cr_assert_eq(memcmp(buf, "world", 5), 0);
	cr_assert_eq(pktstore_detach(ps, flow), 0);
out:
	close(c);
	close(s);
	cr_assert_eq(pktstore_close(ps), 0);
}

Test(untrusted, flow_ids_with_tag_bits, .timeout = 60)
{
	static const uint64_t limits[] = { (1ull << 60) + 1, (1ull << 61) + 1, (1ull << 59) + 1,
					   PS_ID_MAX - 3 };

	for (unsigned k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
		tag_bits(limits[k], PKTSTORE_PATH_URING_FIXED);
		tag_bits(limits[k], PKTSTORE_PATH_RECV);
	}
}

/* A flow entry whose id is at or above the id range is not a flow. */
Test(untrusted, flow_entry_id_out_of_range)
{
	struct ps_superblock sb;
	struct ps_flow_entry e;
	struct pktstore_stats st;
	struct pktstore *ps;

	arena_path(MEDIUM_TMPFS, "flowentry", path, sizeof(path));
	make_records(path, 1, NULL);
	read_sb(path, &sb);
	pread_all(path, sb.flow_off, &e, sizeof(e));
	/* Slot 0 holds ids 1, 1 + max, ...: move it to the top of the range. */
	e.id = 1 + ((PS_FLOW_ID_MAX - 1) / sb.max_flows + 1) * sb.max_flows;
	e.crc = pktstore_crc32c(0, &e, offsetof(struct ps_flow_entry, crc));
	pwrite_all(path, sb.flow_off, &e, sizeof(e));
	ps = open_rw(path);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.invalid_flows, 1);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* PKTSTORE_CREATE formats only what is not an arena and never held one
 * (all zero where the superblocks go) or a create cut short (its mark in
 * copy B); a file with other bytes there, or an arena whose copy B was
 * wiped and copy A damaged, is refused and left as it was. */
Test(untrusted, create_never_formats_foreign_bytes)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 4 << 20 };
	struct pktstore *ps;
	static uint8_t img[2 * PS_SB_SIZE], back[2 * PS_SB_SIZE];

	/* A disk image: a boot sector, then zeroes. */
	arena_path(MEDIUM_TMPFS, "foreign", path, sizeof(path));
	int fd = open(path, O_CREAT | O_RDWR, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4 << 20), 0);
	memset(img, 0, sizeof(img));
	memcpy(img, "\xeb\x3c\x90MSDOS5.0", 11);
	img[510] = 0x55;
	img[511] = 0xaa;
	cr_assert_eq(pwrite(fd, img, sizeof(img), 0), (ssize_t)sizeof(img));
	close(fd);
	cr_assert_eq(pktstore_open(path, &o, &ps), -EUCLEAN);
	pread_all(path, 0, back, sizeof(back));
	cr_assert(!memcmp(img, back, sizeof(img)), "the file was written");
	unlink(path);

	/* An arena with records, copy B wiped and one word of copy A torn. */
	uint64_t ids[10];
	struct ps_superblock sb;

	make_records(path, 10, ids);
	read_sb(path, &sb);
	memset(img, 0, PS_SB_SIZE);
	pwrite_all(path, PS_SB_SIZE, img, PS_SB_SIZE);
	sb.generation ^= 0x5a5a;
	pwrite_all(path, 0, &sb, sizeof(sb));
	cr_assert_eq(pktstore_open(path, &o, &ps), -EUCLEAN);
	/* Its records are still there for whoever repairs it. */
	struct ps_desc d;

	desc_read(path, &sb, ids[0] % sb.ndesc, &d);
	cr_assert_eq(d.id, ids[0]);
}

/* A moved record's descriptor checksum leaves data_off out: a flipped bit
 * there after open must give -EBADMSG, not a read of a wild address. */
Test(untrusted, moved_record_with_rotten_offset)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE | PKTSTORE_MOVABLE, .size = 1 << 20,
				   .segment_size = 64 << 10, .max_flows = 16,
				   .recv_path = PKTSTORE_PATH_RECV };
	static char big[40000];
	struct pktstore *ps;
	struct pktstore_rec r;
	struct pktstore_stats st;
	uint64_t flow, small[32], bigs[32];
	const void *was[32];
	int n = 0;

	arena_path(MEDIUM_TMPFS, "movedrot", path, sizeof(path));
	cr_assert_eq(pktstore_open(path, &o, &ps), 0);
	cr_assert_eq(pktstore_flow_create(ps, 1, &flow), 0);
	/* Each segment: a big record that goes, a small one that stays. */
	for (; n < 32; n++) {
		if (pktstore_append(ps, flow, big, sizeof(big), &r))
			break;
		bigs[n] = r.id;
		cr_assert_eq(pktstore_append(ps, flow, "stay", 4, &r), 0);
		small[n] = r.id;
		was[n] = r.data;
	}
	for (int i = 0; i < n; i++)
		cr_assert_eq(pktstore_release(ps, bigs[i]), 0);
	for (int i = 0; i < 40; i++) {
		int ret = pktstore_append(ps, flow, big, sizeof(big), &r);

		cr_assert_eq(ret, 0, "append %d: %s", i, pktstore_strerror(ret));
		cr_assert_eq(pktstore_release(ps, r.id), 0);
	}
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_gt(st.moved_records, 0);
	int moved = -1;

	for (int i = 0; i < n && moved < 0; i++) {
		cr_assert_eq(pktstore_get(ps, small[i], &r, 0), 0);
		if (r.data != was[i])
			moved = i;
	}
	cr_assert_geq(moved, 0);
	struct ps_superblock sb;
	struct ps_desc d;

	read_sb(path, &sb);
	desc_read(path, &sb, small[moved] % sb.ndesc, &d);
	cr_assert_eq(d.mark, PS_DESC_MOVED);
	d.data_off ^= 1ull << 44;
	desc_write(path, &sb, small[moved] % sb.ndesc, &d); /* the shared mapping sees it */
	cr_assert_eq(pktstore_get(ps, small[moved], &r, 0), -EBADMSG);
	cr_assert_eq(pktstore_get(ps, small[moved], &r, PKTSTORE_NO_VERIFY), -EBADMSG);
	char b[4];

	cr_assert_leq(pktstore_read(ps, flow, d.seq, b, sizeof(b)), 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* Power lost after a trim's point is durable but before its records'
 * release marks are: those records are gone for good, and must not come
 * back (as damaged records with their bytes) once the flow is deleted. */
Test(untrusted, trimmed_records_stay_gone)
{
	struct pktstore *ps;
	struct pktstore_stats st;
	struct ps_superblock sb;
	struct ps_desc d;
	uint64_t ids[3], flow;

	arena_path(MEDIUM_TMPFS, "trimgone", path, sizeof(path));
	flow = make_records(path, 3, ids);
	ps = open_rw(path);
	cr_assert_eq(pktstore_trim(ps, flow, 300), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	/* The crash: release marks lost, the trim point kept. */
	read_sb(path, &sb);
	for (int i = 0; i < 3; i++) {
		desc_read(path, &sb, ids[i] % sb.ndesc, &d);
		d.mark = 0;
		d.crc = pktstore_crc32c(0, &d, offsetof(struct ps_desc, crc));
		desc_write(path, &sb, ids[i] % sb.ndesc, &d);
	}
	ps = open_rw(path);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.records, 0);
	cr_assert_eq(pktstore_flow_delete(ps, flow), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	ps = open_rw(path);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.damaged_records, 0, "trimmed records came back as damaged");
	cr_assert_eq(st.records, 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* Bytes damaged under a descriptor (a torn landing, rot): the record is
 * kept as damaged, in its flow. Deleting the flow or trimming past the
 * record takes it too: it must not come back at the next open. */
static uint64_t damage_middle_record(const char *p, uint64_t *ids)
{
	struct ps_superblock sb;
	struct ps_desc d;
	uint8_t b;
	uint64_t flow = make_records(p, 3, ids);

	read_sb(p, &sb);
	desc_read(p, &sb, ids[1] % sb.ndesc, &d);
	pread_all(p, d.data_off + 5, &b, 1);
	b ^= 0x10;
	pwrite_all(p, d.data_off + 5, &b, 1);
	return flow;
}

/* Damage to bytes below the superblock's verified_id is found at open only
 * by a scrub. */
static struct pktstore *open_verify(const char *p)
{
	struct pktstore_opts o = { .flags = PKTSTORE_VERIFY };
	struct pktstore *ps = NULL;
	int ret = pktstore_open(p, &o, &ps);

	cr_assert_eq(ret, 0, "open: %s", pktstore_strerror(ret));
	return ps;
}

static uint64_t damaged_count(const char *p)
{
	struct pktstore *ps = open_rw(p);
	struct pktstore_stats st;

	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	return st.damaged_records;
}

Test(untrusted, damaged_record_goes_with_its_flow)
{
	uint64_t ids[3], flow;
	struct pktstore *ps;

	arena_path(MEDIUM_TMPFS, "dmgdel", path, sizeof(path));
	flow = damage_middle_record(path, ids);
	ps = open_verify(path);
	cr_assert_eq(pktstore_close(ps), 0);
	cr_assert_eq(damaged_count(path), 1, "found once, reported at every open");
	ps = open_rw(path);
	cr_assert_eq(pktstore_flow_delete(ps, flow), 0);
	cr_assert_eq(pktstore_close(ps), 0);
	cr_assert_eq(damaged_count(path), 0, "a deleted flow's damaged record came back");
}

Test(untrusted, damaged_record_goes_with_a_trim)
{
	uint64_t ids[3], flow;
	struct pktstore *ps;
	struct pktstore_stats st;

	arena_path(MEDIUM_TMPFS, "dmgtrim", path, sizeof(path));
	flow = damage_middle_record(path, ids);
	ps = open_verify(path);
	cr_assert_eq(pktstore_trim(ps, flow, 200), 0);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.damaged_records, 0, "a trimmed damaged record is still listed");
	cr_assert_eq(st.records, 1);
	cr_assert_eq(pktstore_close(ps), 0);
	cr_assert_eq(damaged_count(path), 0);
}

/* The superblock's verified_id follows the commits while a store runs, a
 * sixteenth of the log at a time, so that an open after a crash hashes only
 * the last stretch; and that stretch is hashed: damage there is found. The
 * writer releases as it goes and wraps the log three times: before the
 * wrap verified_id also rides along with the id limit's raises, after it
 * only the commits move it. */
Test(untrusted, verified_id_follows_commits)
{
	struct ps_superblock sb;
	struct ps_desc d;
	int status;

	arena_path(MEDIUM_TMPFS, "verified", path, sizeof(path));
	pktstore_close(store_open(path, 4 << 20, PKTSTORE_PATH_RECV));
	read_sb(path, &sb);
	const uint64_t n = 3 * sb.ndesc;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) { /* a writer that dies without closing */
		struct pktstore *ps = NULL;
		uint8_t buf[100];
		struct pktstore_rec r;
		uint64_t flow;

		if (pktstore_open(path, NULL, &ps) || pktstore_flow_create(ps, 7, &flow))
			_exit(2);
		for (uint64_t i = 0; i < n; i++) {
			fill_stream(flow, i * sizeof(buf), buf, sizeof(buf));
			if (pktstore_append(ps, flow, buf, sizeof(buf), &r))
				_exit(3);
			if (i + 1 < n && pktstore_release(ps, r.id))
				_exit(4);
		}
		_exit(r.id == n ? 0 : 5);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer status %d", status);
	read_sb(path, &sb);
	uint64_t step = sb.ndesc / 16 > 64 ? sb.ndesc / 16 : 64;

	cr_assert_lt(step, sb.ndesc / 2, "the arena's log is too small for this test");
	cr_assert_leq(sb.verified_id, n + 1, "verified past the records made");
	cr_assert_geq(sb.verified_id + step, n + 1, "verified_id %lu stayed behind %lu records",
		      (unsigned long)sb.verified_id, (unsigned long)n);
	/* The last record is the one still live: damage it if it lies in
	 * the unverified stretch (it does unless the last commit's sync
	 * covered it). */
	if (sb.verified_id <= n) {
		uint8_t b;

		desc_read(path, &sb, n % sb.ndesc, &d);
		cr_assert_eq(d.id, n);
		pread_all(path, d.data_off, &b, 1);
		b ^= 1;
		pwrite_all(path, d.data_off, &b, 1);
		cr_assert_eq(damaged_count(path), 1, "the unverified stretch was not hashed");
	}
}

/* An open that formats an existing file and then fails leaves an arena
 * that reads as cleanly closed, not as a session lost. */
Test(untrusted, failed_open_after_format_is_clean)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .recv_path = PKTSTORE_PATH_ZCRX,
				   .zcrx = "nonexistent0:0" };
	struct pktstore *ps;
	struct pktstore_stats st;

	arena_path(MEDIUM_TMPFS, "formatfail", path, sizeof(path));
	int fd = open(path, O_CREAT | O_RDWR, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4 << 20), 0);
	close(fd);
	cr_assert_neq(pktstore_open(path, &o, &ps), 0);
	ps = open_rw(path);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.dirty_shutdown, 0);
	cr_assert_eq(pktstore_close(ps), 0);
}

/* A flow's trim point is one word outside the entry's checksum (it changes
 * in place); a flipped bit there must be seen, not taken as a trim that
 * silently drops the records below it. */
Test(untrusted, damaged_trim_point_is_seen)
{
	struct ps_superblock sb;
	struct pktstore_stats st;
	struct pktstore *ps;
	uint64_t word, flow;

	arena_path(MEDIUM_TMPFS, "trimword", path, sizeof(path));
	flow = make_records(path, 3, NULL);
	read_sb(path, &sb);
	uint64_t at = sb.flow_off + ((flow - 1) % sb.max_flows) * sizeof(struct ps_flow_entry) +
		      offsetof(struct ps_flow_entry, trim_seq);

	pread_all(path, at, &word, sizeof(word));
	word ^= 1ull << 9; /* "the stream below 512 is gone" */
	pwrite_all(path, at, &word, sizeof(word));
	ps = open_rw(path);
	cr_assert_eq(pktstore_stats(ps, &st), 0);
	cr_assert_eq(st.invalid_flows, 1, "a damaged trim point passed for a trim");
	cr_assert_eq(st.records + st.damaged_records, 3, "records vanished");
	cr_assert_eq(pktstore_close(ps), 0);
}
