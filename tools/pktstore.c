/* SPDX-License-Identifier: MIT */
/*
 * pktstore - inspect and check arenas from the shell.
 *
 *   pktstore create PATH [--size N] [--segment N] [--flows N] [--bytes-per-record N]
 *                   [--json] [--progress]
 *   pktstore info   PATH [--json]
 *   pktstore stat   PATH [--json]
 *   pktstore check  PATH [--json] [--progress]
 *   pktstore dump   PATH [--flow F] [--seq LO:HI | --id LO:HI | --time LO:HI] [--data] [--json]
 *   pktstore help [COMMAND]
 *
 * Everything but create opens the arena read-only (PKTSTORE_RDONLY), so it
 * changes nothing, not even the dirty-shutdown flag, and it refuses to run
 * while a server has the arena open.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pktstore.h>

#include "cliutil.h"

static bool json;

/* ------------------------------------------------------------- usage */

/* Options, as bits, so each command can say which ones it takes. */
enum {
	O_JSON = 1 << 0, O_DATA = 1 << 1, O_SIZE = 1 << 2, O_SEGMENT = 1 << 3,
	O_FLOWS = 1 << 4, O_BPR = 1 << 5, O_FLOW = 1 << 6, O_SEQ = 1 << 7,
	O_ID = 1 << 8, O_TIME = 1 << 9, O_PROGRESS = 1 << 10,
};

