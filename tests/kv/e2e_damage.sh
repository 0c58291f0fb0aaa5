#!/bin/bash
# A damaged record in the middle or at the end of a connection's stream:
# the server refuses to start, naming the flow, record and seq, instead of
# serving an older value or bringing a deleted key back; --repair drops the
# stream from the damage on, says what it dropped, starts, and the next
# start is clean.
. "$(dirname "$0")/lib.sh" "$@"
need redis-cli timeout python3
ARENA_PY="$(dirname "$0")/arena.py"

# Flow A: one record with three SETs. Flow B: three records, one command
# each (each waits for its reply): SET k new, DEL d, SET after 1.
start_server --size 8M
printf '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nold\r\n*3\r\n$3\r\nSET\r\n$1\r\nd\r\n$4\r\nhere\r\n*3\r\n$3\r\nSET\r\n$4\r\nkeep\r\n$1\r\n1\r\n' |
	tmo 10 redis-cli -p "$RESP_PORT" --pipe >/dev/null || fail "pipe"
exec 3<>"/dev/tcp/127.0.0.1/$RESP_PORT"
for cmd in 'SET k new' 'DEL d' 'SET after 1'; do
	printf '%s\r\n' "$cmd" >&3
	IFS= read -r -t "$(ts 5)" line <&3 || fail "no reply to $cmd"
done
exec 3<&-
expect_eq before "$(rcli mget k d keep after | tr '\n' ' ')" "new  1 1 "
stop_server_clean
cp "$WORK/arena" "$WORK/clean"

# The records of flow B, oldest first: "id flow seq len desc_off data_off".
python3 "$ARENA_PY" records "$WORK/arena" >"$WORK/recs"
b=$(awk '{n[$2]++} END {for (f in n) if (n[f] == 3) print f}' "$WORK/recs")
[ -n "$b" ] || fail "no flow with three records: $(cat "$WORK/recs")"
mapfile -t B < <(awk -v f="$b" '$2 == f' "$WORK/recs")

# damaged NAME OFFSET: damage a copy of the clean arena at OFFSET; the
# server must exit non-zero and name flow B.
damaged() {
	cp "$WORK/clean" "$WORK/arena"
	python3 "$ARENA_PY" flip "$WORK/arena" "$2"
	: >"$WORK/server.log"
	tmo 5 "$KV" --arena "$WORK/arena" --resp 127.0.0.1:0 --http 127.0.0.1:0 \
		>>"$WORK/server.log" 2>&1
	local rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$1: the server started (status $rc) on a damaged arena"
	grep -q "flow $b" "$WORK/server.log" || fail "$1: the refusal does not name flow $b"
	grep -q -- "--repair" "$WORK/server.log" || fail "$1: the refusal does not offer --repair"
	echo "$1: refused: $(grep -m1 "flow $b" "$WORK/server.log")"
}

read -r _ _ _ len _ data <<<"${B[0]}"
damaged "first record's bytes (SET k new)" $((data + len / 2))
read -r _ _ _ len _ data <<<"${B[1]}"
damaged "middle record's bytes (DEL d)" $((data + len / 2))
read -r _ _ _ _ desc _ <<<"${B[1]}"
damaged "middle record's descriptor" $((desc + 16))
read -r _ _ _ _ desc _ <<<"${B[2]}"
damaged "last record's descriptor (SET after)" $((desc + 16))

# --repair on the middle record's damage: flow B keeps SET k new and loses
# DEL d and SET after; the log says so; the next plain start is clean.
cp "$WORK/clean" "$WORK/arena"
read -r _ _ _ len _ data <<<"${B[1]}"
python3 "$ARENA_PY" flip "$WORK/arena" $((data + len / 2))
start_server --repair
grep -q "repair: flow $b" "$WORK/server.log" || fail "repair does not report what it dropped"
grep "repair:" "$WORK/server.log"
expect_eq repaired "$(rcli mget k d keep after | tr '\n' ' ')" "new here 1  "
stop_server_clean
start_server
expect_eq after-repair "$(rcli mget k d keep after | tr '\n' ' ')" "new here 1  "
stop_server
start_server
expect_eq after-crash "$(rcli mget k d keep after | tr '\n' ' ')" "new here 1  "
stop_server_clean
echo PASS
