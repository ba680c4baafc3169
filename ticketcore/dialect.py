"""Detect how a CSV file is written from its first bytes: encoding, BOM, delimiter, header.

Used by the inspect Lambda (which reads only the head of the object) and by the Glue job, so both agree.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import functools
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from itertools import islice
from typing import Any

from ticketcore.contract import SchemaError
from ticketcore.source import FALLBACK_ERRORS, EncodingCheck, fallback_decode

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
    # How many fields each record has after the named ones (Excel's used range: `a,b,,` has 2); 0 with no
    # trailing delimiter. A dialect written before this field existed reads as 1 when trailing_delimiter.
    trailing_fields: int = 0
    # Physical lines before the header record: blank lines and Excel's `sep=;` hint line.
    preamble_lines: int = 0
    # Physical lines the header record covers (a quoted header cell may hold line breaks).
    header_lines: int = 1
    # Records the CSV reader returns before the first data record (a `sep=` line, then the header itself;
    # blank lines are skipped by the reader and do not count).
    skip_records: int = 1
    # A quoted value in the head holds a line break: records span lines, so Spark must read the file whole
    # (multiLine). False says nothing about the rest of the file: the Glue job's whole-file scan decides.
    quoted_line_breaks: bool = False

    @property
    def extra_fields(self) -> int:
        """Fields read after the named columns (and dropped): the trailing delimiter's."""
        return max(self.trailing_fields, 1 if self.trailing_delimiter else 0)

    @property
    def lines_before_data(self) -> int:
        """Physical lines up to the end of the header record: the first data record starts on the next one."""
        return self.preamble_lines + self.header_lines

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Dialect:
        """The inverse of `to_dict` (the inspect step's JSON); a field the JSON lacks keeps its default, so a
        dialect written before the field existed still reads."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def detect_encoding(head: bytes) -> tuple[str, bool]:
    """Return (python codec, had BOM) for the first bytes of a file's text, by the rule the Glue job applies to
    the whole file (`ticketcore.source.EncodingCheck`): "utf-8" when the head holds valid multi-byte UTF-8 or
    only ASCII (stray bytes in it are decoded by fallback), "cp1252" when it holds no valid multi-byte sequence
    and some invalid bytes; "utf-8-sig" / "utf-16" by their BOM. The job decides again from every byte.
    Raise SchemaError when the bytes are not text (a compressed upload is decompressed before: `text_head`)."""
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
    check = EncodingCheck()
    check.feed(head)
    # Not final: a head cut mid-character is fine (only its last few bytes may be incomplete).
    encoding = check.result(complete=False).encoding
    if encoding == "cp1252":
        text = fallback_decode(head)
        controls = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\r\n\t") or 0x80 <= ord(ch) < 0xA0)
        if controls > max(8, len(text) // 100):
            raise SchemaError(f"not text: {controls} control characters in the first {len(head)} bytes")
    return encoding, False


def decode_head(head: bytes) -> tuple[str, str, bool]:
    """(text, codec, had BOM) of the first bytes of a file's text: no U+FFFD for stray bytes (decoded as
    Windows-1252, as the job does), a multi-byte character cut by the end of the head dropped."""
    encoding, bom = detect_encoding(head)
    errors = "replace" if encoding == "utf-16" else FALLBACK_ERRORS
    text = codecs.getincrementaldecoder(encoding)(errors=errors).decode(head, final=False)
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


def trailing_field_count(headers: list[str], records: Iterable[list[str]]) -> int:
    """How many fields after the named columns each record has: the header line ends in k empty names (Excel's
    used range writes `a,b,,`; a trailing delimiter writes one), and the records of the head are read for how
    many of those they really carry (the width most of them have; a tie goes to the wider). 0 when the header
    ends with a name, or when the records are as wide as the named headers (only the header line had stray
    delimiters)."""
    k = 0
    while k < len(headers) - 1 and headers[len(headers) - 1 - k] == "":
        k += 1
    if not k:
        return 0
    named = len(headers) - k
    widths = [len(r) for r in records if r]
    if not widths:
        return k
    return max(range(k + 1), key=lambda t: (sum(w == named + t for w in widths), t))


def has_trailing_delimiter(headers: list[str], records: Iterable[list[str]]) -> bool:
    """Every line ends with the delimiter (at least one field after the named columns)."""
    return trailing_field_count(headers, records) > 0


@dataclass(frozen=True)
class Scan:
    """What a quote-aware walk over CSV text found."""

    crlf: int  # record terminators outside quoted values
    lf: int
    open_quote_line: int | None  # the line a quoted value opens on that is still open at the end of the text
    # Blank lines outside quoted values (empty or a lone "\r"), 1-based: the CSV readers skip them, so the job
    # adds them back to compute the physical line each record starts on.
    blank_lines: tuple[int, ...] = ()
    # The first line on which a quoted value holding a line break ("\n" or "\r") opens; None when no quoted
    # value holds one, so every record is one line and Spark may split the file by lines (`csv_parse_plan`).
    quoted_break_line: int | None = None
    # The first line (after the first) of only spaces, tabs and other control characters, not blank: Spark's line
    # reader skips it, the whole-file reader reads it as a record, so such a file is read whole. Lines inside
    # quoted values count too (they only matter when no quoted value holds a line break).
    whitespace_line: int | None = None
    # The blank lines that are a lone "\r" (among `blank_lines`): blank to the reader of a "\r\n" file, a record
    # of one "\r" to the whole-file reader of a "\n" file (which Spark's line reader would skip).
    cr_lines: tuple[int, ...] = ()


# The rest of a quoted value after its opening quote: `""` is a quote inside it; up to the closing quote or the
# end of the text. Possessive: a lone `"` always closes, never backtracked into.
_QUOTED_BODY = r'[^"]*+(?:""[^"]*+)*+'


@functools.lru_cache
def _quoted_value(delimiter: str) -> re.Pattern[str]:
    """A quoted value: a quote at the start of a field (after the delimiter or a newline, or first in the text),
    checked behind the quote so that the search jumps from quote to quote. Group 1 is its closing quote."""
    field_end = re.escape(delimiter) + "\n"
    return re.compile(f'"(?<![^{field_end}]"){_QUOTED_BODY}(?:(")|\\Z)')


_REST_OF_QUOTED = re.compile(_QUOTED_BODY)


def _blank_line_starts(text: str) -> list[int]:
    """Where a blank line starts (right after a newline, nothing or a lone "\r" before the next one), in order.
    `str.find` for "\n\n" and "\n\r\n": a regex with a look-behind tries every position of the text (measured:
    it tripled the cost of scanning a whole file)."""
    starts = []
    for pattern in ("\n\n", "\n\r\n"):
        i = text.find(pattern)
        while i >= 0:
            starts.append(i + 1)
            i = text.find(pattern, i + 1)
    return sorted(starts)


# A line of whitespace only, not blank (a lone "\r" is blank), found from the newline before it: a search that
# starts with a literal is fast; one anchored at every line start (`(?m)^`) cost ten times more.
_WHITESPACE_LINE = re.compile(r"\n(?!\r\n)[\x00-\x09\x0b-\x20]+(?=\n)")
_WHITESPACE_ONLY = re.compile(r"[\x00-\x09\x0b-\x20]*")


def _holds_break(text: str, start: int, end: int) -> bool:
    return text.find("\n", start, end) >= 0 or text.find("\r", start, end) >= 0


class QuoteScanner:
    """`scan`, resumable: feed the text in pieces, in order (a whole object, streamed, in constant memory), then
    `result()` is what `scan` of the whole text gives. Regular expressions jump from quoted value to quoted value
    and `str.count` counts lines, so a piece costs a few passes in C and one Python step per quoted value."""

    def __init__(self, delimiter: str) -> None:
        self._delimiter = delimiter
        self._quoted = _quoted_value(delimiter)
        self._line = 1  # the line the next piece starts on
        self._nl = self._crlf = 0  # outside quoted values
        self._open_line: int | None = None  # a quoted value is open at the end of what was fed: where it opened
        # The last character fed closed the quoted value that opened on line `_closed_line`: a `"` first in
        # the next piece makes the two one `""`, and the value goes on.
        self._closed_line: int | None = None
        self._last = "\n"  # the last character fed; nothing fed yet is the start of a field
        self._blank: list[int] = []
        self._pending_cr = False  # the line the last piece ended in holds only "\r" so far (outside quotes)
        self._break_line: int | None = None  # where the first quoted value holding a line break opens
        self._whitespace_line: int | None = None
        self._cr_lines: list[int] = []
        self._ws_carry = ""  # the last piece's last "\n" and the whitespace after it (a line still open)

    def feed(self, text: str) -> None:
        if not text:
            return
        n, pos, inside_nl, inside_crlf = len(text), 0, 0, 0
        quoted: list[tuple[int, int]] = []  # spans of quoted values in this piece, in order
        blank_starts = _blank_line_starts(text)  # most pieces have none: then no span is kept
        at_line_start = self._last == "\n" and self._open_line is None and self._closed_line is None
        if self._closed_line is not None and text[0] == '"':
            self._open_line, pos = self._closed_line, 1
        self._closed_line = None
        if self._open_line is not None:
            match = _REST_OF_QUOTED.match(text, pos)
            pos = match.end() if match else pos  # it always matches, maybe nothing
            inside_nl, inside_crlf = text.count("\n", 0, pos), text.count("\r\n", 0, pos)
            quoted.append((0, pos))
            if self._break_line is None and _holds_break(text, 0, pos):
                self._break_line = self._open_line
            if pos < n:  # its closing quote
                self._closed_line = self._open_line if pos + 1 == n else None
                self._open_line, pos = None, pos + 1
        elif text[0] == "\n" and self._last == "\r":
            self._crlf += 1  # a "\r\n" split between two pieces
        elif text[0] == '"' and self._last not in (self._delimiter, "\n"):
            pos = 1  # a quote after other characters is data (the look-behind cannot see the previous piece)
        if self._open_line is None:
            for m in self._quoted.finditer(text, pos):
                start, end = m.span()
                if blank_starts:
                    quoted.append((start, end))
                inside_nl += text.count("\n", start, end)
                inside_crlf += text.count("\r\n", start, end)
                if self._break_line is None and _holds_break(text, start, end):
                    self._break_line = self._line + text.count("\n", 0, start)
                if m.group(1) is None:  # runs to the end of the piece: the last match
                    self._open_line = self._line + text.count("\n", 0, start)
                elif end == n:
                    self._closed_line = self._line + text.count("\n", 0, start)
        if self._pending_cr and text[0] == "\n":
            self._blank.append(self._line)  # a blank "\r\n" line cut between two pieces
            self._cr_lines.append(self._line)
        self._find_blank_lines(text, blank_starts, quoted, at_line_start)
        self._pending_cr = self._open_line is None and text.endswith("\r") and (
            text.endswith("\n\r") or (len(text) == 1 and at_line_start)
        )
        if self._whitespace_line is None:
            self._find_whitespace_line(text)
        lines = text.count("\n")
        self._nl += lines - inside_nl
        self._crlf += text.count("\r\n") - inside_crlf
        self._line += lines
        self._last = text[-1]

    def _find_whitespace_line(self, text: str) -> None:
        joined = self._ws_carry + text
        first = self._line - (1 if self._ws_carry else 0)  # the line `joined` starts on
        m = _WHITESPACE_LINE.search(joined)
        if m:
            self._whitespace_line = first + joined.count("\n", 0, m.start()) + 1
            return
        last = joined.rfind("\n")
        tail = joined[last:] if last >= 0 else (joined if self._ws_carry else "")
        self._ws_carry = tail if tail and _WHITESPACE_ONLY.fullmatch(tail, 1) else ""

    def _find_blank_lines(self, text: str, starts: list[int], quoted: list[tuple[int, int]],
                          at_line_start: bool) -> None:
        if at_line_start and (text.startswith("\n") or text.startswith("\r\n")):
            starts.insert(0, 0)  # the piece begins on a line of its own (or the text starts blank)
        if not starts:
            return
        quote_starts = [a for a, _ in quoted]
        line, counted = self._line, 0
        for b in starts:
            i = bisect.bisect_right(quote_starts, b) - 1
            if i >= 0 and b < quoted[i][1]:
                continue  # a newline inside a quoted value is data
            line += text.count("\n", counted, b)
            counted = b
            self._blank.append(line)
            if text.startswith("\r", b):
                self._cr_lines.append(line)

    def result(self) -> Scan:
        return Scan(self._crlf, self._nl - self._crlf, self._open_line, tuple(self._blank), self._break_line,
                    self._whitespace_line, tuple(self._cr_lines))


def scan(text: str, delimiter: str) -> Scan:
    """Walk `text` the way the CSV readers do: a quote opens a quoted value only at the start of a field, `""`
    inside one is a quote, and newlines inside one are data. Lines are counted by `\\n`, as the job does."""
    scanner = QuoteScanner(delimiter)
    scanner.feed(text)
    return scanner.result()


# Encodings in which every byte below 0x80 is that ASCII character, alone: quotes, newlines and delimiters
# (all ASCII) are found in the bytes decoded as Latin-1, one character per byte, without decoding them.
_ASCII_BYTES = ("utf-8", "utf-8-sig", "cp1252")


def scan_stream(pieces: Iterable[bytes], encoding: str, delimiter: str) -> Scan:
    """`scan` of a whole encoded object that arrives in pieces (as `detect_dialect` found it: `encoding`,
    `delimiter`), holding one piece at a time. Other encodings (UTF-16) are decoded incrementally."""
    scanner = QuoteScanner(delimiter)
    decode = codecs.getincrementaldecoder("latin-1" if encoding in _ASCII_BYTES else encoding)(errors="replace").decode
    first = True
    for piece in pieces:
        text = decode(piece)
        if first and text:
            # The BOM is not text (`decode_head` drops it too): as Latin-1 a UTF-8 BOM is three characters.
            text = text.removeprefix("\xef\xbb\xbf" if encoding in _ASCII_BYTES else "\ufeff")
            first = False
        scanner.feed(text)
    return scanner.result()


# Excel writes `sep=;` as the first line of a CSV it saves for another locale: a hint, not the header.
_SEP_HINT = re.compile(r"^\s*sep=(.)\s*$", re.IGNORECASE)
# Columns a file may have. Beyond it, the Step Functions payload (256 KiB) and Spark's code generation for the
# typing stage are at risk; a file this wide is almost always a mistake (a transposed sheet). Measured in
# bench/RESULTS.md (the 900-column Jira export and 2,000 columns run).
MAX_COLUMNS = 2000


def split_preamble(text: str) -> tuple[int, int, str | None, str]:
    """(physical lines before the header, records among them, `sep=` delimiter or None, text from the header on).
    The preamble is blank lines and one Excel `sep=X` hint line before the header."""
    lines = records = 0
    hinted: str | None = None
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos)
        line = text[pos:] if end < 0 else text[pos:end]
        if line.rstrip("\r") == "":
            pass  # blank: skipped by the CSV readers, still a line of the file
        elif hinted is None and records == 0 and (m := _SEP_HINT.match(line)):
            hinted, records = m.group(1), 1
        else:
            break
        lines += 1
        if end < 0:
            pos = len(text)
            break
        pos = end + 1
    return lines, records, hinted, text[pos:]


def detect_dialect(head: bytes) -> Dialect:
    """Encoding, delimiter, headers, record terminator and the shape of the lines before the data, from the
    head of a file. Raises SchemaError for binary content, an empty file or more than MAX_COLUMNS columns."""
    text, encoding, bom = decode_head(head)
    if not text.strip():
        raise SchemaError(f"empty file: {len(head)} bytes but no header line (only whitespace)")
    preamble, pre_records, hinted, body = split_preamble(text)
    if not body.strip():
        raise SchemaError(f"no header line: the file holds only {preamble} preamble line(s) (blank or `sep=`)")
    first_line = body.splitlines()[0] if body.splitlines() else body
    delimiter = hinted if hinted in DELIMITERS else sniff_delimiter(first_line, body)
    reader = csv_reader(body, delimiter)
    headers = [h.strip() for h in next(reader)]
    header_lines = reader.line_num  # a quoted header cell may span lines
    sniffed = list(islice(reader, SNIFF_RECORDS))
    if len(head) >= HEAD_BYTES and not sniffed and not body.endswith(("\n", "\r")):
        # The head is full and the header row has not ended: its columns beyond the head are unknown.
        raise SchemaError(
            f"header row too long: it does not end within the first {HEAD_BYTES // 1024} KiB ({len(headers):,} "
            f"columns so far); at most {MAX_COLUMNS:,} columns are supported (split the export into narrower files "
            "or drop unused columns)"
        )
    if len(headers) > MAX_COLUMNS:
        raise SchemaError(
            f"too many columns: the header has {len(headers):,} columns; at most {MAX_COLUMNS:,} are supported "
            "(split the export into narrower files or drop unused columns)"
        )
    trailing = trailing_field_count(headers, iter(sniffed))
    while len(headers) > 1 and headers[-1] == "":
        headers.pop()
    found = scan(body, delimiter)
    crlf, lf = found.crlf, found.lf
    terminator = "\r\n" if crlf and not lf else ("\n" if not crlf else "mixed")
    return Dialect(encoding=encoding, bom=bom, delimiter=delimiter, headers=headers, line_terminator=terminator,
                   trailing_delimiter=trailing > 0, trailing_fields=trailing, preamble_lines=preamble,
                   header_lines=header_lines, skip_records=pre_records + 1,
                   quoted_line_breaks=found.quoted_break_line is not None)


MULTI_LINE = "multi_line"  # a forced reading (`--csv_parse multi_line`): the whole file in one task


@dataclass(frozen=True)
class ParsePlan:
    """How Spark reads the CSV: `multi_line` True is Spark's `multiLine` reading (one task parses the whole
    file, since a record may run over lines); False reads it split by lines (one task per block of the file,
    over every core locally and every worker on Glue). `reason` says why, for the run report (line numbers and
    counts only, never a value)."""

    multi_line: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def csv_parse_plan(dialect: Dialect, whole_file: Scan | None = None, forced: str | None = None) -> ParsePlan:
    """Whether the file can be read split by lines, with the same records, lines and quarantine as a whole-file
    (multiLine) reading: only when no quoted value holds a line break ("\\n" or "\\r": each line is then one
    record) and none is left open. `whole_file`: the job's scan of every byte; None before it ends, when the
    head (`dialect.quoted_line_breaks`) is all that is known, so a split reading is provisional. UTF-16 is
    always read whole: Spark's line reader cuts the bytes at 0x0A, which is half of a UTF-16 character.
    `forced`: "multi_line" always reads whole (an operator's override); None or "auto" decides."""
    if forced not in (None, "auto", MULTI_LINE):
        raise ValueError(f"unknown csv_parse {forced!r}: expected 'auto' or '{MULTI_LINE}'")
    if forced == MULTI_LINE:
        return ParsePlan(True, "multiLine asked for (--csv_parse multi_line)")
    if dialect.encoding == "utf-16":
        return ParsePlan(True, "UTF-16 text: Spark's line reader cuts bytes at 0x0A, inside characters")
    if whole_file is None:
        if dialect.quoted_line_breaks:
            return ParsePlan(True, "a quoted value in the first 256 KiB holds a line break: records span lines")
        return ParsePlan(False, "no quoted value in the first 256 KiB holds a line break (the whole-file scan "
                                "confirms it)")
    if whole_file.quoted_break_line is not None:
        return ParsePlan(True, f"a quoted value opening on line {whole_file.quoted_break_line} holds a line "
                               "break: records span lines")
    if whole_file.open_quote_line is not None:
        return ParsePlan(True, f"a quoted value opening on line {whole_file.open_quote_line} is never closed")
    if dialect.line_terminator == "\r\n" and whole_file.lf:
        return ParsePlan(True, f"records end in \\r\\n in the first 256 KiB, and {whole_file.lf} further on in \\n "
                               "alone: the whole-file reader keeps those in the record")
    if dialect.line_terminator != "\r\n" and whole_file.cr_lines:
        return ParsePlan(True, f"line {whole_file.cr_lines[0]} is a lone \\r in a file whose records end in \\n: the "
                               "whole-file reader reads it as a record, Spark's line reader would skip it")
    if whole_file.whitespace_line is not None:
        return ParsePlan(True, f"line {whole_file.whitespace_line} holds only whitespace: Spark's line reader "
                               "would skip it, the whole-file reader reads it as a record")
    return ParsePlan(False, "no quoted value holds a line break (whole-file scan): every record is one line")
