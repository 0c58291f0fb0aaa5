#!/bin/bash
# Overwrite 100 keys with 1 KiB values until 20x the arena size has been
# written: the server keeps accepting writes and every key reads back right,
# also after a restart.
. "$(dirname "$0")/lib.sh" "$@"
need timeout

size=$((16 << 20))
start_server --size $size
tmo 120 "$LOAD" overwrite "$RESP_PORT" 100 1024 $((20 * size)) "$(ts 100)" || fail "overwrite load"
tmo 30 "$LOAD" check "$RESP_PORT" 100 1024 || fail "values wrong after overwrites"
tmo 10 redis-cli -p "$RESP_PORT" info 2>/dev/null | grep -E "segments|passes|relocated|records"
alive
stop_server
start_server
grep "recovered" "$WORK/server.log"
tmo 30 "$LOAD" check "$RESP_PORT" 100 1024 || fail "values wrong after restart"
tmo 60 "$LOAD" overwrite "$RESP_PORT" 100 1024 $((2 * size)) "$(ts 60)" || fail "writes after restart"
stop_server_clean
echo PASS
