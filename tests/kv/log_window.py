# SPDX-License-Identifier: MIT
"""The /log window, trimmed from the oldest entries of a closed connection.

usage: log_window.py HTTP_PORT SERVER_PID ENTRIES

One connection logs ENTRIES 1 KiB POSTs, the first one split in two (its
head, a pause, its body), so that the first record of the stream ends
inside a request and cannot go on its own; then it closes. A second
connection logs as many again, and each of its entries trims one of the
first connection's from the window. Prints the server's CPU seconds for
each half; the second half must cost about what the first did, not a
walk of the closed connection's records per entry trimmed (quadratic in
the window: 5x the first half at 30000 entries, growing with the window).
"""
import os
import socket
import sys
import time

BODY = b"x" * 1024
HEAD = b"POST /log HTTP/1.1\r\nHost: kv\r\nContent-Length: 1024\r\n\r\n"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def answered(s, buf):
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("the server closed the connection")
        buf += chunk
    i = buf.index(b"\r\n\r\n")
    status = buf[:i].split(b"\r\n")[0]
    if b" 200 " not in status:
        sys.exit("POST /log answered %r" % status)
    return buf[i + 4:]


def log_entries(port, pid, n, split):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    c0 = cpu_seconds(pid)
    if split:
        s.sendall(HEAD)
        time.sleep(0.05)
        s.sendall(BODY)
        buf = answered(s, buf)
    for _ in range(n):
        s.sendall(HEAD + BODY)
        buf = answered(s, buf)
    s.close()
    return cpu_seconds(pid) - c0


def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    first = log_entries(port, pid, n, True)
    time.sleep(0.2)  # the close is seen
    second = log_entries(port, pid, n, False)
    print("%.2f %.2f" % (first, second))


if __name__ == "__main__":
    main()
