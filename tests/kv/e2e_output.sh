#!/bin/bash
# Replies go out through the store's ring (pktstore_send): replies far
# larger than the store's send queue (4 MiB) and the socket buffers, to a
# client that reads them only later, all arrive intact and in order, also
# when the client has shut down its sending side (the connection is closed
# only once they are all in its socket); the output limit still cuts off a
# client that does not read; and a store filled by commands still being
# received (the server cannot release them) leaves the server idle, not
# spinning, until they go, or until --full-timeout closes the largest; and
# a client that leaves in the middle of a value gives its bytes back at once.
. "$(dirname "$0")/lib.sh" "$@"
need python3 redis-cli timeout
C="$(dirname "$0")/output_client.py"

# wait_full: the server has said its arena is full (within 5 s, scaled).
wait_full() {
	for _ in $(seq $((50 * TIME_SCALE))); do
		grep -q "the arena is full" "$WORK/server.log" && return
		sleep 0.1
	done
	fail "the arena did not fill"
}

cpu_ticks() {
	awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"
}

start_server
# 7,500 GETs of 4,000-byte values: 30 MB of replies, unread for 0.5 s.
out=$(tmo 60 python3 "$C" pipeline "$RESP_PORT" 7500 0.5) || fail "pipeline: $out"
echo "pipeline: $out"
out=$(tmo 60 python3 "$C" pipeline "$RESP_PORT" 7500 0.5 halfclose) || fail "half-closed: $out"
echo "half-closed: $out"
# Half-closed and reading, but slowly: 10 MB at 2 MB/s outlasts the grace
# (2 s), which runs from the client's last progress, not from its FIN.
out=$(tmo 60 python3 "$C" pipeline "$RESP_PORT" 2500 0 halfclose 2000000) ||
	fail "half-closed, reading slowly: $out"
echo "half-closed, reading slowly: $out"
alive
expect_eq after-pipelines "$(rcli ping)" PONG
# Half-closed and never reading: cut off after the grace (2 s), while the
# others are served; the store's send waiting for room is ended by the
# detach, which must not hang on it.
python3 "$C" noread "$RESP_PORT" 20000 6 halfclose >"$WORK/hc.out" 2>&1 &
hc=$!
sleep 1
for i in 1 2 3 4 5; do
	expect_eq "served-meanwhile-$i" "$(rcli ping)" PONG
	sleep 0.5
done
wait "$hc" || fail "half-closed, not reading: $(cat "$WORK/hc.out")"
echo "half-closed, not reading: $(cat "$WORK/hc.out")"
alive
stop_server_clean

# --max-output 1M: 80 MB of replies to a client that reads nothing.
start_server --max-output 1M
out=$(tmo 60 python3 "$C" noread "$RESP_PORT" 20000 1) || fail "output limit: $out"
echo "non-reading client: $out"
alive
expect_eq after-cutoff "$(rcli ping)" PONG
# A client that reads gets replies beyond the limit in all.
out=$(tmo 60 python3 "$C" pipeline "$RESP_PORT" 200 0) || fail "reading client: $out"
stop_server_clean

# An 8 MiB arena and 40 clients each in the middle of a 500 KB value: the
# store fills with records the server must keep, and hands out nothing
# until some are released.
rm -f "$WORK/arena"
start_server --size 8M --full-timeout 0
coproc FILL { exec python3 "$C" fill "$RESP_PORT" 40 450000; }
IFS= read -r -t "$(ts 30)" line <&"${FILL[0]}" || fail "the fill client did not start"
echo "$line"
wait_full
sleep 0.5
t0=$(cpu_ticks)
sleep 3
t1=$(cpu_ticks)
echo "server with a full store: $((t1 - t0)) CPU ticks in 3 s"
[ $((t1 - t0)) -le 15 ] || fail "a server whose store is full used $((t1 - t0)) ticks in 3 s"
alive
# They leave (with resets: see output_client.py): their records go, and the
# server serves again.
exec {FILL[1]}>&-
wait "$FILL_PID"
expect_eq after-full "$(rcli set k v)" OK
expect_eq after-full-get "$(rcli get k)" v
grep -q "closing client" "$WORK/server.log" && fail "--full-timeout 0 closed clients"
stop_server_clean

