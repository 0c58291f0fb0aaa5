/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "emulator.h"

#define LINE 64

struct pending_line {
	uint64_t off;
	uint8_t data[LINE];
};

static struct {
	const char *image_path;
	uint64_t crash_at, events;
	unsigned seed;
	uint8_t *shadow;
	uint64_t size;
	struct pending_line *pending;
	size_t npending, cap;
} pf;

void pf_arm(const char *image_path, uint64_t crash_at, unsigned seed)
{
	/* A forked child starts counting afresh, on a fresh arena. */
	free(pf.shadow);
	pf.shadow = NULL;
	pf.npending = 0;
	pf.events = 0;
	pf.image_path = image_path;
	pf.crash_at = crash_at;
	pf.seed = seed;
}

uint64_t pf_events(void)
{
	return pf.events;
}

/* The arena was created fresh (all zeroes) in this process. */
static void ensure_shadow(uint64_t size)
{
	if (pf.shadow)
		return;
	pf.shadow = calloc(1, size);
	pf.size = size;
	if (!pf.shadow)
		abort();
}

/* Copy 8-byte words of src over dst, each with probability 1/2. */
static void tear(uint8_t *dst, const uint8_t *src)
{
	for (int w = 0; w < LINE; w += 8)
		if (rand_r(&pf.seed) & 1)
			memcpy(dst + w, src + w, 8);
}

static _Noreturn void power_loss(const char *base)
{
	uint8_t *img = malloc(pf.size);
	uint8_t *is_pending = calloc(pf.size / LINE + 1, 1);

	if (!img || !is_pending)
		abort();
	memcpy(img, pf.shadow, pf.size);
	for (size_t i = 0; i < pf.npending; i++) {
		tear(img + pf.pending[i].off, pf.pending[i].data);
		is_pending[pf.pending[i].off / LINE] = 1;
	}
	/* Lines stored but never flushed may have been evicted: some are. */
	for (uint64_t off = 0; off + LINE <= pf.size; off += LINE) {
		if (is_pending[off / LINE] || !memcmp(base + off, pf.shadow + off, LINE))
			continue;
		if (rand_r(&pf.seed) % 4 == 0)
			tear(img + off, (const uint8_t *)base + off);
	}
	int fd = open(pf.image_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, img, pf.size) != (ssize_t)pf.size)
		_exit(99);
	close(fd);
	_exit(0);
}

static void tick(const char *base)
{
	if (++pf.events == pf.crash_at)
		power_loss(base);
}

void ps_powerfail_flush(const char *base, uint64_t size, uint64_t off, uint64_t len);
void ps_powerfail_drain(const char *base, uint64_t size);

void ps_powerfail_flush(const char *base, uint64_t size, uint64_t off, uint64_t len)
{
	ensure_shadow(size);
	tick(base);
	for (uint64_t l = off & ~(uint64_t)(LINE - 1); l < off + len; l += LINE) {
		size_t i;

		for (i = 0; i < pf.npending && pf.pending[i].off != l; i++)
			;
		if (i == pf.npending) {
			if (pf.npending == pf.cap) {
				pf.cap = pf.cap ? pf.cap * 2 : 256;
				pf.pending = realloc(pf.pending, pf.cap * sizeof(*pf.pending));
				if (!pf.pending)
					abort();
			}
			pf.pending[pf.npending++].off = l;
		}
		/* What a write-back started now would carry. */
		memcpy(pf.pending[i].data, base + l, LINE);
	}
}

void ps_powerfail_drain(const char *base, uint64_t size)
{
	ensure_shadow(size);
	tick(base);
	for (size_t i = 0; i < pf.npending; i++)
		memcpy(pf.shadow + pf.pending[i].off, pf.pending[i].data, LINE);
	pf.npending = 0;
}
