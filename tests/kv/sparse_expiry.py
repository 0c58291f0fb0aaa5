# SPDX-License-Identifier: MIT
"""Active expiry over a table its keys have left.

usage: sparse_expiry.py RESP_PORT SERVER_PID KEYS

A key with a long time to live stays throughout, so active expiry keeps
running. 2000 SETs one request at a time are timed in the server's CPU;
then KEYS keys are set with a one-second time to live and left to expire
and go (the table keeps its size); then the same 2000 SETs again. Prints
both CPU times and the keys left; the second must cost about what the
first did, not a walk of every empty bucket after each request.
"""
import os
import socket
import sys
import time


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                sys.exit("the server closed the connection")
            self.buf += chunk
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def sets(c, pid, tag):
    c0 = cpu_seconds(pid)
    for i in range(2000):
        c.s.sendall(cmd(b"SET", b"%s:%d" % (tag, i), b"v"))
        if c.line() != b"+OK":
            sys.exit("SET refused")
    return cpu_seconds(pid) - c0


def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    c = Conn(port)
    c.s.sendall(cmd(b"SET", b"stays", b"v", b"EX", b"100000"))
    if c.line() != b"+OK":
        sys.exit("SET stays refused")
    before = sets(c, pid, b"a")
    batch = b"".join(cmd(b"SET", b"e:%d" % i, b"v", b"EX", b"1") for i in range(n))
    c.s.sendall(batch)
    for _ in range(n):
        if c.line() != b"+OK":
            sys.exit("SET EX refused")
    time.sleep(1.2)
    left = n
    for _ in range(600):  # each request is a round of active expiry
        c.s.sendall(cmd(b"DBSIZE"))
        left = int(c.line()[1:]) - 2001
        if left <= 0:
            break
        time.sleep(0.05)
    after = sets(c, pid, b"b")
    print("%.2f %.2f %d" % (before, after, left))


if __name__ == "__main__":
    main()
