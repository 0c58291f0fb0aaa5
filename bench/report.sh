#!/usr/bin/env bash
# report.sh TMP OUT - turn the rows one run.sh invocation measured
# (TMP/rows.tsv: scenario, system, metric, value, round) into OUT/latest.json,
# OUT/latest.md and OUT/figure2.png. Ratios compare runs of the same
# invocation only, and within a round where there are rounds: a ratio's
# median and min-max are those of its per-round ratios.
set -euo pipefail
TMP=$1 OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)

# 1. Aggregates. final.tsv: scenario, system, metric, median, min, max, n.
#    ratios.tsv: scenario, system, metric, reference system, median, min,
#    max, n of the per-round ratios (value / reference's value), and for
#    latencies the per-round differences (metric extra_<metric>).
#    The profile becomes per-record costs.
REFS="netonly-uring netonly baseline redis"
awk -F'\t' -v OFS='\t' -v refs="$REFS" -v final="$TMP/final.tsv" -v ratios="$TMP/ratios.tsv" '
function stats(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	S_med = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	S_min = a[1]; S_max = a[n]; S_n = n
}
function g(v) { return v == int(v) ? sprintf("%d", v) : sprintf("%.6g", v) }
{
	k = $1 SUBSEP $2 SUBSEP $3
	if (!(k in vals)) order[++no] = k
	vals[k] = vals[k] " " $4
	if ($5 != "") { byround[k, $5] = $4; rounds[k] = rounds[k] " " $5 }
	if ($1 == "profile") prof[$3] = $4
}
END {
	nr = split(refs, ref, " ")
	for (i = 1; i <= no; i++) {
		split(order[i], p, SUBSEP)
		if (p[1] == "profile") continue
		stats(vals[order[i]])
		print p[1], p[2], p[3], g(S_med), g(S_min), g(S_max), S_n > final
		if (!(order[i] in rounds)) continue
		for (q = 1; q <= nr; q++) {
			if (ref[q] == p[2]) continue
			rk = p[1] SUBSEP ref[q] SUBSEP p[3]
			if (!(rk in rounds)) continue
			nrd = split(rounds[order[i]], rd, " ")
			lr = ""; ld = ""
			for (j = 1; j <= nrd; j++)
				if ((rk, rd[j]) in byround && byround[rk, rd[j]] + 0 != 0) {
					lr = lr " " byround[order[i], rd[j]] / byround[rk, rd[j]]
					ld = ld " " byround[order[i], rd[j]] - byround[rk, rd[j]]
				}
			if (lr == "") continue
			stats(lr)
			print p[1], p[2], p[3], ref[q], g(S_med), g(S_min), g(S_max), S_n > ratios
			if (p[3] ~ /_us$/) {
				stats(ld)
				print p[1], p[2], "extra_" p[3], ref[q], g(S_med), g(S_min), g(S_max), S_n > ratios
			}
		}
	}
	if (prof["records"] > 0 && prof["tsc_hz"] > 0) {
		r = prof["records"]; ns = 1e9 / prof["tsc_hz"]
		printf "profile\tpktstore\ttsc_ghz\t%.3f\n", prof["tsc_hz"] / 1e9 > final
		n = split("crc desc index flush drain", st, " ")
		for (i = 1; i <= n; i++) {
			printf "profile\tpktstore\t%s_ns_per_record\t%.1f\n", st[i], prof[st[i]] / r * ns > final
			sum += prof[st[i]]
		}
		printf "profile\tpktstore\tstages_ns_per_record\t%.1f\n", sum / r * ns > final
		if (prof["release_calls"] > 0)
			printf "profile\tpktstore\trelease_ns_per_call\t%.1f\n", prof["release"] / prof["release_calls"] * ns > final
		if (prof["commits"] > 0) {
			printf "profile\tpktstore\tflush_ns_per_commit\t%.1f\n", prof["flush"] / prof["commits"] * ns > final
			printf "profile\tpktstore\tdrain_ns_per_commit\t%.1f\n", prof["drain"] / prof["commits"] * ns > final
		}
		if (prof["requests"] > 0) {
			printf "profile\tpktstore\trecords_per_request\t%.3f\n", r / prof["requests"] > final
			printf "profile\tpktstore\tcommits_per_request\t%.3f\n", prof["commits"] / prof["requests"] > final
		}
		printf "profile\tpktstore\trecords\t%d\n", r > final
	}
}' "$TMP/rows.tsv"
touch "$TMP/final.tsv" "$TMP/ratios.tsv"

