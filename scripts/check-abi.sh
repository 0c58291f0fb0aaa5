#!/usr/bin/env bash
# The ABI check: build the shared library with debug info and compare its
# ABI, as libabigail reads it from the DWARF and the public header, with the
# baseline committed for the release (abi/libpktstore.so.1.abi). A removed
# symbol, a struct that changed size or layout, or a changed signature
# fails; new symbols pass.
#   scripts/check-abi.sh            compare with the baseline
#   scripts/check-abi.sh --update   write a new baseline (a new release)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_ABI:-$top/build-abi}
baseline=$top/abi/libpktstore.so.1.abi
"$top/scripts/install-deps.sh" --abi
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPKTSTORE_TESTS=OFF \
  -DPKTSTORE_EXAMPLES=OFF -DPKTSTORE_BENCH=OFF -DPKTSTORE_TOOLS=OFF >/dev/null
cmake --build "$build" -j2 --target pktstore >/dev/null
lib=$(readlink -f "$build/lib/libpktstore.so")

if [ "${1:-}" = --update ]; then
  abidw --headers-dir "$top/include" --no-corpus-path --out-file "$baseline" "$lib"
  echo "check-abi: baseline written to abi/$(basename "$baseline")"
  exit 0
fi
set +e
abidiff --headers-dir2 "$top/include" --no-added-syms "$baseline" "$lib" >"$build/abidiff.txt"
rc=$?
set -e
# abidiff's status is a bit mask: 1 tool error, 2 usage error, 4 a change,
# 8 an incompatible change.
if (( rc & 3 )); then
  cat "$build/abidiff.txt"
  echo "check-abi: abidiff failed ($rc)"
  exit 1
fi
if (( rc & 8 )); then
  cat "$build/abidiff.txt"
  echo "check-abi: INCOMPATIBLE with abi/$(basename "$baseline"): bump the soname or undo the change"
  exit 1
fi
# abidiff calls a struct that grew or changed layout a plain change, not an
# incompatible one; for the calls of an existing release that is a break
# too, so any change to them fails. New symbols are not changes.
if (( rc & 4 )); then
  cat "$build/abidiff.txt"
  echo "check-abi: the ABI of existing calls changed (see above). If it is deliberate and"
  echo "check-abi: compatible (a field added at the end of a sized struct), record it with --update"
  exit 1
fi
echo "check-abi: libpktstore.so.1 is compatible with abi/$(basename "$baseline")"
