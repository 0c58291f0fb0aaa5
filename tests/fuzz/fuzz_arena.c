/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the arena file is untrusted input. The fuzzer's bytes
 * are an arena image (seeds in tests/fuzz/arena/ are small valid arenas with
 * records); open it read-write (so superblock repair and flow reclaim run
 * too), read every record every way, release one, close. Nothing may crash,
 * leak or read out of bounds, and whatever get() serves must match its CRC.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <pktstore.h>

static char path[64];

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pktstore *ps;

	if (!path[0])
		snprintf(path, sizeof(path), "/dev/shm/pktstore-fuzz-%d.arena", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
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
