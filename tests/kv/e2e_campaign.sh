#!/bin/bash
# A bounded kill -9 campaign: an 8 MiB arena (cleaning passes run all the
# time) on tmpfs and on a regular file; SET of 1 B to 300 KiB, overwrites,
# DEL, INCR, MULTI/EXEC (SET and INCR: all or nothing), SET PX and PERSIST
# (expired keys gone, times kept) on 4 connections; the server is killed at
# a random moment,
# and every few rounds killed again right after the restart, while it
# recovers. After every restart each key must hold its last acknowledged
# state (or its one in-flight command's): values exact, deleted keys
# absent, counters exact. No request may take over 10 s (a wedge).
# Each medium gets at most 30 rounds and 30 s.
. "$(dirname "$0")/lib.sh" "$@"
need timeout

FILEDIR=$(mktemp -d "${KV_CAMPAIGN_FILE_DIR:-/var/tmp}/pktstore-kv-campaign.XXXXXX")
trap 'cleanup; rm -rf "$FILEDIR"' EXIT

kills=0 recovery_kills=0 rounds=0 checked=0 acked=0 refused=0 passes=0 txns=0 expired=0

# One round: the load runs until the server is killed.
round() { # ARENA STATE SEED
	start_server --arena "$1" --size 8M
	tmo 60 "$LOAD" campaign "$RESP_PORT" 20 "$2" "$3" >"$WORK/load.out" 2>&1 &
	local load=$! i
	# Kill only once the check of the previous round's writes is done.
	for ((i = 0; i < 200 * TIME_SCALE; i++)); do
		grep -q "keys checked" "$WORK/load.out" && break
		kill -0 "$load" 2>/dev/null || break
		sleep 0.05
	done
	sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
	local p
	p=$(rcli info | tr -d '\r' | sed -n 's/^cleaning_passes:\([0-9]*\)$/\1/p')
	passes=$((passes + ${p:-0}))
	stop_server
	kills=$((kills + 1))
	wait "$load"
	local rc=$?
	cat "$WORK/load.out" >>"$WORK/campaign.log"; [ -n "$KV_CAMPAIGN_VERBOSE" ] && cat "$WORK/load.out"
	[ $rc -eq 3 ] && fail "round $rounds: a request got no reply within 10 s: $(cat "$WORK/load.out")"
	[ $rc -eq 0 ] || fail "round $rounds: acknowledged writes wrong after a restart: $(cat "$WORK/load.out")"
	checked=$((checked + $(sed -n 's/^campaign: \([0-9]*\) keys checked.*/\1/p' "$WORK/load.out")))
	acked=$((acked + $(sed -n 's/^campaign: \([0-9]*\) writes acknowledged.*/\1/p' "$WORK/load.out")))
	refused=$((refused + $(sed -n 's/.*acknowledged, \([0-9]*\) refused.*/\1/p' "$WORK/load.out")))
	txns=$((txns + $(sed -n 's/.* \([0-9]*\) transactions.*/\1/p' "$WORK/load.out")))
	expired=$((expired + $(sed -n 's/.* \([0-9]*\) keys seen expired.*/\1/p' "$WORK/load.out")))
}

# Start and kill -9 within a few milliseconds: usually while it recovers.
recovery_kill() { # ARENA
	: >"$WORK/server.log"
	"$KV" --arena "$1" --size 8M --resp 127.0.0.1:0 --http 127.0.0.1:0 >>"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	sleep "0.00$((RANDOM % 5))"
	grep -q "RESP on" "$WORK/server.log" || recovery_kills=$((recovery_kills + 1))
	stop_server
	kills=$((kills + 1))
}

campaign() { # DIR LABEL
	local arena="$1/campaign.arena" state="$WORK/state.${2//[^a-z0-9]/_}" end=$((SECONDS + 30)) n=0
	rm -f "$arena" "$state"
	while [ $n -lt 30 ] && [ $SECONDS -lt $end ]; do
		n=$((n + 1))
		rounds=$((rounds + 1))
		round "$arena" "$state" "$rounds"
		[ $((n % 3)) -eq 0 ] && recovery_kill "$arena"
	done
	# The last check, then a clean stop and a start over its summary.
	start_server --arena "$arena" --size 8M
	tmo 60 "$LOAD" campaign "$RESP_PORT" 0 "$state" 0 >"$WORK/load.out" 2>&1 ||
		fail "$2: final check: $(cat "$WORK/load.out")"
	checked=$((checked + $(sed -n 's/^campaign: \([0-9]*\) keys checked.*/\1/p' "$WORK/load.out")))
	stop_server_clean
	start_server --arena "$arena" --size 8M
	tmo 60 "$LOAD" campaign "$RESP_PORT" 0 "$state" 0 >"$WORK/load.out" 2>&1 ||
		fail "$2: check after a clean stop: $(cat "$WORK/load.out")"
	checked=$((checked + $(sed -n 's/^campaign: \([0-9]*\) keys checked.*/\1/p' "$WORK/load.out")))
	echo "$2: $n rounds"
	stop_server_clean
}

campaign "$WORK" "$(stat -f -c %T "$WORK")"
campaign "$FILEDIR" "$(stat -f -c %T "$FILEDIR") file"
echo "campaign: $rounds rounds, $kills kills ($recovery_kills before the server listened)," \
	"$acked acknowledged writes, $refused refused with OOM, $txns transactions," \
	"$expired keys seen expired, $checked key checks after restarts," \
	"at least $passes cleaning passes"
[ $acked -gt 1000 ] || fail "only $acked writes were acknowledged"
[ $txns -gt 50 ] || fail "only $txns transactions were acknowledged"
[ $expired -gt 10 ] || fail "only $expired keys were seen expired"
[ $passes -gt $rounds ] || fail "only $passes cleaning passes in $rounds rounds"
echo PASS
