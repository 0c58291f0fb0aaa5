#!/usr/bin/env bash
# Install into a scratch prefix and build a program outside the tree that
# makes every public call, with pkg-config alone and with
# find_package(pktstore); run both. Then the installed libevent and libuv
# adapters, the installed programs without LD_LIBRARY_PATH, and a project
# that uses this one through add_subdirectory().
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
prefix=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
cat > "$work/prog.c" <<'C'
/* Every public call of the installed library, once. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <pktstore.h>
#include <pktstore/adapters/epoll.h>
static int delivered;
static void on_records(struct pktstore *ps, struct pktstore_rec *recs, int n, void *arg)
{
	(void)ps; (void)recs; (void)arg;
	delivered += n;
}
#define CHECK(x) do { int r_ = (x); if (r_ < 0) { \
	fprintf(stderr, "%s: %s\n", #x, pktstore_strerror(r_)); return 1; } } while (0)
int main(int argc, char **argv)
{
	struct pktstore_opts o = { .flags = PKTSTORE_CREATE, .size = 8 << 20,
				   .recv_path = PKTSTORE_PATH_RECV };
	struct pktstore *ps;
	struct pktstore_rec r, g, recs[8];
	struct pktstore_stats st;
	struct pktstore_flow_info fi;
	struct pktstore_query q = { .kind = PKTSTORE_BY_ID, .hi = UINT64_MAX };
	struct iovec iov[4];
	uint64_t flow, net, ids[2];
	char buf[16];
	int sv[2], n;

	if (argc < 2 || pktstore_version() < 10000)
		return 1;
	CHECK(pktstore_open(argv[1], &o, &ps));
	CHECK(pktstore_close(ps));
	CHECK(pktstore_open_ex(argv[1], &o, sizeof(o), &ps));
	CHECK(pktstore_flow_create(ps, 1, &flow));
	CHECK(pktstore_flow_set_user(ps, flow, &o));
	CHECK(pktstore_append(ps, flow, "hello", 5, &r));
	CHECK(pktstore_append(ps, flow, "world", 5, &g));
	CHECK(pktstore_get(ps, r.id, &g, 0));
	if (memcmp(g.data, "hello", 5) || g.user != &o ||
	    pktstore_crc32c(0, "hello", 5) != g.crc32c)
		return 1;
	if (pktstore_read(ps, flow, 3, buf, sizeof(buf)) != 7 || memcmp(buf, "loworld", 7))
		return 1;
	CHECK(n = pktstore_readv(ps, flow, 0, 10, iov, 4, 0));
	CHECK(pktstore_range(ps, &q, recs, 8));
	CHECK(pktstore_trim(ps, flow, 7));
	CHECK(pktstore_flow_info(ps, flow, &fi));
	if (fi.first_seq != 7)
		return 1;
	CHECK(pktstore_flows(ps, 0, &fi, 1));
	CHECK(pktstore_append(ps, flow, "!", 1, &r));
	ids[0] = r.id;
	CHECK(pktstore_release(ps, ids[0]));
	CHECK(pktstore_append(ps, flow, "?", 1, &r));
	ids[1] = r.id;
	CHECK(pktstore_release_batch(ps, &ids[1], 1));
	CHECK(pktstore_flow_delete(ps, flow));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	CHECK(pktstore_attach(ps, sv[1], 2, &net));
	CHECK(pktstore_fd(ps));
	if (write(sv[0], "net", 3) != 3)
		return 1;
	CHECK(pktstore_recv_persist(ps, net, recs, 8, 0));
	/* The installed epoll adapter delivers the next bytes. */
	struct pktstore_epoll ad;
	struct epoll_event ev[4];
	int ep = epoll_create1(0);

	CHECK(pktstore_epoll_init(&ad, ep, ps, on_records, NULL, NULL));
	if (write(sv[0], "evt", 3) != 3)
		return 1;
	for (int t = 0; t < 50 && !delivered; t++) {
		n = epoll_wait(ep, ev, 4, 100);
		for (int i = 0; i < n; i++)
			if (pktstore_epoll_owns(&ad, &ev[i]))
				CHECK(pktstore_epoll_handle(&ad));
	}
	pktstore_epoll_fini(&ad);
	close(ep);
	if (!delivered)
		return 1;
	shutdown(sv[0], SHUT_WR);
	CHECK(pktstore_recv_persist_any(ps, recs, 8, 0));
	CHECK(pktstore_detach(ps, net));
	CHECK(pktstore_stats(ps, &st));
	CHECK(pktstore_stats_ex(ps, &st, sizeof(st)));
	printf("installed libpktstore works: %lu records persisted, every call made\n",
	       (unsigned long)st.records_persisted);
	close(sv[0]);
	close(sv[1]);
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
"$prefix/bin/pktstore-demo" --version >/dev/null || { echo "installed pktstore-demo does not run"; exit 1; }
"$prefix/bin/pktstore-kv" --help >/dev/null || { echo "installed pktstore-kv does not run"; exit 1; }
for m in man1/pktstore.1 man3/pktstore_adapters.3 man7/pktstore.7; do
  [ -f "$prefix/share/man/$m" ] || { echo "missing man page $m"; exit 1; }
done
# Every call the library exports has its man page.
for sym in $(sed -n 's/^[[:space:]]*\(pktstore_[a-z0-9_]*\);/\1/p' "$top/lib/pktstore.map"); do
  [ -f "$prefix/share/man/man3/$sym.3" ] || { echo "missing man page man3/$sym.3"; exit 1; }
done
[ -f "$prefix/include/pktstore/adapters/libuv.h" ] || { echo "adapters not installed"; exit 1; }
# The libevent and libuv adapters, as installed, build with their loop
# library's pkg-config flags and no warning (epoll's is in prog.c above).
cat > "$work/libevent.c" <<'C'
#include <pktstore/adapters/libevent.h>
static void recs(struct pktstore *ps, struct pktstore_rec *r, int n, void *arg)
{ (void)ps; (void)r; (void)n; (void)arg; }
int main(void)
{
	struct event_base *base = event_base_new();
	struct pktstore_libevent *a = pktstore_libevent_new(base, NULL, recs, NULL, NULL);
	if (a) { pktstore_libevent_kick(a); pktstore_libevent_free(a); }
	event_base_free(base);
	return 0;
}
C
cat > "$work/libuv.c" <<'C'
#include <pktstore/adapters/libuv.h>
static void recs(struct pktstore *ps, struct pktstore_rec *r, int n, void *arg)
{ (void)ps; (void)r; (void)n; (void)arg; }
int main(void)
{
	struct pktstore_libuv a;
	if (!pktstore_libuv_init(&a, uv_default_loop(), NULL, recs, NULL, NULL)) {
		pktstore_libuv_kick(&a);
		pktstore_libuv_close(&a, NULL);
	}
	return uv_run(uv_default_loop(), UV_RUN_DEFAULT);
}
C
for loop in libevent libuv; do
  if pkg-config --exists "$loop"; then
    cc -Wall -Wextra -Werror "$work/$loop.c" $(pkg-config --cflags --libs pktstore "$loop") \
      -o "$work/$loop" || { echo "the installed $loop adapter does not build"; exit 1; }
  else
    echo "install check: $loop not found by pkg-config: its adapter not built"
  fi
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
