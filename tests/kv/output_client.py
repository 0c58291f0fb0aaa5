#!/usr/bin/env python3
"""Clients for e2e_output.sh: replies larger than every buffer on their way.

  output_client.py pipeline PORT N PAUSE [halfclose [RATE]]
      SET v0..v9 (4000 bytes each, all different), then send N GETs of
      v(i % 10) at once, read nothing for PAUSE seconds (with halfclose: shut
      down the sending side first), then read (at most RATE bytes a second):
      every reply must come back, byte for byte and in order (and, with
      halfclose, the server's FIN right after the last one).
  output_client.py noread PORT N PAUSE [halfclose]
      The same N GETs, not read for PAUSE seconds (with halfclose: after
      shutting down the sending side); then read until the server closes: it
      must close, having sent fewer bytes than the replies (the output limit,
      or the grace a closing connection has, cut the client off).
  output_client.py fill PORT CLIENTS BYTES [held]
      CLIENTS connections each start a SET whose value is announced as
      500,000 bytes and send BYTES of it (what the sockets take within 10 s),
      then hold them until stdin closes: commands being received, which the
      arena must keep, until it is full (or the server closes some).  With
      held, each first sets a key of its own and waits for the OK, so its
      first record stays while that key is there: the unfinished command
      lies behind bytes that are still needed.
  output_client.py idle PORT
      SET idle 1, then wait for a line on stdin and GET it on the same
      connection: a client between commands must still be served.
"""
import select
import socket
import struct
import sys
import time

VLEN = 4000


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def values():
    return [bytes([ord("a") + i]) * (VLEN - 8) + b"%08d" % i for i in range(10)]


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_exact(s, n, deadline, rate=0):
    buf, t0 = bytearray(), time.time()
    while len(buf) < n:
        s.settimeout(max(0.1, deadline - time.time()))
        chunk = s.recv(min(1 << 16 if rate else 1 << 20, n - len(buf)))
        if not chunk:
            break
        buf += chunk
        if rate:  # at most rate bytes a second
            time.sleep(max(0, t0 + len(buf) / rate - time.time()))
    return bytes(buf)


def setup(s, vals):
    s.sendall(b"".join(cmd(b"SET", b"v%d" % i, v) for i, v in enumerate(vals)))
    got = read_exact(s, 5 * len(vals), time.time() + 10)
    if got != b"+OK\r\n" * len(vals):
        sys.exit("SET: got %r" % got[:100])


def gets(n):
    return b"".join(cmd(b"GET", b"v%d" % (i % 10)) for i in range(n))


def pipeline(port, n, pause, halfclose, rate=0):
    vals = values()
    s = connect(port)
    setup(s, vals)
    s.sendall(gets(n))
    if halfclose:
        s.shutdown(socket.SHUT_WR)
    time.sleep(pause)
    want = b"".join(b"$%d\r\n%s\r\n" % (VLEN, vals[i % 10]) for i in range(n))
    got = read_exact(s, len(want), time.time() + 30, rate)
    if got != want:
        at = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                  min(len(got), len(want)))
        sys.exit("got %d of %d reply bytes; first difference at byte %d" %
                 (len(got), len(want), at))
    if halfclose:
        s.settimeout(10)
        rest = s.recv(1)
        if rest:
            sys.exit("more than the replies: %r" % rest)
    print("%d replies, %d bytes, intact%s" % (n, len(want), ", then FIN" if halfclose else ""))


def noread(port, n, pause, halfclose):
    vals = values()
    s = connect(port)
    setup(s, vals)
    s.sendall(gets(n))
    if halfclose:
        s.shutdown(socket.SHUT_WR)
    time.sleep(pause)
    total, deadline = 0, time.time() + 20
    try:
        while time.time() < deadline:
            s.settimeout(max(0.1, deadline - time.time()))
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        else:
            sys.exit("still open after 20 s, %d bytes read" % total)
    except ConnectionResetError:
        pass
    except socket.timeout:
        sys.exit("still open after 20 s, %d bytes read" % total)
    full = n * (VLEN + 9)
    print("cut off after %d of %d reply bytes" % (total, full))
    if total >= full:
        sys.exit("every reply came: the output limit did not apply")


def fill(port, clients, nbytes, held):
    conns = []
    for i in range(clients):
        s = connect(port)
        if held:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\nheld%d\r\n$3\r\nabc\r\n" %
                      (len("held%d" % i), i))
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = s.recv(64)
                if not chunk:
                    sys.exit("the server closed before OK")
                reply += chunk
            if reply != b"+OK\r\n":
                sys.exit("SET held%d: %r" % (i, reply))
        # A small send buffer keeps bytes queued here once the server's
        # socket is full, as a client on a real network would.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        s.setblocking(False)
        conns.append([s, b"*3\r\n$3\r\nSET\r\n$%d\r\nfill%d\r\n$500000\r\n" %
                      (len("fill%d" % i), i) + b"x" * nbytes])
    deadline = time.time() + 10
    while time.time() < deadline and any(c[1] for c in conns):
        _, w, _ = select.select([], [c[0] for c in conns if c[1]], [], 0.2)
        for c in conns:
            if c[0] in w:
                try:
                    c[1] = c[1][c[0].send(c[1]):]
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    c[1] = b""  # the server closed it (--full-timeout)
    print("holding %d partial commands" % clients, flush=True)
    sys.stdin.read()
    # Leave with a reset, not a FIN.  The server reads nothing from a flow
    # while the store is full, so these sockets sit at a zero window with
    # bytes still queued here: a FIN would wait behind them, and kernels
    # before 6.10 drop a bare FIN at a zero window anyway.  A reset is
    # accepted at any window.
    for s, _ in conns:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def idle(port):
    s = connect(port)
    s.sendall(b"*3\r\n$3\r\nSET\r\n$4\r\nidle\r\n$1\r\n1\r\n")
    if s.recv(64) != b"+OK\r\n":
        sys.exit("idle: SET not answered")
    print("idle client ready", flush=True)
    sys.stdin.readline()
    try:
        s.sendall(b"*2\r\n$3\r\nGET\r\n$4\r\nidle\r\n")
        got = s.recv(64)
    except OSError as e:
        sys.exit("idle: closed by the server (%s)" % e)
    if got != b"$1\r\n1\r\n":
        sys.exit("idle: GET answered %r" % got)
    print("idle client still served", flush=True)


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "pipeline":
        pipeline(port, int(sys.argv[3]), float(sys.argv[4]),
                 len(sys.argv) > 5 and sys.argv[5] == "halfclose",
                 int(sys.argv[6]) if len(sys.argv) > 6 else 0)
    elif mode == "noread":
        noread(port, int(sys.argv[3]), float(sys.argv[4]),
               len(sys.argv) > 5 and sys.argv[5] == "halfclose")
    elif mode == "idle":
        idle(port)
    elif mode == "fill":
        fill(port, int(sys.argv[3]), int(sys.argv[4]),
             len(sys.argv) > 5 and sys.argv[5] == "held")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
