#!/usr/bin/env bash
# The pktstore-kv demo behind `make demo`: start the server on a fresh arena,
# load it with SETs from 8 connections (each write counted only once the
# server acknowledged it), kill -9 it mid-load, restart it, and check every
# acknowledged key holds its last acknowledged value.
#   demo.sh PKTSTORE-KV KV_LOAD

. "$(dirname "$0")/../../tests/kv/lib.sh" "$@"

start_server --size 64M
grep -m1 -i "arena" "$WORK/server.log"
timeout 60 "$LOAD" crash "$RESP_PORT" 8 20 "$WORK/acks" >"$WORK/load.out" 2>&1 &
load=$!
sleep 2
stop_server # SIGKILL, mid-load
wait "$load" || true
acked=$(wc -l <"$WORK/acks")
echo "killed with SIGKILL after $acked acknowledged SETs from 8 connections"
start_server
echo "restart:"
grep -iE "recover|granularity|receive path" "$WORK/server.log" | sed 's/^/  /'
if timeout 60 "$LOAD" verify "$RESP_PORT" "$WORK/acks" >"$WORK/verify.out" 2>&1; then
	echo "verdict: OK, every acknowledged key holds its last acknowledged value ($(tail -1 "$WORK/verify.out"))"
else
	cat "$WORK/verify.out"
	fail "acknowledged writes lost"
fi
stop_server_clean
