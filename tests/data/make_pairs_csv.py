#!/usr/bin/env python3
"""Writes a large pairs CSV for the throughput numbers of docs/pairs-format.md (not committed: ~270 MB).

    python3 tests/data/make_pairs_csv.py names /tmp/pairs-names.csv 10000000
    python3 tests/data/make_pairs_csv.py ints /tmp/pairs-ints.csv 10000000

Lines look like `item123456,item654,1,0.5` (names) or `123456,654,1,0.5` (ints): a and b drawn
uniformly from a 1M-id vocabulary (the hardest case for the name lookup: no hot names stay in cache),
label 0 or 1, weight one of 0.5, 1, 0.25, 2. The first line is the header a,b,label,weight. Seeded.
"""
import random
import sys

kind, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind not in ("names", "ints"):
    sys.exit("usage: make_pairs_csv.py names|ints OUT.csv COUNT")
random.seed(1)
prefix = "item" if kind == "names" else ""
weights = ["0.5", "1", "0.25", "2"]
draw = random.randrange
with open(path, "w") as out:
    out.write("a,b,label,weight\n")
    lines = []
    for i in range(count):
        lines.append(f"{prefix}{draw(1000000)},{prefix}{draw(1000000)},{draw(2)},{weights[draw(4)]}\n")
        if len(lines) == 100000:
            out.write("".join(lines))
            lines = []
    out.write("".join(lines))
