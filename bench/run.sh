#!/usr/bin/env bash
# Run the benchmark suite and write bench/results/latest.{md,json} and
# bench/results/figure2.png. Figures and ratios only: nothing here passes or
# fails on speed.
#
#   bench/run.sh [--medium pm|disk] [--full] [--build DIR]
#
#   --medium pm    (default) every system's files on /dev/shm, libpmem2 and
#                  libpmem told to treat them as persistent memory
#                  (PMEM2_FORCE_GRANULARITY=CACHE_LINE, PMEM_IS_PMEM_FORCE=1):
#                  real CLWB/CLFLUSHOPT + SFENCE on DRAM, no power-loss safety
#   --medium disk  every system's files in the working directory's file
#                  system: page granularity, msync/fsync
#   --full         longer runs and more rounds
#
# BENCH_SIZES, BENCH_CONNS, BENCH_ROUNDS, BENCH_RECORDS and BENCH_PORT
# override the request sizes, connection counts, Table 1 rounds, recovery
# records and first TCP port.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/build
MEDIUM=pm
FULL=0
while [ $# -gt 0 ]; do
	case $1 in
	--medium) MEDIUM=$2; shift 2 ;;
	--full) FULL=1; shift ;;
	--build) BUILD=$(cd "$2" && pwd); shift 2 ;;
	*) echo "usage: $0 [--medium pm|disk] [--full] [--build DIR]" >&2; exit 2 ;;
	esac
done

B=$BUILD/bench
OUT=$ROOT/bench/results
TMP=$OUT/tmp
ROWS=$TMP/rows.tsv
mkdir -p "$TMP"
: >"$ROWS"
: >"$TMP/notes.txt"

case $MEDIUM in
pm)
	DIR=/dev/shm/pktstore-bench.$$
	export PMEM2_FORCE_GRANULARITY=CACHE_LINE PMEM_IS_PMEM_FORCE=1
	MEDIUM_TEXT="emulated PM: /dev/shm (tmpfs), PMEM2_FORCE_GRANULARITY=CACHE_LINE and PMEM_IS_PMEM_FORCE=1 (CLWB/CLFLUSHOPT + SFENCE on DRAM; no power-loss durability)"
	;;
disk)
	DIR=$PWD/pktstore-bench.$$
	unset PMEM2_FORCE_GRANULARITY PMEM_IS_PMEM_FORCE
	MEDIUM_TEXT="disk: $(df --output=fstype "$PWD" | tail -1 | tr -d ' ') file system of $PWD (page granularity: msync/fsync)"
	;;
*) echo "unknown medium $MEDIUM" >&2; exit 2 ;;
esac
mkdir -p "$DIR"

if [ "$FULL" = 1 ]; then
	DUR=3 WARM=0.5 ROUNDS=5 RECORDS=1000000 HTTP_DUR=5
else
	DUR=1.2 WARM=0.3 ROUNDS=3 RECORDS=1000000 HTTP_DUR=2
fi
SIZES=${BENCH_SIZES:-64 1024 4096 65536}
FIG_CONNS=${BENCH_CONNS:-1 2 4 8 16 32 64 100}
RECORDS=${BENCH_RECORDS:-$RECORDS}
ROUNDS=${BENCH_ROUNDS:-$ROUNDS}
SYSTEMS="netonly baseline pmemlog leveldb pktstore pktstore-recv"

# Server on core 0, clients on core 1 when there are two cores.
if [ "$(nproc)" -ge 2 ]; then
	SRV="taskset -c 0" CLI="taskset -c 1"
	PINNING="servers on CPU 0, clients on CPU 1 (taskset)"
else
	SRV="" CLI=""
	PINNING="none (one CPU)"
fi

PORT0=${BENCH_PORT:-17610}
declare -A PORT PID
i=0
for s in $SYSTEMS pktstore-prof pktstore-norel baseline-http; do
	PORT[$s]=$((PORT0 + i))
	i=$((i + 1))
done

cleanup() {
	for s in "${!PID[@]}"; do kill "${PID[$s]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT

note() { echo "$*" | tee -a "$TMP/notes.txt"; }
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$ROWS"; }
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -1; }

have() { [ -x "$B/bench-${1%-recv}" ]; }

# start NAME BINARY ARGS... : a server on PORT[NAME], output in TMP/NAME.out
start() {
	local name=$1 bin=$2
	shift 2
	$SRV "$bin" "$@" >"$TMP/$name.out" 2>&1 &
	PID[$name]=$!
}

stop() {
	local name=$1
	[ -n "${PID[$name]:-}" ] || return 0
	kill -TERM "${PID[$name]}" 2>/dev/null || true
	wait "${PID[$name]}" 2>/dev/null || true
	unset "PID[$name]"
}

