#!/bin/bash
# Corruption campaign: one inverted byte at a time, in every region of a
# stopped arena (both superblock copies, every flow entry in use, a spread
# of live descriptors and their bytes, released and empty slots, free
# data). The server must never crash, and must either refuse to start,
# naming the damage, or serve exactly the last acknowledged state: never
# an older value, never a deleted key back. `pktstore check` is run on
# every damaged copy; a damage the server had to refuse that check passes
# is listed (check is not part of pktstore-kv, so this only reports).
. "$(dirname "$0")/lib.sh" "$@"
need timeout python3
ARENA_PY="$(dirname "$0")/arena.py"
CHECK="$(dirname "$KV")/../../tools/pktstore"
[ -x "$CHECK" ] || CHECK=

# KV_CORRUPT_SIZE sets the arena size (default 8M).
# The arena: SET (1 B to 300 KiB), DEL and INCR for a while, the model
# settled by a check, then a clean stop (so the closing summary is there).
start_server --size "${KV_CORRUPT_SIZE:-8M}"
tmo 60 "$LOAD" campaign "$RESP_PORT" 0.4 "$WORK/model" 7 >"$WORK/load.out" 2>&1 ||
	fail "load: $(cat "$WORK/load.out")"
tmo 60 "$LOAD" campaign "$RESP_PORT" 0 "$WORK/model" 0 >"$WORK/load.out" 2>&1 ||
	fail "settling the model: $(cat "$WORK/load.out")"
stop_server_clean
cp "$WORK/arena" "$WORK/golden"
python3 "$ARENA_PY" targets "$WORK/golden" 16 >"$WORK/targets"
echo "$(wc -l <"$WORK/targets") offsets: $(awk '{print $1}' "$WORK/targets" | sort | uniq -c | tr -s ' ' | tr '\n' ',')"

trials=0 refused=0 served=0 check_flags=0
: >"$WORK/check-missed"
while read -r region off byte what; do
	trials=$((trials + 1))
	cp "$WORK/golden" "$WORK/arena"
	printf "$byte" | dd of="$WORK/arena" bs=1 seek="$off" conv=notrunc status=none
	flagged=-
	if [ -n "$CHECK" ]; then
		"$CHECK" check "$WORK/arena" >"$WORK/check.out" 2>&1
		flagged=$?
		[ $flagged -eq 1 ] && check_flags=$((check_flags + 1))
	fi
	: >"$WORK/server.log"
	"$KV" --arena "$WORK/arena" --resp 127.0.0.1:0 --http 127.0.0.1:0 >>"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	up=
	for _ in $(seq $((500 * TIME_SCALE))); do
		grep -q "RESP on" "$WORK/server.log" && { up=1; break; }
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.01
	done
	if [ -z "$up" ]; then
		wait "$SERVER_PID"
		rc=$?
		SERVER_PID=
		[ $rc -ge 128 ] && fail "$region $off ($what): the server died of signal $((rc - 128))"
		grep -q "Sanitizer" "$WORK/server.log" && fail "$region $off ($what): sanitizer report"
		[ $rc -ne 0 ] || fail "$region $off ($what): exited 0 without serving"
		grep -qE "damage:|cannot open arena" "$WORK/server.log" ||
			fail "$region $off ($what): refused without naming the damage"
		refused=$((refused + 1))
		[ "$flagged" = 0 ] && echo "$region $off ($what): $(grep -m1 -E 'damage:|cannot open' "$WORK/server.log")" >>"$WORK/check-missed"
		continue
	fi
	RESP_PORT=$(sed -n 's/.*RESP on .*:\([0-9]*\), HTTP.*/\1/p' "$WORK/server.log")
	cp "$WORK/model" "$WORK/model.try"
	tmo 60 "$LOAD" campaign "$RESP_PORT" 0 "$WORK/model.try" 0 >"$WORK/load.out" 2>&1 ||
		fail "$region $off ($what): the server started and serves a state that is not the last acknowledged one: $(cat "$WORK/load.out")"
	served=$((served + 1))
	stop_server
	grep -q "Sanitizer" "$WORK/server.log" && fail "$region $off ($what): sanitizer report"
done <"$WORK/targets"
echo "corruption: $trials single-byte damages: $refused refused naming the damage," \
	"$served served exactly the acknowledged state; pktstore check flagged $check_flags"
if [ -s "$WORK/check-missed" ]; then
	echo "refused by the server but passed by pktstore check ($(wc -l <"$WORK/check-missed")):"
	cat "$WORK/check-missed"
fi
echo PASS