# Lookups. get SCEN SYS METRIC [COLUMN: 4 median, 5 min, 6 max, 7 n]
get() { awk -F'\t' -v s="$1" -v y="$2" -v m="$3" -v c="${4:-4}" '$1 == s && $2 == y && $3 == m { print $c; exit }' "$TMP/final.tsv"; }
# rat SCEN SYS METRIC REF [COLUMN: 5 median, 6 min, 7 max, 8 n]
rat() { awk -F'\t' -v s="$1" -v y="$2" -v m="$3" -v r="$4" -v c="${5:-5}" '$1 == s && $2 == y && $3 == m && $4 == r { print $c; exit }' "$TMP/ratios.tsv"; }
fmt() { [ -n "${2:-}" ] && printf "$1" "$2" || printf -- '-'; }
# A median with its min-max when there was more than one value.
mm() { # FORMAT SCEN SYS METRIC
	local v lo hi n
	v=$(get "$2" "$3" "$4") lo=$(get "$2" "$3" "$4" 5) hi=$(get "$2" "$3" "$4" 6) n=$(get "$2" "$3" "$4" 7)
	[ -n "$v" ] || { printf -- '-'; return; }
	printf "$1" "$v"
	[ "${n:-1}" -gt 1 ] && printf " ($1-$1)" "$lo" "$hi"
	return 0
}
# A per-round ratio or difference: median (min-max).
rr() { # FORMAT SCEN SYS METRIC REF [SUFFIX]
	local v lo hi n
	v=$(rat "$2" "$3" "$4" "$5") lo=$(rat "$2" "$3" "$4" "$5" 6) hi=$(rat "$2" "$3" "$4" "$5" 7) n=$(rat "$2" "$3" "$4" "$5" 8)
	[ -n "$v" ] || { printf -- '-'; return; }
	printf "$1${6:-}" "$v"
	[ "${n:-1}" -gt 1 ] && printf " ($1-$1)" "$lo" "$hi"
	return 0
}
ratio() { [ -n "${1:-}" ] && [ -n "${2:-}" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0) printf "%.2fx", a / b; else printf "-" }' || printf -- '-'; }
# met VALUE OP LIMIT -> yes / no / -
met() { [ -n "${1:-}" ] && awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = op == "<=" ? v <= l : v >= l; print ok ? "yes" : "**no**" }' || echo -; }
label() {
	case $1 in
	netonly-uring) echo "networking only, io_uring (multishot recv into provided buffers, acks through the ring)" ;;
	netonly) echo "networking only, epoll + recv(2)" ;;
	baseline) echo "Linux baseline (recv, copy + CRC32C + persist, libpmem2)" ;;
	pmemlog) echo "PMDK libpmemlog (recv, pmemlog_appendv)" ;;
	leveldb) echo "LevelDB (recv, write batch, sync)" ;;
	pktstore) echo "libpktstore (recv_persist_any, release)" ;;
	pktstore-prof) echo "libpktstore, profiling build" ;;
	pktstore-norel) echo "libpktstore, records kept (no release)" ;;
	pktstore-recv) echo "libpktstore, plain recv path (PKTSTORE_RECV_PATH=recv)" ;;
	pktstore-kv) echo "pktstore-kv" ;;
	redis) echo "redis-server (appendonly, appendfsync always)" ;;
	*) echo "$1" ;;
	esac
}
envv() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$TMP/env.tsv"; }
systems_of() { awk -F'\t' -v s="$1" -v m="$2" '$1 ~ s && $3 == m { print $2 }' "$TMP/final.tsv" | awk '!x[$0]++'; }
conns_of() { awk -F'\t' -v z="size$1_conns" 'index($1, z) == 1 { sub(/.*_conns/, "", $1); print $1 }' "$TMP/final.tsv" | sort -n | uniq; }
FLOOR=netonly-uring

