#!/usr/bin/env bash
# The pktstore command-line tool against a real arena written by
# pktstore-demo: info, stat, dump, check on a clean arena, then check after
# damaging a descriptor and a superblock copy. Then what a user meets when
# something is wrong: each error names the problem and what is allowed,
# --json stays JSON whatever the path, a failed create leaves nothing, and
# every program answers --help and --version.
#   cli_test.sh PKTSTORE PKTSTORE-DEMO [OTHER-PROGRAM...]
set -euo pipefail
[ -z "${CLI_TEST_DEBUG:-}" ] || set -x
cli=$1 demo=$2
shift 2
# The arena directory of every test: PKTSTORE_TEST_PM_DIR (tests/util.c).
dir=$(mktemp -d "${PKTSTORE_TEST_PM_DIR:-/dev/shm}/pktstore-cli.XXXXXX")
holder=
trap '[ -z "$holder" ] || kill "$holder" 2>/dev/null; rm -rf "$dir"' EXIT
a=$dir/a.arena
fail() { echo "FAIL: $*"; exit 1; }
# run CMD...: stdout in $out, stderr in $err, exit status in $rc.
run() {
	set +e
	"$@" >"$dir/out" 2>"$dir/err"
	rc=$?
	set -e
	out=$(cat "$dir/out") err=$(cat "$dir/err")
}
# expect RC 'SUBSTRING' CMD...: exit status RC and SUBSTRING on stderr.
expect() {
	local want=$1 text=$2
	shift 2
	run "$@"
	[ "$rc" -eq "$want" ] || fail "'$*' exited $rc, not $want: $err"
	grep -qF -- "$text" <<<"$err" || fail "'$*' does not say '$text': $err"
}
json_ok() { python3 -m json.tool "$1" >/dev/null || fail "not JSON: $(head -c 300 "$1")"; }

