# SPDX-License-Identifier: MIT
"""EXEC on a connection that holds many older records.

usage: exec_walk.py RESP_PORT SERVER_PID HELD QUEUED

Connection A sets HELD keys one request at a time, so that it holds HELD
records (each key keeps the record its value lies in); connection B holds
none. Each then queues QUEUED SETs of 700-byte values in a transaction and
runs EXEC. Prints the server's CPU seconds for B's EXEC and for A's: they
should be about the same, not a walk of A's held records for every queued
command (each looked for its arguments from the connection's oldest
record: 13x at 20000 held records).
"""
import os
import socket
import sys

VALUE = b"x" * 700


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cmd(*args):
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def until(s, buf, word, n):
    while buf.count(word) < n:
        more = s.recv(1 << 16)
        if not more:
            sys.exit("the server closed the connection")
        buf += more
    return b""


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(120)
    return s


def exec_cpu(s, pid, prefix, queued):
    s.sendall(cmd(b"MULTI") + b"".join(cmd(b"SET", b"%s%d" % (prefix, i), VALUE)
                                       for i in range(queued)))
    until(s, b"", b"+QUEUED", queued)
    t0 = cpu_seconds(pid)
    s.sendall(cmd(b"EXEC"))
    until(s, b"", b"+OK", queued)
    return cpu_seconds(pid) - t0


def main():
    port, pid, held, queued = (int(a) for a in sys.argv[1:5])
    a, b = connect(port), connect(port)
    for i in range(held):  # one reply at a time: a record each
        a.sendall(cmd(b"SET", b"h%d" % i, VALUE))
        until(a, b"", b"+OK", 1)
    light = exec_cpu(b, pid, b"b", queued)
    heavy = exec_cpu(a, pid, b"a", queued)
    print("%.2f %.2f" % (light, heavy))


main()