# The throughput target: the lowest per-point median ratio to the io_uring
# floor over every 1 KiB and 64 KiB point.
WORST=$(awk -F'\t' -v f=$FLOOR '$2 == "pktstore" && $3 == "rps" && $4 == f && $1 ~ /^size(1024|65536)_conns/ {
	if (w == "" || $5 + 0 < w + 0) { w = $5; at = $1; lo = $6 } ; if (b == "" || $5 + 0 > b + 0) b = $5; n++ }
	END { if (n) printf "%s\t%s\t%s\t%s\t%d\n", w, at, lo, b, n }' "$TMP/ratios.tsv")
W_MED=$(cut -f1 <<<"$WORST") W_AT=$(cut -f2 <<<"$WORST") W_BEST=$(cut -f4 <<<"$WORST") W_N=$(cut -f5 <<<"$WORST")
W_AT_TEXT=$(sed -E 's/^size([0-9]+)_conns([0-9]+)$/\1 B, \2 conn./' <<<"$W_AT")
PACK_MAX=$(awk -F'\t' '$1 == "packing" && $3 == "bytes_per_record" { if (m == "" || $4 + 0 > m + 0) { m = $4; p = $2 } } END { if (m != "") print m "\t" p }' "$TMP/final.tsv")
PACK_LIST=$(awk -F'\t' '$1 == "packing" && $3 == "bytes_per_record" { printf "%s%s %.0f B", sep, $2, $4; sep = ", " }' "$TMP/final.tsv")
IPR_P=$(get cpu_1KiB pktstore instructions_per_req) IPR_B=$(get cpu_1KiB baseline instructions_per_req)
IPR_RATIO=$( [ -n "$IPR_P" ] && [ -n "$IPR_B" ] && awk -v a="$IPR_P" -v b="$IPR_B" 'BEGIN { printf "%.3f", a / b }' || true)
SCQ=$(get syscalls_quiet pktstore per_request) SCL=$(get syscalls_loaded pktstore per_request)
SC_MAX=$( [ -n "$SCQ" ] && [ -n "$SCL" ] && awk -v a="$SCQ" -v b="$SCL" 'BEGIN { print (a + 0 > b + 0 ? a : b) }' || true)
EXTRA=$(rat size1024_conns1 pktstore extra_mean_us $FLOOR)
REL=$(get release pktstore steady_ns)
OC=$(get recovery_clean pktstore open_ms) OD=$(get recovery_dirty pktstore open_ms)
KSET=$(rat resp_SET_c50_P1 pktstore-kv rps redis) KGET=$(rat resp_GET_c50_P16 pktstore-kv rps redis)

