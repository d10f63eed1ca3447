#!/usr/bin/env python3
"""Writes the seed inputs of tests/fuzz/fuzz_pairs_file.cpp into this folder (README.md says how
an input is laid out: two control bytes, then the file). Run: python3 tests/fuzz/pairs_seeds/make_seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def fnv1a(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def cepairs1(pairs, rows, names=None, labelled=True, weighted=False):
    """A CEPAIRS1 file as docs/pairs-format.md lays it out; pairs are (a, b, label, weight)."""
    records = b"".join(struct.pack("<IIff", a, b, label, weight) for a, b, label, weight in pairs)
    section = b"".join(struct.pack("<I", len(n)) + n for n in (names or []))
    flags = (1 if labelled else 0) | (2 if weighted else 0) | (4 if names else 0)
    names_offset = 64 + len(records) if names else 0
    header = b"CEPAIRS1" + struct.pack("<IIQQQQQQ", 1, flags, len(pairs), rows, names_offset, len(section),
                                       fnv1a(records + section), 0)
    return header + records + section


# Control bytes: '@' chunk 1, 'A' chunk 2, 'G' chunk 8; '@' auto, 'A' names, 'B' ints,
# 'N' ints with --rows 1000, 'P' auto and fix the CEPAIRS1 checksum, '`' auto and read_pairs_file too.
SEEDS = {
    "names_header_quotes.seed": b"A@" + b'a,b,label\n"Grey, Silver","say ""hi""",0\nred,blue,1\n'
                                b'"two\nlines",red,0.25\n',
    "ints_labelled.seed": b"G@" + b"0,1,1\n2,3,0\n10,0,0.5\n",
    "ints_rows.seed": b"GN" + b"a,b\n0,999\n7,7\n",
    "positives_crlf.seed": b"@@" + b"\xef\xbb\xbfcat,dog\r\ndog,wolf\r\n\r\nwolf,cat",
    "names_forced.seed": b"AA" + b"7,007\n007,8\n",
    "weighted.seed": b"G`" + b"a,b,label,weight\nx,y,1,0.5\ny,z,0,2\nz,x,0.75,0\n",
    "binary_names.seed": b"AP" + cepairs1([(0, 1, 1.0, 0.5), (1, 2, 0.0, 2.0)], 3, [b"red", b"blue", b"Grey, Silver"],
                                          weighted=True),
    "binary_ints.seed": b"AP" + cepairs1([(0, 4, 1.0, 1.0), (3, 2, 1.0, 1.0)], 5, labelled=False),
}

for name, data in SEEDS.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
