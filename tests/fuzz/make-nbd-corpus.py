#!/usr/bin/env python3
"""Writes the NBD server fuzzer's seed inputs (what a client sends) into
tests/fuzz/nbd-corpus/: each a plausible session the mutator then breaks."""
import os
import struct
import sys

OPTS = 0x49484156454F5054
REQ = 0x25609513


def opt(num, data=b""):
    return struct.pack(">QII", OPTS, num, len(data)) + data


def go(name=b"disk", infos=(3,)):
    return opt(7, struct.pack(">I", len(name)) + name +
               struct.pack(">H", len(infos)) +
               b"".join(struct.pack(">H", i) for i in infos))


def meta(num, queries, name=b"disk"):
    body = struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries))
    for q in queries:
        body += struct.pack(">I", len(q)) + q
    return opt(num, body)


def req(cmd, offset=0, length=0, flags=0, cookie=1, payload=b""):
    return struct.pack(">IHHQQI", REQ, flags, cmd, cookie, offset, length) + payload


FLAGS = struct.pack(">I", 3)        # fixed newstyle, no zeroes
DISC = req(2)

SEEDS = {
    "go-read-write": FLAGS + go() + req(1, 4096, 512, payload=b"\x5a" * 512) +
    req(0, 4096, 512, cookie=2) + req(3, cookie=3) + DISC,
    "export-name": FLAGS + opt(1, b"disk") + req(0, 0, 4096) +
    req(4, 0, 65536, cookie=2) + req(6, 8192, 4096, flags=2, cookie=3) + DISC,
    "list-info-meta": FLAGS + opt(3) +
    opt(6, struct.pack(">I", 4) + b"disk" + struct.pack(">HHH", 2, 1, 2)) +
    meta(9, []) + meta(9, [b"base:", b"qemu:"]) + opt(2),
    "structured-status": FLAGS + opt(8) +
    meta(10, [b"base:allocation", b"qemu:allocation-depth"]) + go() +
    req(7, 0, 1 << 20, cookie=1) + req(7, 4096, 4096, flags=8, cookie=2) +
    req(0, 0, 65536, cookie=3) + req(0, 0, 4096, flags=4, cookie=4) +
    req(5, 0, 65536, cookie=5) + DISC,
    "bad-requests": FLAGS + go() + req(0, (1 << 20) - 512, 4096) +
    req(9, cookie=2) + req(1, 1 << 20, 512, cookie=3, payload=b"\0" * 512) +
    req(0, 0, 512, flags=0x8000, cookie=4) + DISC,
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "nbd-corpus")
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name + ".nbd"), "wb") as f:
        f.write(data)
