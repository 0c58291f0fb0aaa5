#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for SECONDS (default
# 60) on a scratch copy of its seed corpus. A crash leaves its input in
# build-fuzz/crashes/ and fails the script; turn it into a regression test.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
build=$top/build-fuzz
CC=clang cmake -S "$top" -B "$build" -DPKTSTORE_FUZZ=ON -DPKTSTORE_TESTS=OFF \
  -DPKTSTORE_EXAMPLES=OFF -DPKTSTORE_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 >/dev/null
mkdir -p "$build/crashes"

run() { # target seed-dir max-len
  local t=$1 seeds=$2 maxlen=$3 corpus
  corpus=$(mktemp -d)
  cp "$seeds"/* "$corpus"/
  echo "fuzz: $t for ${secs}s"
  (cd "$build/crashes" && "$build/tests/fuzz/$t" -max_total_time="$secs" -max_len="$maxlen" \
    -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>&1 | grep -E "^stat::number_of_executed_units|ERROR|SUMMARY|Done")
  rm -rf "$corpus"
}

run fuzz_arena "$top/tests/fuzz/arena" 65536
run fuzz_kv "$top/tests/fuzz/kv" 4096
