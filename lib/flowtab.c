/* SPDX-License-Identifier: MIT */
/*
 * flowtab.c - the persisted flow table, and the ready list of flows with
 * something to deliver.
 *
 * A flow id maps to its table slot by arithmetic, slot = (id - 1) % max_flows,
 * and ids only grow, so a stale id can never name a newer flow. An entry is
 * persisted (flushed and drained) before any record refers to it, so recovery
 * never meets a record whose flow was not yet durable.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

static int entry_persist(struct pktstore *ps, uint32_t slot, const struct ps_flow_entry *e)
{
	memcpy(&ps->a.flows_pm[slot], e, sizeof(*e));
	return ps_persist_range(&ps->pp, ps->a.sb.flow_off + (uint64_t)slot * sizeof(*e),
				sizeof(*e));
}

static struct ps_flow *flow_alloc(uint64_t id, uint32_t slot, enum ps_flow_state kind)
{
	struct ps_flow *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->id = id;
	f->slot = slot;
	f->kind = kind;
	f->fd = -1;
	return f;
}

int ps_flows_load(struct pktstore *ps)
{
	uint32_t max = ps->a.sb.max_flows;

	ps->flows = calloc(max, sizeof(*ps->flows));
	if (!ps->flows)
		return -ENOMEM;
	ps->next_flow_id = 1;
	for (uint32_t slot = 0; slot < max; slot++) {
		const struct ps_flow_entry *e = &ps->a.flows_pm[slot];

		if (!e->id)
			continue;
		uint64_t trim;

		if (e->crc != ps_flow_entry_crc(e) || e->id >= PS_FLOW_ID_MAX || (e->id - 1) % max != slot ||
		    (e->state != PS_FLOW_SOCKET && e->state != PS_FLOW_LOCAL) ||
		    ps_trim_decode(e->id, e->trim_seq, &trim)) {
			/* Torn or corrupt: its records become orphans and are
			 * reported as damaged; the slot is reused. */
			ps->cnt.invalid_flows++;
			continue;
		}
		ps->flows[slot] = flow_alloc(e->id, slot, (enum ps_flow_state)e->state);
		if (!ps->flows[slot])
			return -ENOMEM;
		ps->flows[slot]->trim_seq = trim;
		ps->nflows++;
		if (e->id >= ps->next_flow_id)
			ps->next_flow_id = e->id + 1;
	}
	/* Past every id an earlier session may have handed out, deleted
	 * flows' included. */
	if (ps->next_flow_id < ps->a.sb.flow_id_limit)
		ps->next_flow_id = ps->a.sb.flow_id_limit;
	return 0;
}

struct ps_flow *ps_flow_get(struct pktstore *ps, uint64_t id)
{
	if (!id)
		return NULL;
	struct ps_flow *f = ps->flows[ps_mod(&ps->flow_div, id - 1)];

	return f && f->id == id ? f : NULL;
}

static void fill_addrs(struct ps_flow_entry *e, int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		e->family = ss.ss_family;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			memcpy(e->local_addr, &in->sin_addr, 4);
			e->local_port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			memcpy(e->local_addr, &in6->sin6_addr, 16);
			e->local_port = ntohs(in6->sin6_port);
		}
	}
	sl = sizeof(ss);
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			memcpy(e->peer_addr, &in->sin_addr, 4);
			e->peer_port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			memcpy(e->peer_addr, &in6->sin6_addr, 16);
			e->peer_port = ntohs(in6->sin6_port);
		}
	}
}

/* A free table slot, from where the next id falls; max when the table is
 * full. Slot and id go together: slot = (id - 1) % max_flows. */
static uint32_t free_slot(const struct pktstore *ps)
{
	uint32_t max = ps->a.sb.max_flows;
	uint32_t start = (uint32_t)ps_mod(&ps->flow_div, ps->next_flow_id - 1);

	for (uint32_t i = 0; i < max; i++) {
		uint32_t s = (start + i) % max;

		if (!ps->flows[s])
			return s;
	}
	return max;
}

/* The superblock's flow id limit stays ahead of the ids handed out, a
 * table's worth at a time, so the next session starts above them. */
static int raise_id_limit(struct pktstore *ps, uint64_t id)
{
	uint64_t limit = ps->a.sb.flow_id_limit;
	uint32_t max = ps->a.sb.max_flows;

	if (id < limit)
		return 0;
	ps->a.sb.flow_id_limit = PS_FLOW_ID_MAX - id > max ? id + max : PS_FLOW_ID_MAX;
	int ret = ps_arena_sync(ps);

	if (ret)
		ps->a.sb.flow_id_limit = limit;
	return ret;
}

int ps_flow_new(struct pktstore *ps, enum ps_flow_state kind, int fd, uint64_t tag,
		struct ps_flow **out)
{
	uint32_t max = ps->a.sb.max_flows;
	uint32_t slot = free_slot(ps);

	if (slot == max)
		return PKTSTORE_EFLOWS;

	uint64_t base = ps->next_flow_id;
	uint64_t id = base + (slot + max - (uint32_t)ps_mod(&ps->flow_div, base - 1)) % max;
	struct ps_flow_entry e = {
		.id = id,
		.tag = tag,
		.open_ns = ps_now_ns(),
		.state = kind,
	};

	if (fd >= 0)
		fill_addrs(&e, fd);
	e.crc = ps_flow_entry_crc(&e);
	/* Ids stay below PS_FLOW_ID_MAX: the io_uring backends tag user data
	 * with the bits above. */
	if (id >= PS_FLOW_ID_MAX)
		return -EOVERFLOW;
	int ret = raise_id_limit(ps, id);

