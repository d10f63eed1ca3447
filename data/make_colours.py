#!/usr/bin/env python3
"""Generate data/colours.csv, the colour table bundled with cudaembed.

Standard library only.  Run from the repository root:

    python3 data/make_colours.py            # reads /etc/X11/rgb.txt
    python3 data/make_colours.py --rgb PATH --out PATH

The output imitates the layout of the Kaggle "colour name and RGB codes"
CSV (header ``Color Name,Credits,R;G;B Dec,RGB Hex,CSS Hex,BG/FG color
sample``), but its content comes from X11's rgb.txt (Debian x11-common
1:7.7+23).  The output is deterministic: the same rgb.txt always gives
byte-identical output.

Rules (see data/README.md):

1. Parse rgb.txt: lines starting with '!' are comments; every other
   non-blank line is "R G B<whitespace>name".
2. Names are grouped case-insensitively with spaces removed, so
   "ghost white" and "GhostWhite" are one colour.  The row uses the form
   without spaces ("GhostWhite", "DarkSlateGray", "snow"); every group in
   rgb.txt has exactly one such form.  Groups are kept in order of first
   appearance in rgb.txt.  This gives 658 distinct names.
3. Gray/grey merging.  rgb.txt spells every grey both ways with the same
   RGB.  Exactly twelve gray/grey pairs are merged into one row whose name
   is the two spellings joined by ", " (in rgb.txt order), e.g.
   "DimGray, DimGrey" or "gray50, grey50".  The merged pairs are
     * the 7 un-numbered pairs: DarkSlateGray, DimGray, SlateGray,
       LightSlateGray, gray, LightGrey, DarkGrey;
     * the 5 numbered pairs at quarter steps: gray0, gray25, gray50,
       gray75, gray100.
   All other gray/grey spellings stay as separate rows.  The merged row
   sits where the first of the two spellings appeared.
   658 - 12 = 646 named rows, 12 of which contain a comma (and are
   therefore quoted in the CSV).
4. Rows are NOT de-duplicated by RGB: "navy" and "NavyBlue" both keep
   their row with 0;0;128, as do the remaining gray/grey spellings.
5. Five rows with an EMPTY name are inserted, imitating the nameless rows
   of the Kaggle original that a parser must drop.  A nameless row is
   written directly after named rows number 7, 150, 320, 477 and 640
   (1-based) and repeats the RGB of the row before it, with Credits
   "synthetic nameless row".  Colour ids are the row index after the
   nameless rows have been dropped, so ids are 0..645 in file order.
"""

import argparse
import csv
import io
import os
import re
import sys

HEADER = ["Color Name", "Credits", "R;G;B Dec", "RGB Hex", "CSS Hex",
          "BG/FG color sample"]
CREDITS = "X11 rgb.txt"
EMPTY_CREDITS = "synthetic nameless row"
SAMPLE = "### SAMPLE ###"

# Gray/grey pairs merged into one comma-named row (keys: lower case, no
# spaces, "gray" spelling).
MERGED_UNNUMBERED = ["darkslategray", "dimgray", "slategray",
                     "lightslategray", "gray", "lightgray", "darkgray"]
MERGED_NUMBERED = ["gray%d" % n for n in (0, 25, 50, 75, 100)]
MERGED_KEYS = MERGED_UNNUMBERED + MERGED_NUMBERED

# A nameless row follows the named row with this 1-based number.
EMPTY_AFTER = (7, 150, 320, 477, 640)

EXPECTED_DISTINCT = 658
EXPECTED_NAMED = 646

LINE_RE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S.*?)\s*$")


def parse_rgb_txt(path):
    """Return [(name, (r, g, b))] in file order."""
    entries = []
    with open(path, encoding="ascii") as f:
        for lineno, line in enumerate(f, 1):
            if line.startswith("!") or not line.strip():
                continue
            m = LINE_RE.match(line)
            if not m:
                raise ValueError("%s:%d: cannot parse %r" % (path, lineno, line))
            rgb = tuple(int(m.group(i)) for i in (1, 2, 3))
            if not all(0 <= c <= 255 for c in rgb):
                raise ValueError("%s:%d: component out of range" % (path, lineno))
            entries.append((m.group(4), rgb))
    return entries


def key_of(name):
    return name.replace(" ", "").lower()


def distinct_names(entries):
    """Group by key; return [(key, name_without_spaces, rgb)] in order."""
    order = []
    forms = {}
    rgbs = {}
    for name, rgb in entries:
        k = key_of(name)
        if k not in forms:
            order.append(k)
            forms[k] = []
            rgbs[k] = rgb
        elif rgbs[k] != rgb:
            raise ValueError("name %r has two RGB values" % name)
        if " " not in name and name not in forms[k]:
            forms[k].append(name)
    out = []
    for k in order:
        if len(forms[k]) != 1:
            raise ValueError("name group %r has no unique space-free form: %r"
                             % (k, forms[k]))
        out.append((k, forms[k][0], rgbs[k]))
    return out


def merge_grays(names):
    """Merge the MERGED_KEYS gray/grey pairs into comma-named rows."""
    by_key = {k: (n, rgb) for k, n, rgb in names}
    partner = {}
    for gk in MERGED_KEYS:
        ek = gk.replace("gray", "grey")
        if gk not in by_key or ek not in by_key:
            raise ValueError("gray/grey pair %r/%r missing" % (gk, ek))
        if by_key[gk][1] != by_key[ek][1]:
            raise ValueError("gray/grey pair %r has two RGB values" % gk)
        partner[gk] = ek
        partner[ek] = gk
    rows = []
    done = set()
    for k, n, rgb in names:
        if k in done:
            continue
        if k in partner:
            other = partner[k]
            rows.append(("%s, %s" % (n, by_key[other][0]), rgb))
            done.add(other)
        else:
            rows.append((n, rgb))
        done.add(k)
    return rows


def build_rows(entries):
    names = distinct_names(entries)
    if len(names) != EXPECTED_DISTINCT:
        raise ValueError("expected %d distinct names, got %d"
                         % (EXPECTED_DISTINCT, len(names)))
    named = merge_grays(names)
    if len(named) != EXPECTED_NAMED:
        raise ValueError("expected %d named rows, got %d"
                         % (EXPECTED_NAMED, len(named)))
    rows = []
    for i, (name, rgb) in enumerate(named, 1):
        rows.append((name, CREDITS, rgb))
        if i in EMPTY_AFTER:
            rows.append(("", EMPTY_CREDITS, rgb))
    return rows


def render(rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(HEADER)
    for name, credits, (r, g, b) in rows:
        hexv = "%02X%02X%02X" % (r, g, b)
        w.writerow([name, credits, "%d;%d;%d" % (r, g, b), hexv, "#" + hexv,
                    SAMPLE])
    return buf.getvalue().encode("utf-8")


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rgb", default="/etc/X11/rgb.txt",
                    help="path to X11 rgb.txt (default: %(default)s)")
    ap.add_argument("--out", default=os.path.join(here, "colours.csv"),
                    help="output CSV (default: data/colours.csv)")
    args = ap.parse_args(argv)
    data = render(build_rows(parse_rgb_txt(args.rgb)))
    with open(args.out, "wb") as f:
        f.write(data)
    print("wrote %s (%d bytes)" % (args.out, len(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
