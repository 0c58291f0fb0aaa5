/* SPDX-License-Identifier: MIT */
/*
 * pktstore - inspect and check arenas from the shell.
 *
 *   pktstore create PATH [--size N] [--segment N] [--flows N] [--bytes-per-record N]
 *   pktstore info   PATH [--json]
 *   pktstore stat   PATH [--json]
 *   pktstore check  PATH [--json]
 *   pktstore dump   PATH [--flow F] [--seq LO:HI | --id LO:HI | --time LO:HI] [--data] [--json]
 *
 * Everything but create opens the arena read-only (PKTSTORE_RDONLY), so it
 * changes nothing, not even the dirty-shutdown flag, and it refuses to run
 * while a server has the arena open.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pktstore.h>

static bool json;

static _Noreturn void usage(int code)
{
	fprintf(code ? stderr : stdout,
		"usage: pktstore create PATH [--size N] [--segment N] [--flows N] "
		"[--bytes-per-record N]\n"
		"       pktstore info|stat|check PATH [--json]\n"
		"       pktstore dump PATH [--flow F] [--seq LO:HI | --id LO:HI | --time LO:HI] "
		"[--data] [--json]\n"
		"Sizes take K, M, G suffixes. check exits 1 when anything is damaged.\n");
	exit(code);
}

static _Noreturn void fail(const char *what, int err)
{
	fprintf(stderr, "pktstore: %s: %s\n", what, pktstore_strerror(err));
	exit(err == -EUCLEAN || err == -EPROTONOSUPPORT ? 1 : 2);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	uint64_t v = strtoull(s, &end, 0);

	switch (toupper((unsigned char)*end)) {
	case 'G': v <<= 10; /* fall through */
	case 'M': v <<= 10; /* fall through */
	case 'K': v <<= 10; end++; break;
	default: break;
	}
	if (errno || *end || end == s) {
		fprintf(stderr, "pktstore: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void parse_range(const char *s, uint64_t *lo, uint64_t *hi)
{
	const char *colon = strchr(s, ':');
	char buf[64];

	if (!colon || (size_t)(colon - s) >= sizeof(buf)) {
		fprintf(stderr, "pktstore: range '%s' is not LO:HI\n", s);
		exit(2);
	}
	memcpy(buf, s, (size_t)(colon - s));
	buf[colon - s] = '\0';
	*lo = *buf ? parse_size(buf) : 0;
	*hi = colon[1] ? parse_size(colon + 1) : UINT64_MAX;
}

static struct pktstore *open_ro(const char *path)
{
	struct pktstore_opts o = { .flags = PKTSTORE_RDONLY };
	struct pktstore *ps;
	int ret = pktstore_open(path, &o, &ps);

	if (ret)
		fail(path, ret);
	return ps;
}

static const char *gran_name(enum pktstore_granularity g)
{
	return g == PKTSTORE_GRAN_BYTE ? "byte" : g == PKTSTORE_GRAN_CACHE_LINE ? "cache-line" : "page";
}

/* ------------------------------------------------------------- info, stat */

static void field(bool *first, const char *name, uint64_t v)
{
	if (json)
		printf("%s\"%s\": %" PRIu64, *first ? "" : ", ", name, v);
	else
		printf("%-22s %" PRIu64 "\n", name, v);
	*first = false;
}

static void sfield(bool *first, const char *name, const char *v)
{
	if (json)
		printf("%s\"%s\": \"%s\"", *first ? "" : ", ", name, v);
	else
		printf("%-22s %s\n", name, v);
	*first = false;
}

static void bfield(bool *first, const char *name, bool v)
{
	if (json)
		printf("%s\"%s\": %s", *first ? "" : ", ", name, v ? "true" : "false");
	else
		printf("%-22s %s\n", name, v ? "yes" : "no");
	*first = false;
}

static int cmd_info(const char *path, bool all)
{
	struct pktstore *ps = open_ro(path);
	struct pktstore_stats st;
	bool first = true;

	pktstore_stats(ps, &st);
	if (json)
		printf("{");
	sfield(&first, "path", path);
	field(&first, "arena_size", st.arena_size);
	field(&first, "segment_size", st.segment_size);
	field(&first, "segments", st.segments);
	field(&first, "data_bytes", st.data_bytes);
	field(&first, "descriptors", st.descriptors);
	field(&first, "flows_max", st.flows_max);
	sfield(&first, "granularity", gran_name(st.granularity));
	field(&first, "flows", st.flows);
	field(&first, "records", st.records);
	field(&first, "record_bytes", st.record_bytes);
	bfield(&first, "dirty_shutdown", st.dirty_shutdown);
	bfield(&first, "unsafe_shutdown", st.unsafe_shutdown);
	if (all) {
		field(&first, "segments_free", st.segments_free);
		field(&first, "descriptors_free", st.descriptors_free);
		field(&first, "damaged_records", st.damaged_records);
		field(&first, "invalid_descriptors", st.invalid_descriptors);
		field(&first, "invalid_flows", st.invalid_flows);
		field(&first, "superblock_damaged", st.superblock_repairs);
		field(&first, "recovery_ns", st.recovery_ns);
	}
	if (json)
		printf("}\n");
	pktstore_close(ps);
	return 0;
}

/* ------------------------------------------------------------- check */

static void print_rec(const struct pktstore_rec *r, bool data, const char *problem)
{
	if (json) {
		printf("{\"id\": %" PRIu64 ", \"flow\": %" PRIu64 ", \"seq\": %" PRIu64
		       ", \"ts_ns\": %" PRIu64 ", \"len\": %u, \"crc32c\": \"%08x\"",
		       r->id, r->flow, r->seq, r->ts_ns, r->len, r->crc32c);
		if (problem)
			printf(", \"problem\": \"%s\"", problem);
		if (data) {
			printf(", \"data_hex\": \"");
			for (uint32_t i = 0; i < r->len; i++)
				printf("%02x", ((const unsigned char *)r->data)[i]);
			printf("\"");
		}
		printf("}");
		return;
	}
	printf("id %" PRIu64 " flow %" PRIu64 " seq %" PRIu64 " len %u ts %" PRIu64
	       " crc32c %08x%s%s\n",
	       r->id, r->flow, r->seq, r->len, r->ts_ns, r->crc32c, problem ? " " : "",
	       problem ? problem : "");
	if (data) {
		for (uint32_t i = 0; i < r->len; i += 16) {
			printf("  %08x ", i);
			for (uint32_t k = i; k < i + 16 && k < r->len; k++)
				printf(" %02x", ((const unsigned char *)r->data)[k]);
			printf("\n");
		}
	}
}

static int cmd_check(const char *path)
{
	struct pktstore *ps = open_ro(path);
	struct pktstore_stats st;
	struct pktstore_rec r[256];
	struct pktstore_query q = { .kind = PKTSTORE_BY_ID, .hi = UINT64_MAX };
	uint64_t checked = 0, bad = 0;
	bool first = true;
	int n;

	pktstore_stats(ps, &st);
	if (json)
		printf("{\"damaged\": [");
	/* Every live record: its descriptor and bytes checked again. */
	while ((n = pktstore_range(ps, &q, r, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			struct pktstore_rec g;

			if (pktstore_get(ps, r[i].id, &g, 0)) {
				printf("%s", json && !first ? ", " : "");
				print_rec(&r[i], false, "checksum mismatch");
				first = false;
				bad++;
			}
			checked++;
		}
		q.lo = r[n - 1].id + 1;
	}
	if (n < 0)
		fail("check", n);
	/* Records found damaged when the arena was opened. */
	q = (struct pktstore_query){ .kind = PKTSTORE_DAMAGED, .hi = UINT64_MAX };
	while ((n = pktstore_range(ps, &q, r, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			printf("%s", json && !first ? ", " : "");
			print_rec(&r[i], false, "damaged: bytes, flow or seq do not check out");
			first = false;
			bad++;
		}
		q.lo = r[n - 1].id + 1;
	}
	if (n < 0)
		fail("check", n);
	bool damaged = bad || st.invalid_descriptors || st.invalid_flows || st.superblock_repairs;

	if (json) {
		printf("], \"records_checked\": %" PRIu64 ", \"invalid_descriptors\": %" PRIu64
		       ", \"invalid_flows\": %" PRIu64 ", \"superblock_damaged\": %" PRIu64
		       ", \"dirty_shutdown\": %s, \"ok\": %s}\n",
		       checked, st.invalid_descriptors, st.invalid_flows, st.superblock_repairs,
		       st.dirty_shutdown ? "true" : "false", damaged ? "false" : "true");
	} else {
		if (st.superblock_repairs)
			printf("superblock: one copy damaged (the other is good)\n");
		if (st.invalid_flows)
			printf("flow table: %" PRIu64 " entries fail their checksum\n",
			       st.invalid_flows);
		if (st.invalid_descriptors)
			printf("descriptor log: %" PRIu64 " descriptors fail their checksum or bounds"
			       "%s\n", st.invalid_descriptors,
			       st.dirty_shutdown ? " (a crash leaves unfinished ones: expected)" : "");
		printf("%" PRIu64 " records checked, %" PRIu64 " damaged: %s\n", checked, bad,
		       damaged ? "DAMAGED" : "OK");
	}
	pktstore_close(ps);
	return damaged ? 1 : 0;
}

/* ------------------------------------------------------------- dump */

static int cmd_dump(const char *path, struct pktstore_query q, bool data)
{
	struct pktstore *ps = open_ro(path);
	struct pktstore_rec r[256];
	uint64_t last_id = 0;
	bool first = true;
	int n;

	if (q.kind == PKTSTORE_BY_SEQ && !q.flow) {
		fprintf(stderr, "pktstore: --seq needs --flow\n");
		exit(2);
	}
	if (json)
		printf("[");
	while ((n = pktstore_range(ps, &q, r, 256)) > 0) {
		int shown = 0;

		for (int i = 0; i < n; i++) {
			if (q.kind == PKTSTORE_BY_TIME && r[i].id <= last_id)
				continue; /* seen in the previous page */
			printf("%s", json && !first ? ",\n" : "");
			print_rec(&r[i], data, NULL);
			first = false;
			shown++;
		}
		const struct pktstore_rec *last = &r[n - 1];

		if (q.kind == PKTSTORE_BY_TIME && !shown && n == 256)
			break; /* more than a page shares one timestamp */
		last_id = last->id;
		/* Records sharing a timestamp come in id order: a time page
		 * restarts at the last timestamp and skips what it showed. */
		q.lo = q.kind == PKTSTORE_BY_SEQ ? last->seq + last->len
		       : q.kind == PKTSTORE_BY_ID ? last->id + 1
						  : last->ts_ns;
		if ((q.kind == PKTSTORE_BY_TIME && n < 256) || q.lo >= q.hi)
			break;
	}
	if (json)
		printf("]\n");
	if (n < 0)
		fail("dump", n);
	pktstore_close(ps);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "data", no_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "segment", required_argument, NULL, 'S' },
		{ "flows", required_argument, NULL, 'F' },
		{ "bytes-per-record", required_argument, NULL, 'b' },
		{ "flow", required_argument, NULL, 'f' },
		{ "seq", required_argument, NULL, 'q' },
		{ "id", required_argument, NULL, 'i' },
		{ "time", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct pktstore_opts co = { .flags = PKTSTORE_CREATE | PKTSTORE_EXCL };
	struct pktstore_query q = { .kind = PKTSTORE_BY_ID, .hi = UINT64_MAX };
	bool data = false;
	int opt;

	if (argc < 2)
		usage(2);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		usage(0);
	const char *cmd = argv[1];

	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j': json = true; break;
		case 'd': data = true; break;
		case 's': co.size = parse_size(optarg); break;
		case 'S': co.segment_size = (uint32_t)parse_size(optarg); break;
		case 'F': co.max_flows = (uint32_t)parse_size(optarg); break;
		case 'b': co.bytes_per_record = (uint32_t)parse_size(optarg); break;
		case 'f': q.flow = parse_size(optarg); break;
		case 'q': q.kind = PKTSTORE_BY_SEQ; parse_range(optarg, &q.lo, &q.hi); break;
		case 'i': q.kind = PKTSTORE_BY_ID; parse_range(optarg, &q.lo, &q.hi); break;
		case 't': q.kind = PKTSTORE_BY_TIME; parse_range(optarg, &q.lo, &q.hi); break;
		case 'h': usage(0);
		default: usage(2);
		}
	}
	if (optind != argc - 1)
		usage(2);
	const char *path = argv[optind];

	if (!strcmp(cmd, "create")) {
		struct pktstore *ps;
		int ret = pktstore_open(path, &co, &ps);

		if (ret)
			fail(path, ret);
		pktstore_close(ps);
		return cmd_info(path, false);
	}
	if (!strcmp(cmd, "info"))
		return cmd_info(path, false);
	if (!strcmp(cmd, "stat"))
		return cmd_info(path, true);
	if (!strcmp(cmd, "check"))
		return cmd_check(path);
	if (!strcmp(cmd, "dump"))
		return cmd_dump(path, q, data);
	fprintf(stderr, "pktstore: unknown command '%s'\n", cmd);
	usage(2);
}
