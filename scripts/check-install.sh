#!/usr/bin/env bash
# Install into a scratch prefix and build a program outside the tree with
# pkg-config alone, and one with find_package(pktstore); run both. Then the
# installed programs without LD_LIBRARY_PATH, and a project that uses this
# one through add_subdirectory().
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
cat > "$work/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <pktstore.h>
int main(int argc, char **argv)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 8 << 20 };
	struct pktstore *ps;
	struct pktstore_rec r, g;
	uint64_t flow;
	int ret = pktstore_open(argv[1], &o, &ps);

	if (ret || argc < 2) {
		fprintf(stderr, "open: %s\n", pktstore_strerror(ret));
		return 1;
	}
	if (pktstore_flow_create(ps, 1, &flow) || pktstore_append(ps, flow, "hello", 5, &r) ||
	    pktstore_get(ps, r.id, &g, 0) || memcmp(g.data, "hello", 5))
		return 1;
	printf("installed libpktstore works: record %lu, crc %08x\n", (unsigned long)r.id, r.crc32c);
	return pktstore_close(ps);
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig"
cc -Wall -Wextra "$work/prog.c" $(pkg-config --cflags --libs pktstore) -o "$work/prog"
LD_LIBRARY_PATH="$prefix/lib:$prefix/lib/x86_64-linux-gnu" "$work/prog" "$work/a.arena"

mkdir -p "$work/cm"
cat > "$work/cm/CMakeLists.txt" <<'C'
cmake_minimum_required(VERSION 3.25)
project(prog C)
find_package(pktstore 1 REQUIRED)
add_executable(prog ../prog.c)
target_link_libraries(prog PRIVATE pktstore::pktstore)
C
cmake -S "$work/cm" -B "$work/cm/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cm/b" >/dev/null
LD_LIBRARY_PATH="$prefix/lib:$prefix/lib/x86_64-linux-gnu" "$work/cm/b/prog" "$work/b.arena"
# The installed programs find the installed library by their run path
# ($ORIGIN/../lib), not by LD_LIBRARY_PATH.
unset LD_LIBRARY_PATH
for p in pktstore pktstore-demo pktstore-kv; do
  readelf -d "$prefix/bin/$p" | grep 'R.*PATH.*\$ORIGIN/\.\./lib' >/dev/null ||
    { echo "$p has no \$ORIGIN/../lib run path"; exit 1; }
  ldd "$prefix/bin/$p" | grep -F "=> $prefix/" | grep libpktstore.so >/dev/null ||
    { echo "$p does not load the installed libpktstore:"; ldd "$prefix/bin/$p"; exit 1; }
done
"$prefix/bin/pktstore" --version >/dev/null || { echo "installed pktstore does not run"; exit 1; }
for m in man1/pktstore.1 man3/pktstore_open.3 man3/pktstore_release_batch.3 man7/pktstore.7; do
  [ -f "$prefix/share/man/$m" ] || { echo "missing man page $m"; exit 1; }
done
# The installed tool reads the arena the installed library wrote.
"$prefix/bin/pktstore" check "$work/a.arena" >/dev/null || { echo "pktstore check failed"; exit 1; }
[ -x "$prefix/bin/pktstore-kv" ] || { echo "pktstore-kv not installed"; exit 1; }
# A project that adds this one with add_subdirectory() builds the library
# and nothing else: no tests, examples, benchmarks or tool, and no Criterion.
mkdir -p "$work/sub"
cat > "$work/sub/CMakeLists.txt" <<C
cmake_minimum_required(VERSION 3.25)
project(parent C)
add_subdirectory("$top" pktstore)
add_executable(prog ../prog.c)
target_link_libraries(prog PRIVATE pktstore::pktstore)
C
cmake -S "$work/sub" -B "$work/sub/b" >/dev/null
targets=$(cmake --build "$work/sub/b" --target help)
for t in test_roundtrip pktstore-cli pktstore-demo pktstore-kv bench-loadgen; do
  ! grep -qw "$t" <<<"$targets" || { echo "add_subdirectory() user gets $t"; exit 1; }
done
cmake --build "$work/sub/b" -j "${JOBS:-2}" >/dev/null
"$work/sub/b/prog" "$work/c.arena" >/dev/null || { echo "add_subdirectory() build does not run"; exit 1; }
echo "install check: OK"
