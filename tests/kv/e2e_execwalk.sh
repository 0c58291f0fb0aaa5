#!/bin/bash
# EXEC reads its queued commands' arguments from the stream starting at
# the record each command starts in, however many older records the
# connection holds: the same transaction must cost the server about the
# same CPU on a connection holding 40000 records as on one holding none
# (tests/kv/exec_walk.py). Each queued command once looked for its
# arguments from the connection's oldest record: 13x at 20000 held records.
. "$(dirname "$0")/lib.sh" "$@"
need python3 timeout

start_server --size 256M
out=$(tmo 600 python3 "$(dirname "$0")/exec_walk.py" "$RESP_PORT" "$SERVER_PID" 40000 10000) ||
	fail "the transactions: $out"
read -r light heavy <<<"$out"
echo "server CPU for EXEC of 10000 SETs: $light s on a fresh connection, $heavy s on one holding 40000 records"
awk -v a="$light" -v b="$heavy" 'BEGIN { exit !(b <= 3 * a + 0.3) }' ||
	fail "EXEC on a connection holding 40000 records cost $heavy s of CPU against $light s"
expect_eq exec-values "$(for k in a9999 b9999 h39999; do rcli strlen "$k"; done | tr '\n' ' ')" \
	"700 700 700 "
alive
stop_server_clean
echo PASS
