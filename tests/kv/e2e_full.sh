#!/bin/bash
# An arena full of live values: writes that cannot fit get Redis's OOM
# error (HTTP 507), reads and deletes keep working, a full server idles at
# no CPU and logs nothing in a loop, a restart always works, and deleting
# makes room again. Then two back-to-back redis-benchmark SET runs, which
# must both finish (the cleaner always has its reserve to work in).
. "$(dirname "$0")/lib.sh" "$@"
need redis-cli redis-benchmark curl timeout

OOM="OOM command not allowed when used memory > 'maxmemory'."
head -c 500000 /dev/urandom | base64 -w0 | head -c 500000 >"$WORK/v500k"

# fill PREFIX MAX: SET PREFIX:1.. with 500 KB values until OOM; FILLED is
# the number accepted. A request that takes longer than 10 s is a wedge.
fill() {
	local i out
	for ((i = 1; i <= $2; i++)); do
		out=$(tmo 10 redis-cli -p "$RESP_PORT" -x set "$1:$i" <"$WORK/v500k") ||
			fail "SET $1:$i: no reply within 10 s (the server is wedged)"
		[ "$out" = OK ] && continue
		[ "$out" = "$OOM" ] || fail "SET $1:$i: '$out'"
		FILLED=$((i - 1))
		return
	done
	fail "$2 values of 500 KB fit; no OOM"
}

cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"
}

start_server --size 64M
fill big 200
n=$FILLED
echo "64 MiB arena: $n values of 500 KB accepted, then OOM"
[ "$n" -ge 20 ] || fail "only $n values of 500 KB fit in 64 MiB"

# Full: everything but growing writes still works.
expect_eq ping "$(rcli ping)" PONG
expect_eq get "$(rcli get big:1 | tr -d '\n' | wc -c)" 500000
expect_eq oom-again "$(rcli -x set more <"$WORK/v500k")" "$OOM"
expect_eq http-full "$(tmo 10 curl -s -o /dev/null -w '%{http_code}' -X PUT \
	--data-binary @"$WORK/v500k" "http://127.0.0.1:$HTTP_PORT/kv/web")" 507
expect_eq overwrite-smaller "$(rcli set big:2 small)" OK
expect_eq del "$(rcli del big:1 big:3)" 2
expect_eq set-after-del "$(rcli -x set big:1 <"$WORK/v500k")" OK
expect_eq incr "$(rcli incr counter)" 1

# Idle but full: the event loop sleeps.
sleep 1
t0=$(cpu_ticks)
sleep 3
t1=$(cpu_ticks)
echo "idle full server: $((t1 - t0)) CPU ticks in 3 s"
[ $((t1 - t0)) -le 15 ] || fail "an idle full server used $((t1 - t0)) ticks in 3 s"

# A restart over the full arena works, and writes that fit still go in.
stop_server
start_server
expect_eq after-restart "$(rcli get big:1 | tr -d '\n' | wc -c)" 500000
expect_eq small-after-restart "$(rcli set small 1)" OK
fill re 10
[ "$FILLED" -le 2 ] || fail "after the restart $FILLED more values of 500 KB fit"
rcli flushall >/dev/null
fill again 200
m=$FILLED
echo "after FLUSHALL: $m values of 500 KB accepted"
[ "$m" -ge "$n" ] || fail "after FLUSHALL only $m values fit (before: $n)"
stop_server_clean

# The log never repeats itself in a loop.
worst=$(sed 's/[0-9]\+/N/g' "$WORK/server.log" | sort | uniq -c | sort -rn | head -n 1)
echo "most repeated log line: $worst"
[ "$(echo "$worst" | awk '{print $1}')" -le 10 ] || fail "log line repeated: $worst"

# A 4 MiB arena: full, restarted, still taking what fits.
rm -f "$WORK/arena"
start_server --size 4M
k=0
for ((i = 1; i <= 100; i++)); do
	out=$(head -c 100000 "$WORK/v500k" | tmo 10 redis-cli -p "$RESP_PORT" -x set "s:$i") ||
		fail "4 MiB arena: SET s:$i wedged"
	[ "$out" = OK ] || break
	k=$i
done
expect_eq small-arena-oom "$out" "$OOM"
echo "4 MiB arena: $k values of 100 KB accepted"
stop_server
start_server
expect_eq small-arena-restart "$(rcli del s:1)" 1
expect_eq small-arena-write "$(head -c 100000 "$WORK/v500k" | rcli -x set s:1)" OK
stop_server_clean

# Within the bound, writes are accepted forever: 90% of maxmemory in live
# values, overwritten until 10x the arena was written: small values, values
# that share records, and values each in a record of its own (4 MiB: 256 KiB
# segments, so 60000 bytes is more than an eighth).
for run in 16:1000 16:60000 4:60000; do
	mib=${run%:*} vsize=${run#*:}
	rm -f "$WORK/arena"
	start_server --size "${mib}M"
	max=$(rcli info | sed -n 's/^maxmemory:\([0-9]*\).*/\1/p')
	seg=$((mib >= 16 ? 1048576 : 262144))
	m=$((32 + 6 + vsize))
	if [ $m -le $((seg / 8)) ]; then charge=$((m + m / 7 + 1)); else charge=$((2 * m)); fi
	keys=$((max * 9 / 10 / charge))
	echo "${mib} MiB arena, maxmemory $max: $keys keys of $vsize bytes"
	tmo 60 "$LOAD" overwrite "$RESP_PORT" "$keys" "$vsize" $((10 * mib << 20)) 50 ||
		fail "$keys keys of $vsize bytes (90% of maxmemory $max): a write was refused or failed"
	rcli info | grep -E "used_memory|cleaning_passes"
	stop_server
	start_server
	tmo 30 "$LOAD" check "$RESP_PORT" "$keys" "$vsize" || fail "values wrong after restart"
	stop_server_clean
done

# Two back-to-back redis-benchmark SET runs into a 256 MiB arena (~65 MB
# live after the first): the second must finish too.
rm -f "$WORK/arena"
start_server --size 256M
for run in 1 2; do
	out=$(tmo 120 redis-benchmark -p "$RESP_PORT" -t set -n 100000 -d 1024 -r 100000 -c 50 -q 2>&1) ||
		fail "redis-benchmark run $run did not finish: $(echo "$out" | tr '\r' '\n' | tail -n 2)"
	echo "$out" | tr '\r' '\n' | grep -E '^SET:.*requests per second' | sed "s/^/  run $run: /"
	echo "$out" | grep -q "requests per second" || fail "redis-benchmark run $run: $out"
done
rcli info | grep -E "used_memory|maxmemory|oom_replies|cleaning_passes|relocated_bytes|keys="
alive
stop_server_clean
echo PASS
