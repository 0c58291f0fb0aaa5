#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Look inside a stopped pktstore arena and damage it, for the kv tests.

    arena.py regions ARENA        superblock copies, flow table, descriptor
                                  log and data region: "NAME START END"
    arena.py records ARENA        live records: "id flow seq len desc_off data_off"
    arena.py flows ARENA          flow entries in use: "id tag entry_off"
    arena.py flip ARENA OFFSET    invert the byte at OFFSET

The layout is lib/media.h (format 2, little-endian). Only the superblock's
own checksum is not checked here: the tests damage arenas, they do not
validate them; `pktstore check` does that.
"""
import struct
import sys

SB = struct.Struct("<QIIQQQQIIQQQ16sQIIQQI")
DESC = struct.Struct("<QQQQQIIIIII")
FLOW_HEAD = struct.Struct("<QQQI")
RELEASED = 0x444C4552


def layout(data):
    f = SB.unpack_from(data, 0)
    keys = ("magic version sb_size arena_size flow_off desc_off data_off max_flows "
            "seg_size ndesc nsegs create_ns uuid generation in_use usc_valid usc "
            "id_limit crc").split()
    return dict(zip(keys, f))


def regions(data):
    sb = layout(data)
    yield "superblock-a", 0, 4096
    yield "superblock-b", 4096, 8192
    yield "flows", sb["flow_off"], sb["flow_off"] + sb["max_flows"] * 128
    yield "descriptors", sb["desc_off"], sb["desc_off"] + sb["ndesc"] * 64
    yield "data", sb["data_off"], sb["data_off"] + sb["nsegs"] * sb["seg_size"]


def records(data):
    sb = layout(data)
    for slot in range(sb["ndesc"]):
        off = sb["desc_off"] + slot * 64
        d = DESC.unpack_from(data, off)
        rid, flow, seq, _ts, doff, length, _dcrc, _fl, _res, mark, _crc = d
        if rid and rid % sb["ndesc"] == slot and mark != RELEASED:
            yield rid, flow, seq, length, off, doff


def flows(data):
    sb = layout(data)
    for slot in range(sb["max_flows"]):
        off = sb["flow_off"] + slot * 128
        fid, tag, _open, _state = FLOW_HEAD.unpack_from(data, off)
        if fid:
            yield fid, tag, off


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, path = argv[1], argv[2]
    if cmd == "flip":
        with open(path, "r+b") as f:
            f.seek(int(argv[3], 0))
            b = f.read(1)
            f.seek(int(argv[3], 0))
            f.write(bytes([b[0] ^ 0xFF]))
        return
    with open(path, "rb") as f:
        data = f.read()
    if cmd == "regions":
        for name, lo, hi in regions(data):
            print(name, lo, hi)
    elif cmd == "records":
        for r in sorted(records(data)):
            print(*r)
    elif cmd == "flows":
        for fl in flows(data):
            print(fl[0], "%x" % fl[1], fl[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
