/* SPDX-License-Identifier: MIT */
/*
 * segments.c - ownership of the data region's segments.
 *
 * A segment is FREE, lent to the kernel (KERNEL: its bytes are a receive
 * buffer), the bump allocator's current segment (BUMP: user space places
 * bytes there for recv(2) and append), or SEALED (nothing new lands there).
 * A sealed segment returns to the free stack when its last record is
 * released. Nothing else ever reuses arena bytes, which is why a full arena
 * means back-pressure and never overwriting.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

int ps_segments_init(struct ps_segments *s, uint64_t n, uint32_t size)
{
	s->n = n;
	s->size = size;
	ps_div_init(&s->div, size);
	s->nfree = 0;
	for (int k = 0; k < 2; k++)
		s->bump[k] = (struct ps_bump){ .seg = -1, .used = 0 };
	s->state = calloc(n, sizeof(*s->state));
	s->refs = calloc(n, sizeof(*s->refs));
	s->live = calloc(n, sizeof(*s->live));
	s->free_stack = calloc(n, sizeof(*s->free_stack));
	s->tail = calloc(n, sizeof(*s->tail));
	if (!s->state || !s->refs || !s->live || !s->free_stack || !s->tail)
		return -ENOMEM;
	return 0;
}

void ps_segments_fini(struct ps_segments *s)
{
	free(s->state);
	free(s->refs);
	free(s->live);
	free(s->free_stack);
	free(s->tail);
}

/* Recovery: a record of segment seg ends at byte `end` of it. */
void ps_seg_note_extent(struct ps_segments *s, uint64_t seg, uint32_t end)
{
	if (end > s->tail[seg])
		s->tail[seg] = end;
}

/* Segments holding records after recovery stay sealed: their free tail is
 * not reused until every record in them is released. */
void ps_segments_build_free(struct ps_segments *s)
{
	s->nfree = 0;
	for (uint64_t i = s->n; i-- > 0;) {
		if (s->refs[i]) {
			s->state[i] = PS_SEG_SEALED;
		} else {
			s->state[i] = PS_SEG_FREE;
			s->free_stack[s->nfree++] = (uint32_t)i;
		}
	}
}

/* Take the longest run of free segments, at most `max` long, for an area
 * that must be contiguous (zcrx). Returns its first segment or -1. */
int64_t ps_seg_take_run(struct pktstore *ps, uint64_t max, uint64_t *n)
{
	struct ps_segments *s = &ps->seg;
	uint64_t best = 0, best_len = 0, run = 0;

	for (uint64_t i = 0; i < s->n; i++) {
		run = s->state[i] == PS_SEG_FREE ? run + 1 : 0;
		if (run > best_len && best_len < max) {
			best_len = run < max ? run : max;
			best = i + 1 - run;
		}
	}
	if (!best_len)
		return -1;
	for (uint64_t i = best; i < best + best_len; i++)
		s->state[i] = PS_SEG_KERNEL;
	/* Rebuild the free stack without them. */
	uint64_t k = 0;

	for (uint64_t i = 0; i < s->nfree; i++)
		if (s->state[s->free_stack[i]] == PS_SEG_FREE)
			s->free_stack[k++] = s->free_stack[i];
	s->nfree = k;
	*n = best_len;
	return (int64_t)best;
}

/* Give back a run taken by ps_seg_take_run() that never held a record. */
void ps_seg_give_run(struct pktstore *ps, uint64_t first, uint64_t n)
{
	for (uint64_t i = first + n; i-- > first;) {
		ps->seg.state[i] = PS_SEG_FREE;
		ps->seg.free_stack[ps->seg.nfree++] = (uint32_t)i;
	}
}

/*
 * With PKTSTORE_MOVABLE the last free segment is kept for the cleaner:
 * moving records needs somewhere to put them, and an arena whose every
 * segment holds one small record could otherwise never be cleaned (log-
 * structured file systems reserve segments for the same reason).
 */
static int64_t take(struct pktstore *ps, enum ps_seg_state as, bool for_cleaner)
{
	struct ps_segments *s = &ps->seg;

	if (!s->nfree || (ps->movable && !for_cleaner && s->nfree <= 1))
		return -1;
	uint32_t i = s->free_stack[--s->nfree];

	s->state[i] = (uint8_t)as;
	return i;
}

