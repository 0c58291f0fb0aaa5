# SPDX-License-Identifier: MIT
"""Keys chosen to collide in the server's hash table.

usage: hash_flood.py RESP_PORT SERVER_PID KEYS

Four waves of KEYS SETs, each timed in the server's CPU:
  1. random 16-byte keys;
  2. 16-byte keys with one hash under a multiply-and-xorshift hash of eight
     bytes a step with no seed (the server's hash before it was keyed): the
     second word of each key is solved for from the first;
  3. random 240-byte keys;
  4. 240-byte keys that collide under that hash whatever its seed: flipping
     the top bit of one word changes the state only in bits 63 and 34 after
     its step, which the next word cancels, so each of 15 pairs of words
     doubles the keys with one hash.
Prints the four times; wave 2 must cost about what wave 1 did, and wave 4
about what wave 3 did. A hash an attacker can collide turns such a wave
into one chain walked at every insert: quadratic work one client can ask
for.
"""
import os
import socket
import sys

M = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1
M_INV = pow(M, -1, 1 << 64)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def step(h, w):
    h = ((h ^ w) * M) & MASK
    return h ^ (h >> 29)


def unstep(target, h):
    """The word w with step(h, w) == target."""
    x = target ^ (target >> 29) ^ (target >> 58)
    return ((x * M_INV) & MASK) ^ h


def colliding(n):
    h0 = ((16 * M) ^ 0xCBF29CE484222325) & MASK
    target = 0x0123456789ABCDEF
    for i in range(n):
        w1 = (i * 0x100000001B3 + 7) & MASK
        w2 = unstep(target, step(h0, w1))
        yield w1.to_bytes(8, "little") + w2.to_bytes(8, "little")


def differential(n):
    """n keys of 30 words, all colliding under the step whatever its seed."""
    base = [int.from_bytes(os.urandom(8), "little") for _ in range(30)]
    for i in range(n):
        words = list(base)
        for pair in range(15):
            if i >> pair & 1:
                words[2 * pair] ^= 1 << 63
                words[2 * pair + 1] ^= (1 << 63) | (1 << 34)
        yield b"".join(w.to_bytes(8, "little") for w in words)


def random_keys(n, size):
    for _ in range(n):
        yield os.urandom(size)


def set_all(port, keys, batch=500):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    keys = list(keys)
    for i in range(0, len(keys), batch):
        chunk = keys[i:i + batch]
        s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k)
                           for k in chunk))
        want, got = b"+OK\r\n" * len(chunk), b""
        while len(got) < len(want):
            part = s.recv(1 << 16)
            if not part:
                sys.exit("the server closed the connection")
            got += part
        if got != want:
            sys.exit("unexpected replies: %r" % got[:80])
    s.close()


def main():
    port, pid, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    times = []
    for wave in (random_keys(n, 16), colliding(n), random_keys(n, 240), differential(n)):
        t0 = cpu_seconds(pid)
        set_all(port, wave)
        times.append(cpu_seconds(pid) - t0)
    print(" ".join("%.2f" % t for t in times))


if __name__ == "__main__":
    main()
