"""Detect how a CSV file is written from its first bytes: encoding, BOM, delimiter, header.

Used by the inspect Lambda (which reads only the head of the object) and by the Glue job, so both agree.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from itertools import islice
from typing import Any

from ticketcore.contract import SchemaError

HEAD_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
SNIFF_RECORDS = 20  # data records the delimiter must agree with, when the header line allows several

# Magic numbers of binaries that get uploaded with a .csv name.
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip (or xlsx)",
    b"\x89PNG": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
    b"%PDF": "PDF",
    b"GIF8": "GIF image",
    b"PAR1": "Parquet",
    b"\xd0\xcf\x11\xe0": "OLE2 (xls)",
}


@dataclass(frozen=True)
class Dialect:
    encoding: str  # the Python codec name; output is always UTF-8
    bom: bool
    delimiter: str
    headers: list[str]
    line_terminator: str  # of records (newlines inside quoted values do not count): "\r\n", "\n" or "mixed"
    # Every line ends with the delimiter: each record has one more (empty) field than there are headers.
    trailing_delimiter: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Dialect:
        """The inverse of `to_dict` (the inspect step's JSON); a field the JSON lacks keeps its default, so a
        dialect written before the field existed still reads."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def detect_encoding(head: bytes) -> tuple[str, bool]:
    """Return (python codec, had BOM). Raise SchemaError when the bytes are not text."""
    if not head:
        raise SchemaError("empty file: no bytes to read")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", True
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", True
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            raise SchemaError(f"not text: the file starts like {kind} (first bytes {head[:8].hex(' ')})")
    if b"\x00" in head:
        offset = head.index(b"\x00")
        raise SchemaError(f"not text: NUL bytes found at offset {offset} (binary content?)")
    try:
        # A head cut mid-character is fine: only the last few bytes may be incomplete.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8", False
    except UnicodeDecodeError:
        pass
    text = head.decode("cp1252", errors="replace")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t")
    if controls > max(8, len(text) // 100) or text.count("\ufffd") > len(text) // 100:
        raise SchemaError(f"not text: {controls} control characters in the first {len(head)} bytes")
    return "cp1252", False


def decode_head(head: bytes) -> tuple[str, str, bool]:
    encoding, bom = detect_encoding(head)
    # Drop a possibly cut multibyte character at the end of the head.
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    return text.lstrip("\ufeff"), encoding, bom


def csv_reader(text: str, delimiter: str) -> Any:
    """`csv.reader` over decoded text, able to hold any field of a head: a head is at most HEAD_BYTES, and one
    long value (a pasted log, a 1 MB description) must not fail with "field larger than field limit"."""
    if csv.field_size_limit() < HEAD_BYTES * 4:
        csv.field_size_limit(HEAD_BYTES * 4)
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def sniff_delimiter(header_line: str, sample: str = "") -> str:
    """The delimiter is the candidate seen most often outside quotes in the header line; when the header line
    holds several candidates, the one that splits the first records of `sample` (the head, header included)
    into as many fields as the header wins (tab-padded comma headers, `;` inside comma-separated names)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes = False
    for ch in header_line:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in counts:
            counts[ch] += 1
    candidates = [d for d in DELIMITERS if counts[d]]
    if not candidates:
        return ","
    if len(candidates) == 1 or not sample:
        return max(candidates, key=lambda d: counts[d])

    def agreement(delimiter: str) -> float:
        rows = [r for r in islice(csv_reader(sample, delimiter), 1, SNIFF_RECORDS + 1) if r]
        return sum(len(r) == counts[delimiter] + 1 for r in rows) / len(rows) if rows else 0.0

    return max(candidates, key=lambda d: (agreement(d), counts[d]))


def has_trailing_delimiter(headers: list[str], records: Iterable[list[str]]) -> bool:
    """Every line ends with the delimiter: the header's last name is empty (not a column) and each record has
    that one extra field. When the records of the head do not (most of them are as wide as the named headers),
    only the header line had a stray delimiter, and the records need no extra column."""
    if len(headers) < 2 or headers[-1] != "":
        return False
    widths = [len(r) for r in records if r]
    return sum(w == len(headers) for w in widths) >= sum(w == len(headers) - 1 for w in widths)


@dataclass(frozen=True)
class Scan:
    """What a quote-aware walk over CSV text found."""

    crlf: int  # record terminators outside quoted values
    lf: int
    open_quote_line: int | None  # the line a quoted value opens on that is still open at the end of the text


def scan(text: str, delimiter: str) -> Scan:
    """Walk `text` the way the CSV readers do: a quote opens a quoted value only at the start of a field, `""`
    inside one is a quote, and newlines inside one are data. Lines are counted by `\\n`, as the job does."""
    special = re.compile("[" + re.escape(delimiter) + '"\r\n]')
    crlf = lf = 0
    line, i, n = 1, 0, len(text)
    field_start = True
    while i < n:
        if field_start and text[i] == '"':
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    return Scan(crlf, lf, line)
                if k + 1 < n and text[k + 1] == '"':
                    j = k + 2
                    continue
                break
            line += text.count("\n", i, k)
            i, field_start = k + 1, False
            continue
        m = special.search(text, i)
        if m is None:
            break
        ch, i = m.group(), m.end()
        if ch == "\n":
            lf, line, field_start = lf + 1, line + 1, True
        elif ch == "\r" and text.startswith("\n", i):
            crlf, line, i, field_start = crlf + 1, line + 1, i + 1, True
        else:
            # A delimiter starts a field; a quote after other characters, or a lone CR, is data.
            field_start = ch == delimiter
    return Scan(crlf, lf, None)


def detect_dialect(head: bytes) -> Dialect:
    text, encoding, bom = decode_head(head)
    if not text.strip():
        raise SchemaError(f"empty file: {len(head)} bytes but no header line (only whitespace)")
    first_line = text.splitlines()[0] if text.splitlines() else text
    delimiter = sniff_delimiter(first_line, text)
    reader = csv_reader(text, delimiter)
    headers = [h.strip() for h in next(reader)]
    trailing = has_trailing_delimiter(headers, islice(reader, SNIFF_RECORDS))
    while len(headers) > 1 and headers[-1] == "":
        headers.pop()
    found = scan(text, delimiter)
    crlf, lf = found.crlf, found.lf
    terminator = "\r\n" if crlf and not lf else ("\n" if not crlf else "mixed")
    return Dialect(encoding=encoding, bom=bom, delimiter=delimiter, headers=headers, line_terminator=terminator,
                   trailing_delimiter=trailing)
