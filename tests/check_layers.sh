#!/usr/bin/env bash
# The layers of lib/ hold: every call (or data reference) from one of the
# library's object files to another goes to a file listed before it in
# lib/CMakeLists.txt's PKTSTORE_SOURCES, so the dependency picture of
# docs/ARCHITECTURE.md has no cycle and no upward edge. Backends are
# reached downward only through their ops table, which nm cannot see.
#   check_layers.sh LIBPKTSTORE.a lib/CMakeLists.txt
set -euo pipefail
archive=$1
cmakelists=$2

# The order of the sources, as listed.
mapfile -t order < <(sed -n '/^set(PKTSTORE_SOURCES/,/^)/p' "$cmakelists" |
  sed -E 's/#.*//; s/[[:space:]]//g' | grep -E '\.c$')
[ ${#order[@]} -gt 10 ] || { echo "FAIL: no source list in $cmakelists"; exit 1; }
declare -A rank
for i in "${!order[@]}"; do rank[${order[$i]}]=$i; done

# Who defines each global symbol, and who uses which.
nm -A "$archive" 2>/dev/null | awk '
  { split($1, p, ":"); obj = p[2]; sub(/\.o$/, "", obj) }
  NF == 3 && $2 ~ /^[TDBR]$/ { print "D", obj, $3 }
  NF == 3 && $2 == "U" { print "U", obj, $3 }' >"${TMPDIR:-/tmp}/layers.$$"
trap 'rm -f "${TMPDIR:-/tmp}/layers.$$"' EXIT

bad=0 edges=0
while read -r from to sym; do
  edges=$((edges + 1))
  rf=${rank[$from]:-}
  rt=${rank[$to]:-}
  if [ -z "$rf" ] || [ -z "$rt" ]; then
    echo "FAIL: $from or $to is not in PKTSTORE_SOURCES"
    bad=1
  elif [ "$rt" -ge "$rf" ]; then
    echo "FAIL: $from calls $to ($sym), which is not above it in the list"
    bad=1
  fi
done < <(awk '$1 == "D" { def[$3] = $2 } $1 == "U" { use[NR] = $2 " " $3 }
  END { for (i in use) { split(use[i], u, " "); if (u[2] in def && def[u[2]] != u[1]) print u[1], def[u[2]], u[2] } }' \
  "${TMPDIR:-/tmp}/layers.$$" | sort -u)
[ "$edges" -gt 20 ] || { echo "FAIL: only $edges cross-file references found in $archive"; exit 1; }
[ "$bad" -eq 0 ] || exit 1
echo "layers: $edges cross-file references, each to a file above its caller"
