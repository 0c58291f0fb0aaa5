#!/bin/bash
# Active expiry after a wave of short-lived keys has gone: the table keeps
# its size, a key with a time stays, and requests must cost what they did
# before the wave (tests/kv/sparse_expiry.py, in the server's CPU time). The
# walk after each batch used to visit every bucket while any key had a
# time: 2000 SETs after a wave of 200,000 keys cost the server 13x.
. "$(dirname "$0")/lib.sh" "$@"
need python3 timeout

start_server --size 128M
keys=200000
out=$(tmo 300 python3 "$(dirname "$0")/sparse_expiry.py" "$RESP_PORT" "$SERVER_PID" "$keys") ||
	fail "the wave of $keys keys: $out"
read -r before after left <<<"$out"
echo "server CPU for 2000 SETs: $before s before a wave of $keys expiring keys, $after s after it ($left keys of it not yet gone)"
[ "$left" -le 0 ] || fail "$left of the $keys expired keys were still counted"
awk -v a="$before" -v b="$after" 'BEGIN { exit !(b <= 3 * a + 0.3) }' ||
	fail "2000 SETs cost $after s of CPU after the wave, $before s before it"
alive
stop_server_clean
echo PASS
