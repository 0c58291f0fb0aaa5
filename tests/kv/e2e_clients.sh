#!/bin/bash
# Unmodified clients: redis-py (Debian's python3-redis) with its default
# MULTI/EXEC pipelines, set(ex=, nx=), incr (INCRBY), scan_iter and lock();
# redis-cli --pipe of 100,000 GETs, --scan, --bigkeys and --stat;
# redis-benchmark with pipelines of 1,100.
. "$(dirname "$0")/lib.sh" "$@"
need redis-cli redis-benchmark timeout stdbuf

# A Python that has redis-py: the one on PATH, else Debian's.
PY=
for p in python3 /usr/bin/python3; do
	if command -v "$p" >/dev/null && "$p" -c 'import redis' 2>/dev/null; then
		PY=$p
		break
	fi
done
[ -n "$PY" ] || skip "redis-py is not installed (Debian: python3-redis)"

start_server --size 64M
tmo 120 "$PY" "$(dirname "$0")/redispy_check.py" "$RESP_PORT" || fail "redis-py checks"
alive

# --pipe: every reply comes back, none is an error.
rcli set pk "$(head -c 100 /dev/zero | tr '\0' v)" >/dev/null
yes 'GET pk' | head -n 100000 >"$WORK/gets"
out=$(tmo 60 redis-cli -p "$RESP_PORT" --pipe <"$WORK/gets" 2>&1)
grep -q "errors: 0, replies: 100000" <<<"$out" || fail "--pipe of 100000 GETs: $out"

# --scan: every key, and only those the pattern matches.
rcli flushall >/dev/null
printf 'SET user:%d v%d\n' $(seq 1 3000 | awk '{print $1, $1}') | rcli --pipe >/dev/null
printf 'SET other:%d x\n' $(seq 1 500) | rcli --pipe >/dev/null
expect_eq scan-all "$(rcli --scan | sort -u | wc -l)" 3500
expect_eq scan-pattern "$(rcli --scan --pattern 'user:1*' | sort -u | wc -l)" \
	"$(seq 1 3000 | grep -c '^1')"

# --bigkeys: finds the biggest string and counts them all.
rcli set big "$(head -c 5000 /dev/zero | tr '\0' b)" >/dev/null
out=$(tmo 60 redis-cli -p "$RESP_PORT" --bigkeys 2>&1)
grep -q "Biggest string found '\"big\"' has 5000 bytes" <<<"$out" || fail "--bigkeys: $out"
grep -q "^3501 strings with" <<<"$out" || fail "--bigkeys count: $out"

# --stat: keys, memory, clients, requests, connections.
stat=$(tmo 5 stdbuf -oL redis-cli -p "$RESP_PORT" --stat -i 0.1 2>&1 | head -n 3 | tail -n 1)
read -r keys mem clients blocked requests _ <<<"$stat"
expect_eq stat-keys "$keys" 3501
[[ $mem =~ ^[0-9.]+[BKMG]$ && $clients =~ ^[0-9]+$ && $blocked = 0 && $requests =~ ^[0-9]+$ ]] ||
	fail "redis-cli --stat: '$stat'"

# Pipelines of 1,100 commands: every reply, no dropped connection.
out=$(tmo 60 redis-benchmark -p "$RESP_PORT" -t get -n 20000 -c 4 -P 1100 -q 2>&1) ||
	fail "redis-benchmark -P 1100: $out"
grep -q "^GET: .*requests per second" <<<"$(tr '\r' '\n' <<<"$out")" ||
	fail "redis-benchmark -P 1100 did not finish: $out"
alive
stop_server_clean
echo PASS
