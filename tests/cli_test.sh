#!/usr/bin/env bash
# The pktstore command-line tool against a real arena written by
# pktstore-demo: info, stat, dump, check on a clean arena, then check after
# damaging a descriptor and a superblock copy.
#   cli_test.sh PKTSTORE PKTSTORE-DEMO
set -euo pipefail
cli=$1 demo=$2
dir=$(mktemp -d /dev/shm/pktstore-cli.XXXXXX)
trap 'rm -rf "$dir"' EXIT
a=$dir/a.arena
fail() { echo "FAIL: $*"; exit 1; }

"$demo" --arena "$a" --size $((16 << 20)) --flows 2 --ms 300 >/dev/null
# The demo verified the arena after the kill and closed it cleanly.
grep -q "^dirty_shutdown *no" <<<"$("$cli" info "$a")" || fail "info"
grep -q '"dirty_shutdown": false' <<<"$("$cli" info "$a" --json)" || fail "json info"
records=$("$cli" stat "$a" | awk '$1 == "records" { print $2 }')
[ "$records" -gt 0 ] || fail "no records in the demo arena"
[ "$("$cli" dump "$a" | wc -l)" -eq "$records" ] || fail "dump does not list every record"
out=$("$cli" dump "$a" --flow 1 --seq 0:1)
grep -q "seq 0 " <<<"$out" || fail "dump by seq"
out=$("$cli" dump "$a" --id 1:2 --data)
grep -q "^  00000000 " <<<"$out" || fail "dump --data"
grep -q "damaged: OK" <<<"$("$cli" check "$a")" || fail "clean arena reported damaged"

# Descriptor log of a default layout (1024 flows): 8 KiB of superblocks and
# 128 KiB of flow table before it. Flip a byte of descriptor slot 1.
printf '\x5a' | dd of="$a" bs=1 seek=$((8192 + 131072 + 64 + 16)) conv=notrunc status=none
set +e
out=$("$cli" check "$a"); rc=$?
set -e
[ $rc -eq 1 ] || fail "check exit $rc after damage"
echo "$out" | grep -q "descriptor log: 1 " || fail "damage not named: $out"

dd if=/dev/zero of="$a" bs=1 seek=$((4096 + 8)) count=8 conv=notrunc status=none
set +e
"$cli" check "$a" --json > "$dir/check.json"; rc=$?
set -e
[ $rc -eq 1 ] || fail "check exit $rc after superblock damage"
grep -q '"superblock_damaged": 1' "$dir/check.json" || fail "superblock damage not reported"
"$cli" info /nonexistent 2>/dev/null && fail "a missing arena opened"
echo "1 passed, 0 failed"
