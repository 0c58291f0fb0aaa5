/* SPDX-License-Identifier: MIT */
/*
 * srv_copy.c - the Linux baseline: recv(2) into DRAM, then copy each request
 * into a libpmem2-mapped file behind a record header that carries its length,
 * sequence number and CRC32C, flush it, and drain once per batch. What a
 * careful application writes by hand without a storage library. The file is
 * a ring: a record that does not fit before the end goes to the start.
 */
#include <errno.h>
#include <fcntl.h>
#include <libpmem2.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <isa-l/crc.h>

#include "srv.h"

struct rec_hdr {
	uint32_t len;
	uint32_t crc32c; /* of the payload */
	uint64_t seq;    /* request number */
};

struct copy {
	int fd;
	struct pmem2_map *map;
	char *base;
	uint64_t size, off, seq;
	pmem2_memcpy_fn memcpy_fn;
	pmem2_drain_fn drain_fn;
};

static uint32_t crc32c(const void *buf, size_t len)
{
	return ~crc32_iscsi((unsigned char *)buf, (int)len, ~0u);
}

static int copy_open(const struct srv_opts *o, void **out)
{
	struct copy *c = calloc(1, sizeof(*c));
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;

	if (!c || !o->path)
		goto fail;
	c->fd = open(o->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (c->fd < 0 || posix_fallocate(c->fd, 0, (off_t)o->size))
		goto fail;
	if (pmem2_config_new(&cfg) || pmem2_source_from_fd(&src, c->fd) ||
	    pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE) ||
	    pmem2_map_new(&c->map, cfg, src))
		goto fail;
	pmem2_config_delete(&cfg);
	pmem2_source_delete(&src);
	c->base = pmem2_map_get_address(c->map);
	c->size = o->size;
	/* libpktstore prefaults its arena when it creates it; do the same so
	 * neither pays a page fault per 4 KiB during the runs. */
	madvise(c->base, c->size, MADV_POPULATE_WRITE);
	c->memcpy_fn = pmem2_get_memcpy_fn(c->map);
	c->drain_fn = pmem2_get_drain_fn(c->map);
	*out = c;
	return 0;
fail:
	if (cfg)
		pmem2_config_delete(&cfg);
	if (src)
		pmem2_source_delete(&src);
	if (c && c->fd > 0)
		close(c->fd);
	free(c);
	return -1;
}

static int copy_append(void *st, const void *payload, size_t len)
{
	struct copy *c = st;
	uint64_t need = (sizeof(struct rec_hdr) + len + 7) & ~7ull;

	if (need > c->size)
		return -EFBIG;
	if (c->off + need > c->size)
		c->off = 0;

	struct rec_hdr h = { .len = (uint32_t)len, .crc32c = crc32c(payload, len),
			     .seq = ++c->seq };
	char *dst = c->base + c->off;

	c->memcpy_fn(dst + sizeof(h), payload, len, PMEM2_F_MEM_NODRAIN);
	c->memcpy_fn(dst, &h, sizeof(h), PMEM2_F_MEM_NODRAIN);
	c->off += need;
	return 0;
}

static int copy_commit(void *st)
{
	struct copy *c = st;

	c->drain_fn();
	return 0;
}

static void copy_close(void *st)
{
	struct copy *c = st;

	pmem2_map_delete(&c->map);
	close(c->fd);
	free(c);
}

static const struct backend copy_backend = {
	.name = "baseline",
	.open = copy_open,
	.append = copy_append,
	.commit = copy_commit,
	.close = copy_close,
};

int main(int argc, char **argv)
{
	return srv_main(argc, argv, &copy_backend);
}