# 2. Markdown.
{
	echo "# libpktstore benchmarks"
	echo
	echo "- Command: \`$(envv command)\` ($(envv mode) mode), measured $(envv date), took $(envv elapsed)"
	echo "- Library measured: commit $(envv commit)"
	echo "- Medium: $(envv medium)"
	echo "- CPU: $(envv cpu); kernel: $(envv kernel); core pinning: $(envv pinning)"
	echo "- libpktstore receive path: $(envv recv_path)"
	echo "- Runs: $(envv durations); closed loop (bench/loadgen.c): each connection sends a 4-byte length + payload and waits for the 8-byte ack"
	echo "- Every server is single-threaded (LevelDB keeps its own background compaction thread) and acks a request only once it is durable by its own rules; the recv(2) servers make all requests completed in one event-loop pass durable with one commit (group commit), libpktstore drains once per batch of records"
	echo "- The floor of every ratio: the networking-only server on io_uring (bench/srv_uring.c: multishot recv into provided DRAM buffers, bytes discarded, acks sent through the ring and submitted by the io_uring_enter that waits); the epoll + recv(2) one beside it"
	echo "- A noisy shared 2-core VM: compare ratios within this file, not absolute numbers across runs."
	echo
	echo "## Targets"
	echo
	echo "Each row from this run; a ratio is the median of the per-round ratios, min-max in brackets."
	echo
	echo "| measure | target | measured | floor / reference | met |"
	echo "| --- | --- | --- | --- | --- |"
	echo "| syscalls per 1 KiB request, 1 connection, quiet / loaded | <= 1.5 / <= 1.5 | $(fmt %.2f "$SCQ") / $(fmt %.2f "$SCL") | io_uring networking only $(fmt %.2f "$(get syscalls_quiet netonly-uring per_request)") / $(fmt %.2f "$(get syscalls_loaded netonly-uring per_request)"); epoll $(fmt %.2f "$(get syscalls_quiet netonly per_request)") / $(fmt %.2f "$(get syscalls_loaded netonly per_request)"); baseline $(fmt %.2f "$(get syscalls_quiet baseline per_request)") / $(fmt %.2f "$(get syscalls_loaded baseline per_request)") | $(met "$SC_MAX" "<=" 1.5) |"
	echo "| user instructions per 1 KiB durable request / copy baseline | <= 0.8x | $(fmt %.2fx "$IPR_RATIO") ($(fmt %s "$IPR_P") / $(fmt %s "$IPR_B")) | io_uring networking only $(fmt %s "$(get cpu_1KiB netonly-uring instructions_per_req)"), epoll $(fmt %s "$(get cpu_1KiB netonly instructions_per_req)") | $(met "$IPR_RATIO" "<=" 0.8) |"
	echo "| durable req/s / io_uring networking only, 1-100 connections, 1 KiB and 64 KiB | >= 0.95x at every point | lowest $(fmt %.2fx "$W_MED") at $(fmt %s "$W_AT_TEXT"), highest $(fmt %.2fx "$W_BEST") ($(fmt %s "$W_N") points, tables below) | per point below | $(met "$W_MED" ">=" 0.95) |"
	echo "| extra RTT over io_uring networking only, 1 KiB, 1 connection (median of rounds) | <= 1 us | $(rr %+.2f size1024_conns1 pktstore extra_mean_us $FLOOR " us") | over epoll: $(rr %+.2f size1024_conns1 pktstore extra_mean_us netonly " us"); floor mean RTT $(mm %.2f size1024_conns1 $FLOOR mean_us) us | $(met "$EXTRA" "<=" 1) |"
	echo "| release per record, amortised (steady appends, each releasing the one before) | <= 30 ns | $(mm %.1f release pktstore steady_ns) ns | one call per record $(mm %.1f release pktstore single_ns) ns; batch of 64 $(mm %.1f release pktstore batch_ns) ns | $(met "$REL" "<=" 30) |"
	echo "| arena bytes per 100-byte record, every receive path | <= 200 B | worst $(fmt %.0f "$(cut -f1 <<<"$PACK_MAX")") B ($(fmt %s "$(cut -f2 <<<"$PACK_MAX")")) | ${PACK_LIST:--} | $(met "$(cut -f1 <<<"$PACK_MAX")" "<=" 200) |"
	echo "| open with 1M records, clean shutdown | <= 100 ms | $(mm %.1f recovery_clean pktstore open_ms) ms | after that open's own clean close: $(mm %.1f recovery_clean-again pktstore open_ms) ms | $(met "$OC" "<=" 100) |"
	echo "| open with 1M records, dirty shutdown | <= 250 ms | $(mm %.1f recovery_dirty pktstore open_ms) ms | | $(met "$OD" "<=" 250) |"
	echo "| pktstore-kv / Redis AOF-always, SET 1 KiB, 50 clients, P1 | >= 3x | $(rr %.2f resp_SET_c50_P1 pktstore-kv rps redis x) | $(mm %.0f resp_SET_c50_P1 pktstore-kv rps) vs $(mm %.0f resp_SET_c50_P1 redis rps) req/s | $(met "$KSET" ">=" 3) |"
	echo "| pktstore-kv / Redis AOF-always, GET 1 KiB, 50 clients, P16 | >= 1.5x | $(rr %.2f resp_GET_c50_P16 pktstore-kv rps redis x) | $(mm %.0f resp_GET_c50_P16 pktstore-kv rps) vs $(mm %.0f resp_GET_c50_P16 redis rps) req/s | $(met "$KGET" ">=" 1.5) |"
	echo
	echo "## Table 1: 1 KiB write over one connection"
	echo
	echo "Median of the rounds (min-max). Extra RTT: per-round difference of mean RTTs."
	echo
	echo "| system | mean RTT (us) | extra over io_uring floor (us) | extra over epoll floor (us) | p50 (us) | p99 (us) | p99.9 (us) | req/s |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for s in $(systems_of '^size1024_conns1$' mean_us); do
		echo "| $(label "$s") | $(mm %.2f size1024_conns1 "$s" mean_us) | $(rr %+.2f size1024_conns1 "$s" extra_mean_us $FLOOR) | $(rr %+.2f size1024_conns1 "$s" extra_mean_us netonly) | $(mm %.2f size1024_conns1 "$s" p50_us) | $(mm %.2f size1024_conns1 "$s" p99_us) | $(mm %.2f size1024_conns1 "$s" p999_us) | $(mm %.0f size1024_conns1 "$s" rps) |"
	done
	echo
	if [ -n "$(get profile pktstore records)" ]; then
		echo "### Inside libpktstore: cost per record (profiling build, same Table 1 runs)"
		echo
		echo "TSC cycles per stage (lib/profile.h) converted at $(get profile pktstore tsc_ghz) GHz, measured against CLOCK_MONOTONIC; $(get profile pktstore records) records, $(fmt %.3f "$(get profile pktstore records_per_request)") records and $(fmt %.3f "$(get profile pktstore commits_per_request)") commits per request."
		echo
		echo "| stage | ns per record |"
		echo "| --- | ---: |"
		echo "| checksum (CRC32C of the bytes) | $(get profile pktstore crc_ns_per_record) |"
		echo "| descriptor (build, store, flush-set entry) | $(get profile pktstore desc_ns_per_record) |"
		echo "| index (DRAM appends) | $(get profile pktstore index_ns_per_record) |"
		echo "| flush (cache lines of bytes + descriptor) | $(get profile pktstore flush_ns_per_record) |"
		echo "| drain (fence) | $(get profile pktstore drain_ns_per_record) |"
		echo "| **sum of the stages** | **$(get profile pktstore stages_ns_per_record)** |"
		echo "| release (per pktstore_release call, measured by the server) | $(get profile pktstore release_ns_per_call) |"
		echo
		echo "Per commit: flush $(get profile pktstore flush_ns_per_commit) ns, drain $(get profile pktstore drain_ns_per_commit) ns."
		echo
	fi
	for size in 1024 65536; do
		CONNS=$(conns_of $size)
		[ -n "$CONNS" ] || continue
		if [ $size = 1024 ]; then
			echo "## Figure 2: 1 KiB writes against connections"
			echo
			echo "![Figure 2](figure2.png)"
			echo
		else
			echo "## 64 KiB writes against connections"
			echo
		fi
		echo "req/s, median of the rounds (min-max), and the per-round ratio to the io_uring and epoll networking-only servers."
		echo
		echo "| connections | system | req/s | mean (us) | p99 (us) | vs io_uring floor | vs epoll floor |"
		echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
		for n in $CONNS; do
			for s in $(systems_of "^size${size}_conns$n\$" rps); do
				case $s in pktstore-prof | pktstore-norel) continue ;; esac
				echo "| $n | $s | $(mm %.0f "size${size}_conns$n" "$s" rps) | $(mm %.1f "size${size}_conns$n" "$s" mean_us) | $(mm %.1f "size${size}_conns$n" "$s" p99_us) | $(rr %.2f "size${size}_conns$n" "$s" rps $FLOOR x) | $(rr %.2f "size${size}_conns$n" "$s" rps netonly x) |"
			done
		done
		echo
	done
	OTHER=$(awk -F'\t' '$1 ~ /^size[0-9]+_conns/ && $1 !~ /^size(1024|65536)_/ { print $1 }' "$TMP/final.tsv" | awk '!s[$0]++')
	if [ -n "$OTHER" ]; then
		echo "## Other request sizes"
		echo
		echo "| payload | conns | system | req/s | MB/s | mean (us) | p99 (us) | p99.9 (us) | vs io_uring floor | vs epoll floor | vs baseline |"
		echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		for sc in $OTHER; do
			sz=${sc#size}; sz=${sz%%_*}; n=${sc##*conns}
			for s in $(systems_of "^$sc\$" rps); do
				echo "| $sz | $n | $s | $(mm %.0f "$sc" "$s" rps) | $(fmt %.1f "$(get "$sc" "$s" mbps)") | $(fmt %.1f "$(get "$sc" "$s" mean_us)") | $(fmt %.1f "$(get "$sc" "$s" p99_us)") | $(fmt %.1f "$(get "$sc" "$s" p999_us)") | $(rr %.2f "$sc" "$s" rps $FLOOR x) | $(rr %.2f "$sc" "$s" rps netonly x) | $(rr %.2f "$sc" "$s" rps baseline x) |"
			done
		done
		echo
	fi
	if [ -n "$(systems_of '^syscalls_quiet$' per_request)" ]; then
		echo "## Syscalls per 1 KiB request, one connection"
		echo
		echo "Tool: $(envv syscall_tool). The calls that take at least 0.05 per request, by name."
		echo
		echo "| system | quiet | loaded | quiet, by call | loaded, by call |"
		echo "| --- | ---: | ---: | --- | --- |"
		for s in $(systems_of '^syscalls_' per_request); do
			q=$(awk -F'\t' -v s="$s" '$1 == "syscalls_quiet" && $2 == s && $3 ~ /^sc_/ { sub(/^sc_/, "", $3); printf "%s%s %s", sep, $3, $4; sep = ", " }' "$TMP/final.tsv")
			l=$(awk -F'\t' -v s="$s" '$1 == "syscalls_loaded" && $2 == s && $3 ~ /^sc_/ { sub(/^sc_/, "", $3); printf "%s%s %s", sep, $3, $4; sep = ", " }' "$TMP/final.tsv")
			echo "| $(label "$s") | $(fmt %.2f "$(get syscalls_quiet "$s" per_request)") | $(fmt %.2f "$(get syscalls_loaded "$s" per_request)") | ${q:--} | ${l:--} |"
		done
		echo
	fi
	echo "## CPU cost per 1 KiB request (server process)"
	echo
	echo "Tool: $(envv cpu_tool). Difference of a 2000- and a 6000-request run over one connection."
	echo
	echo "| system | user instructions per request | vs io_uring floor | vs epoll floor | vs baseline |"
	echo "| --- | ---: | ---: | ---: | ---: |"
	for s in $(systems_of '^cpu_1KiB$' instructions_per_req); do
		v=$(get cpu_1KiB "$s" instructions_per_req)
		echo "| $(label "$s") | $v | $(ratio "$v" "$(get cpu_1KiB $FLOOR instructions_per_req)") | $(ratio "$v" "$(get cpu_1KiB netonly instructions_per_req)") | $(ratio "$v" "$(get cpu_1KiB baseline instructions_per_req)") |"
	done
	echo
	if [ -s "$TMP/cpu.pktstore.functions" ]; then
		echo "Where libpktstore's server spends its user instructions per request: callgrind_annotate's self cost of each function, the 2000-request run subtracted from the 6000-request one (start-up and recovery cancel out), divided by 4000; the functions that take at least 5 per request."
		echo
		echo "| function | object | instructions per request |"
		echo "| --- | --- | ---: |"
		awk -F'\t' '{ printf "| %s | %s | %.0f |\n", $2, $3, $1 }' "$TMP/cpu.pktstore.functions"
		echo
	fi
	if [ -n "$(get release pktstore single_ns)" ]; then
		echo "## Release per record"
		echo
		echo "bench/release.c: 64-byte records appended on a local flow of a fresh tmpfs arena, then freed. Median of $(get release pktstore single_ns 7) rounds (min-max)."
		echo
		echo "| how | ns per record |"
		echo "| --- | ---: |"
		echo "| pktstore_release, one call per record | $(mm %.1f release pktstore single_ns) |"
		echo "| pktstore_release_batch, 64 ids per call | $(mm %.1f release pktstore batch_ns) |"
		echo "| amortised: appends, each followed by the release of the record before, minus the same appends alone | $(mm %.1f release pktstore steady_ns) |"
		echo
	fi
	if [ -n "$PACK_LIST" ]; then
		echo "## Arena bytes per 100-byte record"
		echo
		echo "bench/packing.c: a 4 MiB arena (64 KiB segments) filled over loopback TCP with 100-byte messages, each received before the next is sent, until receiving reports -ENOSPC; data region bytes / records held."
		echo
		echo "| receive path | records held | bytes per record |"
		echo "| --- | ---: | ---: |"
		for p in $(systems_of '^packing$' bytes_per_record); do
			echo "| $p | $(get packing "$p" records) | $(fmt %.1f "$(get packing "$p" bytes_per_record)") |"
		done
		echo
	fi
	if [ -n "$(get recovery pktstore fill_append_ns)" ]; then
		echo "## Recovery"
		echo
		echo "An arena filled with pktstore_append() on a local flow (64-256 B records, $(get recovery pktstore record_bytes) bytes; $(get recovery pktstore fill_append_ns) ns per append, each durable), then reopened after a clean close or after the filling process exited without closing (dirty); each round makes both, in turn. Median of the rounds (min-max)."
		echo
		echo "| shutdown before open | open (ms) | of which recovery (ms) | records | descriptor slots in the log | ns per slot of the log | records/s | GB/s of record bytes |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		for l in clean dirty clean-again; do
			[ -n "$(get "recovery_$l" pktstore open_ms)" ] || continue
			echo "| $l | $(mm %.1f "recovery_$l" pktstore open_ms) | $(mm %.1f "recovery_$l" pktstore recovery_ms) | $(get "recovery_$l" pktstore records) | $(get "recovery_$l" pktstore descriptors) | $(fmt %.1f "$(get "recovery_$l" pktstore ns_per_slot)") | $(fmt %.0f "$(get "recovery_$l" pktstore rec_per_s)") | $(get "recovery_$l" pktstore gb_per_s) |"
		done
		echo
		echo "(clean-again: the open after a clean close of the arena just recovered.)"
		echo
	fi
	if [ -n "$(get cleaner pktstore plain_ns)" ]; then
		echo "## The cleaner (PKTSTORE_MOVABLE)"
		echo
		echo "4 KiB appends, each released at once, in an 8 MiB arena of 64 KiB segments (median of the rounds). *plain*: nothing else. *movable*: after every 15th append a 64-byte record that stays for the next 256, so small live records sit in every segment the bulk passes through. Without PKTSTORE_MOVABLE that workload stops with -ENOSPC after $(get cleaner pktstore pinned_ops) appends; with it the cleaner moves the small records out."
		echo
		echo "| plain ns/append | movable ns/append | ratio | segments cleaned | records moved | bytes moved per append |"
		echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
		echo "| $(get cleaner pktstore plain_ns) | $(get cleaner pktstore movable_ns) | $(get cleaner pktstore ratio) | $(get cleaner pktstore cleaned_segments) | $(get cleaner pktstore moved_records) | $(get cleaner pktstore moved_bytes_per_op) |"
		echo
	fi
	E2E=$(awk -F'\t' '$1 ~ /^(resp|http)_/ { print $1 }' "$TMP/final.tsv" | awk '!s[$0]++')
	if [ -n "$E2E" ]; then
		echo "## End to end with real clients"
		echo
		echo "redis-benchmark: 1 KiB values, 10000 random keys, rounds interleaved (median, min-max; ratio per round); $(envv redis) with appendonly yes, appendfsync always, AOF on the medium. wrk (one run): 1 KiB POST /log; pktstore-kv against the Linux baseline server in its HTTP framing mode (same copy + CRC32C + persist, reply \`200 OK\` with an empty body)."
		echo
		echo "| scenario | system | req/s | mean (us) | vs redis |"
		echo "| --- | --- | ---: | ---: | ---: |"
		for sc in $E2E; do
			for s in $(awk -F'\t' -v s="$sc" '$1 == s { print $2 }' "$TMP/final.tsv" | awk '!x[$0]++'); do
				echo "| $sc | $(label "$s") | $(mm %.0f "$sc" "$s" rps) | $(mm %.1f "$sc" "$s" mean_us) | $(rr %.2f "$sc" "$s" rps redis x) |"
			done
		done
		echo
	fi
	if [ -s "$TMP/notes.txt" ]; then
		echo "## Notes from this run"
		echo
		sed 's/^/- /' "$TMP/notes.txt"
		echo
	fi
	echo "Raw loadgen lines and server output: bench/results/tmp/ (not committed). Every value with its min, max and ratios: latest.json."
} >"$OUT/latest.md"