int64_t ps_seg_take(struct pktstore *ps, enum ps_seg_state as)
{
	return take(ps, as, false);
}

static void seg_free(struct pktstore *ps, uint64_t i)
{
	struct ps_segments *s = &ps->seg;

	s->state[i] = PS_SEG_FREE;
	s->free_stack[s->nfree++] = (uint32_t)i;
	/* The backend hears of it at its next safe point, not from inside
	 * whatever released the last record. */
	ps->space_pending = true;
}

void ps_seg_ref(struct pktstore *ps, uint64_t i, uint32_t len)
{
	ps->seg.refs[i]++;
	ps->seg.live[i] += len;
}

void ps_seg_unref(struct pktstore *ps, uint64_t i, uint32_t len)
{
	struct ps_segments *s = &ps->seg;

	s->live[i] -= len;
	ps->clean_hint = true;
	if (--s->refs[i] == 0 && s->state[i] == PS_SEG_SEALED)
		seg_free(ps, i);
}

/* The cleaner moved every record out of segment i (or gave up): sealed
 * again, and free if nothing is left. */
void ps_seg_cleaned(struct pktstore *ps, uint64_t i)
{
	ps->seg.state[i] = PS_SEG_SEALED;
	if (ps->seg.refs[i] == 0)
		seg_free(ps, i);
}

void ps_seg_seal(struct pktstore *ps, uint64_t i)
{
	struct ps_segments *s = &ps->seg;

	s->state[i] = PS_SEG_SEALED;
	s->tail[i] = s->size; /* sealed in this session: nothing to reuse */
	if (s->refs[i] == 0)
		seg_free(ps, i);
}

/*
 * After a crash every segment may hold some live record, and then nothing
 * could ever be received or appended to move records and free space. The
 * free tails of segments sealed by recovery break that deadlock: adopt the
 * largest one of at least `min` bytes, as `as`. *start is where its free
 * bytes begin inside the segment.
 */
int64_t ps_seg_take_tail(struct pktstore *ps, uint32_t min, enum ps_seg_state as,
			 uint32_t *start)
{
	struct ps_segments *s = &ps->seg;
	int64_t best = -1;
	uint32_t best_room = 0;

	for (uint64_t i = 0; i < s->n; i++) {
		uint32_t at = (s->tail[i] + PS_CACHELINE - 1) & ~(uint32_t)(PS_CACHELINE - 1);
		uint32_t room = at < s->size ? s->size - at : 0;

		if (s->state[i] == PS_SEG_SEALED && room >= min && room > best_room) {
			best = (int64_t)i;
			best_room = room;
		}
	}
	if (best >= 0) {
		s->state[best] = (uint8_t)as;
		s->tail[best] = s->size;
		*start = s->size - best_room;
	}
	return best;
}

static int64_t adopt_tail(struct pktstore *ps, struct ps_bump *b, uint32_t min)
{
	uint32_t start;
	int64_t i = ps_seg_take_tail(ps, min, PS_SEG_BUMP, &start);

	if (i >= 0)
		b->used = start;
	return i;
}

/*
 * Reserve at least `min` contiguous bytes in the bump segment (taking a new
 * segment when the current one has less), and say how much is there. The
 * caller places its bytes and then commits what it used.
 */
int ps_bump_reserve(struct pktstore *ps, enum ps_bump_kind k, uint32_t min, uint64_t *off,
		    uint32_t *avail)
{
	struct ps_segments *s = &ps->seg;
	struct ps_bump *b = &s->bump[k];

	if (min > s->size)
		return -EMSGSIZE;
	if (b->seg >= 0 && s->size - b->used < min) {
		int64_t old = b->seg;

		b->seg = -1;
		ps_seg_seal(ps, (uint64_t)old);
	}
	if (b->seg < 0) {
		int64_t i = take(ps, PS_SEG_BUMP, k == PS_BUMP_COLD);

		if (i >= 0) {
			b->used = 0;
		} else {
			i = adopt_tail(ps, b, min);
			if (i < 0)
				return -ENOSPC;
		}
		b->seg = i;
	}
	*off = ps->a.sb.data_off + (uint64_t)b->seg * s->size + b->used;
	*avail = s->size - b->used;
	return 0;
}

void ps_bump_commit(struct pktstore *ps, enum ps_bump_kind k, uint32_t used)
{
	ps->seg.bump[k].used += used;
}
