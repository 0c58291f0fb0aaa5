#!/bin/bash
# The command line: --version and --help like the other programs, and a
# bad listener address refused before any arena file is created.
. "$(dirname "$0")/lib.sh" "$@"

version=$(sed -nE 's/^#define PKTSTORE_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)/\2/p' \
	"$(dirname "$0")/../../include/pktstore.h" | paste -sd.)
expect_eq version "$("$KV" --version)" "pktstore-kv (libpktstore) $version"
for h in --help -h; do
	"$KV" "$h" | grep -q -- '--arena PATH' || fail "$h does not print the usage"
done

for opt in --resp --http; do
	out=$("$KV" --arena "$WORK/typo.arena" "$opt" nohost:7379 2>&1)
	rc=$?
	expect_eq "$opt nohost exit" "$rc" 2
	grep -q -e "$opt 'nohost:7379': the host is not" <<<"$out" || fail "$opt nohost said: $out"
	[ ! -e "$WORK/typo.arena" ] || fail "$opt nohost created the arena"
	out=$("$KV" --arena "$WORK/typo.arena" "$opt" 127.0.0.1:http 2>&1)
	grep -q "the port is not a number" <<<"$out" || fail "$opt bad port said: $out"
	[ ! -e "$WORK/typo.arena" ] || fail "$opt bad port created the arena"
done

# Sizes are the shared parser's: decimal digits and K/M/G, no octal, no hex.
out=$("$KV" --arena "$WORK/typo.arena" --size 0x10M 2>&1)
grep -q "is not a size" <<<"$out" || fail "--size 0x10M said: $out"
out=$("$KV" --arena "$WORK/typo.arena" --max-value 2G 2>&1)
grep -q "too large: at most 1073741824 (1G)" <<<"$out" || fail "--max-value 2G said: $out"
# --full-timeout is seconds: a size suffix would silently mean 1024 of them.
for t in 1K 10x -1 ''; do
	out=$(tmo 10 "$KV" --arena "$WORK/typo.arena" --resp 127.0.0.1:0 --http 127.0.0.1:0 \
		--full-timeout "$t" 2>&1)
	expect_eq "--full-timeout '$t' exit" "$?" 2
	grep -q "is not a number of seconds" <<<"$out" || fail "--full-timeout '$t' said: $out"
done
[ ! -e "$WORK/typo.arena" ] || fail "a bad size created the arena"
# With a password the HTTP API, which has no AUTH, listens only when asked.
printf 'pw\n' >"$WORK/pass"
"$KV" --arena "$WORK/auth.arena" --size 4M --requirepass-file "$WORK/pass" --resp 127.0.0.1:0 \
	>"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq $((100 * TIME_SCALE))); do
	grep -q "RESP on" "$WORK/server.log" && break
	sleep 0.1
done
grep -q "HTTP off (it has no AUTH: --http turns it on)" "$WORK/server.log" ||
	fail "HTTP listens without --http under a password: $(grep 'RESP on' "$WORK/server.log")"
stop_server_clean
out=$("$KV" --arena "$WORK/auth.arena" --requirepass-file "$WORK/nosuchfile" 2>&1)
grep -q "cannot read a non-empty first line" <<<"$out" || fail "--requirepass-file missing: $out"
echo PASS
