#!/usr/bin/env bash
# Run the benchmark suite and write bench/results/latest.{md,json} and
# bench/results/figure2.png. Figures and ratios only: nothing here passes or
# fails on speed.
#
#   bench/run.sh [--medium pm|disk] [--full] [--quick] [--build DIR]
#
#   --medium pm    (default) every system's files on /dev/shm, libpmem2 and
#                  libpmem told to treat them as persistent memory
#                  (PMEM2_FORCE_GRANULARITY=CACHE_LINE, PMEM_IS_PMEM_FORCE=1):
#                  real CLWB/CLFLUSHOPT + SFENCE on DRAM, no power-loss safety
#   --medium disk  every system's files in the working directory's file
#                  system: page granularity, msync/fsync
#   --full         longer runs and more rounds
#   --quick        (or BENCH_QUICK=1) short runs, fewer points, the peers
#                  from Debian packages left out: every target row still
#                  gets its figure, in a few minutes
#
# Every system serves the same points in turn, round after round
# (interleaved), so a slow moment of a shared machine lands on all of them;
# the report gives the median of the rounds with their min-max, and each
# ratio is taken within a round, then its median and min-max.
#
# BUILD (as for make: the build directory, default build), BENCH_SIZES,
# BENCH_CONNS, BENCH_ROUNDS, BENCH_RECORDS and BENCH_PORT override the build
# directory, the request sizes, the connection counts of Figure 2, the
# rounds, the recovery records and the first TCP port.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
MEDIUM=pm
FULL=0
QUICK=${BENCH_QUICK:-0}
if [ -n "${MAKELEVEL:-}" ]; then
	INVOKED="make bench (bench/run.sh $*)"
else
	INVOKED="bench/run.sh $*"
fi
for v in BUILD BENCH_QUICK BENCH_SIZES BENCH_CONNS BENCH_ROUNDS BENCH_RECORDS BENCH_PORT; do
	[ -n "${!v:-}" ] && INVOKED="$v=${!v} $INVOKED"
done
while [ $# -gt 0 ]; do
	case $1 in
	--medium) MEDIUM=$2; shift 2 ;;
	--full) FULL=1; shift ;;
	--quick) QUICK=1; shift ;;
	--build) BUILD=$(cd "$2" && pwd); shift 2 ;;
	*) echo "usage: $0 [--medium pm|disk] [--full] [--quick] [--build DIR]" >&2; exit 2 ;;
	esac
done

B=$BUILD/bench
OUT=$ROOT/bench/results
TMP=$OUT/tmp
ROWS=$TMP/rows.tsv
rm -rf "$TMP"
mkdir -p "$TMP"
: >"$ROWS"
: >"$TMP/notes.txt"

case $MEDIUM in
pm)
	DIR=/dev/shm/bench-run.$$
	export PMEM2_FORCE_GRANULARITY=CACHE_LINE PMEM_IS_PMEM_FORCE=1
	MEDIUM_TEXT="emulated PM: /dev/shm (tmpfs), PMEM2_FORCE_GRANULARITY=CACHE_LINE and PMEM_IS_PMEM_FORCE=1 (CLWB/CLFLUSHOPT + SFENCE on DRAM; no power-loss durability)"
	;;
disk)
	DIR=$PWD/bench-run.$$
	unset PMEM2_FORCE_GRANULARITY PMEM_IS_PMEM_FORCE
	MEDIUM_TEXT="disk: $(df --output=fstype "$PWD" | tail -1 | tr -d ' ') file system of $PWD (page granularity: msync/fsync)"
	;;
*) echo "unknown medium $MEDIUM" >&2; exit 2 ;;
esac
mkdir -p "$DIR"

if [ "$QUICK" = 1 ]; then
	MODE=quick DUR=0.5 WARM=0.2 ROUNDS=3 HTTP_DUR=1
	SIZES=${BENCH_SIZES:-1024 65536}
	FIG_CONNS=${BENCH_CONNS:-1 4 16 100}
	BIG_CONNS="1 16 100"
	PEERS=""