start_bench_server() {
	local name=$1 port=${PORT[$1]}
	case $name in
	netonly) start "$name" "$B/bench-netonly" --listen "127.0.0.1:$port" ;;
	baseline) start "$name" "$B/bench-baseline" --listen "127.0.0.1:$port" --path "$DIR/baseline.log" --size 1G ;;
	baseline-http) start "$name" "$B/bench-baseline" --http --listen "127.0.0.1:$port" --path "$DIR/baseline-http.log" --size 1G ;;
	pmemlog) start "$name" "$B/bench-pmemlog" --listen "127.0.0.1:$port" --path "$DIR/pmemlog.pool" --size 1G ;;
	leveldb) rm -rf "$DIR/leveldb"; start "$name" "$B/bench-leveldb" --listen "127.0.0.1:$port" --path "$DIR/leveldb" ;;
	pktstore) start "$name" "$B/bench-pktstore" --listen "127.0.0.1:$port" --path "$DIR/pktstore.arena" --size 1G ;;
	pktstore-recv) PKTSTORE_RECV_PATH=recv start "$name" "$B/bench-pktstore" --listen "127.0.0.1:$port" --path "$DIR/pktstore-recv.arena" --size 1G ;;
	pktstore-prof) start "$name" "$B/bench-pktstore-prof" --listen "127.0.0.1:$port" --path "$DIR/pktstore-prof.arena" --size 1G ;;
	pktstore-norel) start "$name" "$B/bench-pktstore" --no-release --listen "127.0.0.1:$port" --path "$DIR/pktstore-norel.arena" --size 1G ;;
	esac
}

# load SCENARIO SYSTEM CONNS SIZE : one closed-loop run, rows for every metric
load() {
	local scen=$1 sys=$2 conns=$3 size=$4 line
	if ! line=$($CLI "$B/bench-loadgen" --connect "127.0.0.1:${PORT[$sys]}" --conns "$conns" \
		--size "$size" --duration "$DUR" --warmup "$WARM" --wait-ms 10000 2>>"$TMP/loadgen.err"); then
		note "run failed: $scen $sys conns=$conns size=$size (see results/tmp/loadgen.err)"
		return 0
	fi
	echo "$line" >>"$TMP/loadgen.log"
	for m in rps mbps mean_us p50_us p99_us p999_us; do
		row "$scen" "$sys" "$m" "$(kv "$line" $m)" ""
	done
}

T_START=$(date +%s)
echo "== libpktstore benchmarks, medium: $MEDIUM"

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	echo "medium	$MEDIUM_TEXT"
	echo "cpu	$CPU ($(nproc) online CPUs)"
	echo "kernel	$(uname -sr)"
	echo "pinning	$PINNING"
	echo "date	$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "durations	${DUR} s measured after ${WARM} s warm-up per run; ${ROUNDS} interleaved rounds for Table 1 (median)"
} >"$TMP/env.tsv"

SYS_RUN=""
for s in $SYSTEMS; do
	if have "$s"; then SYS_RUN="$SYS_RUN $s"; else note "skipped $s: bench-$s was not built (its Debian package is missing)"; fi
done

# ---------------------------------------------------------------- Table 1
echo "-- Table 1: 1 KiB writes over one connection, $ROUNDS interleaved rounds"
for s in $SYS_RUN pktstore-prof pktstore-norel; do start_bench_server "$s"; done
for r in $(seq "$ROUNDS"); do
	for s in $SYS_RUN pktstore-prof pktstore-norel; do
		load "t1_round$r" "$s" 1 1024
	done
done
stop pktstore-prof
stop pktstore-norel
PROF=$(grep '^profile ' "$TMP/pktstore-prof.out" || true)
if [ -n "$PROF" ]; then
	for m in tsc_hz records commits crc desc index flush drain release_calls release; do
		row profile pktstore-prof "$m" "$(kv "$PROF" $m)" ""
	done
else
	note "no profile from bench-pktstore-prof (see results/tmp/pktstore-prof.out)"
fi
SRVLINE=$(grep '^server=' "$TMP/pktstore-prof.out" || true)
row profile pktstore-prof requests "$(kv "$SRVLINE" requests)" ""
echo "recv_path	$(kv "$SRVLINE" recv_path) (granularity $(kv "$SRVLINE" granularity): 0 byte, 1 cache line, 2 page)" >>"$TMP/env.tsv"

# ------------------------------------------------------------ request sizes
echo "-- request sizes $SIZES over 1 and 16 connections"
for size in $SIZES; do
	for n in 1 16; do
		for s in $SYS_RUN; do load "size${size}_conns$n" "$s" "$n" "$size"; done
	done
done

# ----------------------------------------------------------------- Figure 2
echo "-- Figure 2: 1 KiB writes over $FIG_CONNS connections"
for n in $FIG_CONNS; do
	for s in $SYS_RUN; do load "fig2_conns$n" "$s" "$n" 1024; done
