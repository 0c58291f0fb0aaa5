# SPDX-License-Identifier: MIT
"""The same random commands to redis-server and to pktstore-kv; every reply
must be the same bytes.

usage: differential.py REDIS_PORT KV_PORT [COMMANDS [SEED]]
       differential.py --same-data REDIS_PORT KV_PORT

Commands are drawn from those pktstore-kv supports, over a few keys and
values (numbers, floats, text, binary), with the options each takes and
some it does not; replies that depend on time to the millisecond or on
chance (PTTL, TIME, RANDOMKEY, INFO, SCAN cursors...) are left out. Both
servers get MULTI/EXEC blocks and several databases too. Exits 1 at the
first difference, printing the commands that led to it.

--same-data compares what both hold, every database: the same keys with
the same values, and the same keys with a time to live (within 10 s):
after a kill -9 and a restart of pktstore-kv, that is replay's result.
"""
import random
import socket
import sys


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def reply(self):
        """The whole reply, as the bytes that carried it."""
        line = self._line()
        out = line + b"\r\n"
        if line[:1] == b"$" and int(line[1:]) >= 0:
            out += self._exact(int(line[1:]) + 2)
        elif line[:1] == b"*" and int(line[1:]) > 0:
            for _ in range(int(line[1:])):
                out += self.reply()
        return out


KEYS = [b"k%d" % i for i in range(6)] + [b"n1", b"n2", b"f1"]


def value(r):
    return r.choice([b"", b"v", b"hello world", b"0", b"1", b"-1", b"01", b"-0",
                     b"9223372036854775807", b"-9223372036854775808", b"1.5", b"3e2",
                     b" 12", b"abc\r\n\x00\xff", str(r.randint(-1000, 1000)).encode(),
                     b"x" * r.randint(0, 300)])


def num(r):
    return r.choice([b"0", b"1", b"-1", b"10", b"100000", b"-5", b"01", b"x", b"",
                     b"9223372036854775807", b"-9223372036854775808",
                     b"9223372036854775808", b"1.5", str(r.randint(-50, 50)).encode()])


class Spans:
    """Relative times to live that no two commands share, in whole steps of
    1000 s. A relative time becomes an expiry at the moment each server
    runs the command, and the two servers' clocks need not turn over to
    the next millisecond (or second) between the same two commands: were
    two commands to set the same relative time, EXPIRE ... GT or LT
    between them could answer 1 on one server and 0 on the other. With
    every relative time distinct by at least 1000 s, far more than a run
    lasts, each such comparison has one answer. Each seed draws from its
    own range, since the seeds of one test run share the servers."""

    def __init__(self, r, seed):
        self.r, self.base, self.used = r, 100 + 100000 * seed, set()

    def __call__(self):
        while True:
            k = self.base + self.r.randrange(100000)
            if k not in self.used:
                self.used.add(k)
                return k * 1000


def ttl(r, per_second):
    """A time that cannot run out during a run, or one Redis refuses."""
    return r.choice([b"0", b"-1", b"x", b"", b"9223372036854775807",
                     str(SPAN() * per_second).encode()])


def span(per_second=1):
    return str(SPAN() * per_second).encode()