	if (ret)
		return ret;
	struct ps_flow *f = flow_alloc(id, slot, kind);

	if (!f)
		return -ENOMEM;
	ret = entry_persist(ps, slot, &e);
	if (ret) {
		free(f);
		return ret;
	}
	f->fd = fd;
	ps->flows[slot] = f;
	ps->nflows++;
	ps->next_flow_id = id + 1;
	*out = f;
	return 0;
}

/* Durably write one aligned word of an entry: atomic under power loss. */
int ps_flow_word_persist(struct pktstore *ps, uint64_t *word, uint64_t value)
{
	__atomic_store_n(word, value, __ATOMIC_RELEASE);
	return ps_persist_range(&ps->pp, (uint64_t)((char *)word - ps->a.base), sizeof(*word));
}

/* Record the close time. The entry stays while the flow has records. */
int ps_flow_close_entry(struct pktstore *ps, struct ps_flow *f)
{
	return ps_flow_word_persist(ps, &ps->a.flows_pm[f->slot].close_ns, ps_now_ns());
}

/* ------------------------------------------------------------ ready list */

void ps_ready_push(struct pktstore *ps, struct ps_flow *f)
{
	if (f->in_ready)
		return;
	f->in_ready = true;
	f->ready_next = NULL;
	f->ready_prev = ps->ready_tail;
	if (ps->ready_tail)
		ps->ready_tail->ready_next = f;
	else
		ps->ready_head = f;
	ps->ready_tail = f;
}

void ps_ready_push_front(struct pktstore *ps, struct ps_flow *f)
{
	if (f->in_ready)
		return;
	f->in_ready = true;
	f->ready_prev = NULL;
	f->ready_next = ps->ready_head;
	if (ps->ready_head)
		ps->ready_head->ready_prev = f;
	else
		ps->ready_tail = f;
	ps->ready_head = f;
}

static void ready_remove(struct pktstore *ps, struct ps_flow *f)
{
	if (!f->in_ready)
		return;
	if (f->ready_prev)
		f->ready_prev->ready_next = f->ready_next;
	else
		ps->ready_head = f->ready_next;
	if (f->ready_next)
		f->ready_next->ready_prev = f->ready_prev;
	else
		ps->ready_tail = f->ready_prev;
	f->ready_next = f->ready_prev = NULL;
	f->in_ready = false;
}

struct ps_flow *ps_ready_pop(struct pktstore *ps)
{
	struct ps_flow *f = ps->ready_head;

	if (f)
		ready_remove(ps, f);
	return f;
}

/* Forget a flow whose entry is durably free. */
void ps_flow_drop(struct pktstore *ps, struct ps_flow *f)
{
	ready_remove(ps, f);
	ps->flows[f->slot] = NULL;
	ps->nflows--;
	ps_index_free(&f->idx);
	free(f);
}

/* A closed network flow with no records left is history nobody can read:
 * give its slot back. Local flows belong to the application and stay.
 * Whatever is still on the ready list for it is an end-of-stream nobody
 * will ask for (the application detached it). */
void ps_flow_maybe_reclaim(struct pktstore *ps, struct ps_flow *f)
{
	if (f->kind != PS_FLOW_SOCKET || f->run != PS_RUN_NONE || f->live || f->damaged ||
	    f->releasing || f->stalled || ps->a.rdonly)
		return;
	if (ps_flow_word_persist(ps, &ps->a.flows_pm[f->slot].id, 0))
		return; /* keep it; the entry may still be valid on the media */
	ps_flow_drop(ps, f);
}

void ps_flow_fill_info(struct pktstore *ps, struct ps_flow *f, struct pktstore_flow_info *fi)
{
	const struct ps_flow_entry *e = &ps->a.flows_pm[f->slot];

	memset(fi, 0, sizeof(*fi));
	fi->id = f->id;
	fi->tag = e->tag;
	fi->open_ns = e->open_ns;
	fi->close_ns = e->close_ns;
	fi->next_seq = f->next_seq;
	fi->records = f->live;
	fi->user = f->user;
	/* The first byte still held: the trim point, or the first live
	 * record's start when records below it were released. */
	fi->first_seq = f->next_seq;
	for (size_t i = 0; i < f->idx.n; i++) {
		if (ps_record_live(ps, f->idx.e[i].id)) {
			fi->first_seq = f->idx.e[i].seq;
			break;
		}
	}
	if (fi->first_seq < f->trim_seq)
		fi->first_seq = f->trim_seq;
	fi->family = e->family;
	fi->local_port = e->local_port;
	fi->peer_port = e->peer_port;
	memcpy(fi->local_addr, e->local_addr, 16);
	memcpy(fi->peer_addr, e->peer_addr, 16);
	if (f->kind == PS_FLOW_LOCAL)
		fi->state = PKTSTORE_FLOW_LOCAL;
	else if (f->run == PS_RUN_ACTIVE)
		fi->state = PKTSTORE_FLOW_ATTACHED;
	else if (f->run == PS_RUN_ENDED)
		fi->state = PKTSTORE_FLOW_EOF;
	else
		fi->state = PKTSTORE_FLOW_CLOSED;
}

void ps_flows_free(struct pktstore *ps)
{
	if (!ps->flows)
		return;
	for (uint32_t i = 0; i < ps->a.sb.max_flows; i++) {
		if (ps->flows[i]) {
			ps_index_free(&ps->flows[i]->idx);
			free(ps->flows[i]);
		}
	}
	free(ps->flows);
	ps->flows = NULL;
}

