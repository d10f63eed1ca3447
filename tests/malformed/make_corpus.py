#!/usr/bin/env python3
"""Regenerates the malformed-CSV corpus: every input file, EXPECTED.tsv and README.md.

Each case is (file name, bytes, what is wrong, expected error substring, known bug or None).
The output is deterministic (no clock, no unseeded randomness), so running this again on an
unchanged script leaves `git status` clean.

EXPECTED.tsv: one line per file, `file<TAB>substring` that read_colours_csv's error message must
contain. A line starting with "#KNOWN-BUG " is an input the parser currently handles wrongly (see
README.md); tests/test_malformed.cpp skips it with a WARN. The substring there is the DESIRED one.
Besides the substring, every expected message must be one printable line (no control bytes, valid
UTF-8, bounded length): that is the "one-line error" contract of the CLI.

Usage: tests/malformed/make_corpus.py   (writes next to itself)
"""
import hashlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

HEADER = "Color Name,Credits,R;G;B Dec,RGB Hex,CSS Hex,BG/FG color sample\n"


def row(name, rgb, hexcode="FFFAFA"):
    return f"{name},X11 rgb.txt,{rgb},{hexcode},#{hexcode},### SAMPLE ###\n"


GOOD = row("snow", "255;250;250") + row("GhostWhite", "248;248;255", "F8F8FF")


def b(s):
    return s.encode("utf-8") if isinstance(s, str) else s