# The demo kills its server at a moment of its own: some runs leave one
# record, or none in one of the two flows. What follows needs two records
# and a flow whose first record holds 116 bytes or more; a run without them
# is run again (up to five), the flow is found, not assumed.
flow=
for attempt in 1 2 3 4 5; do
	rm -f "$a"
	"$demo" --arena "$a" --size $((16 << 20)) --flows 2 --ms 300 >/dev/null
	flow=$("$cli" dump "$a" --json | python3 -c '
import json, sys
recs = json.load(sys.stdin)
first = [r["flow"] for r in recs if r["seq"] == 0 and r["len"] >= 116]
print(first[0] if len(recs) >= 2 and first else "")')
	[ -z "$flow" ] || break
	echo "demo run $attempt left $("$cli" stat "$a" | awk '$1 == "records" { print $2 }') records and no flow to use; again"
done
[ -n "$flow" ] || fail "five demo runs left no arena with two records"
# The demo verified the arena after the kill and closed it cleanly.
grep -q "^dirty_shutdown *no" <<<"$("$cli" info "$a")" || fail "info"
grep -q '"dirty_shutdown": false' <<<"$("$cli" info "$a" --json)" || fail "json info"
records=$("$cli" stat "$a" | awk '$1 == "records" { print $2 }')
[ "$records" -gt 0 ] || fail "no records in the demo arena"
[ "$("$cli" dump "$a" | wc -l)" -eq "$records" ] || fail "dump does not list every record"
out=$("$cli" dump "$a" --flow "$flow" --seq 0:1)
grep -q "seq 0 " <<<"$out" || fail "dump by seq"
out=$("$cli" dump "$a" --id 1:2 --data)
grep -q "^  00000000 " <<<"$out" || fail "dump --data"
grep -q "damaged: OK" <<<"$("$cli" check "$a")" || fail "clean arena reported damaged"
run "$cli" info "$a"
[ -z "$err" ] || fail "info warns about a clean arena: $err"

# ---- --json on every command is JSON, whatever the path holds.
for cmd in info stat check dump; do
	"$cli" $cmd "$a" --json >"$dir/$cmd.json" || fail "$cmd --json exit $?"
	json_ok "$dir/$cmd.json"
done
"$cli" dump "$a" --id 1:3 --data --json >"$dir/dumpdata.json"
json_ok "$dir/dumpdata.json"
odd=$dir/$'q"x\\y\ttab\x01\xff.arena'
"$cli" create "$odd" --size 8M --json >"$dir/create.json" || fail "create of an odd name"
json_ok "$dir/create.json"
"$cli" info "$odd" --json >"$dir/odd.json"
json_ok "$dir/odd.json"
python3 - "$dir/odd.json" "$odd" <<'PY' || fail "path in JSON is not the file's name"
import json, sys
got = json.load(open(sys.argv[1]))["path"]
want = sys.argv[2].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
sys.exit(got != want)
PY

# ---- dump --data shows the bytes asked for, not whole records.
out=$("$cli" dump "$a" --flow "$flow" --seq 0:1 --data)
[ "$(grep -c '^  ' <<<"$out")" -eq 1 ] || fail "--seq 0:1 --data printed $(grep -c '^  ' <<<"$out") lines"
grep -qE '^  00000000  [0-9a-f]{2}$' <<<"$out" || fail "--seq 0:1 --data is not one byte: $out"
first=$("$cli" dump "$a" --flow "$flow" --seq 0:1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$cli" dump "$a" --id "$first:$((first + 1))" --data --json >"$dir/whole.json"
"$cli" dump "$a" --flow "$flow" --seq 100:116 --data --json >"$dir/part.json"
python3 - "$dir/whole.json" "$dir/part.json" <<'PY' || fail "--seq 100:116 --data is not bytes 100..115"
import json, sys
whole, part = (json.load(open(p)) for p in sys.argv[1:])
assert whole[0]["seq"] == 0 and whole[0]["len"] >= 116, whole[0]["len"]
assert len(part) == 1 and part[0]["data_offset"] == 100, part
assert part[0]["data_hex"] == whole[0]["data_hex"][200:232], part
PY

# ---- Sizes: decimal, K/M/G, no octal, no junk, no overflow.
"$cli" create "$dir/s1.arena" --size 010M >/dev/null
[ "$("$cli" stat "$dir/s1.arena" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["arena_size"])')" \
	-eq $((10 << 20)) ] || fail "--size 010M is not ten MiB"
"$cli" create "$dir/s2.arena" --size 8MiB --segment 64K >/dev/null
grep -q "^segment_size *65536" <<<"$("$cli" info "$dir/s2.arena")" || fail "--segment 64K"
for junk in "" 12X -1 +5 " 5" 1.5M 0x10 8MB5 K; do
	expect 2 "--size '$junk' is not a size: use decimal digits with an optional K, M or G suffix" \
		"$cli" create "$dir/j.arena" --size "$junk"
done
expect 2 "--size '99999999999999999999' is too large" "$cli" create "$dir/j.arena" --size 99999999999999999999
expect 2 "is too large: at most 9223372036854775807" "$cli" create "$dir/j.arena" --size 17179869184G
expect 2 "--flows '17M' is too large: at most 16777216 (16M)" "$cli" create "$dir/j.arena" --flows 17M
expect 2 "--segment '2G' is too large: at most 1073741824 (1G)" "$cli" create "$dir/j.arena" --segment 2G
expect 2 "--id '7x' is not a size" "$cli" dump "$a" --id 7x:9
[ ! -e "$dir/j.arena" ] || fail "a refused create left a file"

# ---- create: what is too small, what exists, what does not fit.
expect 2 "size 1048576 (1.0 MiB) is too small: this layout (1.0 MiB segments, 1024 flows) needs at least" \
	"$cli" create "$dir/small.arena" --size 1M
min=$(grep -oE 'needs at least [0-9]+' <<<"$err" | grep -oE '[0-9]+$')
[ ! -e "$dir/small.arena" ] || fail "a too small create left a file"
"$cli" create "$dir/small.arena" --size "$min" >/dev/null || fail "the minimum named ($min) is refused"
expect 2 "size $((min - 1)) " "$cli" create "$dir/small2.arena" --size $((min - 1))
expect 2 "segment size 5000 is not allowed: it must be a multiple of 4096 and at most 1G" \
	"$cli" create "$dir/j.arena" --segment 5000
expect 2 "bytes per record 8 is not allowed: at least 16" "$cli" create "$dir/j.arena" --bytes-per-record 8
expect 2 "already exists; an arena is never overwritten" "$cli" create "$a"
# More than the file system holds: the message says so, not "arena full",
# the file is gone and a retry is not blocked by it. 8 TiB: more than any
# test machine's tmpfs or PM holds, yet a size ext4 allows (its limit is 16
# TiB; past it the answer is "refuses a file of ... (File too large)").
expect 2 "no room for 8.0 TiB: the file system has" "$cli" create "$dir/huge.arena" --size 8192G
[ ! -e "$dir/huge.arena" ] || fail "a failed create left $(stat -c %s "$dir/huge.arena") bytes behind"
"$cli" create "$dir/huge.arena" --size 8M >/dev/null || fail "retry after a failed create"
# An interrupted create removes its file too. 1 GiB, or half of what the
# file system has free if that is less (a small DAX namespace): the create
# must be able to succeed, or its failure would be taken for the interrupt.
avail=$(df -B1 --output=avail "$dir" | tail -n 1)
mib=$((avail / 2 >> 20 < 1024 ? avail / 2 >> 20 : 1024))
"$cli" create "$dir/int.arena" --size "${mib}M" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 500); do [ -e "$dir/int.arena" ] && break; sleep 0.01; done
# It may be over already (fallocate is quick on ext4): then there is no
# one to interrupt, and the exit status says how it ended.
kill -INT $pid 2>/dev/null || true
set +e; wait $pid; rc=$?; set -e
if [ $rc -eq 0 ]; then
	echo "note: the $mib MiB create finished before the interrupt"
else
	[ $rc -eq 130 ] || fail "interrupted create exit $rc"
	[ ! -e "$dir/int.arena" ] || fail "an interrupted create left its file"
fi
"$cli" create "$dir/p.arena" --size 16M --progress >/dev/null 2>"$dir/progress"
grep -q "create $dir/p.arena: allocating" "$dir/progress" || fail "no create progress: $(cat "$dir/progress")"
grep -q "create $dir/p.arena: done" "$dir/progress" || fail "create progress does not end"
"$cli" check "$a" --progress >/dev/null 2>"$dir/progress"
grep -q "check $a: checking records" "$dir/progress" || fail "no check progress: $(cat "$dir/progress")"

# ---- Opening: wrong file, wrong environment, held by a server.
expect 2 "$dir/missing.arena: no such file" "$cli" info "$dir/missing.arena"
expect 2 "$dir/nodir/x.arena: its directory does not exist" "$cli" create "$dir/nodir/x.arena"
expect 2 "$dir: is a directory; an arena is a regular file" "$cli" info "$dir"
: >"$dir/empty.arena"
expect 1 "is empty (0 bytes), not an arena" "$cli" info "$dir/empty.arena"
head -c 1M /dev/urandom >"$dir/junk.arena"
expect 1 "Arena is damaged or not a pktstore arena" "$cli" info "$dir/junk.arena"
expect 2 "environment variable PKTSTORE_RECV_PATH='uring' is not a receive path; allowed: auto, uring-inc, uring-fixed, recv, zcrx" \
	env PKTSTORE_RECV_PATH=uring "$cli" info "$a"
expect 2 "PKTSTORE_RECV_PATH='uring'" env PKTSTORE_RECV_PATH=uring "$cli" create "$dir/e.arena"
[ ! -e "$dir/e.arena" ] || fail "create with a bad PKTSTORE_RECV_PATH left a file"
expect 2 "set PKTSTORE_ZCRX=IFNAME:QUEUE" env PKTSTORE_RECV_PATH=zcrx PKTSTORE_ZCRX= "$cli" info "$a"
# Every value the message allows is one the library takes.
for p in auto uring-inc uring-fixed recv zcrx; do
	PKTSTORE_RECV_PATH=$p PKTSTORE_ZCRX=lo:0 "$cli" info "$a" >/dev/null ||
		fail "PKTSTORE_RECV_PATH=$p is listed as allowed but refused"
done
# A writer's lock as a server holds it: exclusive flock(2), one process.
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+b")
fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(60)' "$a" >/dev/null 2>&1 &
holder=$!
for _ in $(seq 300); do grep -q " $holder " /proc/locks && break; sleep 0.01; done
expect 2 "$a: held by another process (pid $holder, python3); stop it or use a read-only copy" "$cli" info "$a"
expect 2 "held by another process (pid $holder" "$cli" check "$a"
kill "$holder"
wait "$holder" 2>/dev/null || true
holder=

# ---- The command line itself.
expect 2 "unknown command 'bogus'; the commands are create, info, stat, check, dump, help" "$cli" bogus "$a"
expect 2 "help: 'bogus' is not a command" "$cli" help bogus
expect 2 "info: does not take '--size'; it takes --json" "$cli" info "$a" --size 1M
expect 2 "dump: unknown option '--bogus'; it takes --json, --data, --flow, --seq, --id, --time" "$cli" dump "$a" --bogus
expect 2 "info needs the arena PATH" "$cli" info
expect 2 "info takes one PATH, not 2" "$cli" info "$a" "$a"
expect 2 "--seq needs a value" "$cli" dump "$a" --seq
expect 2 "--seq needs --flow F" "$cli" dump "$a" --seq 0:10
expect 2 "--seq '5' is not LO:HI" "$cli" dump "$a" --flow "$flow" --seq 5
expect 2 "--id '5:3' is empty: LO must be below HI" "$cli" dump "$a" --id 5:3
expect 2 "usage:" "$cli"

# ---- Help and version: exit 0, on stdout.
version=$(sed -nE 's/^#define PKTSTORE_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)/\2/p' \
	"$(dirname "$0")/../include/pktstore.h" | paste -sd.)
for args in --help -h help --version "help create" "help info" "help stat" "help check" \
	"help dump" "help help" "create --help" "info -h" "dump --help"; do
	run "$cli" $args
	[ "$rc" -eq 0 ] && [ -n "$out" ] && [ -z "$err" ] || fail "pktstore $args: exit $rc, stderr '$err'"
done
[ "$("$cli" --version)" = "pktstore (libpktstore) $version" ] || fail "version: $("$cli" --version)"
grep -q "^usage: pktstore create PATH" <<<"$("$cli" help create)" || fail "help create"
for prog in "$demo" "$@"; do
	for args in --help -h --version; do
		run "$prog" $args
		[ "$rc" -eq 0 ] && [ -n "$out" ] || fail "$(basename "$prog") $args: exit $rc, '$err'"
	done
	grep -q "(libpktstore) $version" <<<"$("$prog" --version)" || fail "$(basename "$prog") --version"
done

# ---- Damage: check names it, info warns instead of showing fewer records.
# Descriptor log of a default layout (1024 flows): 8 KiB of superblocks and
# 128 KiB of flow table before it. Flip a byte of descriptor slot 1.
printf '\x5a' | dd of="$a" bs=1 seek=$((8192 + 131072 + 64 + 16)) conv=notrunc status=none
run "$cli" check "$a"
[ $rc -eq 1 ] || fail "check exit $rc after damage"
grep -q "descriptor log: 1 " <<<"$out" || fail "damage not named: $out"
run "$cli" info "$a"
[ $rc -eq 0 ] || fail "info exit $rc on a damaged arena"
grep -q "warning: $a: 1 descriptors were rejected; their records are not counted" <<<"$err" ||
	fail "info does not warn of a rejected descriptor: '$err'"
grep -q "run 'pktstore check $a'" <<<"$err" || fail "info does not point to check"
# Flip a byte inside the bytes of the last record, wherever they are (a
# segment may hold stale copies of received bytes too): its CRC32C fails.
"$cli" dump "$a" --data --json >"$dir/all.json"
python3 - "$a" "$dir/all.json" <<'PY'
import json, sys
path, recs = sys.argv[1], json.load(open(sys.argv[2]))
needle = bytes.fromhex(recs[-1]["data_hex"])
with open(path, "r+b") as f:
    img = bytearray(f.read())
    off = img.find(needle)
    assert off > 0, "record bytes not found"
    while off >= 0:
        img[off + 8] ^= 0xff
        off = img.find(needle, off + 1)
    f.seek(0)
    f.write(img)
PY
run "$cli" info "$a"
grep -qE "warning: $a: [0-9]+ damaged records are not counted in records" <<<"$err" ||
	fail "info does not warn of a damaged record: '$err'"

dd if=/dev/zero of="$a" bs=1 seek=$((4096 + 8)) count=8 conv=notrunc status=none
set +e
"$cli" check "$a" --json > "$dir/check.json"; rc=$?
set -e
[ $rc -eq 1 ] || fail "check exit $rc after superblock damage"
json_ok "$dir/check.json"
grep -q '"superblock_damaged": 1' "$dir/check.json" || fail "superblock damage not reported"
echo "1 passed, 0 failed"
