# Shared by the pktstore-kv end-to-end tests (bash). Usage in a test:
#   . "$(dirname "$0")/lib.sh" "$@"     ($1 = pktstore-kv, $2 = kv_load)
# Every server runs on kernel-chosen loopback ports with a temporary arena
# and is killed when the test exits, whatever the outcome.

KV=$1
LOAD=$2

# PKTSTORE_TEST_TIME_SCALE: a positive integer (default 1) that multiplies
# every time limit of these tests (timeouts, read deadlines, waits for the
# server, kv_load's receive timeout), for runs on machines much slower than
# the one the limits were chosen on, such as a QEMU guest under TCG (~10x).
# Load durations are not scaled: a slower machine just does less work.
TIME_SCALE=${PKTSTORE_TEST_TIME_SCALE:-1}
case $TIME_SCALE in
'' | *[!0-9]* | 0*) echo "FAIL: PKTSTORE_TEST_TIME_SCALE='$TIME_SCALE' is not a positive integer"; exit 1 ;;
esac
export PKTSTORE_TEST_TIME_SCALE=$TIME_SCALE
# ts SECONDS: the limit scaled (SECONDS may have a fraction).
ts() { awk -v s="$1" -v k="$TIME_SCALE" 'BEGIN { print s * k }'; }
# tmo SECONDS CMD...: timeout(1) with the limit scaled.
tmo() {
	local t
	t=$(ts "$1")
	shift
	timeout "$t" "$@"
}
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
	for _ in $(seq $((100 * TIME_SCALE))); do
		if grep -q "RESP on" "$WORK/server.log"; then
			RESP_PORT=$(sed -n 's/.*RESP on [^,]*:\([0-9]*\),.*/\1/p' "$WORK/server.log")
			HTTP_PORT=$(sed -n 's/.*HTTP on .*:\([0-9]*\)$/\1/p' "$WORK/server.log")
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || fail "server did not start"
		sleep 0.1
	done
	fail "server did not report its ports within $(ts 10) s"
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
	tmo 10 redis-cli -p "$RESP_PORT" "$@"
}

expect_eq() { # what got want
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}
