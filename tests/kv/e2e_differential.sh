#!/bin/bash
# Random commands of those pktstore-kv supports, to redis-server and to
# pktstore-kv at once: every reply must be the same bytes
# (tests/kv/differential.py). The arena is small (4 MiB), so that cleaning
# passes (copies, checkpoints) run meanwhile. Then pktstore-kv is killed
# with -9 and restarted: what replay rebuilt must be what redis-server
# holds, in every database, values and times to live alike.
. "$(dirname "$0")/lib.sh" "$@"
need redis-server redis-cli python3 timeout

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" \
	>"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null; cleanup' EXIT
for _ in $(seq $((50 * TIME_SCALE))); do
	redis-cli -p "$port" ping >/dev/null 2>&1 && break
	sleep 0.1
done
redis-cli -p "$port" ping >/dev/null 2>&1 || skip "redis-server did not start: $(tail -n 3 "$WORK/redis.log")"

start_server --size 4M
D="$(dirname "$0")/differential.py"
for seed in 1 2 3 4; do
	tmo 120 python3 "$D" "$port" "$RESP_PORT" 5000 "$seed" || fail "seed $seed: a different reply"
done
passes=$(rcli info persistence | tr -d '\r' | sed -n 's/^cleaning_passes://p')
[ "${passes:-0}" -gt 0 ] || fail "no cleaning pass ran"
echo "cleaning passes: $passes"
tmo 60 python3 "$D" --same-data "$port" "$RESP_PORT" || fail "different data before the restart"
stop_server
start_server
tmo 60 python3 "$D" --same-data "$port" "$RESP_PORT" || fail "different data after kill -9 and replay"
tmo 120 python3 "$D" "$port" "$RESP_PORT" 3000 5 || fail "seed 5, after the restart: a different reply"
stop_server_clean
start_server
tmo 60 python3 "$D" --same-data "$port" "$RESP_PORT" || fail "different data after a clean restart"
stop_server_clean
echo PASS
