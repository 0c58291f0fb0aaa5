#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Look inside a stopped pktstore arena and damage it, for the kv tests.

    arena.py regions ARENA        superblock copies, flow table, descriptor
                                  log and data region: "NAME START END"
    arena.py records ARENA        live records: "id flow seq len desc_off data_off"
    arena.py flows ARENA          flow entries in use: "id tag entry_off"
    arena.py flip ARENA OFFSET    invert the byte at OFFSET
    arena.py targets ARENA N      offsets worth damaging, "REGION OFFSET BYTE WHAT"
                                  (BYTE: the inverted byte, as \\xNN for printf):
                                  fields of both superblocks, of every flow
                                  entry in use and of up to N live
                                  descriptors, the middle of their bytes,
                                  released and empty slots, free data

The layout is lib/media.h (format 2, little-endian). Only the superblock's
own checksum is not checked here: the tests damage arenas, they do not
validate them; `pktstore check` does that.
"""
import struct
import sys

SB = struct.Struct("<QIIQQQQIIQQQ16sQIIQQQQI")
DESC = struct.Struct("<QQQQQIIIIII")
FLOW_HEAD = struct.Struct("<QQQI")
RELEASED = 0x444C4552


def layout(data):
    f = SB.unpack_from(data, 0)
    keys = ("magic version sb_size arena_size flow_off desc_off data_off max_flows "
            "seg_size ndesc nsegs create_ns uuid generation in_use usc_valid usc "
            "id_limit flow_id_limit verified_id crc").split()
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


SB_FIELDS = {"magic": 0, "version": 8, "arena_size": 16, "flow_off": 24, "desc_off": 32,
             "data_off": 40, "seg_size": 52, "ndesc": 56, "generation": 96, "in_use": 104,
             "id_limit": 120, "flow_id_limit": 128, "verified_id": 136, "crc": 144,
             "unused": 2000}
FLOW_FIELDS = {"id": 0, "tag": 8, "state": 24, "crc": 104, "trim_seq.lo": 112,
               "trim_seq.hi": 116, "close_ns": 120}
DESC_FIELDS = {"flow": 8, "seq": 16, "len": 40, "crc": 60}


def targets(data, n):
    sb = layout(data)
    for base, name in ((0, "superblock-a"), (4096, "superblock-b")):
        for f, o in SB_FIELDS.items():
            yield name, base + o, f
    for fid, tag, off in flows(data):
        for f, o in FLOW_FIELDS.items():
            yield "flows", off + o, "flow %d (tag %x) %s" % (fid, tag, f)
    live = sorted(records(data))
    # Spread over the log: the oldest, the newest, and between.
    pick = live if len(live) <= n else [live[i * (len(live) - 1) // (n - 1)] for i in range(n)]
    for rid, flow, seq, length, doff, daoff in pick:
        for f, o in DESC_FIELDS.items():
            yield "descriptors", doff + o, "record %d (flow %d seq %d) %s" % (rid, flow, seq, f)
        yield "data", daoff + length // 2, "record %d (flow %d seq %d) bytes" % (rid, flow, seq)
    released = empty = 0
    for slot in range(sb["ndesc"]):
        off = sb["desc_off"] + slot * 64
        rid = struct.unpack_from("<Q", data, off)[0]
        mark = struct.unpack_from("<I", data, off + 56)[0]
        if rid and mark == RELEASED and released < 2:
            released += 1
            yield "descriptors", off + 16, "released slot %d" % slot
        elif not rid and empty < 2:
            empty += 1
            yield "descriptors", off + 16, "empty slot %d" % slot
    held = [(d, d + l) for _r, _f, _s, l, _o, d in live]
    end = sb["data_off"] + sb["nsegs"] * sb["seg_size"]
    for off in (end - 100, end - sb["seg_size"] // 2):
        if not any(lo <= off < hi for lo, hi in held):
            yield "data", off, "free data"


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
    elif cmd == "targets":
        for region, off, what in targets(data, int(argv[3])):
            print(region, off, "\\x%02x" % (data[off] ^ 0xFF), what)
    elif cmd == "flows":
        for fl in flows(data):
            print(fl[0], "%x" % fl[1], fl[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