def command(r):
    k, k2 = r.choice(KEYS), r.choice(KEYS)
    c = r.randrange(40)
    if c == 0:
        opts = []
        for o in r.sample([[b"NX"], [b"XX"], [b"GET"], [b"KEEPTTL"], [b"EX", span()],
                           [b"PX", span(1000)], [b"EXAT", b"4102444800"],
                           [b"PXAT", b"4102444800000"], [b"EX", ttl(r, 1)], [b"BOGUS"]],
                          r.randint(0, 3)):
            opts += o
        return [b"SET", k, value(r)] + opts
    return r.choice([
        [b"GET", k], [b"SET", k, value(r)], [b"SETNX", k, value(r)],
        [b"SETEX", k, ttl(r, 1), value(r)], [b"PSETEX", k, ttl(r, 1000), value(r)],
        [b"GETSET", k, value(r)], [b"GETDEL", k], [b"GETEX", k],
        [b"GETEX", k, b"PERSIST"], [b"GETEX", k, b"EX", ttl(r, 1)], [b"MGET", k, k2, b"nope"],
        [b"MSET", k, value(r), k2, value(r)], [b"MSET", k], [b"MSETNX", k, value(r), k2, value(r)],
        [b"APPEND", k, value(r)], [b"STRLEN", k], [b"GETRANGE", k, num(r), num(r)],
        [b"SETRANGE", k, r.choice([b"0", b"3", b"-1", b"x", b"20"]), value(r)],
        [b"INCR", k], [b"DECR", k], [b"INCRBY", k, num(r)], [b"DECRBY", k, num(r)],
        [b"INCRBYFLOAT", k, r.choice([b"1.5", b"-0.25", b"1e3", b"abc", b"0", b"3.0e2"])],
        [b"DEL", k, k2], [b"UNLINK", k], [b"EXISTS", k, k2, k], [b"TOUCH", k], [b"TYPE", k],
        [b"EXPIRE", k, r.choice([span(), span(), b"-1", b"0", b"x"])] +
        r.choice([[], [b"NX"], [b"XX"], [b"GT"], [b"LT"], [b"NX", b"XX"], [b"GT", b"LT"], [b"ZZ"]]),
        [b"PEXPIRE", k, span(1000)], [b"EXPIREAT", k, r.choice([b"4102444800", b"1"])],
        [b"TTL", k], [b"EXPIRETIME", k], [b"PERSIST", k],
        [b"RENAME", k, k2], [b"RENAMENX", k, k2], [b"COPY", k, k2] +
        r.choice([[], [b"REPLACE"], [b"DB", b"1"], [b"DB", b"x"], [b"DB", b"99"], [b"BAD"]]),
        [b"DBSIZE"], [b"SELECT", r.choice([b"0", b"1", b"2", b"16", b"x"])],
        [b"FLUSHDB"] + r.choice([[], [b"ASYNC"], [b"bogus"]]), [b"KEYS", r.choice([b"*", b"k*", b"?1", b"[kn]*"])],
        [b"PING"], [b"ECHO", value(r)], [b"NOSUCH", k], [b"GET"], [b"DBSIZE", b"x"],
        [b"PING", value(r)], [b"PING", b"a", b"b"], [b"SUBSTR", k, num(r), num(r)],
        [b"COPY", k, k2, b"DB", r.choice([b"0", b"2"]), b"REPLACE"], [b"WAIT", b"0", b"0"],
        [b"CLIENT", b"GETNAME"], [b"CLIENT", b"SETNAME", r.choice([b"a", b"b c", b""])],
        [b"CLIENT", b"NOSUCH"], [b"CONFIG", b"GET_XX"], [b"WATCH", k], [b"UNWATCH"],
        [b"FLUSHALL"] if r.random() < 0.1 else [b"EXISTS", k],
        [b"GETRANGE", k, b"-3", b"-1"], [b"GETRANGE", k, b"-1", b"-3"],
        [b"SET", k, value(r), b"GET", b"NX"], [b"EXPIRE", k, b"9223372036854775807"],
        [b"PEXPIREAT", k, b"-9223372036854775808"], [b"RENAME", k, k],
    ])


def sorted_keys(reply):
    """KEYS answers in hash order: compare them as sets."""
    parts = reply.split(b"\r\n")
    return parts[0], sorted(parts[1:])


def near(a, b):
    """Two integer replies at most 1 apart, both of them a time (>= 0)."""
    if a[:1] != b":" or b[:1] != b":":
        return False
    x, y = int(a[1:-2]), int(b[1:-2])
    return x >= 0 and y >= 0 and abs(x - y) <= 1


def dump(c):
    """Every database: key -> (value, has a time to live, TTL)."""
    out = {}
    for db in range(16):
        c.send([b"SELECT", str(db).encode()])
        c.reply()
        c.send([b"KEYS", b"*"])
        keys = c.reply().split(b"\r\n")[2::2]
        for k in keys:
            c.send([b"GET", k])
            v = c.reply()
            c.send([b"TTL", k])
            ttl = int(c.reply()[1:-2])
            out[(db, k)] = (v, ttl != -1, ttl)
    c.send([b"SELECT", b"0"])
    c.reply()
    return out


def same_data(rport, kport):
    a, b = dump(Conn(rport)), dump(Conn(kport))
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x is None or y is None or x[:2] != y[:2] or abs(x[2] - y[2]) > 10:
            print("db %d key %r: redis-server %r, pktstore-kv %r" % (key[0], key[1], x, y))
            sys.exit(1)
    print("differential: the same %d keys, values and times to live" % len(a))


def main():
    if sys.argv[1] == "--same-data":
        return same_data(int(sys.argv[2]), int(sys.argv[3]))
    rport, kport = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    r = random.Random(seed)
    global SPAN
    SPAN = Spans(r, seed)
    a, b = Conn(rport), Conn(kport)
    history = []
    in_multi = False
    for i in range(n):
        if not in_multi and r.random() < 0.03:
            cmd, in_multi = [b"MULTI"], True
        elif in_multi and r.random() < 0.2:
            cmd, in_multi = [r.choice([b"EXEC", b"EXEC", b"DISCARD"])], False
        else:
            cmd = command(r)
            if in_multi and cmd[0] == b"KEYS":
                cmd = [b"DBSIZE"]  # inside EXEC's array its order could not be set aside
        history.append(cmd)
        a.send(cmd)
        b.send(cmd)
        ra, rb = a.reply(), b.reply()
        if cmd[0] == b"KEYS":
            ra, rb = sorted_keys(ra), sorted_keys(rb)
        if cmd[0] in (b"TTL", b"EXPIRETIME") and near(ra, rb):
            ra = rb  # rounded to seconds: the servers' clocks may straddle one
        if ra != rb:
            print("difference after %d commands; the last ones:" % (i + 1))
            for h in history[-12:]:
                print("   ", b" ".join(x[:40] for x in h))
            print("redis-server:", ra if isinstance(ra, tuple) else ra[:300])
            print("pktstore-kv: ", rb if isinstance(rb, tuple) else rb[:300])
            sys.exit(1)
    print("differential: %d commands, the same replies" % n)


if __name__ == "__main__":
    main()
