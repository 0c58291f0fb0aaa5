#!/bin/bash
# pktstore-kv against Redis with an fsync per write, in the same session,
# interleaved round by round:
#
#   examples/kv/bench-redis.sh ROUNDS KV [KV2 ...]
#
# Each round starts, for every pktstore-kv binary given and then for
# redis-server, a fresh server pinned to CPU 0, runs
#   redis-benchmark -t set -d 1024 -c 50 -P 1 -n 200000
#   redis-benchmark -t get -d 1024 -c 50 -P 16 -n 400000
# pinned to CPU 1 (the GETs read the key the SETs wrote), and stops it.
# pktstore-kv's arena is a fresh 1 GiB file in /dev/shm, flushed by cache
# line (PMEM2_FORCE_GRANULARITY=CACHE_LINE); Redis runs with
# --appendonly yes --appendfsync always, its directory in /dev/shm.
# Prints one line per server and test, then the ratios to Redis per round.
#
#   examples/kv/bench-redis.sh --syscalls KV [KV2 ...]
#
# System calls per request at one client: strace -c -f over the server for
# a run of 2,000 and one of 22,000 requests (SET, then GET, 1 KiB values,
# -P 1), the difference divided by 20,000, for each binary and Redis.
set -u
SHM=${KV_BENCH_DIR:-/dev/shm}
PORT=${KV_BENCH_PORT:-7411}
TMP=$(mktemp -d "$SHM/kv-bench.XXXXXX")
SRV=
WRAPPED=
trap 'stop; rm -rf "$TMP"' EXIT

stop() {
	if [ -n "$SRV" ]; then
		# Under strace the server is strace's child: stop it, not strace.
		local pid=$SRV
		[ -n "$WRAPPED" ] && pid=$(pgrep -P "$SRV" | head -n 1)
		kill -TERM "$pid" 2>/dev/null
		wait "$SRV" 2>/dev/null
		SRV=
	fi
}

# start NAME [wrapper...]: a fresh server of that name on $PORT.
start() {
	local name=$1
	shift
	WRAPPED=$*
	rm -rf "$TMP/arena" "$TMP/redis"
	mkdir -p "$TMP/redis"
	: >"$TMP/log"
	if [ "$name" = redis ]; then
		"$@" taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --appendonly yes \
			--appendfsync always --dir "$TMP/redis" --save '' >"$TMP/log" 2>&1 &
	else
		PMEM2_FORCE_GRANULARITY=CACHE_LINE "$@" taskset -c 0 "$name" --arena "$TMP/arena" \
			--size 1G --resp "127.0.0.1:$PORT" --http 127.0.0.1:0 >"$TMP/log" 2>&1 &
	fi
	SRV=$!
	for _ in $(seq 100); do
		redis-cli -p "$PORT" ping >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "$name did not start:" >&2
	cat "$TMP/log" >&2
	exit 1
}

rps() { # redis-benchmark args...: requests per second
	taskset -c 1 redis-benchmark -p "$PORT" "$@" -q 2>/dev/null | tr '\r' '\n' |
		sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -n 1
}

if [ "${1:-}" = --syscalls ]; then
	shift
	calls() { awk '$NF == "total" { print $4 }' "$1"; }
	for bin in "$@" redis; do
		for t in set get; do
			declare -A n
			for count in 2000 22000; do
				start "$bin" strace -c -f -o "$TMP/strace"
				redis-benchmark -p "$PORT" -t set -d 1024 -c 1 -P 1 -n "$count" -q >/dev/null 2>&1
				[ "$t" = get ] && redis-benchmark -p "$PORT" -t get -d 1024 -c 1 -P 1 -n "$count" -q >/dev/null 2>&1
				stop
				n[$count]=$(calls "$TMP/strace")
			done
			# The GET runs follow a SET run of the same length: subtract it.
			if [ "$t" = set ]; then
				sset=${n[2000]} lset=${n[22000]}
				echo "$bin $t: ${n[2000]} calls for 2000, ${n[22000]} for 22000:" \
					"$(awk -v a="${n[2000]}" -v b="${n[22000]}" 'BEGIN { printf "%.3f", (b - a) / 20000 }') per request"
			else
				echo "$bin $t: ${n[2000]} calls for 2000 SET+GET, ${n[22000]} for 22000:" \
					"$(awk -v a="${n[2000]}" -v b="${n[22000]}" -v sa="$sset" -v sb="$lset" \
						'BEGIN { printf "%.3f", ((b - a) - (sb - sa)) / 20000 }') per GET"
			fi
		done
	done
	exit 0
fi

ROUNDS=$1
shift
for round in $(seq "$ROUNDS"); do
	declare -A set get
	for bin in "$@" redis; do
		start "$bin"
		set[$bin]=$(rps -t set -d 1024 -c 50 -P 1 -n 200000)
		get[$bin]=$(rps -t get -d 1024 -c 50 -P 16 -n 400000)
		stop
		echo "round $round $bin: SET -c 50 -P 1 ${set[$bin]}/s, GET -c 50 -P 16 ${get[$bin]}/s"
	done
	for bin in "$@"; do
		awk -v r="$round" -v b="$bin" -v s="${set[$bin]}" -v rs="${set[redis]}" \
			-v g="${get[$bin]}" -v rg="${get[redis]}" \
			'BEGIN { printf "round %d %s / redis: SET %.2fx, GET %.2fx\n", r, b, s / rs, g / rg }'
	done
done