def det_bytes(seed, n):
    """n pseudo-random bytes from SHA-256 in counter mode: the same on every Python version."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def garbage():
    data = bytearray(det_bytes("cudaembed-malformed", 4096))
    for i in range(0, len(data), 97):  # make sure there are NULs throughout
        data[i] = 0
    return bytes(data)


CASES = []


def case(name, content, wrong, expect, known_bug=None):
    CASES.append((name, b(content), wrong, expect, known_bug))


# --- truncated rows ---------------------------------------------------------------------------
case("truncated_row.csv", HEADER + GOOD + "WhiteSmoke,X11 rgb.txt\n",
     "row 4 stops after 2 fields; R;G;B Dec is field 3",
     "truncated_row.csv:4: expected at least 3 fields (up to 'R;G;B Dec'), found 2")
case("truncated_name_only.csv", HEADER + "snow\n",
     "row 2 has only the name",
     "truncated_name_only.csv:2: expected at least 3 fields (up to 'R;G;B Dec'), found 1")
case("truncated_mid_rgb.csv", HEADER + GOOD + "WhiteSmoke,X11 rgb.txt,245;24",
     "file ends in the middle of the R;G;B Dec field (no final newline)",
     "truncated_mid_rgb.csv:4: wrong number of RGB components in '245;24': expected 3 (R;G;B), got 2")
case("truncated_mid_quote.csv", HEADER + GOOD + '"DimGray, Dim',
     "file ends inside a quoted name (cut download)",
     "truncated_mid_quote.csv:4: unterminated quoted field")

# --- broken quoting ---------------------------------------------------------------------------
case("unterminated_quote_spanning.csv",
     HEADER + row("snow", "255;250;250") + '"never closed,X11 rgb.txt,1;2;3,010203,#010203,x\n' + GOOD + GOOD,
     "quote opened on line 3 never closes; the rest of the file is swallowed",
     "unterminated_quote_spanning.csv:3: unterminated quoted field")
case("unterminated_quoted_header.csv", '"' + HEADER + GOOD,
     "header starts with a quote that never closes",
     "unterminated_quoted_header.csv:1: unterminated quoted field")
case("stray_quote_in_name.csv", HEADER + GOOD + row('Ghost"White', "248;248;255"),
     "double quote inside an unquoted name",
     "stray_quote_in_name.csv:4: stray double quote inside a field")
case("stray_quote_in_rgb.csv", HEADER + row("snow", '255;"250";250'),
     "double quote in the middle of an unquoted R;G;B field",
     "stray_quote_in_rgb.csv:2: stray double quote inside a field")
case("text_after_closing_quote.csv", HEADER + GOOD + '"DimGray"x,X11 rgb.txt,105;105;105,696969,#696969,x\n',
     "text after the closing quote of a quoted name",
     "text_after_closing_quote.csv:4: unexpected character 'x' after a closing quote")
case("two_quoted_parts.csv", HEADER + '"Dim" "Gray",X11 rgb.txt,105;105;105,696969,#696969,x\n',
     "a second quoted part after the first closes",
     "two_quoted_parts.csv:2: stray double quote inside a field")
case("rgb_quoted_with_newline.csv", HEADER + 'snow,X11 rgb.txt,"255;250\n;250",FFFAFA,#FFFAFA,x\n',
     "quoted R;G;B field with a line break inside: component '250<LF>'",
     "rgb_quoted_with_newline.csv:2: non-numeric RGB component '250\\x0A'")

# --- binary input -----------------------------------------------------------------------------
case("binary_garbage.bin", garbage(),
     "4 KiB of pseudo-random bytes with NULs (not a CSV at all)",
     "binary_garbage.bin:1: missing header column 'Color Name' (the header has: '\\x00")
case("binary_nuls.bin", b"\0" * 1024,
     "1 KiB of NUL bytes",
     "binary_nuls.bin:1: missing header column 'Color Name' (the header has: '\\x00\\x00")
case("nul_in_rgb.csv", HEADER + "snow,X11 rgb.txt,255;250\0;250,FFFAFA,#FFFAFA,x\n",
     "NUL byte after a component",
     "nul_in_rgb.csv:2: non-numeric RGB component '250\\x00'")
case("gzip_file.csv.gz", bytes.fromhex("1f8b0800000000000003") + det_bytes("gz", 200),
     "a gzip-compressed file given as --data (a '\"' byte in the middle of a field)",
     "gzip_file.csv.gz:1: stray double quote inside a field")

# --- RGB values -------------------------------------------------------------------------------
case("negative_rgb.csv", HEADER + GOOD + row("WhiteSmoke", "245;-1;245"),
     "negative component",
     "negative_rgb.csv:4: RGB component -1 out of range 0..255")
case("overflow_rgb.csv", HEADER + row("snow", "99999999999999999999;0;0"),
     "component that overflows any integer type",
     "overflow_rgb.csv:2: RGB component 99999999999999999999 out of range 0..255")
case("int_min_minus_one_rgb.csv", HEADER + row("snow", "0;-2147483649;0"),
     "component just below INT_MIN",
     "int_min_minus_one_rgb.csv:2: RGB component -2147483649 out of range 0..255")
case("rgb_256.csv", HEADER + GOOD + row("WhiteSmoke", "245;245;256"),
     "component 256, one past the maximum",
     "rgb_256.csv:4: RGB component 256 out of range 0..255")
case("float_rgb.csv", HEADER + row("snow", "1.5;250;250"),
     "fractional component",
     "float_rgb.csv:2: non-numeric RGB component '1.5'")
case("hex_in_dec.csv", HEADER + row("snow", "0xFF;0xFA;0xFA"),
     "hex components in the decimal column",
     "hex_in_dec.csv:2: non-numeric RGB component '0xFF'")
case("hex_code_in_dec.csv", HEADER + row("snow", "#FFFAFA"),
     "the CSS hex code in the R;G;B Dec column",
     "hex_code_in_dec.csv:2: non-numeric RGB component '#FFFAFA'")
case("plus_sign.csv", HEADER + row("snow", "+5;0;0"),
     "leading '+' (std::from_chars does not accept it)",
     "plus_sign.csv:2: non-numeric RGB component '+5'")
case("space_in_number.csv", HEADER + row("snow", "1 2;3;4"),
     "space inside a number",
     "space_in_number.csv:2: non-numeric RGB component '1 2'")
case("empty_component.csv", HEADER + row("snow", "1;;3"),
     "empty middle component",
     "empty_component.csv:2: non-numeric RGB component '' in '1;;3'")
case("empty_rgb_field.csv", HEADER + GOOD + row("WhiteSmoke", ""),
     "empty R;G;B Dec field",
     "empty_rgb_field.csv:4: non-numeric RGB component '' in ''")
case("two_components.csv", HEADER + row("snow", "255;250"),
     "only two components",
     "two_components.csv:2: wrong number of RGB components in '255;250': expected 3 (R;G;B), got 2")
case("four_components.csv", HEADER + row("snow", "255;250;250;0"),
     "four components (RGBA)",
     "four_components.csv:2: wrong number of RGB components in '255;250;250;0': expected 3 (R;G;B), got 4")
case("comma_separated_rgb.csv", HEADER + "snow,X11 rgb.txt,\"255,250,250\",FFFAFA,#FFFAFA,x\n",
     "components separated by commas inside a quoted field",
     "comma_separated_rgb.csv:2: non-numeric RGB component '255,250,250'")

# --- delimiters and header --------------------------------------------------------------------
case("semicolon_delimited.csv",
     HEADER.replace(",", ";") + row("snow", "255;250;250").replace(",", ";"),
     "fields separated by ';' instead of ','",
     "semicolon_delimited.csv:1: missing header column 'Color Name'")
case("tab_delimited.csv",
     HEADER.replace(",", "\t") + row("snow", "255;250;250").replace(",", "\t"),
     "fields separated by tabs (a TSV)",
     "tab_delimited.csv:1: missing header column 'Color Name'")
case("no_header.csv", GOOD + row("WhiteSmoke", "245;245;245"),
     "data row on line 1, no header",
     "no_header.csv:1: missing header column 'Color Name'")
case("repeated_header.csv", HEADER + GOOD + HEADER + row("WhiteSmoke", "245;245;245"),
     "the header repeated on line 4 (two files concatenated)",
     "repeated_header.csv:4: non-numeric RGB component 'R' in 'R;G;B Dec'")
case("header_no_color_name.csv", HEADER.replace("Color Name", "Colour Name") + GOOD,
     "header spells 'Colour Name'",
     "header_no_color_name.csv:1: missing header column 'Color Name'")
case("header_no_rgb_column.csv", HEADER.replace("R;G;B Dec", "RGB Dec") + GOOD,
     "header has no 'R;G;B Dec' column",
     "header_no_rgb_column.csv:1: missing header column 'R;G;B Dec'")
case("header_lowercase.csv", HEADER.lower() + GOOD,
     "header names in lower case (matching is case-sensitive)",
     "header_lowercase.csv:1: missing header column 'Color Name'")
case("double_bom.csv", "\ufeff\ufeff" + HEADER + GOOD,
     "two UTF-8 BOMs: only the first is skipped, the second is glued to 'Color Name'",
     "double_bom.csv:1: a second UTF-8 byte-order mark")

# --- empty tables -----------------------------------------------------------------------------
case("empty.csv", b"", "zero bytes", "empty.csv: empty file")
case("whitespace_only.csv", " \t\n  \r\n\t\n\n   ", "spaces, tabs and line breaks only",
     "whitespace_only.csv: empty file")
case("bom_only.csv", b"\xef\xbb\xbf", "a UTF-8 BOM and nothing else", "bom_only.csv: empty file")
case("bom_newlines_only.csv", b"\xef\xbb\xbf\r\n\r\n", "a BOM and CRLFs", "bom_newlines_only.csv: empty file")
case("header_only.csv", HEADER, "header and no rows", "header_only.csv: no usable rows: 0 rows without a name")
case("only_nameless_rows.csv", HEADER + row("", "1;2;3") + row("  ", "4;5;6") + row('""', "7;8;9"),
     "three rows, all without a name",
     "only_nameless_rows.csv: no usable rows: 3 rows without a name")
case("only_comma_rows.csv", HEADER + ",,,,,\n" * 2 + ",,not;a;colour,,,\n",
     "rows of bare commas (and a nameless row with a bad R;G;B): dropped unchecked, as dropna drops them",
     "only_comma_rows.csv: no usable rows: 3 rows without a name")

# --- encodings --------------------------------------------------------------------------------
case("utf8_lone_ff.csv", b(HEADER + GOOD) + b"White\xffSmoke,X11 rgb.txt,245;245;245,F5F5F5,#F5F5F5,x\n",
     "a lone 0xFF byte in a name",
     "utf8_lone_ff.csv:4: invalid UTF-8 in colour name at byte 5 (0xFF)")
case("utf8_truncated.csv", b(HEADER) + b"Caf\xc3,X11 rgb.txt,1;2;3,010203,#010203,x\n",
     "2-byte sequence cut after its lead byte",
     "utf8_truncated.csv:2: invalid UTF-8 in colour name at byte 3 (0xC3)")
case("utf8_overlong.csv", b(HEADER) + b"slash\xc0\xaf,X11 rgb.txt,1;2;3,010203,#010203,x\n",
     "overlong encoding of '/' (C0 AF)",
     "utf8_overlong.csv:2: invalid UTF-8 in colour name at byte 5 (0xC0)")
case("utf8_surrogate.csv", b(HEADER) + b"x\xed\xa0\x80,X11 rgb.txt,1;2;3,010203,#010203,x\n",
     "encoded UTF-16 surrogate U+D800 (ED A0 80)",
     "utf8_surrogate.csv:2: invalid UTF-8 in colour name at byte 1 (0xED)")
case("latin1_name.csv", b(HEADER) + "Caf\u00e9,X11 rgb.txt,1;2;3,010203,#010203,x\n".encode("latin-1"),
     "a Latin-1 encoded file (e9 for e-acute)",
     "latin1_name.csv:2: invalid UTF-8 in colour name at byte 3 (0xE9)")
case("utf16le_bom.csv", b"\xff\xfe" + (HEADER + GOOD).encode("utf-16-le"),
     "the table saved as UTF-16 LE with a BOM (FF FE)",
     "utf16le_bom.csv:1: the file is UTF-16 (byte-order mark 0xFF 0xFE)")
case("utf16be_bom.csv", b"\xfe\xff" + (HEADER + GOOD).encode("utf-16-be"),
     "the table saved as UTF-16 BE with a BOM (FE FF)",
     "utf16be_bom.csv:1: the file is UTF-16 (byte-order mark 0xFE 0xFF)")

# --- line endings -----------------------------------------------------------------------------
case("cr_only_endings.csv", (HEADER + GOOD + row("WhiteSmoke", "245;300;245")).replace("\n", "\r"),
     "old-Mac CR-only line endings (accepted as line breaks) with 300 on line 4",
     "cr_only_endings.csv:4: RGB component 300 out of range 0..255")
case("cr_only_quoted_line_break.csv",
     (HEADER + 'TwoLines,"X11\nrgb.txt",1;2;3,010203,#010203,x\n' + row("bad", "1;2")).replace("\n", "\r"),
     "CR-only file whose quoted Credits field holds a CR line break; the bad row is physical line 4",
     "cr_only_quoted_line_break.csv:4: wrong number of RGB components")
case("crlf_error_line.csv", (HEADER + GOOD + GOOD + row("x", "1;2")).replace("\n", "\r\n"),
     "CRLF file with two components on line 6",
     "crlf_error_line.csv:6: wrong number of RGB components")


def main():
    names = [c[0] for c in CASES]
    if len(names) != len(set(names)):
        sys.exit("duplicate case names")
    for name, data, _, expect, _ in CASES:
        if "\t" in expect or "\n" in expect:
            sys.exit(f"{name}: expectation must not hold a tab or newline")
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    with open(os.path.join(HERE, "EXPECTED.tsv"), "w", encoding="utf-8", newline="\n") as f:
        for name, _, _, expect, bug in CASES:
            f.write(f"{'#KNOWN-BUG ' if bug else ''}{name}\t{expect}\n")

    def cell(s):
        return s.replace("|", "\\|")

    with open(os.path.join(HERE, ".gitattributes"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# The corpus bytes are the test: no line-ending conversion, no text diffs.\n"
                "* -text -diff\n"
                ".gitattributes text eol=lf diff\n"
                "EXPECTED.tsv text eol=lf diff\n"
                "README.md text eol=lf diff\n"
                "make_corpus.py text eol=lf diff\n")
    with open(os.path.join(HERE, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# Malformed colour CSV corpus\n\n")
        f.write("Inputs that `read_colours_csv` (host/data/colours_csv.cpp) must reject with a `cudaembed::Error` whose\n"
                "message contains the expected text and is one printable line (no control bytes, valid UTF-8,\n"
                "bounded length). `tests/test_malformed.cpp` (`cudaembed_tests \"[malformed]\"`) checks every file\n"
                "against `EXPECTED.tsv`; entries marked `#KNOWN-BUG` there are current parser defects, skipped\n"
                "with a warning (their expected text is the desired one). Regenerate everything here, this\n"
                "README included, with `python3 tests/malformed/make_corpus.py`. Cases built on the fly by the\n"
                "test instead of committed: a 300 MB sparse file (size limit), a directory, a FIFO and a 1 MB\n"
                "colour name.\n\n")
        f.write("| File | What is wrong | Error it must produce |\n|---|---|---|\n")
        for name, _, wrong, expect, bug in CASES:
            note = f" **Known bug:** {bug}." if bug else ""
            f.write(f"| `{name}` | {cell(wrong)} | `{cell(expect)}`{cell(note)} |\n")


if __name__ == "__main__":
    main()
