#!/usr/bin/env bash
# Mutation test of the persistence points: removes, one at a time, every
# call in lib/ that makes bytes durable (a flush, a drain, a persist, a
# flush-set entry, a superblock copy's write, a superblock sync), rebuilds
# the power-loss, crafted-arena and flow-id tests against the mutant, and
# runs them.
# Each mutant must make one fail; one that passes is a persistence point no
# test would miss.
#
#   scripts/mutate.sh [POINTS]     crash points per run (default 700)
#
# Prints one line per mutant and the score; exits 1 if any mutant survived.
# PKTSTORE_POWERFAIL_SEED fixes the crash points (default 1, so a run is
# repeatable); MUTATE_ONLY=file.c:LINE runs one mutant.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
points=${1:-700}
work=${MUTATE_DIR:-$top/build-mutate}
export PKTSTORE_POWERFAIL_SEED=${PKTSTORE_POWERFAIL_SEED:-1}

# The calls that persist, and the macro that swallows each (mutant.h):
# the primitives, a superblock copy's write, and the superblock syncs (the
# id limits, the in-use mark).
int_calls='ps_drain|ps_flush_range|ps_persist_range|ps_flush_set_flush|write_sb|ps_arena_sync|ps_arena_mark'
void_calls='ps_flush_set_add'

# A private copy of the tree, so the mutants never touch the checkout.
rm -rf "$work"
mkdir -p "$work/src"
tar -C "$top" --exclude='./build*' --exclude=./.git -cf - . | tar -C "$work/src" -xf -
cat >"$work/mutant.h" <<'EOF'
/* A removed persistence point: the call and its arguments are gone. */
#define PS_MUTANT_INT(...) 0
#define PS_MUTANT_VOID(...) ((void)0)
EOF
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPKTSTORE_EXAMPLES=OFF -DPKTSTORE_BENCH=OFF -DPKTSTORE_TOOLS=OFF \
  -DCMAKE_C_FLAGS="-include $work/mutant.h -Wno-unused-variable -Wno-unused-but-set-variable -Wno-unused-function" >/dev/null
cmake --build "$work/build" -j 2 --target test_powerfail test_untrusted test_lifetime >/dev/null

# The test's scratch files: a directory of this run's own on tmpfs, so
# what a failed run leaves behind is easy to remove and touches no one else.
scratch=$(mktemp -d /dev/shm/pktstore-mutate.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
export PKTSTORE_POWERFAIL_DIR=$scratch
# The crafted-arena test and the kill -9 test of flow ids first (seconds),
# then the power-loss test.
run_test() {
  (cd "$work/build" && ./tests/test_untrusted --fail-fast >"$work/last.log" 2>&1 &&
    ./tests/test_lifetime --filter 'lifetime/flow_ids*' >"$work/last.log" 2>&1 &&
    PKTSTORE_POWERFAIL_POINTS=$points timeout 600 \
    ./tests/test_powerfail --jobs 2 --fail-fast >"$work/last.log" 2>&1)
}
echo "mutate: the unmutated library must pass first"
if ! run_test; then
  cat "$work/last.log"
  echo "mutate: the power-loss test fails without any mutant"
  exit 1
fi

# Every call site: FILE:LINE:NAME. A definition or declaration (the name
# at the start of the line after a type) is not a call.
sites=$(cd "$work/src" && grep -nE "\b($int_calls|$void_calls)\(" lib/*.c |
  grep -vE "^[^:]+:[0-9]+:(static )?(int|void) ($int_calls|$void_calls)\(" |
  sed -E "s/^([^:]+):([0-9]+):.*\b($int_calls|$void_calls)\(.*/\1:\2:\3/")
total=0 caught=0 survived=()
for site in $sites; do
  IFS=: read -r file line name <<<"$site"
  [ -n "${MUTATE_ONLY:-}" ] && [ "$MUTATE_ONLY" != "$file:$line" ] && continue
  total=$((total + 1))
  macro=PS_MUTANT_INT
  [[ $name =~ ^($void_calls)$ ]] && macro=PS_MUTANT_VOID
  cp "$work/src/$file" "$work/orig.c"
  sed -i "${line}s/\b$name(/$macro(/" "$work/src/$file"
  text=$(sed -n "${line}p" "$top/$file" | sed -E 's/^[[:space:]]+//')
  if ! cmake --build "$work/build" -j 2 --target test_powerfail test_untrusted test_lifetime >"$work/build.log" 2>&1; then
    cat "$work/build.log"
    echo "mutate: $file:$line does not build as a mutant"
    exit 1
  fi
  start=$SECONDS
  if run_test; then
    verdict="SURVIVED"
    survived+=("$file:$line")
  else
    verdict="caught  "
    caught=$((caught + 1))
  fi
  how=$( (grep -m1 -E "point [0-9]+:|child failed|never" "$work/last.log" ||
    grep -m1 Assertion "$work/last.log") |
    sed -E 's/^\[----\][[:space:]]*//' | cut -c1-70 || true)
  printf '%s %-16s %s (%ds) %s\n' "$verdict" "$file:$line" "$text" $((SECONDS - start)) \
    "${how:+-- $how}" | cut -c1-160
  cp "$work/orig.c" "$work/src/$file"
  rm -f "$scratch"/* # what a failed run leaves
done
cmake --build "$work/build" -j 2 --target test_powerfail test_untrusted test_lifetime >/dev/null
echo "mutate: $caught of $total persistence points caught ($points crash points per run, seed $PKTSTORE_POWERFAIL_SEED)"
if [ ${#survived[@]} -gt 0 ]; then
  echo "mutate: survived: ${survived[*]}"
  exit 1
fi
