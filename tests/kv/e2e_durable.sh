#!/bin/bash
# What the new semantics promise across a kill -9 (examples/kv/README.md,
# "Durability"):
#   - MULTI/EXEC is all or nothing: a transaction whose EXEC is incomplete
#     in the stream, or that WATCH aborted, never applies; one that was
#     answered applies whole, also when a cleaning pass ran while it was
#     being queued;
#   - expiry is durable as absolute time: expired keys are gone after a
#     restart, the others keep their time, PERSIST and shortened times hold,
#     and what a command decided from expiry (SETNX on an expired key) is
#     what replay decides;
#   - the database a connection selected holds for its later commands even
#     when the record holding the SELECT was released;
#   - AUTH failures and unauthenticated commands never apply, live or in
#     replay, whatever password the next start has; the password is never
#     logged.
. "$(dirname "$0")/lib.sh" "$@"
need redis-cli timeout

# A raw connection on fd 3: send bytes, read N reply lines.
open3() { exec 3<>"/dev/tcp/127.0.0.1/$RESP_PORT" || fail "connect"; }
send3() { printf '%b' "$1" >&3; }
read3() { # N: the next N lines, CRs removed, joined by '|'
	local out= line
	for ((i = 0; i < $1; i++)); do
		IFS= read -r -t "$(ts 5)" line <&3 || { echo "${out}<timeout>"; return; }
		out+="${line%$'\r'}|"
	done
	echo "$out"
}
close3() { exec 3<&-; }
restart() { stop_server; start_server "$@"; }

# --- transactions ---
start_server --size 8M
rcli set tx:pre old >/dev/null
open3
# Answered: every queued command applies, INCR included.
send3 'MULTI\r\nSET tx:a 1\r\nINCR tx:n\r\nSET tx:pre new\r\nEXEC\r\n'
expect_eq tx-answered "$(read3 8)" '+OK|+QUEUED|+QUEUED|+QUEUED|*3|+OK|:1|+OK|'
# Queued, EXEC cut short: nothing of it may apply.
send3 'MULTI\r\nSET tx:b 1\r\nINCR tx:n\r\nDEL tx:pre\r\n*1\r\n$4\r\nEXE'
expect_eq tx-queued "$(read3 4)" '+OK|+QUEUED|+QUEUED|+QUEUED|'
close3
# WATCH abort: answered nil, applies nothing.
open3
send3 'WATCH tx:w\r\n'
expect_eq watch "$(read3 1)" '+OK|'
rcli set tx:w theirs >/dev/null
send3 'MULTI\r\nSET tx:w mine\r\nSET tx:c 1\r\nEXEC\r\n'
expect_eq watch-abort "$(read3 4)" '+OK|+QUEUED|+QUEUED|*-1|'
# A transaction queued across a cleaning pass: MULTI and a value in one
# packet, then 3x the arena in overwrites on another connection, then EXEC.
send3 'MULTI\r\nSET tx:long first\r\n'
expect_eq tx-long-queued "$(read3 2)" '+OK|+QUEUED|'
tmo 60 "$LOAD" overwrite "$RESP_PORT" 8 65536 25000000 60 >/dev/null || fail "overwrite load"
passes=$(rcli info persistence | tr -d '\r' | sed -n 's/^cleaning_passes://p')
[ "${passes:-0}" -gt 0 ] || fail "no cleaning pass ran while the transaction was queued"
send3 'INCR tx:long:n\r\nEXEC\r\n'
expect_eq tx-long-exec "$(read3 4)" '+QUEUED|*2|+OK|:1|'
# The same, aborted by WATCH: a plain SET queued after the pass must not
# apply either (replay restarts this connection at its MULTI, so it knows
# the SET was queued, not run).
send3 'WATCH tx:lw\r\nMULTI\r\nSET tx:abort1 x\r\n'
expect_eq tx-abort-queued "$(read3 3)" '+OK|+OK|+QUEUED|'
tmo 60 "$LOAD" overwrite "$RESP_PORT" 8 65536 25000000 60 >/dev/null || fail "overwrite load"
send3 'SET tx:abort2 y\r\n'
expect_eq tx-abort-queued2 "$(read3 1)" '+QUEUED|'
rcli set tx:lw theirs >/dev/null
send3 'EXEC\r\n'
expect_eq tx-abort-exec "$(read3 1)" '*-1|'
close3
restart
expect_eq tx-answered-after "$(rcli mget tx:a tx:n tx:pre | tr '\n' ' ')" "1 1 new "
expect_eq tx-incomplete-after "$(rcli exists tx:b)" 0
expect_eq tx-watch-after "$(rcli mget tx:w tx:c | tr '\n' ' ')" "theirs  "
expect_eq tx-long-after "$(rcli mget tx:long tx:long:n | tr '\n' ' ')" "first 1 "
expect_eq tx-abort-after "$(rcli exists tx:abort1 tx:abort2)" 0
stop_server_clean

