#!/usr/bin/env bash
# Where sending stored bytes from the arena starts to pay over copying
# them: bench-sendref is built against libraries with PS_SEND_REF_MIN 64
# (every piece of 64 bytes or more is sent from the arena) and 2^30 (every
# piece copied), and callgrind counts the server's user-space instructions
# per echoed message at each size (the difference of a 2000- and a
# 6000-message run, so start-up cancels out). Instructions, not time: the
# count repeats exactly on this noisy machine, time does not.
#
#   bench/sendref.sh [SIZES...]      default 512 1024 2048 4096 8192
#
# Prints one line per size: instructions from the arena, copied, and the
# difference. Needs valgrind.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=${SENDREF_DIR:-$top/build-sendref}
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(512 1024 2048 4096 8192)
command -v valgrind >/dev/null || { echo "sendref: valgrind is not installed"; exit 77; }
dir=$( [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm || echo /tmp )

for v in 64 1073741824; do
  cmake -S "$top" -B "$work/$v" -DCMAKE_BUILD_TYPE=Release -DPKTSTORE_TESTS=OFF \
    -DPKTSTORE_EXAMPLES=OFF -DPKTSTORE_TOOLS=OFF -DCMAKE_C_FLAGS="-DPS_SEND_REF_MIN=$v" >/dev/null
  cmake --build "$work/$v" -j 2 --target bench-sendref >/dev/null
done

# count VARIANT SIZE MESSAGES -> the server's instructions (the client is
# a forked child: the lowest pid's file is the server's)
count() {
  local out=$work/cg.$1.$2.$3
  rm -rf "$out" && mkdir -p "$out"
  PMEM2_FORCE_GRANULARITY=CACHE_LINE valgrind --tool=callgrind \
    --callgrind-out-file="$out/%p.cnt" "$work/$1/bench/bench-sendref" \
    --path "$dir/pktstore-sendref-$$.arena" --size "$2" --messages "$3" >/dev/null 2>&1
  sed -n 's/^summary: //p' "$out/$(ls "$out" | sort -n | head -1)"
}

echo "sendref: server instructions per echoed message (callgrind), from the arena vs copied"
for s in "${sizes[@]}"; do
  for v in 64 1073741824; do
    a=$(count $v "$s" 2000)
    b=$(count $v "$s" 6000)
    eval "i$v=$(( (b - a) / 4000 ))"
  done
  echo "sendref size=$s from_arena=$i64 copied=$i1073741824 saved=$((i1073741824 - i64))"
done
