#!/bin/bash
# POST /log keeps a window of the newest entries (a quarter of the data
# region), trimmed from the oldest. Trimming the entries of a closed
# connection whose first record cannot go on its own (it ends inside a
# request) must cost what logging them did: the server once walked the
# connection's records at each entry trimmed, and a second wrk run against
# a full window fell from 120k to 2.5k requests/s. Measured in the server's
# CPU time for each half of the run (tests/kv/log_window.py), so a slow or
# sanitized build is compared with itself; the old walk cost 5x at 30000
# entries and 8x at 50000.
. "$(dirname "$0")/lib.sh" "$@"
need python3 timeout

start_server --size 224M
entries=50000
out=$(tmo 600 python3 "$(dirname "$0")/log_window.py" "$HTTP_PORT" "$SERVER_PID" "$entries") ||
	fail "logging $entries entries twice: $out"
read -r first second <<<"$out"
echo "server CPU: $first s logging $entries entries, $second s logging as many more while the first are trimmed"
awk -v a="$first" -v b="$second" 'BEGIN { exit !(b <= 3 * a + 0.3) }' ||
	fail "trimming the closed connection's entries cost $second s of CPU against $first s to log them"
alive
stop_server_clean
echo PASS