# --- expiry ---
rm -f "$WORK/arena"
start_server --size 16M
rcli set ex:gone v PX 600 >/dev/null
t_stays=$(date +%s%3N)
rcli set ex:stays v EX 100 >/dev/null
# One client for both, so that the PERSIST comes well within the 600 ms
# however long a redis-cli takes to start.
out=$(printf 'set ex:persisted v PX 600\npersist ex:persisted\n' | rcli)
expect_eq persist "$(printf '%s' "$out" | tr -d '\r' | tail -n 1)" 1
rcli set ex:shortened v EX 100 >/dev/null
expect_eq expire-shorter "$(rcli pexpire ex:shortened 600)" 1
rcli set ex:at v PXAT $(($(date +%s%3N) + 600)) >/dev/null
# Decided from expiry: ex:renew expired before SETNX came, ex:live had not.
rcli set ex:renew old PX 300 >/dev/null
rcli set ex:live old PX 60000 >/dev/null
sleep "$(ts 0.5)"
expect_eq setnx-expired "$(rcli setnx ex:renew new)" 1
expect_eq setnx-live "$(rcli setnx ex:live new)" 0
sleep "$(ts 0.6)"
stop_server
start_server
for k in ex:gone ex:shortened ex:at; do
	expect_eq "$k after restart" "$(rcli exists $k)" 0
done
expect_eq ex:persisted "$(rcli ttl ex:persisted)" -1
ttl=$(rcli ttl ex:stays)
# The deadline is absolute: what is left is 100 s less the time since the
# SET (a slow machine's scaled sleeps and restarts included), give or take
# TTL's rounding.
since=$((($(date +%s%3N) - t_stays + 999) / 1000))
[ "$ttl" -ge $((100 - since - 1)) ] && [ "$ttl" -le 100 ] ||
	fail "ex:stays: TTL $ttl after restart, $since s after SET ... EX 100"
expect_eq setnx-expired-replayed "$(rcli get ex:renew)" new
expect_eq setnx-live-replayed "$(rcli get ex:live)" old
expect_eq dbsize-without-expired "$(rcli dbsize)" 4
# Expired while the server was down: gone at once, counted.
rcli set ex:down v PX 300 >/dev/null
stop_server_clean
sleep "$(ts 0.5)"
start_server
grep -q "keys had expired while the server was down" "$WORK/server.log" ||
	fail "no key expired while down: $(grep -i expired "$WORK/server.log")"
expect_eq ex:down "$(rcli exists ex:down)" 0
stop_server_clean

# --- databases ---
start_server
open3
# SELECT in a packet of its own: its record is unreferenced and goes, so
# replay can only learn the database from what the server recorded.
send3 'SELECT 2\r\n'
expect_eq select "$(read3 1)" '+OK|'
send3 'SET in2 two\r\n'
expect_eq set-in-2 "$(read3 1)" '+OK|'
# A later SELECT does not retire the earlier one while the commands it
# governed are still held: in1 stays in database 1.
send3 'SELECT 1\r\n'
expect_eq select-1 "$(read3 1)" '+OK|'
send3 'SET in1 one\r\n'
expect_eq set-in-1 "$(read3 1)" '+OK|'
send3 'SELECT 3\r\n'
expect_eq select-3 "$(read3 1)" '+OK|'
send3 'SET in3 three\r\n'
expect_eq set-in-3 "$(read3 1)" '+OK|'
close3
rcli -n 5 set in5 five >/dev/null
restart
expect_eq db1 "$(rcli -n 1 get in1)" one
expect_eq db3 "$(rcli -n 3 get in3)" three
expect_eq db2 "$(rcli -n 2 get in2)" two
expect_eq db5 "$(rcli -n 5 get in5)" five
expect_eq db0 "$(rcli exists in1 in2 in3 in5)" 0
stop_server_clean

# --- AUTH ---
pass="s3cr3t-$RANDOM$RANDOM"
printf '%s\n' "$pass" >"$WORK/pass"
rm -f "$WORK/arena"
start_server --requirepass-file "$WORK/pass"
open3
send3 "SET au:before 1\r\nAUTH wrong\r\nSET au:wrong 1\r\nAUTH $pass\r\nSET au:after 1\r\n"
expect_eq auth-live "$(read3 5)" \
	'-NOAUTH Authentication required.|-WRONGPASS invalid username-password pair or user is disabled.|-NOAUTH Authentication required.|+OK|+OK|'
close3
open3
send3 'MULTI\r\nSET au:never 1\r\nEXEC\r\n'
expect_eq never-authed "$(read3 3)" \
	'-NOAUTH Authentication required.|-NOAUTH Authentication required.|-NOAUTH Authentication required.|'
close3
expect_eq auth-cli "$(rcli -a "$pass" --no-auth-warning get au:after)" 1
for restart_opts in "--requirepass-file $WORK/pass" "--requirepass other" ""; do
	# shellcheck disable=SC2086
	restart $restart_opts
	a=()
	[ -n "$restart_opts" ] && a=(-a "$([ "$restart_opts" = "--requirepass other" ] && echo other || echo "$pass")" --no-auth-warning)
	expect_eq "auth replay ($restart_opts)" \
		"$(rcli "${a[@]}" exists au:before au:wrong au:never) $(rcli "${a[@]}" get au:after)" "0 1"
	grep -q -- "$pass" "$WORK/server.log" && fail "the password is in the server log"
done
stop_server_clean
echo PASS