elif [ "$FULL" = 1 ]; then
	MODE=full DUR=2 WARM=0.5 ROUNDS=5 HTTP_DUR=5
	SIZES=${BENCH_SIZES:-64 1024 4096 65536}
	FIG_CONNS=${BENCH_CONNS:-1 2 4 8 16 32 64 100}
	BIG_CONNS="1 4 16 64 100"
	PEERS="pmemlog leveldb"
else
	MODE=default DUR=1 WARM=0.3 ROUNDS=3 HTTP_DUR=2
	SIZES=${BENCH_SIZES:-64 1024 4096 65536}
	FIG_CONNS=${BENCH_CONNS:-1 2 4 8 16 32 64 100}
	BIG_CONNS="1 16 100"
	PEERS="pmemlog leveldb"
fi
RECORDS=${BENCH_RECORDS:-1000000}
ROUNDS=${BENCH_ROUNDS:-$ROUNDS}
SYSTEMS="netonly-uring netonly baseline $PEERS pktstore pktstore-recv"

# Server on core 0, clients on core 1 when there are two cores.
if [ "$(nproc)" -ge 2 ]; then
	SRV="taskset -c 0" CLI="taskset -c 1" SRV_CPU=0
	PINNING="servers on CPU 0, clients on CPU 1 (taskset)"
else
	SRV="" CLI="" SRV_CPU=""
	PINNING="none (one CPU)"
fi

PORT0=${BENCH_PORT:-17610}
declare -A PORT PID
i=0
for s in netonly-uring netonly baseline pmemlog leveldb pktstore pktstore-recv \
	pktstore-prof pktstore-norel baseline-http; do
	PORT[$s]=$((PORT0 + i))
	i=$((i + 1))
done
RPORT=$((PORT0 + 50)) KPORT=$((PORT0 + 51)) HPORT=$((PORT0 + 52))
# The traced and counted runs: a port of their own each, so that a server
# still going away never meets the next one's client.
XPORT=$((PORT0 + 60))

HOG=""
cleanup() {
	for s in "${!PID[@]}"; do kill "${PID[$s]}" 2>/dev/null || true; done
	[ -n "$HOG" ] && kill "$HOG" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT

note() { echo "$*" | tee -a "$TMP/notes.txt"; }
# row SCENARIO SYSTEM METRIC VALUE [ROUND]
row() { [ -n "$4" ] && printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >>"$ROWS" || true; }
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -1; }

bin_of() {
	case $1 in
	pktstore-recv | pktstore-norel) echo "$B/bench-pktstore" ;;
	*) echo "$B/bench-$1" ;;
	esac
}
have() { [ -x "$(bin_of "$1")" ]; }

# start NAME BINARY ARGS... : a server in the background, output in TMP/NAME.out
start() {
	local name=$1 bin=$2
	shift 2
	$SRV "$bin" "$@" >"$TMP/$name.out" 2>&1 &
	PID[$name]=$!
}

# end PID SIGNAL WHAT [TARGET]: send SIGNAL to TARGET (default PID) and
# wait for PID, sending it again every 5 s; after 30 s, SIGKILL and a note
# (on stderr: callers' stdout may be a captured result).
# (A server under valgrind runs io_uring_enter with signals blocked, so a
# signal that lands while it waits can go unseen until another comes.)
end() {
	local pid=$1 sig=$2 what=$3 target=${4:-$1}
	kill "-$sig" "$target" 2>/dev/null || true
	for i in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		[ $((i % 50)) -ne 0 ] || kill "-$sig" "$target" 2>/dev/null || true
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		note "$what did not stop within 30 s of SIG$sig: killed" >&2
		pkill -KILL -P "$pid" 2>/dev/null || true
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

stop() {
	local name=$1
	[ -n "${PID[$name]:-}" ] || return 0
	end "${PID[$name]}" TERM "server $name"
	unset "PID[$name]"
}

wait_port() { # PORT : up to 30 s (five servers prefault 1 GiB files at once)
	for _ in $(seq 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# server_cmd NAME PORT DIRSUFFIX : the command line (binary and arguments)
# of a benchmark server; PKTSTORE_RECV_PATH for pktstore-recv is set by the
# caller (server_env).
server_cmd() {
	local name=$1 port=$2 d=$DIR/$1$3
	case $name in
	netonly | netonly-uring) echo "$(bin_of "$name") --listen 127.0.0.1:$port" ;;
	baseline) echo "$(bin_of "$name") --listen 127.0.0.1:$port --path $d.log --size 1G" ;;
	baseline-http) echo "$B/bench-baseline --http --listen 127.0.0.1:$port --path $d.log --size 1G" ;;
	pmemlog) echo "$(bin_of "$name") --listen 127.0.0.1:$port --path $d.pool --size 1G" ;;
	leveldb) rm -rf "$d"; echo "$(bin_of "$name") --listen 127.0.0.1:$port --path $d" ;;
	pktstore | pktstore-recv | pktstore-prof) echo "$(bin_of "$name") --listen 127.0.0.1:$port --path $d.arena --size 1G" ;;
	pktstore-norel) echo "$(bin_of "$name") --no-release --listen 127.0.0.1:$port --path $d.arena --size 1G" ;;
	esac
}
server_env() { [ "$1" = pktstore-recv ] && echo "PKTSTORE_RECV_PATH=recv" || echo "-u PKTSTORE_RECV_PATH"; }

