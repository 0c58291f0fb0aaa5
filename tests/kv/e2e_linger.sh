#!/bin/bash
# A connection the server closes leaves its place under --max-clients as
# soon as the client has its FIN and closes too, not at the server's next
# housekeeping tick: with --max-clients 1, a client that follows one the
# server closed on a protocol error is served every time.
. "$(dirname "$0")/lib.sh" "$@"
need timeout redis-cli

start_server --size 8M --max-clients 1
for i in $(seq 1 30); do
	exec 3<>"/dev/tcp/127.0.0.1/$RESP_PORT" || fail "connect"
	printf '*1\r\n:12\r\n' >&3
	got=$(tmo 5 cat <&3 | tr -d '\r')
	exec 3<&-
	expect_eq "error reply $i" "$got" "-ERR Protocol error: expected '\$', got ':'"
	sleep 0.02 # the client's FIN reaches the server
	expect_eq "next client $i" "$(rcli ping)" PONG
done
stop_server_clean
echo PASS
