#!/bin/bash
# Answers that must be Redis's own (checked against redis-server 7.0), for
# the wrong answers and dropped connections clients met in Redis-only corners: long pipelines,
# many arguments, inline quotes, syntax errors that must not write, strict
# integers, COMMAND COUNT, INFO sections, arity, long keys, SELECT with
# redis-cli -n.
. "$(dirname "$0")/lib.sh" "$@"
need redis-cli timeout python3 stdbuf

start_server --size 64M

# Raw bytes on a fresh connection; what comes back until the server closes
# it or 2 s pass, CRs removed.
raw() {
	exec 3<>"/dev/tcp/127.0.0.1/$RESP_PORT" || fail "connect"
	printf '%b' "$1" >&3
	tmo 2 cat <&3 | tr -d '\r'
	exec 3<&-
}

# Pipelines longer than 1,024 value replies are answered in full.
rcli set pk "$(head -c 100 /dev/zero | tr '\0' v)" >/dev/null
for n in 1025 5000; do
	yes 'GET pk' | head -n $n >"$WORK/pipe"
	out=$(tmo 30 redis-cli -p "$RESP_PORT" --pipe <"$WORK/pipe" 2>&1)
	grep -q "errors: 0, replies: $n" <<<"$out" || fail "--pipe of $n GETs: $out"
done
yes 'GET pk' | head -n 3000 | sed 's/$/\r/' >"$WORK/inline"
exec 3<>"/dev/tcp/127.0.0.1/$RESP_PORT"
cat "$WORK/inline" >&3
got=$(tmo 10 head -c $((3000 * 108)) <&3 | grep -c '^\$100')
exec 3<&-
expect_eq raw-pipeline-3000 "$got" 3000

# More than 1,024 arguments: MSET of 20,000 arguments, MGET of 1,500 keys.
python3 - "$WORK/mset" <<'EOF'
import sys
with open(sys.argv[1], 'wb') as f:
    args = [b'MSET'] + [x for i in range(10000) for x in (b'k%d' % i, b'v%d' % i)]
    f.write(b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in args))
    args = [b'MGET'] + [b'k%d' % i for i in range(1500)]
    f.write(b'*%d\r\n' % len(args) + b''.join(b'$%d\r\n%s\r\n' % (len(a), a) for a in args))
EOF
exec 3<>"/dev/tcp/127.0.0.1/$RESP_PORT"
cat "$WORK/mset" >&3
IFS= read -r -t "$(ts 10)" line <&3
expect_eq mset-20000-args "$line" $'+OK\r'
IFS= read -r -t "$(ts 10)" line <&3
expect_eq mget-1500-keys "$line" $'*1500\r'
exec 3<&-
expect_eq mset-20000-last "$(rcli get k9999)" v9999

# Inline commands split like Redis's: quotes, escapes, unbalanced quotes.
expect_eq inline-quotes "$(raw 'SET "a b" "c d"\r\nGET "a b"\r\nSET k "x\\x41\\ny"\r\nGET k\r\nSET j '"'"'a"b'"'"'\r\nGET j\r\nQUIT\r\n' | tr '\n' '|')" \
	'+OK|$3|c d|+OK|$4|xA|y|+OK|$3|a"b|+OK|'
expect_eq inline-unbalanced "$(raw 'set """k""" v\r\nping\r\n')" "-ERR Protocol error: unbalanced quotes in request"
expect_eq inline-unbalanced-nothing-set "$(rcli exists '"k"' k '""')" 1

# A syntax error writes nothing.
expect_eq flushall-bogus "$(rcli flushall bogus)" "ERR syntax error"
expect_eq flushall-bogus-kept "$(rcli get pk | wc -c)" 101
expect_eq flushdb-bogus "$(rcli flushdb bogus)" "ERR syntax error"

# Integers are Redis's: no leading zeros, no "-0", no spaces.
for v in 01 -0 ' 1' '1 ' +1 ''; do
	rcli set n "$v" >/dev/null
	expect_eq "incr '$v'" "$(rcli incr n)" "ERR value is not an integer or out of range"
done
expect_eq incrby-01 "$(rcli incrby n 01)" "ERR value is not an integer or out of range"

# COMMAND COUNT is an integer; INFO answers the section asked for.
count=$(rcli command count)
[[ $count =~ ^[0-9]+$ && $count -gt 50 ]] || fail "COMMAND COUNT answered '$count'"
info=$(rcli info keyspace | tr -d '\r')
grep -q '^# Keyspace$' <<<"$info" || fail "INFO keyspace: $info"
grep -q '^# Server$' <<<"$info" && fail "INFO keyspace includes the server section"
for f in redis_version connected_clients used_memory total_commands_processed \
	total_connections_received blocked_clients; do
	rcli info | tr -d '\r' | grep -q "^$f:" || fail "INFO has no $f"
done
# redis-cli --stat never stops by itself: line-buffered, cut after 3 lines.
stat=$(tmo 5 stdbuf -oL redis-cli -p "$RESP_PORT" --stat -i 0.1 2>&1 | head -n 3)
grep -q -- '-9223372036854775808' <<<"$stat" && fail "redis-cli --stat printed garbage: $stat"
grep -qE '^[0-9]+ +[0-9.]+[KMG]? +[0-9]+ +[0-9]+ +[0-9]+ ' <<<"$(tail -n 1 <<<"$stat")" ||
	fail "redis-cli --stat: $stat"

# Arity: DBSIZE takes no argument.
expect_eq dbsize-arity "$(rcli dbsize x)" "ERR wrong number of arguments for 'dbsize' command"

# Long keys: the same answer from every command (Redis takes them all).
long=$(head -c 2000 /dev/zero | tr '\0' L)
expect_eq long-set "$(rcli set "$long" v)" OK
expect_eq long-get "$(rcli get "$long")" v
expect_eq long-exists "$(rcli exists "$long")" 1
expect_eq long-del "$(rcli del "$long")" 1
# Past pktstore-kv's key limit every command says so (KV_COMPAT_REDIS: the
# reference server, which has no such limit).
if [ -z "$KV_COMPAT_REDIS" ]; then
	longer=$(head -c 5000 /dev/zero | tr '\0' L)
	for cmd in set get exists del; do
		args=("$longer"); [ $cmd = set ] && args+=(v)
		expect_eq "too-long-key $cmd" "$(rcli $cmd "${args[@]}")" \
			"ERR key too long: pktstore-kv takes keys of at most 4096 bytes"
	done
fi

# redis-cli -n 1: the database it asked for, or an error it stops on.
out=$(rcli -n 1 set only-in-one 1 2>&1)
if [ "$out" = OK ]; then
	expect_eq db1-get "$(rcli -n 1 get only-in-one)" 1
	expect_eq db0-get "$(rcli -n 0 get only-in-one)" ""
else
	fail "redis-cli -n 1 set: $out"
fi
alive
stop_server_clean
echo PASS