start_bench_server() {
	# shellcheck disable=SC2046
	env $(server_env "$1") $SRV $(server_cmd "$1" "${PORT[$1]}" "") >"$TMP/$1.out" 2>&1 &
	PID[$1]=$!
}

# load SCENARIO SYSTEM CONNS SIZE ROUND : one closed-loop run, a row per metric
load() {
	local scen=$1 sys=$2 conns=$3 size=$4 round=$5 line
	if ! line=$($CLI "$B/bench-loadgen" --connect "127.0.0.1:${PORT[$sys]}" --conns "$conns" \
		--size "$size" --duration "$DUR" --warmup "$WARM" --wait-ms 10000 2>>"$TMP/loadgen.err"); then
		note "run failed: $scen $sys conns=$conns size=$size round $round (see results/tmp/loadgen.err)"
		return 0
	fi
	echo "$scen $sys round=$round $line" >>"$TMP/loadgen.log"
	for m in rps mbps mean_us p50_us p99_us p999_us; do
		row "$scen" "$sys" "$m" "$(kv "$line" $m)" "$round"
	done
}

T_START=$(date +%s)
echo "== libpktstore benchmarks ($MODE mode), medium: $MEDIUM"

COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$ROOT" status --porcelain -- lib include examples CMakeLists.txt 2>/dev/null | awk '{ print $2 }' | tr '\n' ' ' || true)
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
	echo "command	$INVOKED"
	echo "mode	$MODE"
	echo "commit	$COMMIT${DIRTY:+ with uncommitted changes in the working tree to: $DIRTY}"
	echo "medium	$MEDIUM_TEXT"
	echo "cpu	$CPU ($(nproc) online CPUs)"
	echo "kernel	$(uname -sr)"
	echo "pinning	$PINNING"
	echo "date	$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "rounds	$ROUNDS"
	echo "durations	${DUR} s measured after ${WARM} s warm-up per run; $ROUNDS interleaved rounds (median, min-max)"
	echo "build	$BUILD"
} >"$TMP/env.tsv"

SYS_RUN=""
for s in $SYSTEMS; do
	if have "$s"; then SYS_RUN="$SYS_RUN $s"; else note "skipped $s: $(bin_of "$s") was not built (its Debian package is missing)"; fi
done
[ "$QUICK" = 1 ] && note "quick mode: ${DUR} s runs, Figure 2 at $FIG_CONNS connections, request sizes $SIZES; pmemlog and LevelDB left out"

# ------------------------------------------------ request/response matrix
# Table 1 (1 KiB, one connection, with the profiling and no-release builds),
# Figure 2 (1 KiB over FIG_CONNS), 64 KiB over BIG_CONNS, and the other
# sizes at 1 and 16 connections: one round is every point for every system.
POINTS="1024:1"
for n in $FIG_CONNS; do [ "$n" = 1 ] || POINTS="$POINTS 1024:$n"; done
for n in $BIG_CONNS; do POINTS="$POINTS 65536:$n"; done
for size in $SIZES; do
	case $size in 1024 | 65536) continue ;; esac
	POINTS="$POINTS $size:1 $size:16"
