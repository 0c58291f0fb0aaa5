#!/bin/bash
# A connection that ends leaves its place under --max-clients as soon as
# the client has closed too, not at the server's next housekeeping tick
# (50 ms): with --max-clients 1, clients in turn 30 ms apart, one closed by
# the server on a protocol error, the next closing by itself, are served.
# A few refusals are allowed for a loaded machine; a close at the tick is
# refused in about half the turns.
. "$(dirname "$0")/lib.sh" "$@"
need timeout redis-cli

start_server --size 8M --max-clients 1
refused=0
gap=$(ts 0.03)
for i in $(seq 1 30); do
	exec 3<>"/dev/tcp/127.0.0.1/$RESP_PORT" || fail "connect"
	printf '*1\r\n:12\r\n' >&3
	got=$(tmo 5 cat <&3 | tr -d '\r')
	exec 3<&-
	case $got in
	"-ERR max number of clients reached") refused=$((refused + 1)) ;;
	*) expect_eq "error reply $i" "$got" "-ERR Protocol error: expected '\$', got ':'" ;;
	esac
	sleep "$gap"
	got=$(rcli ping)
	case $got in
	"ERR max number of clients reached") refused=$((refused + 1)) ;;
	*) expect_eq "next client $i" "$got" PONG ;;
	esac
	sleep "$gap"
done
echo "refused $refused of 60"
[ "$refused" -le 3 ] || fail "$refused of 60 clients refused: a closed connection held its place"
stop_server_clean
echo PASS
