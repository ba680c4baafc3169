"""Write the corpus of hostile and broken support-ticket exports, byte for byte the same at every run.

    .venv/bin/python tests/data/corpus/make_corpus.py          # (re)write the files beside this script
    .venv/bin/python tests/data/corpus/make_corpus.py --check  # exit 1 if a committed file differs

Every file is built here from literals (nothing copied from elsewhere); `expected.yaml` beside it says what
the pipeline must make of each one, and tests/e2e/test_corpus.py checks both that the committed files are
what this script writes and that the pipeline does what `expected.yaml` says.
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

HEADERS = ["Ticket ID", "Created At", "Updated At", "Resolved At", "Status", "Priority", "Channel",
           "Subject", "Description", "Customer Email", "CSAT Score", "Tags"]
PRIORITIES = ("low", "medium", "high", "urgent")
STATUSES = ("open", "pending", "resolved", "closed")
CHANNELS = ("email", "chat", "phone", "web")


def record(prefix: str, i: int) -> list[str]:
    """One clean ticket: every value valid under the contract, resolved (when set) after created."""
    month, day = 1 + i % 9, 10 + i % 18
    values = {
        "Ticket ID": f"{prefix}-{i:03d}",
        "Created At": f"2024-{month:02d}-{day:02d}T09:{i % 60:02d}:00Z",
        "Updated At": f"2024-{month:02d}-{day:02d}T15:00:00Z",
        "Resolved At": f"2024-{month:02d}-{day + 1:02d}T10:00:00Z" if i % 3 == 0 else "",
        "Status": STATUSES[i % 4],
        "Priority": PRIORITIES[i % 4],
        "Channel": CHANNELS[i % 4],
        "Subject": f"Subject {i}",
        "Description": f"Description of ticket {i}",
        "Customer Email": f"user{i}@example.test",
        "CSAT Score": str(1 + i % 5),
        "Tags": "billing;vip" if i % 2 else "",
    }
    return [values[h] for h in HEADERS]


def quote(value: str, delimiter: str = ",") -> str:
    if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def lines(rows: list[list[str]], delimiter: str = ",", headers: list[str] | None = None) -> list[str]:
    head = headers if headers is not None else HEADERS
    return [delimiter.join(quote(v, delimiter) for v in row) for row in [head, *rows]]


def text(rows: list[list[str]], delimiter: str = ",", eol: str = "\n", headers: list[str] | None = None) -> str:
    return eol.join(lines(rows, delimiter, headers)) + eol


def clean(prefix: str, n: int) -> list[list[str]]:
    return [record(prefix, i) for i in range(1, n + 1)]


# ---------------------------------------------------------------- the files


def empty() -> bytes:
    return b""


def whitespace_only() -> bytes:
    return b"   \n\n  \r\n"


def header_only() -> bytes:
    return text([]).encode()


def binary_gzip() -> bytes:
    # mtime fixed: gzip writes the time into its header, and the file must be the same at every run.
    return gzip.compress(text(clean("GZ", 5)).encode(), mtime=0)


def binary_png() -> bytes:
    """A real 8x8 grey PNG image."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixels = b"".join(b"\x00" + bytes([0x80] * 8) for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(pixels, 9)) + chunk(b"IEND", b""))


def utf16_bom() -> bytes:
    """What a spreadsheet's "Unicode text" export writes: UTF-16 LE with a BOM, tab-separated, CRLF."""
    rows = clean("U16", 6)
    rows[0][7] = "Café crème brûlée"
    rows[1][8] = "Zoë\u2019s naïve façade \u2013 東京 Ελλάδα"  # curly apostrophe, en dash
    rows[2][7] = "Ärger mit Übergrößen"
    return codecs.BOM_UTF16_LE + text(rows, "\t", "\r\n").encode("utf-16-le")


def cp1252_accents() -> bytes:
    rows = clean("W", 6)
    rows[0][7] = "Résumé rejected"
    rows[1][8] = "Price shown as 5 € instead of “5 EUR” \u2013 déjà vu"
    rows[2][7] = "Straße, Müller & Søn"
    return text(rows, ";", "\r\n").encode("cp1252")