done
T1_EXTRA="pktstore-prof pktstore-norel"
echo "-- request/response: $ROUNDS interleaved rounds of $(wc -w <<<"$POINTS") points (size:conns) x ($SYS_RUN )"
for s in $SYS_RUN $T1_EXTRA; do start_bench_server "$s"; done
for s in $SYS_RUN $T1_EXTRA; do wait_port "${PORT[$s]}" || note "$s did not listen on ${PORT[$s]}"; done
for r in $(seq "$ROUNDS"); do
	echo "   round $r/$ROUNDS"
	for p in $POINTS; do
		size=${p%:*} n=${p#*:}
		extra=""
		[ "$p" = 1024:1 ] && extra=$T1_EXTRA
		for s in $SYS_RUN $extra; do load "size${size}_conns$n" "$s" "$n" "$size" "$r"; done
	done
done
stop pktstore-prof
stop pktstore-norel
PROF=$(grep '^profile ' "$TMP/pktstore-prof.out" || true)
if [ -n "$PROF" ]; then
	for m in tsc_hz records commits crc desc index flush drain release_calls release; do
		row profile pktstore-prof "$m" "$(kv "$PROF" $m)"
	done
else
	note "no profile from bench-pktstore-prof (see results/tmp/pktstore-prof.out)"
fi
SRVLINE=$(grep '^server=' "$TMP/pktstore-prof.out" || true)
row profile pktstore-prof requests "$(kv "$SRVLINE" requests)"
for s in $SYS_RUN; do stop "$s"; done
SRVLINE=$(grep '^server=' "$TMP/pktstore.out" || true)
echo "recv_path	$(kv "$SRVLINE" recv_path) (granularity $(kv "$SRVLINE" granularity): 0 byte, 1 cache line, 2 page)" >>"$TMP/env.tsv"
URLINE=$(grep '^server=' "$TMP/netonly-uring.out" || true)
[ -n "$URLINE" ] && echo "uring_floor	$URLINE" >>"$TMP/env.tsv"

# ---------------------------------------------------------------- syscalls
# strace -c -f over a fixed number of 1 KiB requests on one connection; the
# per-request figure is the difference of a short and a long run divided by
# the difference of their counts, so start-up and shutdown cancel out.
# "loaded": the same with a busy loop on the server's CPU (bounded by
# timeout), which is what turns a server's waits into more, shorter ones.
echo "-- syscalls per 1 KiB request (strace -c -f)"
S1=1000 S2=4000
SC_SYSTEMS="netonly-uring netonly baseline pktstore pktstore-recv"
strace_run() { # SYSTEM COUNT LOAD PORT -> TMP/sc.SYSTEM.LOAD.COUNT
	local sys=$1 count=$2 load=$3 out=$TMP/sc.$1.$3.$2 port=$4
	# shellcheck disable=SC2046
	env $(server_env "$sys") $SRV strace -c -f -U calls,errors,name -o "$out" \
		$(server_cmd "$sys" "$port" .sc) >"$out.srv" 2>&1 &
	local pid=$!
	wait_port "$port" || true
	$CLI "$B/bench-loadgen" --connect "127.0.0.1:$port" --conns 1 --size 1024 \
		--requests "$count" --duration 60 --wait-ms 20000 >>"$TMP/loadgen.log" 2>>"$TMP/loadgen.err" || true
	# The server itself is told to stop (strace's child): strace then
	# writes its table and exits with it.
	local child
	child=$(pgrep -P $pid | head -1)
	end $pid TERM "$sys under strace" "${child:-$pid}"
	rm -rf "$DIR/$sys.sc"*
}
sc_total() { awk '$NF == "total" { print $1 }' "$1"; }
if command -v strace >/dev/null; then
	for load in quiet loaded; do
		if [ $load = loaded ]; then
			$SRV timeout 120 sh -c 'while :; do :; done' &
			HOG=$!
		fi
		for s in $SC_SYSTEMS; do
			have "$s" || continue
			strace_run "$s" $S1 $load $XPORT
			strace_run "$s" $S2 $load $((XPORT + 1))
			XPORT=$((XPORT + 2))
			a=$(sc_total "$TMP/sc.$s.$load.$S1") b=$(sc_total "$TMP/sc.$s.$load.$S2")
			if [ -z "$a" ] || [ -z "$b" ]; then
				note "no syscall count for $s ($load; see results/tmp/sc.$s.$load.*)"
				continue
			fi
			row "syscalls_$load" "$s" per_request "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b - a) / '$((S2 - S1))' }')"
			# Each call that takes at least 0.05 per request, by name.
			awk -v n=$((S2 - S1)) 'FNR == NR { if ($NF != "total" && $1 ~ /^[0-9]+$/) a[$NF] = $1; next }
				$NF != "total" && $1 ~ /^[0-9]+$/ { d = ($1 - a[$NF]) / n; if (d >= 0.05) printf "%s\t%.2f\n", $NF, d }' \
				"$TMP/sc.$s.$load.$S1" "$TMP/sc.$s.$load.$S2" |
				while IFS=$'\t' read -r name v; do row "syscalls_$load" "$s" "sc_$name" "$v"; done
		done
		if [ -n "$HOG" ]; then
			kill "$HOG" 2>/dev/null || true
			wait "$HOG" 2>/dev/null || true
			HOG=""
		fi
	done
	echo "syscall_tool	strace -c -f (server process and its threads), difference of a $S1- and a $S2-request run over one connection, 1 KiB; loaded: a busy loop on the server's CPU" >>"$TMP/env.tsv"
else
	note "skipped syscall rows: strace is not installed"
fi

# ---------------------------------------------------------------- CPU cost
# perf counts user instructions where the PMU is exposed; in a VM without it,
# callgrind counts user-space instructions. Same differencing as above.
echo "-- CPU cost: user instructions per 1 KiB request"
if perf stat -e instructions:u true 2>&1 | grep -q '[0-9] *instructions:u'; then
	CPU_TOOL=perf
	CPU_TEXT="perf stat -e instructions:u (user space, server process only)"
else
	CPU_TOOL=callgrind
	CPU_TEXT="valgrind --tool=callgrind (user-space instructions only: the kernel's TCP, copy and io_uring work is not counted; valgrind hides AVX-512 from the program, so the CRC32C and copy routines take their narrower paths); perf stat -e instructions:u reports <not supported> on this machine"
fi
command -v valgrind >/dev/null || [ $CPU_TOOL = perf ] || CPU_TOOL=none
echo "cpu_tool	$CPU_TEXT" >>"$TMP/env.tsv"
N1=2000 N2=6000
CPU_SYSTEMS="netonly-uring netonly baseline pktstore pktstore-recv"
instr_run() { # SYSTEM COUNT PORT -> instructions
	local sys=$1 count=$2 out=$TMP/cpu.$1.$2 port=$3
	if [ $CPU_TOOL = perf ]; then
		# shellcheck disable=SC2046
		env $(server_env "$sys") $SRV perf stat -x, -e instructions:u -o "$out.cnt" \
			$(server_cmd "$sys" "$port" .cpu) >"$out" 2>&1 &
	else
		# shellcheck disable=SC2046
		env $(server_env "$sys") $SRV valgrind --tool=callgrind --callgrind-out-file="$out.cnt" \
			$(server_cmd "$sys" "$port" .cpu) >"$out" 2>&1 &
	fi
	local pid=$!
	$CLI "$B/bench-loadgen" --connect "127.0.0.1:$port" --conns 1 --size 1024 \
		--requests "$count" --duration 120 --wait-ms 30000 >>"$TMP/loadgen.log" 2>>"$TMP/loadgen.err" || true
	end $pid INT "$sys under $CPU_TOOL"
	rm -rf "$DIR/$sys.cpu"*
	if [ $CPU_TOOL = perf ]; then
		awk -F, '/instructions/ { print $1; exit }' "$out.cnt"
	else
		sed -n 's/^summary: //p' "$out.cnt"
	fi
}
if [ $CPU_TOOL != none ]; then
	for s in $CPU_SYSTEMS; do
		have "$s" || continue
		a=$(instr_run "$s" $N1 $XPORT)
		b=$(instr_run "$s" $N2 $((XPORT + 1)))
		XPORT=$((XPORT + 2))
		if [ -n "$a" ] && [ -n "$b" ]; then
			row cpu_1KiB "$s" instructions_per_req "$(((b - a) / (N2 - N1)))"
		else
			note "no instruction count for $s (see results/tmp/cpu.$s.*)"
		fi
	done
	# Where libpktstore's instructions go, per request: each function's self
	# cost in the long run minus the short one, over the difference in
	# requests (TSV: per request, function, object).
	if [ $CPU_TOOL = callgrind ] && [ -f "$TMP/cpu.pktstore.$N2.cnt" ] && command -v callgrind_annotate >/dev/null; then
		for n in $N1 $N2; do
			# --auto=no: no annotated source, whose lines ("=> ... (6,003x)")
			# read like function rows.
			callgrind_annotate --auto=no --inclusive=no --threshold=100 "$TMP/cpu.pktstore.$n.cnt" 2>/dev/null |
				sed -n 's/^ *\([0-9,]*\) *([ 0-9.]*%) *\(.*\)$/\1\t\2/p' | tr -d , |
				awk -F'\t' '$2 !~ /PROGRAM TOTALS/ {
					f = $2; o = ""
					if (match(f, / \[[^]]*\]$/)) { o = substr(f, RSTART + 2, RLENGTH - 3); f = substr(f, 1, RSTART - 1) }
					sub(/.*\//, "", o); sub(/^.*:/, "", f)
					print $1 "\t" f "\t" (o == "" ? "inlined" : o) }' >"$TMP/cpu.pktstore.$n.fn" || true
		done
		awk -F'\t' -v n=$((N2 - N1)) 'FNR == NR { a[$2 "\t" $3] += $1; next } { b[$2 "\t" $3] += $1 }
			END { for (k in b) { d = (b[k] - a[k]) / n; if (d >= 5) printf "%.1f\t%s\n", d, k } }' \
			"$TMP/cpu.pktstore.$N1.fn" "$TMP/cpu.pktstore.$N2.fn" | sort -t"$(printf '\t')" -k1,1 -rn >"$TMP/cpu.pktstore.functions" || true
	fi