done
for s in $SYS_RUN; do stop "$s"; done

# ---------------------------------------------------------------- CPU cost
# perf counts user and kernel instructions where the PMU is exposed; in a VM
# without it, callgrind counts user-space instructions only. Either way the
# per-request figure is the difference of two fixed-count runs divided by the
# difference of their counts, so start-up and shutdown cancel out.
echo "-- CPU cost: instructions per 1 KiB request"
if perf stat -e instructions true 2>&1 | grep -q '[0-9] *instructions'; then
	CPU_TOOL=perf
	CPU_TEXT="perf stat -e instructions (user + kernel, server process only)"
else
	CPU_TOOL=callgrind
	CPU_TEXT="valgrind --tool=callgrind (user-space instructions only: the kernel's TCP, copy and io_uring work is not counted; valgrind hides AVX-512 from the program, so the CRC32C and copy routines take their narrower paths)"
fi
echo "cpu_tool	$CPU_TEXT" >>"$TMP/env.tsv"
N1=2000 N2=6000
instr_run() { # SYSTEM COUNT -> instructions
	local sys=$1 count=$2 port=$((PORT0 + 40)) out=$TMP/cpu.$1.$2 args
	case $sys in
	netonly) args=() ;;
	leveldb) rm -rf "$DIR/cpu-leveldb"; args=(--path "$DIR/cpu-leveldb") ;;
	pktstore*) args=(--path "$DIR/cpu.arena" --size 256M) ;;
	*) args=(--path "$DIR/cpu.$sys" --size 256M) ;;
	esac
	local bin=$B/bench-${sys%-recv}
	[ "$sys" = pktstore-recv ] && export PKTSTORE_RECV_PATH=recv
	if [ $CPU_TOOL = perf ]; then
		$SRV perf stat -x, -e instructions -o "$out.cnt" "$bin" --listen "127.0.0.1:$port" "${args[@]}" >"$out" 2>&1 &
	else
		$SRV valgrind --tool=callgrind --callgrind-out-file="$out.cnt" "$bin" \
			--listen "127.0.0.1:$port" "${args[@]}" >"$out" 2>&1 &
	fi
	local pid=$!
	unset PKTSTORE_RECV_PATH
	$CLI "$B/bench-loadgen" --connect "127.0.0.1:$port" --conns 1 --size 1024 \
		--requests "$count" --duration 120 --wait-ms 30000 >>"$TMP/loadgen.log" 2>>"$TMP/loadgen.err" || true
	kill -INT $pid 2>/dev/null || true
	wait $pid 2>/dev/null || true
	rm -rf "$DIR/cpu.arena" "$DIR/cpu.$sys"
	if [ $CPU_TOOL = perf ]; then
		awk -F, '/instructions/ { print $1; exit }' "$out.cnt"
	else
		sed -n 's/^summary: //p' "$out.cnt"
	fi
}
for s in $SYS_RUN; do
	a=$(instr_run "$s" $N1)
	b=$(instr_run "$s" $N2)
	if [ -n "$a" ] && [ -n "$b" ]; then
		row cpu_1KiB "$s" instructions_per_req "$(((b - a) / (N2 - N1)))" ""
	else
		note "no instruction count for $s (see results/tmp/cpu.$s.*)"
	fi
done

# ----------------------------------------------------------------- recovery
echo "-- recovery: open an arena holding $RECORDS records"
if "$B/bench-recovery" --path "$DIR/recovery.arena" --records "$RECORDS" --size 512M >"$TMP/recovery.out" 2>&1; then
	f=$(grep '^fill ' "$TMP/recovery.out")
	row recovery pktstore fill_append_ns "$(kv "$f" append_ns)" ""
	row recovery pktstore record_bytes "$(kv "$f" bytes)" ""
	while read -r line; do
		label=$(kv "$line" shutdown)
		for m in open_ms recovery_ms records descriptors rec_per_s gb_per_s ns_per_slot; do
			row "recovery_$label" pktstore "$m" "$(kv "$line" $m)" ""
		done
	done < <(grep '^open ' "$TMP/recovery.out")
else
	note "recovery run failed: $(tail -1 "$TMP/recovery.out")"
fi

# ------------------------------------------------------------------ cleaner
echo "-- cleaner: 4 KiB appends with and without small records that stay"
if "$B/bench-cleaner" --dir "$DIR" --rounds "$ROUNDS" >"$TMP/cleaner.out" 2>&1; then
	line=$(grep '^cleaner ' "$TMP/cleaner.out")
	for m in plain_ns movable_ns ratio ops cleaned_segments moved_records moved_bytes_per_op; do
		row cleaner pktstore "$m" "$(kv "$line" $m)" ""
	done
	row cleaner pktstore pinned_ops "$(kv "$(grep '^pinned ' "$TMP/cleaner.out")" ops)" ""
