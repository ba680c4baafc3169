"""Detect how a CSV file is written from its first bytes: encoding, BOM, delimiter, header.

Used by the inspect Lambda (which reads only the head of the object) and by the Glue job, so both agree.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import asdict, dataclass

from ticketcore.contract import SchemaError

HEAD_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")

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
    line_terminator: str  # "\r\n", "\n" or "mixed"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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


def sniff_delimiter(header_line: str) -> str:
    """The delimiter is the candidate seen most often outside quotes in the header line."""
    counts = dict.fromkeys(DELIMITERS, 0)
    in_quotes = False
    for ch in header_line:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def detect_dialect(head: bytes) -> Dialect:
    text, encoding, bom = decode_head(head)
    if not text.strip():
        raise SchemaError(f"empty file: {len(head)} bytes but no header line (only whitespace)")
    first_line = text.splitlines()[0] if text.splitlines() else text
    delimiter = sniff_delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    headers = [h.strip() for h in next(reader)]
    # A trailing delimiter on every line yields one empty last header: not a column.
    while len(headers) > 1 and headers[-1] == "":
        headers.pop()
    crlf, lf = text.count("\r\n"), text.count("\n")
    terminator = "\r\n" if crlf and crlf == lf else ("\n" if not crlf else "mixed")
    return Dialect(encoding=encoding, bom=bom, delimiter=delimiter, headers=headers, line_terminator=terminator)