else
	note "skipped instruction rows: neither perf instructions:u nor valgrind works here"
fi

# ------------------------------------------------------------- micro-benchmarks
echo "-- release per record (single, batch of 64, steady-state amortised)"
if "$B/bench-release" --path "$DIR/release.arena" --records 100000 --rounds "$ROUNDS" >"$TMP/release.out" 2>&1; then
	while read -r line; do
		row release pktstore "$(kv "$line" mode)_ns" "$(kv "$line" ns_per_record)" "$(kv "$line" round)"
	done < <(grep '^release ' "$TMP/release.out")
else
	note "release run failed: $(tail -1 "$TMP/release.out")"
fi

echo "-- arena bytes per 100-byte record, every receive path"
if "$B/bench-packing" --path "$DIR/packing.arena" --msg 100 >"$TMP/packing.out" 2>&1; then
	while read -r line; do
		p=$(kv "$line" path)
		if grep -q unavailable <<<"$line"; then
			note "packing: receive path $p unavailable here: ${line#*reason=}"
		else
			row packing "$p" bytes_per_record "$(kv "$line" bytes_per_record)"
			row packing "$p" records "$(kv "$line" records)"
		fi
	done < <(grep '^packing ' "$TMP/packing.out")
else
	note "packing run failed: $(tail -1 "$TMP/packing.out")"