static const struct command {
	const char *name;
	unsigned opts;
	const char *synopsis;
	const char *help;
} commands[] = {
	{ "create", O_SIZE | O_SEGMENT | O_FLOWS | O_BPR | O_JSON | O_PROGRESS,
	  "create PATH [--size N] [--segment N] [--flows N]\n"
	  "                       [--bytes-per-record N] [--json] [--progress]",
	  "Create a new arena at PATH (never over an existing file), then print its info.\n"
	  "  --size N              arena file size; default 64M\n"
	  "  --segment N           segment size, a multiple of 4096, at most 1G; default 1M\n"
	  "  --flows N             flow table entries, 1 to 16777216; default 1024\n"
	  "  --bytes-per-record N  expected mean record size, at least 16; default 512\n"
	  "  --progress            report progress on stderr (on by default on a terminal)\n"
	  "A create that fails or is interrupted removes the file it made.\n" },
	{ "info", O_JSON, "info PATH [--json]",
	  "Print the layout and contents of the arena; warns on stderr when the open\n"
	  "rejected records or structures (then run check).\n" },
	{ "stat", O_JSON, "stat PATH [--json]",
	  "Print info, then free space and what the open found: damaged records,\n"
	  "rejected descriptors and flow entries, superblock damage, recovery time.\n" },
	{ "check", O_JSON | O_PROGRESS, "check PATH [--json] [--progress]",
	  "Verify every record and structure again; exit 1 naming what is damaged.\n"
	  "  --progress            report progress on stderr (on by default on a terminal)\n" },
	{ "dump", O_FLOW | O_SEQ | O_ID | O_TIME | O_DATA | O_JSON,
	  "dump PATH [--flow F] [--seq LO:HI | --id LO:HI | --time LO:HI]\n"
	  "                     [--data] [--json]",
	  "Print live records, by id unless a range says otherwise.\n"
	  "  --flow F       only flow F, a decimal id (needed by --seq)\n"
	  "  --seq LO:HI    records whose bytes intersect stream offsets [LO, HI)\n"
	  "  --id LO:HI     records with LO <= id < HI\n"
	  "  --time LO:HI   records with LO <= timestamp (CLOCK_REALTIME ns) < HI\n"
	  "  --data         also print the bytes, in hex; with --seq only those in [LO, HI)\n"
	  "An empty LO means 0, an empty HI no bound.\n" },
	{ "help", 0, "help [COMMAND]", "Print the usage of every command, or of one.\n" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage:");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "%s pktstore %s\n", i ? "      " : "", commands[i].synopsis);
	fprintf(f, "       pktstore --version\n"
		   "Sizes are decimal with an optional K, M or G suffix (010 is ten).\n"
		   "Exit status: 0 ok, 1 damage found (check) or not an arena, 2 any other error.\n"
		   "'pktstore help COMMAND' describes one command; man pktstore for more.\n");
}

static void command_help(const struct command *c)
{
	printf("usage: pktstore %s\n%s", c->synopsis, c->help);
}

static const char *const commands_list = "create, info, stat, check, dump, help";

/* ------------------------------------------------------------- errors */

static void progress_clear(void);

static _Noreturn void fail(const char *what, int err)
{
	progress_clear();
	fprintf(stderr, "pktstore: %s: %s\n", what, pktstore_strerror(err));
	exit(err == -EUCLEAN || err == -EPROTONOSUPPORT ? 1 : 2);
}

static _Noreturn void fail_open(const char *path, int err, const struct pktstore_opts *o)
{
	progress_clear();
	open_error("pktstore", path, err, o);
	exit(err == -EUCLEAN || err == -EPROTONOSUPPORT ? 1 : 2);
}

static uint64_t size_arg(const char *opt, const char *s, uint64_t max)
{
	uint64_t v;
	int ret = parse_size(s, max, &v);

	if (ret) {
		size_error("pktstore", opt, s, ret, max);
		exit(2);
	}
	return v;
}

/*
 * A layout option of create given as 0 would silently mean its default
 * (pktstore_open(3)'s rule for a zero field): refuse it, naming the least
 * value allowed and the default.
 */
static uint64_t layout_arg(const char *opt, const char *s, uint64_t max, uint64_t least,
			   const char *dflt)
{
	uint64_t v = size_arg(opt, s, max);

	if (!v) {
		fprintf(stderr, "pktstore: %s '%s' is too small: at least %" PRIu64
			" (omit %s for the default, %s)\n", opt, s, least, opt, dflt);
		exit(2);
	}
	return v;
}

/* A flow id: plain decimal digits (no K, M or G). */
static uint64_t flow_arg(const char *s)
{
	uint64_t v;

	if (s[strspn(s, "0123456789")] || parse_size(s, UINT64_MAX, &v) || !v) {
		fprintf(stderr, "pktstore: --flow '%s' is not a flow id: decimal digits, 1 or more "
			"('pktstore dump PATH' lists the flows of the records)\n", s);
		exit(2);
	}
	return v;
}

static void parse_range(const char *opt, const char *s, uint64_t *lo, uint64_t *hi)
{
	const char *colon = strchr(s, ':');
	char buf[64];

	if (!colon || (size_t)(colon - s) >= sizeof(buf)) {
		fprintf(stderr, "pktstore: %s '%s' is not LO:HI (for example 0:4096, or 100: for no "
			"upper bound)\n", opt, s);
		exit(2);
	}
	memcpy(buf, s, (size_t)(colon - s));
	buf[colon - s] = '\0';
	*lo = *buf ? size_arg(opt, buf, UINT64_MAX) : 0;
	*hi = colon[1] ? size_arg(opt, colon + 1, UINT64_MAX) : UINT64_MAX;
	if (*lo >= *hi) {
		fprintf(stderr, "pktstore: %s '%s' is empty: LO must be below HI\n", opt, s);
		exit(2);
	}
}

/* ------------------------------------------------------------- JSON */

/* Length of the valid UTF-8 sequence at p, or 0 if it is not one. */
static int utf8_len(const unsigned char *p)
{
	int n = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
		: p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;

	for (int i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	/* Overlong forms, UTF-16 surrogates and code points past U+10FFFF. */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return n;
}

/* A JSON string: quotes, backslashes and control characters escaped, and a
 * byte that is not UTF-8 (a file name may hold any) as U+FFFD. */
static void json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	putchar('"');
	while (*p) {
		int n;

		if (*p == '"' || *p == '\\') {
			printf("\\%c", *p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			printf("\\u%04x", *p++);
		} else if (*p < 0x80) {
			putchar(*p++);
		} else if ((n = utf8_len(p))) {
			fwrite(p, 1, (size_t)n, stdout);
			p += n;
		} else {
			fputs("\\ufffd", stdout);
			p++;
		}
	}
	putchar('"');
}

/* ------------------------------------------------------------- progress */

/*
 * Long work reports on stderr from a thread that samples it four times a
 * second: on a terminal one line rewritten in place, with --progress on a
 * pipe a line per phase and per tenth done. The library has no callback, so
 * create is followed from outside: the file's allocated blocks while
 * posix_fallocate(3) runs; then, while the library maps the file and faults
 * tmpfs pages in, only the time (anything read from /proc/self waits for
 * the mapping lock that faulting holds).
 */
enum phase { PH_NONE, PH_ALLOCATE, PH_MAP, PH_OPEN, PH_CHECK, PH_DONE };

static struct {
	bool on, tty;
	const char *what, *path;
	_Atomic uint64_t total;      /* bytes (create) or records (check) */
	_Atomic uint64_t done;       /* records checked */
	_Atomic int phase;
	_Atomic bool stop;
	pthread_t th;
	double t0;
} prog;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What is done of the current phase, out of what. */
static int sample(uint64_t *done, uint64_t *total)
{
	int ph = atomic_load(&prog.phase);
	struct stat st;

	*done = 0;
	*total = atomic_load(&prog.total);
	if (ph == PH_ALLOCATE) {
		if (!stat(prog.path, &st))
			*done = (uint64_t)st.st_blocks * 512;
		/* Blocks reach the size when fallocate is done: then the
		 * library maps the file (and faults tmpfs pages in). */
		if (*total && *done >= *total)
			atomic_compare_exchange_strong(&prog.phase, &ph, PH_MAP);
	}
	if (ph == PH_CHECK)
		*done = atomic_load(&prog.done);
	if (*done > *total)
		*done = *total;
	return ph;
}

static void report(int ph, uint64_t done, uint64_t total, bool final)
{
	static const char *const name[] = {
		[PH_ALLOCATE] = "allocating", [PH_MAP] = "mapping and faulting pages in",
		[PH_OPEN] = "opening (rebuilding the index)", [PH_CHECK] = "checking records",
		[PH_DONE] = "done",
	};
	char line[192], a[32], b[32];
	int n = snprintf(line, sizeof(line), "pktstore: %s %s: %s", prog.what, prog.path, name[ph]);

	if (ph == PH_ALLOCATE)
		snprintf(line + n, sizeof(line) - (size_t)n, " %3.0f%% (%s of %s)",
			 total ? 100.0 * (double)done / (double)total : 0, size_text(done, a),
			 size_text(total, b));
	else if (ph == PH_CHECK)
		snprintf(line + n, sizeof(line) - (size_t)n, " %3.0f%% (%" PRIu64 " of %" PRIu64 ")",
			 total ? 100.0 * (double)done / (double)total : 100, done, total);
	else
		snprintf(line + n, sizeof(line) - (size_t)n, " (%.1f s)", now_s() - prog.t0);
	if (prog.tty)
		fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
	else
		fprintf(stderr, "%s\n", line);
}

static void *progress_main(void *arg)
{
	int last_ph = atomic_load(&prog.phase), last_tenth = 0;

	(void)arg;
	while (!atomic_load(&prog.stop)) {
		uint64_t done, total;
		int ph = sample(&done, &total);
		int tenth = total ? (int)(done * 10 / total) : 0;

		/* A terminal is updated in place; a pipe gets a line per tenth
		 * (the main thread reports the phases it starts). */
		if (prog.tty ? now_s() - prog.t0 > 0.5
			     : (ph == last_ph && total && tenth != last_tenth) ||
				       (ph == PH_MAP && last_ph == PH_ALLOCATE))
			report(ph, done, total, false);
		last_ph = ph;
		last_tenth = tenth;
		usleep(250000);
	}
	return NULL;
}

static void progress_start(bool flag, const char *what, const char *path, int phase,
			   uint64_t total)
{
	prog.tty = isatty(STDERR_FILENO);
	prog.on = flag || prog.tty;
	if (!prog.on)
		return;
	prog.what = what;
	prog.path = path;
	atomic_store(&prog.total, total);
	prog.t0 = now_s();
	atomic_store(&prog.phase, phase);
	if (!prog.tty)
		report(phase, 0, total, false);
	if (pthread_create(&prog.th, NULL, progress_main, NULL))
		prog.on = false; /* no thread, no progress: the work goes on */
}

static void progress_phase(int phase, uint64_t total)
{
	atomic_store(&prog.total, total);
	atomic_store(&prog.done, 0);
	atomic_store(&prog.phase, phase);
	if (prog.on && !prog.tty)
		report(phase, 0, total, false);
}

static void progress_stop(bool ok)
{
	if (!prog.on)
		return;
	atomic_store(&prog.stop, true);
	pthread_join(prog.th, NULL);
	prog.on = false;
	if (ok && (!prog.tty || now_s() - prog.t0 > 0.5))
		report(PH_DONE, 0, 0, true);
	else if (prog.tty)
		fprintf(stderr, "\r\033[K");
}

/* An error message must not land at the end of a progress line. */
static void progress_clear(void)
{
	if (prog.on && prog.tty)
		fprintf(stderr, "\r\033[K");
}

/* ------------------------------------------------------------- open */

/* Every command inspects: it hashes every record's bytes (PKTSTORE_VERIFY)
 * so that damage is reported wherever it is, not only in the stretch a
 * crash may have torn. */
static struct pktstore *open_ro(const char *path)
{
	struct pktstore_opts o = { .flags = PKTSTORE_RDONLY | PKTSTORE_VERIFY };
	struct pktstore *ps;
	int ret = pktstore_open(path, &o, &ps);

	if (ret)
		fail_open(path, ret, &o);
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
	if (json) {
		printf("%s\"%s\": ", *first ? "" : ", ", name);
		json_str(v);
	} else {
		printf("%-22s %s\n", name, v);
	}
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

/*
 * records counts only what passed every check at open: say so when some
 * did not, or info reads as a smaller arena rather than a damaged one.
 */
static void warn_damage(const char *path, const struct pktstore_stats *st)
{
	if (st->damaged_records)
		fprintf(stderr, "pktstore: warning: %s: %" PRIu64 " damaged records are not "
			"counted in records\n", path, st->damaged_records);
	if (st->invalid_descriptors)
		fprintf(stderr, "pktstore: warning: %s: %" PRIu64 " descriptors were rejected%s; "
			"their records are not counted\n", path, st->invalid_descriptors,
			st->dirty_shutdown ? " (after a crash, records being written: expected)"
					   : "");
	if (st->invalid_flows)
		fprintf(stderr, "pktstore: warning: %s: %" PRIu64 " flow table entries were "
			"rejected\n", path, st->invalid_flows);
	if (st->superblock_repairs)
		fprintf(stderr, "pktstore: warning: %s: one superblock copy is damaged (the "
			"other is good)\n", path);
	if (st->damaged_records || st->invalid_descriptors || st->invalid_flows ||
	    st->superblock_repairs)
		fprintf(stderr, "pktstore: warning: run 'pktstore check %s' for the details\n",
			path);
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
	if (!all)
		warn_damage(path, &st);
	pktstore_close(ps);
	return 0;
}

/* ------------------------------------------------------------- create */

static const char *volatile creating; /* the file a signal must remove */

static void on_interrupt(int sig)
{
	if (creating)
		unlink(creating);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int cmd_create(const char *path, struct pktstore_opts *co, bool progress)
{
	struct stat st;
	struct pktstore *ps;

	if (!lstat(path, &st))
		fail_open(path, -EEXIST, co);
	/* From here the file is ours: a failure or an interrupt removes it,
	 * or the next create would find it and refuse ("already exists"). */
	struct sigaction sa = { .sa_handler = on_interrupt };

	creating = path;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	progress_start(progress, "create", path, PH_ALLOCATE, co->size ? co->size : 64ull << 20);
	int ret = pktstore_open(path, co, &ps);

	progress_stop(!ret);
	if (ret) {
		if (ret != -EEXIST) /* EEXIST: someone else's file, made meanwhile */
			unlink(path);
		creating = NULL;
		fail_open(path, ret, co);
	}
	ret = pktstore_close(ps);
	creating = NULL;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (ret)
		fail(path, ret);
	return cmd_info(path, false);
}

/* ------------------------------------------------------------- check */

/*
 * One record. data/lo/hi: print the bytes whose stream offsets fall in
 * [lo, hi) (the whole record for lo 0, hi UINT64_MAX).
 */
static void print_rec(const struct pktstore_rec *r, bool data, uint64_t lo, uint64_t hi,
		      const char *problem)
{
	const unsigned char *d = r->data;
	uint64_t end = r->seq + r->len;
	uint32_t from = lo > r->seq ? (uint32_t)(lo < end ? lo - r->seq : r->len) : 0;
	uint32_t to = hi < end ? (hi > r->seq ? (uint32_t)(hi - r->seq) : 0) : r->len;

	if (to < from)
		to = from;
	if (json) {
		printf("{\"id\": %" PRIu64 ", \"flow\": %" PRIu64 ", \"seq\": %" PRIu64
		       ", \"ts_ns\": %" PRIu64 ", \"len\": %u, \"crc32c\": \"%08x\"",
		       r->id, r->flow, r->seq, r->ts_ns, r->len, r->crc32c);
		if (problem) {
			printf(", \"problem\": ");
			json_str(problem);
		}
		if (data) {
			printf(", \"data_offset\": %u, \"data_hex\": \"", from);
			for (uint32_t i = from; i < to; i++)
				printf("%02x", d[i]);
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
		for (uint32_t i = from; i < to; i += 16) {
			printf("  %08x ", i);
			for (uint32_t k = i; k < i + 16 && k < to; k++)
				printf(" %02x", d[k]);
			printf("\n");
		}
	}
}

static int cmd_check(const char *path, bool progress)
{
	progress_start(progress, "check", path, PH_OPEN, 0);

	struct pktstore *ps = open_ro(path);
	struct pktstore_stats st;
	struct pktstore_rec r[256];
	struct pktstore_query q = { .kind = PKTSTORE_BY_ID, .hi = UINT64_MAX };
	uint64_t checked = 0, bad = 0;
	bool first = true;
	int n;

	pktstore_stats(ps, &st);
	progress_phase(PH_CHECK, st.records);
	if (json)
		printf("{\"damaged\": [");
	/* Every live record: its descriptor and bytes checked again. */
	while ((n = pktstore_range(ps, &q, r, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			struct pktstore_rec g;

			if (pktstore_get(ps, r[i].id, &g, 0)) {
				printf("%s", json && !first ? ", " : "");
				print_rec(&r[i], false, 0, UINT64_MAX, "checksum mismatch");
				first = false;
				bad++;
			}
			checked++;
		}
		atomic_store(&prog.done, checked);
		q.lo = r[n - 1].id + 1;
	}
	progress_stop(n >= 0);
	if (n < 0)
		fail("check", n);
	/* Records found damaged when the arena was opened. */
	q = (struct pktstore_query){ .kind = PKTSTORE_DAMAGED, .hi = UINT64_MAX };
	while ((n = pktstore_range(ps, &q, r, 256)) > 0) {
		for (int i = 0; i < n; i++) {
			printf("%s", json && !first ? ", " : "");
			print_rec(&r[i], false, 0, UINT64_MAX,
				  "damaged: bytes, flow or seq do not check out");
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

/* A dump of a flow the arena does not hold: name the flows it does hold,
 * rather than a bare "No such file or directory". */
static _Noreturn void no_such_flow(struct pktstore *ps, const char *path, uint64_t flow)
{
	struct pktstore_flow_info fi[17]; /* 16 named, and whether there are more */
	int n = pktstore_flows(ps, 0, fi, 17);

	fprintf(stderr, "pktstore: dump: %s has no flow %" PRIu64, path, flow);
	if (n <= 0)
		fprintf(stderr, "; it holds no flows\n");
	for (int i = 0; i < n && i < 16; i++)
		fprintf(stderr, "%s%" PRIu64, i ? ", " : "; its flows are ", fi[i].id);
	if (n > 0)
		fprintf(stderr, "%s\n", n > 16 ? ", ..." : "");
	exit(2);
}

static int cmd_dump(const char *path, struct pktstore_query q, bool data)
{
	struct pktstore *ps = open_ro(path);
	struct pktstore_rec r[256];
	/* --data with --seq shows the bytes asked for, not whole records. */
	uint64_t lo = q.kind == PKTSTORE_BY_SEQ ? q.lo : 0;
	uint64_t hi = q.kind == PKTSTORE_BY_SEQ ? q.hi : UINT64_MAX;
	uint64_t last_id = 0;
	bool first = true;
	int n;

	if (json)
		printf("[");
	while ((n = pktstore_range(ps, &q, r, 256)) > 0) {
		int shown = 0;

		for (int i = 0; i < n; i++) {
			if (q.kind == PKTSTORE_BY_TIME && r[i].id <= last_id)
				continue; /* seen in the previous page */
			printf("%s", json && !first ? ",\n" : "");
			print_rec(&r[i], data, lo, hi, NULL);
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
	if (n == -ENOENT && q.flow)
		no_such_flow(ps, path, q.flow);
	if (n < 0)
		fail("dump", n);
	pktstore_close(ps);
	return 0;
}

/* ------------------------------------------------------------- main */

static const char *opt_name(unsigned bit)
{
	static const char *const names[] = {
		"--json", "--data", "--size", "--segment", "--flows", "--bytes-per-record",
		"--flow", "--seq", "--id", "--time", "--progress",
	};

	return names[__builtin_ctz(bit)];
}

static void list_opts(FILE *f, unsigned mask)
{
	bool first = true;

	for (unsigned bit = 1; bit <= O_PROGRESS; bit <<= 1)
		if (mask & bit) {
			fprintf(f, "%s%s", first ? "" : ", ", opt_name(bit));
			first = false;
		}
	if (first)
		fprintf(f, "no options");
}

static _Noreturn void bad_option(const struct command *c, const char *what, const char *opt)
{
	fprintf(stderr, "pktstore: %s: %s '%s'; it takes ", c->name, what, opt);
	list_opts(stderr, c->opts);
	fprintf(stderr, " (see 'pktstore help %s')\n", c->name);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "data", no_argument, NULL, O_DATA },
		{ "size", required_argument, NULL, O_SIZE },
		{ "segment", required_argument, NULL, O_SEGMENT },
		{ "flows", required_argument, NULL, O_FLOWS },
		{ "bytes-per-record", required_argument, NULL, O_BPR },
		{ "flow", required_argument, NULL, O_FLOW },
		{ "seq", required_argument, NULL, O_SEQ },
		{ "id", required_argument, NULL, O_ID },
		{ "time", required_argument, NULL, O_TIME },
		{ "progress", no_argument, NULL, O_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct pktstore_opts co = { .flags = PKTSTORE_CREATE | PKTSTORE_EXCL };
	struct pktstore_query q = { .kind = PKTSTORE_BY_ID, .hi = UINT64_MAX };
	bool data = false, progress = false;
	const char *size_zero = NULL;
	int opt;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		print_version("pktstore");
		return 0;
	}
	const struct command *c = find_command(argv[1]);

	if (!c) {
		fprintf(stderr, "pktstore: unknown command '%s'; the commands are %s "
			"('pktstore --help' shows their usage)\n", argv[1], commands_list);
		return 2;
	}
	if (!strcmp(c->name, "help")) {
		if (argc == 2) {
			usage(stdout);
			return 0;
		}
		const struct command *h = argc == 3 ? find_command(argv[2]) : NULL;

		if (!h) {
			fprintf(stderr, "pktstore: help: '%s' is not a command; the commands are %s\n",
				argv[2], commands_list);
			return 2;
		}
		command_help(h);
		return 0;
	}

	opterr = 0; /* the messages below say what the command takes */
	optind = 2;
	while ((opt = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (opt == 'h') {
			command_help(c);
			return 0;
		}
		if (opt == '?')
			bad_option(c, "unknown option", argv[optind - 1]);
		if (opt == ':') {
			fprintf(stderr, "pktstore: %s: %s needs a value (see 'pktstore help %s')\n",
				c->name, argv[optind - 1], c->name);
			return 2;
		}
		if (!(c->opts & (unsigned)opt))
			bad_option(c, "does not take", opt_name((unsigned)opt));
		switch (opt) {
		case O_JSON: json = true; break;
		case O_DATA: data = true; break;
		case O_PROGRESS: progress = true; break;
		case O_SIZE:
			co.size = size_arg("--size", optarg, INT64_MAX);
			if (!co.size)
				size_zero = optarg; /* its minimum needs every option */
			break;
		case O_SEGMENT:
			co.segment_size = (uint32_t)layout_arg("--segment", optarg, 1u << 30, 4096,
							       "1M");
			break;
		case O_FLOWS:
			co.max_flows = (uint32_t)layout_arg("--flows", optarg, 1u << 24, 1, "1024");
			break;
		case O_BPR:
			co.bytes_per_record = (uint32_t)layout_arg("--bytes-per-record", optarg,
								   UINT32_MAX, 16, "512");
			break;
		case O_FLOW: q.flow = flow_arg(optarg); break;
		case O_SEQ: q.kind = PKTSTORE_BY_SEQ; parse_range("--seq", optarg, &q.lo, &q.hi); break;
		case O_ID: q.kind = PKTSTORE_BY_ID; parse_range("--id", optarg, &q.lo, &q.hi); break;
		case O_TIME:
			q.kind = PKTSTORE_BY_TIME;
			parse_range("--time", optarg, &q.lo, &q.hi);
			break;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "pktstore: %s needs the arena PATH: pktstore %s\n", c->name,
			c->synopsis);
		return 2;
	}
	if (optind != argc - 1) {
		fprintf(stderr, "pktstore: %s takes one PATH, not %d ('%s', '%s'%s)\n", c->name,
			argc - optind, argv[optind], argv[optind + 1], argc - optind > 2 ? ", ..." : "");
		return 2;
	}
	const char *path = argv[optind];

	if (!strcmp(c->name, "create")) {
		if (size_zero) {
			uint64_t min = min_arena_size(&co);
			char t[32];

			fprintf(stderr, "pktstore: --size '%s' is too small: this layout needs at least "
				"%" PRIu64 " bytes (%s); omit --size for the default, 64M\n", size_zero,
				min, size_text(min, t));
			return 2;
		}
		return cmd_create(path, &co, progress);
	}
	if (!strcmp(c->name, "info"))
		return cmd_info(path, false);
	if (!strcmp(c->name, "stat"))
		return cmd_info(path, true);
	if (!strcmp(c->name, "check"))
		return cmd_check(path, progress);
	if (q.kind == PKTSTORE_BY_SEQ && !q.flow) {
		fprintf(stderr, "pktstore: dump: --seq needs --flow F (a seq is an offset in one "
			"flow's stream)\n");
		return 2;
	}
	return cmd_dump(path, q, data);
}
