# Shared by the pktstore-kv end-to-end tests (bash). Usage in a test:
#   . "$(dirname "$0")/lib.sh" "$@"     ($1 = pktstore-kv, $2 = kv_load)
# Every server runs on kernel-chosen loopback ports with a temporary arena
# and is killed when the test exits, whatever the outcome.

KV=$1
LOAD=$2
# tmpfs when there is one: kill -9 leaves the page cache intact either way,
# and msync(2) on a small VM disk would make the load phases slow and noisy.
if [ -z "$KV_TEST_DIR" ]; then
	KV_TEST_DIR=/tmp
	[ -d /dev/shm ] && [ -w /dev/shm ] && KV_TEST_DIR=/dev/shm
fi
WORK=$(mktemp -d "$KV_TEST_DIR/pktstore-kv-test.XXXXXX")
SERVER_PID=
RESP_PORT=
HTTP_PORT=

stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill -9 "$SERVER_PID" 2>/dev/null
		wait "$SERVER_PID" 2>/dev/null
		SERVER_PID=
	fi
}

cleanup() {
	stop_server
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- server log (tail) ---"
	tail -n 30 "$WORK/server.log" 2>/dev/null
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

need() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
	done
}

# start_server [extra options]: the arena is $WORK/arena unless given.
start_server() {
	: >"$WORK/server.log"
	"$KV" --arena "$WORK/arena" --resp 127.0.0.1:0 --http 127.0.0.1:0 "$@" \
		>>"$WORK/server.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 100); do
		if grep -q "RESP on" "$WORK/server.log"; then
			RESP_PORT=$(sed -n 's/.*RESP on [^,]*:\([0-9]*\),.*/\1/p' "$WORK/server.log")
			HTTP_PORT=$(sed -n 's/.*HTTP on .*:\([0-9]*\)$/\1/p' "$WORK/server.log")
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || fail "server did not start"
		sleep 0.1
	done
	fail "server did not report its ports within 10 s"
}

# Stop with SIGTERM and require a clean exit.
stop_server_clean() {
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID" || fail "server exited with status $? on SIGTERM"
	SERVER_PID=
}

alive() {
	kill -0 "$SERVER_PID" 2>/dev/null || fail "server died"
}

rcli() {
	timeout 10 redis-cli -p "$RESP_PORT" "$@"
}

expect_eq() { # what got want
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}
