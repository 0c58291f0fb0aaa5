/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/media.h"
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
	/* The metadata pages kept read-only until their first store. */
	char *base;
	uint64_t prot_len;
	long page;
} pf;

static void on_store(int sig, siginfo_t *si, void *uc);

static void arm(const char *image_path, uint64_t crash_at, unsigned seed)
{
	/* A forked child starts counting afresh. */
	free(pf.shadow);
	pf.shadow = NULL;
	pf.npending = 0;
	pf.events = 0;
	pf.image_path = image_path;
	pf.crash_at = crash_at;
	pf.seed = seed;
	pf.base = NULL;
	pf.prot_len = 0;
	pf.page = sysconf(_SC_PAGESIZE);

	struct sigaction sa = { .sa_sigaction = on_store, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
}

void pf_arm(const char *image_path, uint64_t crash_at, unsigned seed)
{
	arm(image_path, crash_at, seed);
}

void pf_arm_existing(const char *image_path, uint64_t crash_at, unsigned seed,
		     const char *arena)
{
	struct stat st;
	int fd = open(arena, O_RDONLY);

	arm(image_path, crash_at, seed);
	if (fd < 0 || fstat(fd, &st))
		abort();
	pf.size = (uint64_t)st.st_size;
	pf.shadow = malloc(pf.size);
	if (!pf.shadow || pread(fd, pf.shadow, pf.size, 0) != (ssize_t)pf.size)
		abort();
	close(fd);
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

/* Bit k: superblock copy k has bytes stored or flushed but not fenced. */
static unsigned sb_in_flight(const char *base, const uint8_t *is_pending)
{
	unsigned mask = 0;

	for (unsigned k = 0; k < 2; k++)
		for (uint64_t off = k * PS_SB_SIZE; off < (k + 1) * PS_SB_SIZE; off += LINE)
			if (is_pending[off / LINE] || memcmp(base + off, pf.shadow + off, LINE))
				mask |= 1u << k;
	return mask;
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
	unsigned char sb = (unsigned char)sb_in_flight(base, is_pending);

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

	char p[512];

	snprintf(p, sizeof(p), "%s%s", pf.image_path, PF_SB_SUFFIX);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, &sb, 1) != 1)
		_exit(99);
	close(fd);
	_exit(0);
}

/* A store to a read-only metadata page: an event, then the page is
 * writable until the next flush or drain. Any other fault is a real one. */
static void on_store(int sig, siginfo_t *si, void *uc)
{
	char *a = si->si_addr;

	(void)uc;
	if (!pf.base || a < pf.base || a >= pf.base + pf.prot_len) {
		signal(sig, SIG_DFL);
		return; /* the access faults again, now fatally */
	}
	if (++pf.events == pf.crash_at)
		power_loss(pf.base);
	char *pg = (char *)((uintptr_t)a & ~(uintptr_t)(pf.page - 1));

	if (mprotect(pg, (size_t)pf.page, PROT_READ | PROT_WRITE))
		abort();
}

/* Keep the metadata read-only again, as the superblock in the mapping
 * lays it out (nothing while it is not written yet). */
static void protect(const char *base, uint64_t size)
{
	const struct ps_superblock *sb = (const void *)base;
	uint64_t end = 0;

	if (pf.base && pf.base != base)
		pf.prot_len = 0; /* an earlier mapping, gone with its close */
	if (sb->magic == PS_MAGIC && sb->data_off <= size)
		end = (sb->data_off + (uint64_t)pf.page - 1) & ~(uint64_t)(pf.page - 1);
	if (end > size)
		end = size & ~(uint64_t)(pf.page - 1);
	pf.base = (char *)base;
	pf.prot_len = end;
	if (end && mprotect((void *)base, end, PROT_READ))
		abort();
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
	protect(base, size);
}

void ps_powerfail_drain(const char *base, uint64_t size)
{
	ensure_shadow(size);
	tick(base);
	for (size_t i = 0; i < pf.npending; i++)
		memcpy(pf.shadow + pf.pending[i].off, pf.pending[i].data, LINE);
	pf.npending = 0;
	protect(base, size);
}
