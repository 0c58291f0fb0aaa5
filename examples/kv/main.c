/* SPDX-License-Identifier: MIT */
/*
 * pktstore-kv - a durable key-value server on libpktstore that Redis
 * (RESP2) and HTTP/1.1 clients use unmodified.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "size.h"
#include "util.h"

static const char usage[] =
	"usage: pktstore-kv --arena PATH [options]\n"
	"\n"
	"  --arena PATH        arena file (created if missing)\n"
	"  --size BYTES        arena size when creating (default 64M, at least 1M;\n"
	"                      K/M/G suffixes)\n"
	"  --resp HOST:PORT    RESP2 listener (default 127.0.0.1:7379; port 0 = any)\n"
	"  --http HOST:PORT    HTTP/1.1 listener (default 127.0.0.1:7380; port 0 = any)\n"
	"  --max-value BYTES   largest value accepted (default 512K, or the segment\n"
	"                      size less 8K if that is smaller; at most that, and 1G)\n"
	"  --max-clients N     simultaneous connections (default 512; 1 to 1000000)\n"
	"  --max-output BYTES  replies queued for one client before it is cut off\n"
	"                      (default 1G; CONFIG SET client-output-buffer-limit)\n"
	"  --full-timeout SECONDS\n"
	"                      when the arena has been full this long with nothing\n"
	"                      released, close the connections holding unfinished\n"
	"                      commands or transactions, largest first\n"
	"                      (default 10, at most 86400; 0: never)\n"
	"  --requirepass-file PATH\n"
	"                      clients must AUTH with the first line of PATH first\n"
	"  --requirepass PASS  the same with PASS (visible to ps: prefer the file);\n"
	"                      HTTP, which has no AUTH, then listens only with --http\n"
	"  --zcrx IF:QUEUE     receive with io_uring zero-copy receive on that NIC rx\n"
	"                      queue (falls back to the buffer ring; see pktstore(7))\n"
	"  --repair            start on a damaged arena: cut each damaged stream at its\n"
	"                      damage and say what was dropped (default: refuse)\n"
	"  -V, --version       print the version\n"
	"  -h, --help          this text\n";

uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void kv_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("pktstore-kv: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void kv_log_limited(struct kv_ratelimit *rl, const char *fmt, ...)
{
	uint64_t now = now_ns();
	if (now < rl->next_ns) {
		rl->suppressed++;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	fputs("pktstore-kv: ", stderr);
	vfprintf(stderr, fmt, ap);
	if (rl->suppressed)
		fprintf(stderr, " (and %" PRIu64 " more like it in the last 10 s)", rl->suppressed);
	fputc('\n', stderr);
	va_end(ap);
	rl->suppressed = 0;
	rl->next_ns = now + 10000000000ull;
}

/*
 * Segment size for a new arena: at least 16 segments, because the cleaner
 * and receiving keep a few free (compact.c), but at most 1 MiB, the
 * library's default, and at least 64 KiB.
 */
static uint32_t segment_for(uint64_t size)
{
	uint32_t seg = 1u << 20;
	while (size && seg > (64u << 10) && size / seg < 16)
		seg >>= 1;
	return seg;
}

/* The first line of path, which is never logged. */
static char *read_password(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char buf[1024];
	char *line = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!line)
		return NULL;
	buf[strcspn(buf, "\r\n")] = 0;
	char *p = buf[0] ? strdup(buf) : NULL;
	memset(buf, 0, sizeof(buf));
	return p;
}