# The same 40 clients, who never finish nor leave: once the store has been
# full for --full-timeout with nothing released, the largest unfinished
# commands go and everyone else is served again.
rm -f "$WORK/arena"
start_server --size 8M --full-timeout 2
# (One coproc at a time: the idle client talks through a fifo and a file.)
mkfifo "$WORK/idle.in"
python3 "$C" idle "$RESP_PORT" <"$WORK/idle.in" >"$WORK/idle.out" 2>&1 &
IDLE_PID=$!
exec {IDLE_IN}>"$WORK/idle.in"
for _ in $(seq $((100 * TIME_SCALE))); do
	grep -q "ready" "$WORK/idle.out" && break
	sleep 0.1
done
grep -q "ready" "$WORK/idle.out" || fail "the idle client did not start: $(cat "$WORK/idle.out")"
coproc FILL { exec python3 "$C" fill "$RESP_PORT" 40 450000; }
IFS= read -r -t "$(ts 30)" line <&"${FILL[0]}" || fail "the fill client did not start"
wait_full
t0=$(date +%s%N)
out=$(tmo 20 redis-cli -p "$RESP_PORT" set k2 v2) || true
echo "SET while 40 stalled clients hold the store: '$out' after $((($(date +%s%N) - t0) / 1000000)) ms"
expect_eq stalled-set "$out" OK
expect_eq stalled-get "$(rcli get k2)" v2
grep "closing client" "$WORK/server.log" | head -3
evicted=$(rcli info stats | tr -d '\r' | sed -n 's/^evicted_clients://p')
echo "evicted_clients: $evicted"
[ "${evicted:-0}" -gt 0 ] || fail "INFO counts no evicted clients"
echo >&"$IDLE_IN"
exec {IDLE_IN}>&-
wait "$IDLE_PID" || true
expect_eq idle-client "$(tail -n 1 "$WORK/idle.out")" "idle client still served"
alive
exec {FILL[1]}>&-
wait "$FILL_PID"
stop_server_clean

# Clients that set a key of their own and then leave in the middle of a
# large value: each one's first record stays for its key, but the bytes of
# the value it never finished must come back at once, not at the next
# cleaning pass. (--full-timeout counts on it: closing such a client would
# otherwise free nothing, and every stalled client would be closed in turn
# with the store still full.) Killed right after, the server must replay
# what stays to the same keys.
# records_reach TEST BYTES: record_bytes (INFO) passes [ x TEST BYTES ]
# within 10 s (scaled); it is left in $rb.
records_reach() {
	for _ in $(seq $((100 * TIME_SCALE))); do
		rb=$(rcli info persistence | tr -d '\r' | sed -n 's/^record_bytes://p')
		[ -n "$rb" ] && [ "$rb" "$1" "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
rm -f "$WORK/arena"
start_server --size 8M --full-timeout 0
coproc FILL { exec python3 "$C" fill "$RESP_PORT" 4 450000 held; }
IFS= read -r -t "$(ts 30)" line <&"${FILL[0]}" || fail "the fill client did not start"
echo "$line"
# (The last bytes sent may still be in the server's socket buffers.)
records_reach -ge 1500000 || fail "the partial values are not in the arena: $rb bytes"
echo "records hold $rb bytes with 4 clients in the middle of their values"
exec {FILL[1]}>&-
wait "$FILL_PID"
records_reach -lt 100000 || fail "the unfinished values of clients that left still hold $rb bytes"
echo "after they left: $rb bytes"
stop_server
start_server --size 8M --full-timeout 0
for i in 0 1 2 3; do
	expect_eq "held$i after kill -9" "$(rcli get "held$i")" abc
done
expect_eq "keys after kill -9" "$(rcli dbsize)" 4
stop_server_clean
echo PASS
