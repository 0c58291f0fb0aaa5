#!/bin/bash
# kill -9 during a SET load; after restart every acknowledged key holds its
# last acknowledged value (or the single write that was still in flight).
. "$(dirname "$0")/lib.sh" "$@"
need timeout redis-cli

# A small arena, so that cleaning passes (relocation, checkpoints, releases)
# run during the load and the crash can land in the middle of one.
start_server --size 8M
tmo 60 "$LOAD" crash "$RESP_PORT" 8 20 "$WORK/acks" >"$WORK/load.out" 2>&1 &
load=$!
sleep 3
rcli info | grep -E "cleaning_passes|relocated_bytes|released_records"
stop_server
wait "$load"
cat "$WORK/load.out"
n=$(wc -l <"$WORK/acks")
[ "$n" -gt 100 ] || fail "only $n writes were acknowledged before the crash"
start_server
grep "recovered" "$WORK/server.log"
tmo 60 "$LOAD" verify "$RESP_PORT" "$WORK/acks" || fail "acknowledged writes lost"

# A second crash, after a restart, over the recovered state.
tmo 60 "$LOAD" crash "$RESP_PORT" 4 20 "$WORK/acks2" >"$WORK/load.out" 2>&1 &
load=$!
sleep 1
stop_server
wait "$load"
start_server
tmo 60 "$LOAD" verify "$RESP_PORT" "$WORK/acks2" || fail "acknowledged writes lost (second crash)"
stop_server_clean
echo PASS
