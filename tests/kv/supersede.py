# SPDX-License-Identifier: MIT
"""Decisions superseded out of order: INCR on many keys, twice.

usage: supersede.py RESP_PORT SERVER_PID KEYS

INCR is replayed from what was decided, which a meta record holds until
the key's next version supersedes it. KEYS keys are incremented one
request at a time (each decision its own record), then again in reverse
order, so that each superseded record lies as far as can be from the
oldest one. Prints the server's CPU seconds for each pass; the second must
cost about what the first did, not a walk of the decisions at each one
superseded (quadratic: 7x the first pass at 60000 keys).
"""
import os
import socket
import sys


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def incr_all(s, pid, keys, want):
    c0 = cpu_seconds(pid)
    buf = b""
    for k in keys:
        s.sendall(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(k), k))
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("the server closed the connection")
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        if line != b":%d" % want:
            sys.exit("INCR %r answered %r, not :%d" % (k, line, want))
    return cpu_seconds(pid) - c0


def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    keys = [b"counter:%d" % i for i in range(n)]
    first = incr_all(s, pid, keys, 1)
    second = incr_all(s, pid, keys[::-1], 2)
    print("%.2f %.2f" % (first, second))


if __name__ == "__main__":
    main()
