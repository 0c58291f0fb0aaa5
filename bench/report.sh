#!/usr/bin/env bash
# report.sh TMP OUT - turn the rows one run.sh invocation measured
# (TMP/rows.tsv: scenario, system, metric, value, unit) into OUT/latest.json,
# OUT/latest.md and OUT/figure2.png. Ratios compare runs of the same
# invocation only.
set -euo pipefail
TMP=$1 OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)

# 1. Final rows: Table 1 rounds become their median; the profile becomes
#    per-record costs; each Table 1 system gets its extra latency over the
#    networking-only run.
awk -F'\t' -v OFS='\t' '
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$1 ~ /^t1_round/ { k = $2 SUBSEP $3; t1[k] = t1[k] " " $4; if (!(k in seen)) { seen[k] = 1; order[++no] = k }; next }
$1 == "profile" { prof[$3] = $4; next }
{ print $1, $2, $3, $4 }
END {
	for (i = 1; i <= no; i++) {
		split(order[i], p, SUBSEP)
		v = median(t1[order[i]])
		med[p[1], p[2]] = v
		print "table1", p[1], p[2], v
	}
	for (i = 1; i <= no; i++) {
		split(order[i], p, SUBSEP)
		if (p[2] == "mean_us" && (("netonly", "mean_us") in med))
			printf "table1\t%s\textra_us\t%.2f\n", p[1], med[p[1], "mean_us"] - med["netonly", "mean_us"]
	}
	if (prof["records"] > 0 && prof["tsc_hz"] > 0) {
		r = prof["records"]; ns = 1e9 / prof["tsc_hz"]
		printf "profile\tpktstore\ttsc_ghz\t%.3f\n", prof["tsc_hz"] / 1e9
		n = split("crc desc index flush drain", st, " ")
		for (i = 1; i <= n; i++) {
			printf "profile\tpktstore\t%s_ns_per_record\t%.1f\n", st[i], prof[st[i]] / r * ns
			sum += prof[st[i]]
		}
		printf "profile\tpktstore\tstages_ns_per_record\t%.1f\n", sum / r * ns
		if (prof["release_calls"] > 0)
			printf "profile\tpktstore\trelease_ns_per_call\t%.1f\n", prof["release"] / prof["release_calls"] * ns
		if (prof["commits"] > 0) {
			printf "profile\tpktstore\tflush_ns_per_commit\t%.1f\n", prof["flush"] / prof["commits"] * ns
			printf "profile\tpktstore\tdrain_ns_per_commit\t%.1f\n", prof["drain"] / prof["commits"] * ns
		}
		if (prof["requests"] > 0) {
			printf "profile\tpktstore\trecords_per_request\t%.3f\n", r / prof["requests"]
			printf "profile\tpktstore\tcommits_per_request\t%.3f\n", prof["commits"] / prof["requests"]
		}
		printf "profile\tpktstore\trecords\t%d\n", r
	}
}' "$TMP/rows.tsv" >"$TMP/final.tsv"

# 2. JSON: environment, notes, and one entry per scenario, system and metric
#    with its ratios to the networking-only and Linux-baseline runs.
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
	function ratio(a, b) { return (b != "" && b + 0 != 0 && a != "") ? sprintf("%.3f", a / b) : "null" }
	{ r[NR] = $0; v[$1, $2, $3] = $4 }
	END {
		for (i = 1; i <= NR; i++) {
			split(r[i], f, "\t")
			n = ((f[1], "netonly", f[3]) in v) ? v[f[1], "netonly", f[3]] : ""
			b = ((f[1], "baseline", f[3]) in v) ? v[f[1], "baseline", f[3]] : ""
			printf "    {\"scenario\": \"%s\", \"system\": \"%s\", \"metric\": \"%s\", \"value\": %s, \"vs_netonly\": %s, \"vs_baseline\": %s}%s\n",
				f[1], f[2], f[3], num(f[4]), num(f[4]) == "null" ? "null" : ratio(f[4], n),
				num(f[4]) == "null" ? "null" : ratio(f[4], b), i < NR ? "," : ""
		}
	}' "$TMP/final.tsv"
	echo '  ]'
	echo '}'
} >"$OUT/latest.json"

