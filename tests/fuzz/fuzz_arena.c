/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the arena file is untrusted input. The fuzzer's bytes
 * are an arena image (seeds in tests/fuzz/arena/ are small valid arenas with
 * records, plus one control byte at the end); open it read-write (so
 * superblock repair and flow reclaim run too), read every record every way,
 * release one, close. Nothing may crash, leak or read out of bounds, and
 * whatever get() serves must match its CRC.
 *
 * Structure-aware: a mutation of a field behind a checksum would almost
 * always die at that checksum, never reaching the checks after it (a wrapping
 * desc_off went unseen that way). The control byte says which checksums the
 * harness recomputes after the mutation, so such fields get through.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pktstore.h>

#include "media.h"

static char path[64];

/* libFuzzer exits when its time is up: the arena file goes with it. */
static void remove_arena(void)
{
	unlink(path);
}

static void walk(struct pktstore *ps)
{
	struct pktstore_rec r[64];
	struct pktstore_query q = { .kind = PKTSTORE_BY_ID, .hi = UINT64_MAX };
	struct pktstore_flow_info fi[16];
	int n;

	while ((n = pktstore_range(ps, &q, r, 64)) > 0) {
		for (int i = 0; i < n; i++) {
			struct pktstore_rec g;

			if (pktstore_get(ps, r[i].id, &g, 0) == 0 &&
			    pktstore_crc32c(0, g.data, g.len) != g.crc32c)
				abort(); /* served bytes that fail their checksum */
		}
		q.lo = r[n - 1].id + 1;
	}
	n = pktstore_flows(ps, 0, fi, 16);
	for (int k = 0; k < n; k++) {
		struct pktstore_query s = { .kind = PKTSTORE_BY_SEQ, .flow = fi[k].id, .hi = UINT64_MAX };
		struct pktstore_query t = { .kind = PKTSTORE_BY_TIME, .flow = fi[k].id, .hi = UINT64_MAX };

		pktstore_range(ps, &s, r, 64);
		pktstore_range(ps, &t, r, 64);
	}
	q = (struct pktstore_query){ .kind = PKTSTORE_DAMAGED, .hi = UINT64_MAX };
	n = pktstore_range(ps, &q, r, 64);
	if (n > 0)
		pktstore_release(ps, r[0].id);
}

enum { FIX_SB = 1, FIX_FLOWS = 2, FIX_DESCS = 4, FIX_DATA = 8 };

static uint32_t crc(const void *p, size_t n)
{
	return pktstore_crc32c(0, p, n);
}

/* Recompute the checksums `ctl` asks for, in the order that makes each one
 * cover the fixed ones below it: data, descriptors, flow entries,
 * superblocks. Every offset comes from the (mutated) superblock and is
 * bounded by the image here, before the library sees it. */
static void fix_checksums(uint8_t *img, size_t size, unsigned ctl)
{
	struct ps_superblock sb;

	if (size < 2 * PS_SB_SIZE)
		return;
	memcpy(&sb, img, sizeof(sb));
	if (ctl & (FIX_DESCS | FIX_DATA) && sb.desc_off <= size) {
		uint64_t n = (size - sb.desc_off) / sizeof(struct ps_desc);

		if (sb.ndesc < n)
			n = sb.ndesc;
		for (uint64_t i = 0; i < n; i++) {
			struct ps_desc d;
			uint8_t *at = img + sb.desc_off + i * sizeof(d);

			memcpy(&d, at, sizeof(d));
			if (!d.id)
				continue;
			if (ctl & FIX_DATA && d.data_off <= size && d.len <= size - d.data_off)
				d.data_crc = crc(img + d.data_off, d.len);
			if (ctl & FIX_DESCS)
				d.crc = d.mark == PS_DESC_RELEASED
						? ~crc(&d, offsetof(struct ps_desc, mark))
						: crc(&d, offsetof(struct ps_desc, crc));
			memcpy(at, &d, sizeof(d));
		}
	}
	if (ctl & FIX_FLOWS && sb.flow_off <= size) {
		uint64_t n = (size - sb.flow_off) / sizeof(struct ps_flow_entry);

		if (sb.max_flows < n)
			n = sb.max_flows;
		for (uint64_t i = 0; i < n; i++) {
			struct ps_flow_entry e;
			uint8_t *at = img + sb.flow_off + i * sizeof(e);

			memcpy(&e, at, sizeof(e));
			e.crc = crc(&e, offsetof(struct ps_flow_entry, crc));
			memcpy(at, &e, sizeof(e));
		}
	}
	if (ctl & FIX_SB) {
		for (int c = 0; c < 2; c++) {
			memcpy(&sb, img + c * PS_SB_SIZE, sizeof(sb));
			sb.crc = crc(&sb, offsetof(struct ps_superblock, crc));
			memcpy(img + c * PS_SB_SIZE, &sb, sizeof(sb));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pktstore *ps;

	if (!size)
		return 0;
	if (!path[0]) {
		snprintf(path, sizeof(path), "/dev/shm/pktstore-fuzz-%d.arena", (int)getpid());
		atexit(remove_arena);
	}
	size--;
	uint8_t *img = malloc(size ? size : 1);

	if (!img)
		abort();
	memcpy(img, data, size);
	fix_checksums(img, size, data[size]);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, img, size) != (ssize_t)size)
		abort();
	free(img);
	close(fd);
	/* The receive path does not matter here; recv(2) needs no io_uring. */
	struct pktstore_opts o = { .recv_path = PKTSTORE_PATH_RECV };

	if (pktstore_open(path, &o, &ps) == 0) {
		walk(ps);
		pktstore_close(ps);
	}
	o.flags = PKTSTORE_RDONLY;
	if (pktstore_open(path, &o, &ps) == 0) {
		walk(ps);
		pktstore_close(ps);
	}
	return 0;
}
