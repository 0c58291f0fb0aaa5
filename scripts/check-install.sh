#!/usr/bin/env bash
# Install into a scratch prefix and build a program outside the tree with
# pkg-config alone, and one with find_package(pktstore); run both.
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
export LD_LIBRARY_PATH="$prefix/lib:$prefix/lib/x86_64-linux-gnu"
for m in man1/pktstore.1 man3/pktstore_open.3 man3/pktstore_release_batch.3 man7/pktstore.7; do
  [ -f "$prefix/share/man/$m" ] || { echo "missing man page $m"; exit 1; }
done
# The installed tool reads the arena the installed library wrote.
"$prefix/bin/pktstore" check "$work/a.arena" >/dev/null || { echo "pktstore check failed"; exit 1; }
[ -x "$prefix/bin/pktstore-kv" ] || { echo "pktstore-kv not installed"; exit 1; }
echo "install check: OK"
