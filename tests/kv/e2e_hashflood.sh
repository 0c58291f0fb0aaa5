#!/bin/bash
# Keys crafted to share one hash bucket cost what random keys of their size
# cost (tests/kv/hash_flood.py, in the server's CPU time): the table's hash
# is SipHash with a key drawn at start, so nobody can compute collisions,
# from the source or otherwise. A multiply-and-xorshift hash let 30,000
# such SETs cost the server over 100x what random ones did, seeded or not.
. "$(dirname "$0")/lib.sh" "$@"
need python3 timeout

start_server --size 64M
keys=30000
out=$(tmo 600 python3 "$(dirname "$0")/hash_flood.py" "$RESP_PORT" "$SERVER_PID" "$keys") ||
	fail "the flood of $keys keys: $out"
read -r plain16 crafted16 plain240 crafted240 <<<"$out"
echo "server CPU for $keys SETs of 16-byte keys: $plain16 s random, $crafted16 s colliding without a seed"
echo "server CPU for $keys SETs of 240-byte keys: $plain240 s random, $crafted240 s colliding whatever the seed"
awk -v a="$plain16" -v b="$crafted16" 'BEGIN { exit !(b <= 3 * a + 0.3) }' ||
	fail "$keys keys colliding without a seed cost $crafted16 s of CPU, random ones $plain16 s"
awk -v a="$plain240" -v b="$crafted240" 'BEGIN { exit !(b <= 3 * a + 0.3) }' ||
	fail "$keys keys colliding whatever the seed cost $crafted240 s of CPU, random ones $plain240 s"
expect_eq dbsize "$(rcli dbsize)" $((4 * keys))
alive
stop_server_clean
echo PASS