static int bad(const char *fmt, const char *arg)
{
	fprintf(stderr, "pktstore-kv: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'pktstore-kv --help'.\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "arena", required_argument, NULL, 'a' },
		{ "size", required_argument, NULL, 's' },
		{ "resp", required_argument, NULL, 'r' },
		{ "http", required_argument, NULL, 'w' },
		{ "max-value", required_argument, NULL, 'v' },
		{ "max-clients", required_argument, NULL, 'c' },
		{ "max-output", required_argument, NULL, 'o' },
		{ "full-timeout", required_argument, NULL, 'T' },
		{ "requirepass", required_argument, NULL, 'p' },
		{ "requirepass-file", required_argument, NULL, 'P' },
		{ "zcrx", required_argument, NULL, 'z' },
		{ "repair", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	static struct kv_server srv;
	struct kv_server *s = &srv;
	uint64_t v, max_value = 0;
	int rc;
	s->cfg.resp_addr = "127.0.0.1:7379";
	s->cfg.http_addr = "127.0.0.1:7380";
	s->cfg.max_clients = 512;
	s->cfg.max_output = 1ull << 30;
	s->cfg.full_timeout_ns = 10 * 1000000000ull;
	s->start_ms = wall_ms();
	kv_hash_init(); /* before any key is hashed, replay's included */
	int o, http_given = 0;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (o) {
		case 'a': s->cfg.arena = optarg; break;
		case 's':
			if ((rc = parse_size(optarg, UINT64_MAX, &s->cfg.size)) < 0) {
				size_error("pktstore-kv", "--size", optarg, rc, UINT64_MAX);
				return 2;
			}
			if (s->cfg.size < (1u << 20))
				return bad("--size '%s' is too small: at least 1M", optarg);
			break;
		case 'r': s->cfg.resp_addr = optarg; break;
		case 'w': s->cfg.http_addr = optarg, http_given = 1; break;
		case 'v':
			if ((rc = parse_size(optarg, 1u << 30, &max_value)) < 0) {
				size_error("pktstore-kv", "--max-value", optarg, rc, 1u << 30);
				return 2;
			}
			if (!max_value)
				return bad("--max-value '%s' is too small: at least 1", optarg);
			break;
		case 'c':
			if (parse_size(optarg, 1000000, &v) < 0 || v == 0)
				return bad("--max-clients '%s' is not a number between 1 and 1000000",
					   optarg);
			s->cfg.max_clients = (uint32_t)v;
			break;
		case 'o':
			if ((rc = parse_size(optarg, UINT64_MAX, &s->cfg.max_output)) < 0) {
				size_error("pktstore-kv", "--max-output", optarg, rc, UINT64_MAX);
				return 2;
			}
			if (!s->cfg.max_output)
				return bad("--max-output '%s' is too small: at least 1", optarg);
			break;
		case 'T':
			/* Seconds: digits only, as a size suffix would make 1K
			 * mean 1024 of them. */
			if (!*optarg || optarg[strspn(optarg, "0123456789")] ||
			    parse_size(optarg, 86400, &v) < 0)
				return bad("--full-timeout '%s' is not a number of seconds from 0 to 86400",
					   optarg);
			s->cfg.full_timeout_ns = v * 1000000000ull;
			break;
		case 'p':
			free(s->cfg.requirepass);
			s->cfg.requirepass = optarg[0] ? strdup(optarg) : NULL;
			break;
		case 'P':
			free(s->cfg.requirepass);
			if (!(s->cfg.requirepass = read_password(optarg)))
				return bad("--requirepass-file '%s': cannot read a non-empty first line",
					   optarg);
			break;
		case 'z': s->cfg.zcrx = optarg; break;
		case 'R': s->cfg.repair = 1; break;
		case 'h': fputs(usage, stdout); return 0;
		case 'V': print_version("pktstore-kv"); return 0;
		default:
			return bad("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (!s->cfg.arena)
		return bad("%s", "--arena PATH is required");
	/* The HTTP API has no AUTH: with a password it listens only when asked. */
	if (s->cfg.requirepass && !http_given)
		s->cfg.http_addr = NULL;
	/* Checked before the arena is opened: a typo must not leave a new
	 * arena file behind. */
	for (int i = 0; i < 2; i++) {
		const char *a = i ? s->cfg.http_addr : s->cfg.resp_addr;
		const char *why = a ? addr_check(a) : NULL;
		if (why) {
			fprintf(stderr, "pktstore-kv: %s '%s': %s\nTry 'pktstore-kv --help'.\n",
				i ? "--http" : "--resp", a, why);
			return 2;
		}
	}

	/* PKTSTORE_VERIFY: replay must know of every damaged record before
	 * it applies anything (damage.c refuses to start on one), not only of
	 * those in the stretch a crash may have torn. */
	struct pktstore_opts po = { .flags = PKTSTORE_CREATE | PKTSTORE_VERIFY, .size = s->cfg.size,
				    .segment_size = segment_for(s->cfg.size),
				    .zcrx = s->cfg.zcrx };
	rc = pktstore_open(s->cfg.arena, &po, &s->ps);
	if (rc < 0) {
		kv_log("cannot open arena %s: %s", s->cfg.arena, pktstore_strerror(rc));
		return 1;
	}
	struct pktstore_stats st;
	pktstore_stats(s->ps, &st);
	s->segment_size = (uint32_t)st.segment_size;
	/* Relocation copies a value into one appended record, which must fit a segment. */
	uint64_t limit = st.segment_size > 16384 ? st.segment_size - 8192 : 8192;
	if (!max_value)
		max_value = limit < (512u << 10) ? limit : (512u << 10);
	if (max_value > limit) {
		kv_log("--max-value %" PRIu64 " exceeds what this arena can relocate (%" PRIu64 ")",
		       max_value, limit);
		pktstore_close(s->ps);
		return 2;
	}
	s->cfg.max_value = (uint32_t)max_value;
	/* Redis's multibulk limit; arguments of up to 512 bytes are copied,
	 * up to 1 MiB of them per command, the rest read from the arena. */
	s->resp_lim = (struct kv_limits){ .max_args = 0x7fffffff, .max_bulk = s->cfg.max_value,
					  .copy_max = 512, .max_line = 64 << 10,
					  .copy_total = 1 << 20 };
	s->http_lim = (struct kv_limits){ .max_args = 0, .max_bulk = s->cfg.max_value,
					  .copy_max = 0, .max_line = 8 << 10 };
	s->log_keep = st.data_bytes / 4;
	space_init(s, &st);

	static const char *gran[] = { "byte", "cache line", "page" };
	kv_log("arena %s: %" PRIu64 " bytes, %" PRIu64 " segments of %" PRIu64
	       ", persistence granularity: %s%s",
	       s->cfg.arena, st.arena_size, st.segments, st.segment_size,
	       gran[st.granularity <= PKTSTORE_GRAN_PAGE ? st.granularity : 2],
	       st.dirty_shutdown ? " (previous session did not close cleanly)" : "");
	if (st.fallback_reason[0])
		kv_log("receive path: %s (%s)", st.recv_path_name, st.fallback_reason);
	else
		kv_log("receive path: %s", st.recv_path_name);

	uint64_t keys = 0, ns = 0;
	if (ks_init(s)) {
		pktstore_close(s->ps);
		return 1;
	}
	if ((rc = recover(s, &keys, &ns)) != 0) {
		if (rc < 0)
			kv_log("recovery failed: %s", pktstore_strerror(rc));
		ks_free(s);
		store_free(s);
		/* Nothing changed; a crashed session stays marked as one, so the
		 * next start checks what a crash can leave, not a clean close. */
		if (!st.dirty_shutdown)
			pktstore_close(s->ps);
		return 1;
	}
	kv_log("recovered %" PRIu64 " keys from %" PRIu64 " records in %.3f ms "
	       "(arena index %.3f ms, replay %.3f ms)",
	       keys, st.recovered_records, (double)(st.recovery_ns + ns) / 1e6,
	       (double)st.recovery_ns / 1e6, (double)ns / 1e6);
	pktstore_stats(s->ps, &st);
	kv_log("arena after recovery: %" PRIu64 " of %" PRIu64 " segments free, %" PRIu64
	       " records hold %" PRIu64 " bytes",
	       st.segments_free, st.segments, st.records, st.record_bytes);
	kv_log("space: live values take %" PRIu64 " of %" PRIu64 " bytes allowed (half of the "
	       "%" PRIu64 "-byte data region after a %" PRIu64 "-byte reserve); writes past it get OOM",
	       s->live_charge, s->limit, st.data_bytes, s->reserve);
	if ((rc = meta_open(s)) < 0 || (rc = meta_mark_start(s)) < 0) {
		kv_log("cannot create the server's flow: %s", pktstore_strerror(rc));
		pktstore_close(s->ps);
		return 1;
	}
	/* Keys whose time was up before this start are gone for every command
	 * from now on (record times never go back): drop them now. */
	uint64_t expired = ks_purge_expired(s, s->now_ms);
	if (expired)
		kv_log("%" PRIu64 " keys had expired while the server was down", expired);
	rc = server_run(s);
	script_free(s);
	int sum = meta_write_summary(s);
	ks_free(s);
	store_free(s);
	if (sum < 0) {
		/* Without its summary a clean close could not be checked: leave
		 * the arena marked as not closed cleanly instead. */
		kv_log("cannot write the closing summary: %s; the next start treats this as a crash",
		       pktstore_strerror(sum));
		return 1;
	}
	pktstore_close(s->ps);
	return rc;
}