fi

echo "-- recovery: open an arena holding $RECORDS records, clean and dirty, $ROUNDS rounds"
if "$B/bench-recovery" --path "$DIR/recovery.arena" --records "$RECORDS" --size 512M \
	--rounds "$ROUNDS" >"$TMP/recovery.out" 2>&1; then
	f=$(grep '^fill ' "$TMP/recovery.out" | head -1)
	row recovery pktstore fill_append_ns "$(kv "$f" append_ns)"
	row recovery pktstore record_bytes "$(kv "$f" bytes)"
	while read -r line; do
		label=$(kv "$line" shutdown)
		for m in open_ms recovery_ms records descriptors rec_per_s gb_per_s ns_per_slot; do
			row "recovery_$label" pktstore "$m" "$(kv "$line" $m)" "$(kv "$line" round)"
		done
	done < <(grep '^open ' "$TMP/recovery.out")
else
	note "recovery run failed: $(tail -1 "$TMP/recovery.out")"
fi

echo "-- cleaner: 4 KiB appends with and without small records that stay"
if "$B/bench-cleaner" --dir "$DIR" --rounds "$ROUNDS" >"$TMP/cleaner.out" 2>&1; then
	line=$(grep '^cleaner ' "$TMP/cleaner.out")
	for m in plain_ns movable_ns ratio ops cleaned_segments moved_records moved_bytes_per_op; do
		row cleaner pktstore "$m" "$(kv "$line" $m)"
	done
	row cleaner pktstore pinned_ops "$(kv "$(grep '^pinned ' "$TMP/cleaner.out")" ops)"
