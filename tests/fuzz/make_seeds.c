/* SPDX-License-Identifier: MIT */
/* Writes the seed arenas of fuzz_arena: small valid arenas with records of
 * local flows, each followed by fuzz_arena's control byte (recompute every
 * checksum), and one whose superblock's desc_off wraps around 2^64.
 * usage: make_seeds DIR */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <pktstore.h>

#include "../../lib/media.h"

static void make(const char *dir, const char *name, int records, int release_every, int wrap)
{
	char path[512];
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 64 << 10,
				   .segment_size = 4096, .max_flows = 8,
				   .bytes_per_record = 256 };
	struct pktstore *ps;
	uint64_t flow[2];
	char buf[700];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	if (pktstore_open(path, &o, &ps))
		return;
	pktstore_flow_create(ps, 1, &flow[0]);
	pktstore_flow_create(ps, 2, &flow[1]);
	for (int i = 0; i < records; i++) {
		struct pktstore_rec r;

		memset(buf, 'a' + i % 26, sizeof(buf));
		if (pktstore_append(ps, flow[i % 2], buf, 1 + (uint32_t)(i * 37) % 600, &r))
			break;
		if (release_every && i % release_every == 0)
			pktstore_release(ps, r.id);
	}
	pktstore_close(ps);
	if (wrap) {
		/* desc_off + ndesc * 64 wraps to a small number. */
		struct ps_superblock sb;
		FILE *f = fopen(path, "r+b");

		if (!f || fread(&sb, sizeof(sb), 1, f) != 1)
			return;
		sb.desc_off = 0 - sb.ndesc * sizeof(struct ps_desc);
		for (int c = 0; c < 2; c++) {
			fseek(f, c * PS_SB_SIZE, SEEK_SET);
			fwrite(&sb, sizeof(sb), 1, f);
		}
		fclose(f);
	}
	FILE *f = fopen(path, "ab");

	if (f) {
		fputc(0x0f, f); /* the control byte: fix every checksum */
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	make(argv[1], "empty", 0, 0, 0);
	make(argv[1], "records", 40, 0, 0);
	make(argv[1], "released", 60, 3, 0);
	make(argv[1], "wrapping-desc-off", 40, 0, 1);
	return 0;
}