else
	note "cleaner run failed: $(tail -1 "$TMP/cleaner.out")"
fi

# ------------------------------------------------------------ end to end
echo "-- end to end: redis-benchmark and wrk"
KV=$BUILD/examples/kv/pktstore-kv
E2E_SERVERS=""
if command -v redis-server >/dev/null; then
	mkdir -p "$DIR/redis"
	RPORT=$((PORT0 + 50))
	start redis redis-server --port $RPORT --bind 127.0.0.1 --dir "$DIR/redis" \
		--appendonly yes --appendfsync always --save "" --daemonize no
	E2E_SERVERS="redis"
else
	note "skipped redis rows: redis-server is not installed"
fi
if [ -x "$KV" ]; then
	KPORT=$((PORT0 + 51)) HPORT=$((PORT0 + 52))
	start pktstore-kv "$KV" --arena "$DIR/kv.arena" --size 1G \
		--resp "127.0.0.1:$KPORT" --http "127.0.0.1:$HPORT"
	E2E_SERVERS="$E2E_SERVERS pktstore-kv"
else
	note "skipped pktstore-kv rows: $KV is not built"
fi
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
if command -v redis-benchmark >/dev/null; then
	for srv in $E2E_SERVERS; do
		port=$RPORT
		[ "$srv" = pktstore-kv ] && port=$KPORT
		if ! wait_port "$port"; then
			note "skipped $srv rows: it did not listen on $port"
			continue
		fi
		for c in 1 50; do
			for p in 1 16; do
				n=$((c * p * 400 + 4000))
				[ "$FULL" = 1 ] && n=$((n * 3))
				csv=$(timeout 60 $CLI redis-benchmark -h 127.0.0.1 -p "$port" -t set,get \
					-d 1024 -c $c -P $p -n $n -r 10000 --csv 2>>"$TMP/e2e.err" || true)
				echo "$srv c=$c P=$p $csv" >>"$TMP/e2e.log"
				while IFS=, read -r test rps avg _; do
					test=${test//\"/} rps=${rps//\"/} avg=${avg//\"/}
					case $test in SET | GET) ;; *) continue ;; esac
					row "resp_${test}_c${c}_P${p}" "$srv" rps "$rps" ""
					row "resp_${test}_c${c}_P${p}" "$srv" mean_us "$(awk -v a="$avg" 'BEGIN { printf "%.2f", a * 1000 }')" ""
				done <<<"$csv"
			done
		done
	done
else
	note "skipped redis-benchmark rows: redis-benchmark is not installed"
fi
stop redis
# HTTP: pktstore-kv POST /log against the Linux baseline in its HTTP
# framing mode (same parsing of a POST with a Content-Length body).
if command -v wrk >/dev/null; then
	start_bench_server baseline-http
	HTTP_SERVERS="baseline-http"
	[ -x "$KV" ] && HTTP_SERVERS="$HTTP_SERVERS pktstore-kv"
	for srv in $HTTP_SERVERS; do
		port=${PORT[baseline-http]}
		[ "$srv" = pktstore-kv ] && port=$HPORT
		if ! wait_port "$port"; then
			note "skipped $srv HTTP rows: it did not listen on $port"
			continue
		fi
		for c in 1 50; do
			o=$($CLI wrk -t1 -c$c -d"${HTTP_DUR}s" -s "$ROOT/bench/post.lua" "http://127.0.0.1:$port/log" 2>>"$TMP/e2e.err" || true)
			echo "$srv c=$c $o" >>"$TMP/e2e.log"
			rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$o")
			lat=$(awk '$1 == "Latency" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
				f = u == "us" ? 1 : u == "ms" ? 1000 : u == "s" ? 1e6 : 0; printf "%.2f", v * f; exit }' <<<"$o")
			non2xx=$(awk '/Non-2xx/ { print $NF }' <<<"$o")
			[ -n "$non2xx" ] && note "wrk $srv c=$c: $non2xx non-2xx responses"
			name=$srv
			[ "$srv" = baseline-http ] && name=baseline
			[ -n "$rps" ] && row "http_post_c$c" "$name" rps "$rps" ""
			[ -n "$lat" ] && row "http_post_c$c" "$name" mean_us "$lat" ""
		done
	done
	stop baseline-http
else
	note "skipped wrk rows: wrk is not installed"
fi
stop pktstore-kv

T_END=$(date +%s)
echo "elapsed	$((T_END - T_START)) s" >>"$TMP/env.tsv"
"$ROOT/bench/report.sh" "$TMP" "$OUT"
echo "== wrote bench/results/latest.md, latest.json, figure2.png in $((T_END - T_START)) s"
