#!/bin/bash
# HTTP end to end with curl and wrk: PUT/GET/DELETE, keep-alive, a large
# body, and the write-ahead-log workload (POST /log) under wrk.
. "$(dirname "$0")/lib.sh" "$@"
need curl wrk timeout

start_server --size 64M
base="http://127.0.0.1:$HTTP_PORT"
c() { tmo 10 curl -s "$@"; }

expect_eq put "$(c -X PUT --data-binary 'hello world' -o /dev/null -w '%{http_code}' "$base/kv/greet")" 200
expect_eq get "$(c "$base/kv/greet")" "hello world"
expect_eq post "$(c -X POST --data-binary v2 -o /dev/null -w '%{http_code}' "$base/kv/greet")" 200
expect_eq get2 "$(c "$base/kv/greet")" v2
expect_eq missing "$(c -o /dev/null -w '%{http_code}' "$base/kv/nope")" 404
expect_eq delete "$(c -X DELETE -o /dev/null -w '%{http_code}' "$base/kv/greet")" 200
expect_eq deleted "$(c -o /dev/null -w '%{http_code}' "$base/kv/greet")" 404
expect_eq encoded "$(c -X PUT --data-binary x -o /dev/null -w '%{http_code}' "$base/kv/a%20b"; c "$base/kv/a%20b")" 200x
expect_eq log "$(c -X POST --data-binary 'entry' -o /dev/null -w '%{http_code}' "$base/log")" 200
expect_eq other-path "$(c -o /dev/null -w '%{http_code}' "$base/elsewhere")" 404

# Keep-alive: two requests on one connection.
c -v "$base/kv/a%20b" "$base/kv/a%20b" 2>&1 | grep -qi "re-using existing connection" ||
	fail "curl did not reuse the connection"

# A 300 KiB body (curl sends Expect: 100-continue) read back byte for byte.
head -c 307200 /dev/urandom >"$WORK/big"
expect_eq big-put "$(c -H 'Expect: 100-continue' -X PUT --data-binary @"$WORK/big" -o /dev/null -w '%{http_code}' "$base/kv/big")" 200
c -o "$WORK/big.out" "$base/kv/big"
cmp -s "$WORK/big" "$WORK/big.out" || fail "large value differs"
expect_eq too-big "$(c -X PUT --data-binary @"$WORK/big" -H 'Content-Length: 999999999' -o /dev/null -w '%{http_code}' "$base/kv/huge")" 413

# wrk: the PASTE phttpd workload, POST /log with a Lua script.
cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("L", 512)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA
out=$(tmo 30 wrk -t 2 -c 8 -d 2s -s "$WORK/post.lua" "$base/log" 2>&1) || fail "wrk: $out"
echo "$out" | grep -E "Requests/sec|requests in"
echo "$out" | grep -q "Non-2xx" && fail "wrk saw non-2xx replies: $out"
echo "$out" | grep -q "Socket errors" && fail "wrk saw socket errors: $out"
reqs=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in.*/\1/p')
[ "${reqs:-0}" -gt 100 ] || fail "wrk completed only ${reqs:-0} requests"
out=$(tmo 30 wrk -t 1 -c 4 -d 1s "$base/kv/big" 2>&1) || fail "wrk GET: $out"
echo "$out" | grep -q "Non-2xx" && fail "wrk GET saw non-2xx replies: $out"
alive

stop_server
start_server
base="http://127.0.0.1:$HTTP_PORT"
c -o "$WORK/big.out" "$base/kv/big"
cmp -s "$WORK/big" "$WORK/big.out" || fail "large value differs after restart"
expect_eq after-restart "$(c "$base/kv/a%20b")" x
stop_server_clean
echo PASS