def semicolon() -> bytes:
    rows = clean("SC", 5)
    rows[0][8] = "a, b, c (commas inside a ;-file need no quotes)"
    rows[1][8] = "has a ; inside"
    return text(rows, ";").encode()


def tab_delimited() -> bytes:
    rows = clean("TAB", 5)
    rows[0][8] = "commas, and; semicolons are data here"
    return text(rows, "\t").encode()


def pipe_delimited() -> bytes:
    rows = clean("P", 5)
    rows[0][8] = "a | inside quotes"
    return text(rows, "|").encode()


def crlf() -> bytes:
    rows = clean("CR", 5)
    rows[2][8] = "two\r\nlines inside quotes"
    return text(rows, ",", "\r\n").encode()


def mixed_line_endings() -> bytes:
    body = lines(clean("MX", 6))
    eols = ["\r\n", "\n", "\r\n", "\n", "\n", "\r\n", "\n"]
    return "".join(line + eol for line, eol in zip(body, eols, strict=True)).encode()


def trailing_delimiter() -> bytes:
    return "".join(line + ",\n" for line in lines(clean("TD", 5))).encode()


def whitespace_padded() -> bytes:
    rows = [[f"  {v}  " if v else v for v in row] for row in clean("WS", 5)]
    headers = [f"  {h}\t" for h in HEADERS]
    return text(rows, ",", "\n", headers).encode()


def missing_tokens() -> bytes:
    rows = clean("NA", 8)
    rows[0][2], rows[0][3], rows[0][10] = "NULL", "null", "N/A"   # optional timestamps and score
    rows[1][5], rows[1][6], rows[1][9] = "-", "NULL", "n/a"       # priority, channel, email
    rows[2][11], rows[2][7] = "null", "N/A"                       # tags, subject
    rows[3][0] = "NULL"                                           # a required value missing -> quarantined
    rows[4][1] = "-"                                              # a required value missing -> quarantined
    rows[5][7] = "None of the above"                              # a value that merely starts like a token
    return text(rows).encode()


def duplicate_headers() -> bytes:
    headers = [*HEADERS[:8], "Subject", *HEADERS[8:]]
    rows = [[*r[:8], r[7], *r[8:]] for r in clean("DH", 3)]
    return text(rows, headers=headers).encode()


def ragged_rows() -> bytes:
    body = lines(clean("RG", 8))
    body[3] += ",one too many,two too many"   # record 3, line 4
    body[6] = ",".join(body[6].split(",")[:5])  # record 6, line 7: too few fields
    return ("\n".join(body) + "\n").encode()


def unterminated_quote() -> bytes:
    rows = clean("UQ", 8)
    body = lines(rows)
    # Record 4 (line 5) opens a quote in Subject and never closes it: the rest of the file would be read as
    # one field.
    body[4] = body[4].replace("Subject 4", '"Subject 4 has an opening quote only', 1)
    return ("\n".join(body) + "\n").encode()


def unterminated_quote_after_head() -> bytes:
    """The same fault past the part of the file inspect reads (its head, 256 KiB), in the last column: the CSV
    readers take the last 10 records into record 1990's Tags, which has the right field count."""
    body = lines(clean("UQH", 2000))
    body[1990] = body[1990].rsplit(",", 1)[0] + ',"billing;vip'  # record 1990, line 1991
    return ("\n".join(body) + "\n").encode()


