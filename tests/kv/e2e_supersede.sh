#!/bin/bash
# INCR's decisions are held in meta records until superseded, and they are
# superseded in any order: incrementing 60000 keys one request at a time,
# then again in reverse order, must cost the server about the same CPU in
# each pass (tests/kv/supersede.py). A superseded record was found by a
# walk from the oldest: redis-benchmark -t incr -r 200000 wedged the server
# at 100% CPU for minutes, and the second pass here cost 7x the first. The
# arena is large enough that no cleaning pass folds the decisions into a
# checkpoint meanwhile (which shortens the walk).
. "$(dirname "$0")/lib.sh" "$@"
need python3 timeout

start_server --size 256M
keys=60000
out=$(tmo 600 python3 "$(dirname "$0")/supersede.py" "$RESP_PORT" "$SERVER_PID" "$keys") ||
	fail "incrementing $keys keys twice: $out"
read -r first second <<<"$out"
echo "server CPU: $first s for the first INCR of $keys keys, $second s for the second, in reverse order"
awk -v a="$first" -v b="$second" 'BEGIN { exit !(b <= 3 * a + 0.3) }' ||
	fail "superseding $keys decisions cost $second s of CPU against $first s to make them"
alive
stop_server_clean
echo PASS