else
	note "cleaner run failed: $(tail -1 "$TMP/cleaner.out")"
fi

# ------------------------------------------------------------ end to end
# redis-server with appendfsync always, AOF in the medium's directory, on
# its own port, never daemonized (this script's trap stops it). A service
# the Debian package may have started is left alone: it listens on 6379,
# not here.
echo "-- end to end: redis-benchmark ($ROUNDS interleaved rounds) and wrk"
KV=$BUILD/examples/kv/pktstore-kv
E2E_SERVERS=""
if command -v redis-server >/dev/null; then
	mkdir -p "$DIR/redis"
	start redis redis-server --port $RPORT --bind 127.0.0.1 --dir "$DIR/redis" \
		--appendonly yes --appendfsync always --save "" --daemonize no
	E2E_SERVERS="redis"
	echo "redis	$(redis-server --version | head -1)" >>"$TMP/env.tsv"
else
	note "skipped redis rows: redis-server is not installed (Debian: redis-server)"
fi
if [ -x "$KV" ]; then
	start pktstore-kv "$KV" --arena "$DIR/kv.arena" --size 1G \
		--resp "127.0.0.1:$KPORT" --http "127.0.0.1:$HPORT"
	E2E_SERVERS="$E2E_SERVERS pktstore-kv"
else
	note "skipped pktstore-kv rows: $KV is not built"
fi
E2E_POINTS="1:1 50:1 50:16"
[ "$QUICK" = 1 ] || E2E_POINTS="1:1 1:16 50:1 50:16"
if command -v redis-benchmark >/dev/null; then
	UP=""
	for srv in $E2E_SERVERS; do
		port=$RPORT
		[ "$srv" = pktstore-kv ] && port=$KPORT
		if wait_port "$port"; then UP="$UP $srv"; else note "skipped $srv rows: it did not listen on $port"; fi
	done
	for r in $(seq "$ROUNDS"); do
		for pt in $E2E_POINTS; do
			c=${pt%:*} p=${pt#*:}
			for srv in $UP; do
				port=$RPORT
				[ "$srv" = pktstore-kv ] && port=$KPORT
				n=$((c * p * 400 + 4000))
				[ "$QUICK" = 1 ] && n=$((n / 2))
				[ "$FULL" = 1 ] && n=$((n * 3))
				csv=$(timeout 60 $CLI redis-benchmark -h 127.0.0.1 -p "$port" -t set,get \
					-d 1024 -c "$c" -P "$p" -n $n -r 10000 --csv 2>>"$TMP/e2e.err" || true)
				echo "$srv c=$c P=$p round=$r $csv" >>"$TMP/e2e.log"
				while IFS=, read -r test rps avg _; do
					test=${test//\"/} rps=${rps//\"/} avg=${avg//\"/}
					case $test in SET | GET) ;; *) continue ;; esac
					row "resp_${test}_c${c}_P${p}" "$srv" rps "$rps" "$r"
					row "resp_${test}_c${c}_P${p}" "$srv" mean_us "$(awk -v a="$avg" 'BEGIN { printf "%.2f", a * 1000 }')" "$r"
				done <<<"$csv"
			done
		done
	done
else
	note "skipped redis-benchmark rows: redis-benchmark is not installed (Debian: redis-tools)"
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
			row "http_post_c$c" "$name" rps "$rps"
			row "http_post_c$c" "$name" mean_us "$lat"
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