# 3. Markdown.
get() { awk -F'\t' -v s="$1" -v y="$2" -v m="$3" '$1 == s && $2 == y && $3 == m { print $4; exit }' "$TMP/final.tsv"; }
fmt() { [ -n "$2" ] && printf "$1" "$2" || printf -- '-'; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0) printf "%.2fx", a / b; else printf "-" }' || printf -- '-'; }
label() {
	case $1 in
	netonly) echo "networking only (receive, discard, ack)" ;;
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
SYSTEMS=$(awk -F'\t' '$1 == "table1" && $3 == "mean_us" { print $2 }' "$TMP/final.tsv")
FIG=$(awk -F'\t' '$1 ~ /^fig2_conns/ && $3 == "rps" { print $2 }' "$TMP/final.tsv" | awk '!s[$0]++')
envv() { awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$TMP/env.tsv"; }

{
	echo "# libpktstore benchmarks"
	echo
	echo "- Medium: $(envv medium)"
	echo "- CPU: $(envv cpu); kernel: $(envv kernel)"
	echo "- Core pinning: $(envv pinning)"
	echo "- libpktstore receive path: $(envv recv_path)"
	echo "- Runs: $(envv durations); closed loop (bench/loadgen.c): each connection sends a 4-byte length + payload and waits for the 8-byte ack"
	echo "- Every server is single-threaded (LevelDB keeps its own background compaction thread) and acks a request only once it is durable by its own rules; the recv(2) servers make all requests completed in one event-loop pass durable with one commit (group commit), libpktstore drains once per batch of records"
	echo "- Measured $(envv date), suite took $(envv elapsed). A noisy shared 2-core VM: compare ratios within this file, not absolute numbers across runs."
	echo
	echo "## Table 1: 1 KiB write over one connection"
	echo
	echo "| system | mean RTT (us) | extra over networking (us) | p50 (us) | p99 (us) | req/s | RTT vs networking | RTT vs baseline |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	nm=$(get table1 netonly mean_us)
	bm=$(get table1 baseline mean_us)
	for s in $SYSTEMS; do
		m=$(get table1 "$s" mean_us)
		echo "| $(label "$s") | $(fmt %.2f "$m") | $(fmt %+.2f "$(get table1 "$s" extra_us)") | $(fmt %.2f "$(get table1 "$s" p50_us)") | $(fmt %.2f "$(get table1 "$s" p99_us)") | $(fmt %.0f "$(get table1 "$s" rps)") | $(ratio "$m" "$nm") | $(ratio "$m" "$bm") |"
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
	echo "## Figure 2: 1 KiB writes against connections"
	echo
	echo "![Figure 2](figure2.png)"
	echo
	printf "| connections |"
	for s in $FIG; do printf " %s req/s | %s mean (us) |" "$s" "$s"; done
	echo
	printf "| ---: |"
	for s in $FIG; do printf " ---: | ---: |"; done
	echo
	for n in $(awk -F'\t' '$1 ~ /^fig2_conns/ { sub(/fig2_conns/, "", $1); print $1 }' "$TMP/final.tsv" | awk '!s[$0]++'); do
		printf "| %s |" "$n"
		for s in $FIG; do
			printf " %s | %s |" "$(fmt %.0f "$(get "fig2_conns$n" "$s" rps)")" "$(fmt %.1f "$(get "fig2_conns$n" "$s" mean_us)")"
		done
		echo
	done
	echo
	echo "Throughput relative to the Linux baseline at each point: "
	echo
	printf "| connections |"
	for s in $FIG; do printf " %s |" "$s"; done
	echo
	printf "| ---: |"
	for s in $FIG; do printf " ---: |"; done
	echo
	for n in $(awk -F'\t' '$1 ~ /^fig2_conns/ { sub(/fig2_conns/, "", $1); print $1 }' "$TMP/final.tsv" | awk '!s[$0]++'); do
		printf "| %s |" "$n"
		for s in $FIG; do printf " %s |" "$(ratio "$(get "fig2_conns$n" "$s" rps)" "$(get "fig2_conns$n" baseline rps)")"; done
		echo
	done
	echo
	echo "## Request sizes"
	echo
	echo "| payload | conns | system | req/s | MB/s | mean (us) | p99 (us) | p99.9 (us) | req/s vs networking | req/s vs baseline |"
	echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for sc in $(awk -F'\t' '$1 ~ /^size[0-9]+_conns/ { print $1 }' "$TMP/final.tsv" | awk '!s[$0]++'); do
		sz=${sc#size}; sz=${sz%%_*}; n=${sc##*conns}
		for s in $FIG; do
			r=$(get "$sc" "$s" rps)
			[ -n "$r" ] || continue
			echo "| $sz | $n | $s | $(fmt %.0f "$r") | $(fmt %.1f "$(get "$sc" "$s" mbps)") | $(fmt %.1f "$(get "$sc" "$s" mean_us)") | $(fmt %.1f "$(get "$sc" "$s" p99_us)") | $(fmt %.1f "$(get "$sc" "$s" p999_us)") | $(ratio "$r" "$(get "$sc" netonly rps)") | $(ratio "$r" "$(get "$sc" baseline rps)") |"
		done
	done
	echo
	echo "## CPU cost per 1 KiB request (server process)"
	echo
	echo "Tool: $(envv cpu_tool). Difference of a 2000- and a 6000-request run over one connection."
	echo
	echo "| system | instructions per request | vs networking | vs baseline |"
	echo "| --- | ---: | ---: | ---: |"
	for s in $FIG; do
		v=$(get cpu_1KiB "$s" instructions_per_req)
		[ -n "$v" ] || continue
		echo "| $(label "$s") | $v | $(ratio "$v" "$(get cpu_1KiB netonly instructions_per_req)") | $(ratio "$v" "$(get cpu_1KiB baseline instructions_per_req)") |"
	done
	echo
	if [ -n "$(get recovery pktstore fill_append_ns)" ]; then
		echo "## Recovery"
		echo
		echo "An arena filled with pktstore_append() on a local flow (64-256 B records, $(get recovery pktstore record_bytes) bytes; $(get recovery pktstore fill_append_ns) ns per append, each durable), then reopened: pktstore_open() scans the descriptor log, checks every descriptor CRC and every record's CRC32C, and rebuilds the index."
		echo
		echo "| shutdown before open | open (ms) | of which recovery (ms) | records | descriptor slots scanned | ns per slot | records/s | GB/s of record bytes |"
		echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
		for l in clean dirty clean-again; do
			v=$(get "recovery_$l" pktstore open_ms)
			[ -n "$v" ] || continue
			echo "| $l | $v | $(get "recovery_$l" pktstore recovery_ms) | $(get "recovery_$l" pktstore records) | $(get "recovery_$l" pktstore descriptors) | $(get "recovery_$l" pktstore ns_per_slot) | $(fmt %.0f "$(get "recovery_$l" pktstore rec_per_s)") | $(get "recovery_$l" pktstore gb_per_s) |"
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
		echo "(movable also makes the small appends and their releases: one more of each per 15 appends.)"
		echo
	fi
	E2E=$(awk -F'\t' '$1 ~ /^(resp|http)_/ { print $1 }' "$TMP/final.tsv" | awk '!s[$0]++')
	if [ -n "$E2E" ]; then
		echo "## End to end with real clients"
		echo
		echo "redis-benchmark: 1 KiB values, 10000 random keys; redis-server with appendonly yes, appendfsync always, AOF on the medium. wrk: 1 KiB POST /log; pktstore-kv against the Linux baseline server in its HTTP framing mode (same copy + CRC32C + persist, reply \`200 OK\` with an empty body)."
		echo
		echo "| scenario | system | req/s | mean (us) |"
		echo "| --- | --- | ---: | ---: |"
		for sc in $E2E; do
			for s in $(awk -F'\t' -v s="$sc" '$1 == s { print $2 }' "$TMP/final.tsv" | awk '!x[$0]++'); do
				echo "| $sc | $(label "$s") | $(fmt %.0f "$(get "$sc" "$s" rps)") | $(fmt %.1f "$(get "$sc" "$s" mean_us)") |"
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
	echo "Raw loadgen lines and server output: bench/results/tmp/ (not committed). Every value with its ratios: latest.json."
} >"$OUT/latest.md"

# 4. Figure 2: one data block per system, then gnuplot.
: >"$TMP/fig2.dat"
for s in $FIG; do
	echo "# $s" >>"$TMP/fig2.dat"
	awk -F'\t' -v s="$s" '$1 ~ /^fig2_conns/ && $2 == s && ($3 == "rps" || $3 == "mean_us") {
		n = $1; sub(/fig2_conns/, "", n); v[n, $3] = $4; if (!(n in seen)) { seen[n] = 1; o[++k] = n } }
		END { for (i = 1; i <= k; i++) print o[i], v[o[i], "rps"], v[o[i], "mean_us"] }' "$TMP/final.tsv" >>"$TMP/fig2.dat"
	printf '\n\n' >>"$TMP/fig2.dat"
done
if command -v gnuplot >/dev/null && [ -n "$FIG" ]; then
	titles=$(for s in $FIG; do printf '"%s" ' "$(label "$s")"; done)
	gnuplot -e "datafile='$TMP/fig2.dat'; outfile='$OUT/figure2.png'; n=$(wc -w <<<"$FIG"); array titles[n] = [$(sed 's/" "/", "/g; s/ $//' <<<"$titles")]; medium='$(envv medium | cut -d: -f1)'" "$HERE/plot.gp"
fi