def big_description() -> bytes:
    rows = clean("BIG", 4)
    unit = "The customer describes the problem at length, again and again; "  # 64 characters
    rows[1][8] = "START " + unit * (1_000_000 // len(unit)) + " END"
    rows[2][8] = 'short, with "quotes" and\na newline'
    return text(rows).encode()


def too_long_fields() -> bytes:
    """A description one character over the contract's max_field_length (1 MiB) and an id over ticket_id's
    max_length (255): those two rows are quarantined whole, the others published. Gzip-compressed (a few KB)."""
    rows = clean("LONG", 5)
    rows[1][8] = "d" * (1_048_576 + 1)
    rows[2][0] = "LONG-" + "9" * 251  # 256 characters
    rows[3][8] = "é" * 1_048_576  # at the limit in characters (twice that in UTF-8 bytes): published
    return gzip.compress(text(rows).encode(), mtime=0)


def wide_long_headers() -> bytes:
    """1,500 columns named with 150 characters each (225 KB of header, inside the 256 KiB head): inline, the
    inspect step's result would pass Step Functions' 256 KiB payload quota; it travels through S3 instead.
    Gzip-compressed (a few KB)."""
    extra = [f"Custom field {i:04d} " + "z" * 132 for i in range(1500 - len(HEADERS))]
    rows = [[*r, *(f"c{i}" for i in range(len(extra)))] for r in clean("WIDE", 3)]
    return gzip.compress(text(rows, headers=[*HEADERS, *extra]).encode(), mtime=0)


def formula_values() -> bytes:
    rows = clean("F", 6)
    rows[0][7], rows[0][8] = "=SUM(A1)", '=HYPERLINK("http://example.test","click")'
    rows[1][7], rows[1][8] = "+1", "-1+2"
    rows[2][7], rows[2][8] = "@x", "@SUM(1+1)*cmd|' /C calc'!A0"
    rows[3][7] = "'=1+1"   # a spreadsheet's own escape, kept as it is
    return text(rows).encode()


def quoted_newlines() -> bytes:
    rows = clean("QN", 6)
    rows[0][8] = "first line\nsecond line\nthird line"
    rows[1][7] = 'He said "hello" and ""bye""'
    rows[2][8] = '"quoted from start to end"'
    rows[3][8] = "comma, quote \" and\r\nCRLF inside"
    body = lines(rows)
    body[6] = ",".join(body[6].split(",")[:4])  # record 6 starts on line 10 (records 1 and 4 span 3 and 2 lines)
    return ("\n".join(body) + "\n").encode()


def duplicate_ids() -> bytes:
    rows = clean("DUP", 5)
    again = record("DUP", 2)
    again[2] = "2024-03-30T15:00:00Z"  # a later update of ticket 2: it supersedes the earlier line
    again[7] = "Subject 2, updated"
    return text([*rows, again]).encode()


def special_key() -> bytes:
    """Uploaded under a key with spaces, `+`, `%` and non-ASCII letters (see expected.yaml)."""
    rows = clean("KEY", 4)
    rows[0][7] = "Zürich + 100% sure"
    return text(rows).encode()


def dotdot_key() -> bytes:
    """Uploaded under a key with `..` segments: a name like any other (see expected.yaml)."""
    return text(clean("DD", 2)).encode()


FILES: dict[str, Callable[[], bytes]] = {
    "empty.csv": empty,
    "whitespace_only.csv": whitespace_only,
    "header_only.csv": header_only,
    "binary_gzip.csv": binary_gzip,
    "binary_png.csv": binary_png,
    "utf16_bom.csv": utf16_bom,
    "cp1252_accents.csv": cp1252_accents,
    "semicolon.csv": semicolon,
    "tab_delimited.csv": tab_delimited,
    "pipe_delimited.csv": pipe_delimited,
    "crlf.csv": crlf,
    "mixed_line_endings.csv": mixed_line_endings,
    "trailing_delimiter.csv": trailing_delimiter,
    "whitespace_padded.csv": whitespace_padded,
    "missing_tokens.csv": missing_tokens,
    "duplicate_headers.csv": duplicate_headers,
    "ragged_rows.csv": ragged_rows,
    "unterminated_quote.csv": unterminated_quote,
    "unterminated_quote_after_head.csv": unterminated_quote_after_head,
    "big_description.csv": big_description,
    "too_long_fields.csv": too_long_fields,
    "wide_long_headers.csv": wide_long_headers,
    "formula_values.csv": formula_values,
    "quoted_newlines.csv": quoted_newlines,
    "duplicate_ids.csv": duplicate_ids,
    "special_key.csv": special_key,
    "dotdot_key.csv": dotdot_key,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, build in FILES.items():
        data, path = build(), HERE / name
        if args.check:
            if not path.exists() or path.read_bytes() != data:
                stale.append(name)
        else:
            path.write_bytes(data)
    if stale:
        print(f"stale corpus files (run {Path(__file__).name}): {stale}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