# 3. JSON: environment, notes, aggregates and per-round ratios.
jstr() { sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$1"; }
{
	echo '{'
	echo '  "environment": {'
	first=1
	while IFS=$'\t' read -r k v; do
		[ $first = 1 ] || echo ','
		printf '    "%s": "%s"' "$k" "$(jstr "$v")"
		first=0
	done <"$TMP/env.tsv"
	echo
	echo '  },'
	echo '  "notes": ['
	first=1
	while read -r n; do
		[ -n "$n" ] || continue
		[ $first = 1 ] || echo ','
		printf '    "%s"' "$(jstr "$n")"
		first=0
	done <"$TMP/notes.txt"
	echo
	echo '  ],'
	echo '  "results": ['
	awk -F'\t' '
	function num(v) { return v ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ ? v : "null" }
	{ printf "%s    {\"scenario\": \"%s\", \"system\": \"%s\", \"metric\": \"%s\", \"median\": %s, \"min\": %s, \"max\": %s, \"n\": %s}",
		(NR > 1 ? ",\n" : ""), $1, $2, $3, num($4), num($5 == "" ? $4 : $5), num($6 == "" ? $4 : $6), $7 == "" ? 1 : $7 }
	END { print "" }' "$TMP/final.tsv"
	echo '  ],'
	echo '  "ratios": ['
	awk -F'\t' '
	function num(v) { return v ~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$/ ? v : "null" }
	{ printf "%s    {\"scenario\": \"%s\", \"system\": \"%s\", \"metric\": \"%s\", \"against\": \"%s\", \"kind\": \"%s\", \"median\": %s, \"min\": %s, \"max\": %s, \"rounds\": %s}",
		(NR > 1 ? ",\n" : ""), $1, $2, $3, $4, $3 ~ /^extra_/ ? "difference" : "ratio", num($5), num($6), num($7), $8 }
	END { print "" }' "$TMP/ratios.tsv"
	echo '  ]'
	echo '}'
} >"$OUT/latest.json"

# 4. Figure 2: one data block per system (connections, then median, min and
#    max of req/s and of mean latency), then gnuplot.
FIG=$(systems_of '^size1024_conns' rps | grep -v -e '^pktstore-prof$' -e '^pktstore-norel$' || true)
: >"$TMP/fig2.dat"
for s in $FIG; do
	echo "# $s" >>"$TMP/fig2.dat"
	awk -F'\t' -v s="$s" '$1 ~ /^size1024_conns/ && $2 == s && ($3 == "rps" || $3 == "mean_us") {
		n = $1; sub(/.*_conns/, "", n); v[n, $3] = $4 " " $5 " " $6; seen[n] = 1 }
		END { for (n in seen) print n, v[n, "rps"], v[n, "mean_us"] }' "$TMP/final.tsv" | sort -n >>"$TMP/fig2.dat"
	printf '\n\n' >>"$TMP/fig2.dat"
done
if command -v gnuplot >/dev/null && [ -n "$FIG" ]; then
	titles=$(for s in $FIG; do printf '"%s", ' "$s"; done)
	gnuplot -e "datafile='$TMP/fig2.dat'; outfile='$OUT/figure2.png'; n=$(wc -w <<<"$FIG"); array titles[n] = [${titles%, }]; medium='$(envv medium | cut -d: -f1)'; rounds='$(envv rounds)'; when='$(envv date)'" "$HERE/plot.gp"
else
	echo "report.sh: gnuplot is not installed (Debian: gnuplot-nox); figure2.png not redrawn" >&2
fi
