"""The bytes of an upload as text: compression (gzip, a zip of one CSV) and the encoding of the whole file.

Pure Python over byte pieces (constant memory, decoding and decompression in C), shared by the inspect step
(which sees only the head) and the Glue job (which reads every byte before Spark does):

- `compression_of` / `text_head`: the decompressed head of a `.csv.gz` or a one-CSV `.zip`.
- `gunzip` / `unzip_member`: the decompressed text of the whole upload, in pieces.
- `EncodingCheck` / `encoding_verdict`: the codec the whole file is in. Valid UTF-8 throughout is UTF-8; text
  with no valid multi-byte UTF-8 sequence and some invalid bytes is Windows-1252; UTF-8 with a few stray
  bytes (a record pasted from a Windows tool) stays UTF-8 and only those bytes are decoded as Windows-1252
  (`fallback_decode`), reported by line. Nothing is ever replaced by U+FFFD.
- `transcode`: UTF-8 pieces of such a file, newline for newline (line numbers do not move).
"""

from __future__ import annotations

import codecs
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import IO, Any

from ticketcore.contract import SchemaError

GZIP = "gzip"
ZIP = "zip"
CHUNK = 16 * 1024 * 1024  # most decompressed bytes produced at a time
MAX_REPORTED_LINES = 1000  # line numbers of fallback-decoded bytes kept for the report (all are counted)
FALLBACK_ERRORS = "ticketflow-cp1252"  # the codecs error handler: a stray byte decoded as Windows-1252
CSV_MEMBER_SUFFIXES = (".csv",)

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header; an empty archive's end record
_ZIP_LOCAL_HEADER = 30
# Members an archiver adds beside the file (macOS Finder's resource forks): not the user's data.
_ZIP_NOISE = ("__MACOSX/", ".DS_Store")
_HIGH_BYTES = bytes(range(0x80, 0x100))
# Bytes Windows-1252 leaves undefined; decoded as the Latin-1 code point (as the WHATWG encoding standard does),
# because a Java reader would turn them into U+FFFD.
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
_BOM_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


# ---------------------------------------------------------------- the fallback decoding of stray bytes


def fallback_decode(data: bytes) -> str:
    """`data` as Windows-1252, its five undefined bytes as the Latin-1 code points: never fails, never U+FFFD."""
    return "".join(chr(b) if b in _CP1252_UNDEFINED else bytes((b,)).decode("cp1252") for b in data)


_sink = threading.local()  # where the handler notes the spans it decoded, while an EncodingCheck feeds


def _fallback_handler(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    spans: list[tuple[int, int]] | None = getattr(_sink, "spans", None)
    if spans is not None:
        spans.append((exc.start, exc.end))
    return fallback_decode(exc.object[exc.start:exc.end]), exc.end


codecs.register_error(FALLBACK_ERRORS, _fallback_handler)


# ---------------------------------------------------------------- the encoding of the whole file


@dataclass(frozen=True)
class EncodingVerdict:
    """The codec of a whole file and what decoding it takes.

    encoding: Python codec of the bytes as they are: "utf-8", "utf-8-sig", "cp1252" or "utf-16".
    fallback_sequences: invalid UTF-8 sequences in a UTF-8 file, each decoded by `fallback_decode`.
    fallback_lines: how many physical lines hold them; fallback_line_numbers: the first MAX_REPORTED_LINES of
        those lines (1-based, ascending; line numbers of the file, blank lines and the header counted).
    transcode: a reader that knows one codec cannot read the bytes as they are: read `transcode`'s UTF-8 copy.
    """

    encoding: str
    fallback_sequences: int = 0
    fallback_lines: int = 0
    fallback_line_numbers: tuple[int, ...] = ()
    transcode: bool = False

    @property
    def read_as(self) -> str:
        """The codec of what is read: the bytes, or their UTF-8 copy (which keeps a UTF-8 BOM)."""
        if not self.transcode:
            return self.encoding
        return "utf-8-sig" if self.encoding == "utf-8-sig" else "utf-8"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fallback_line_numbers": list(self.fallback_line_numbers), "read_as": self.read_as}


class EncodingCheck:
    """`encoding_verdict`, resumable: feed the bytes of a file in order, then `result()`. A piece of pure ASCII
    costs one C pass; one with non-ASCII bytes is decoded as UTF-8 in C, stray bytes going to the fallback
    handler (one Python call each)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors=FALLBACK_ERRORS)
        self._first = True
        self._bom: str | None = None  # "utf-8-sig" or "utf-16" once the first bytes showed one
        self._lines = 1  # the line the next piece starts on
        self._high = 0  # bytes >= 0x80 seen
        self._bad_bytes = 0  # of them, in invalid sequences
        self._sequences = 0
        self._line_count = 0
        self._line_numbers: list[int] = []
        self._last_line = 0
        self._undefined = False  # a byte Windows-1252 leaves undefined was in an invalid sequence

    @property
    def done(self) -> bool:
        """The verdict needs no more bytes (UTF-16, by its BOM)."""
        return self._bom == "utf-16"

    def feed(self, piece: bytes, final: bool = False) -> None:
        if self._first and piece:
            self._first = False
            if piece.startswith(_BOM_UTF16):
                self._bom = "utf-16"
            elif piece.startswith(codecs.BOM_UTF8):
                self._bom = "utf-8-sig"
        if self.done:
            return
        if piece.isascii() and not self._decoder.getstate()[0]:
            self._lines += piece.count(b"\n")
            if final:
                self._decode(b"", True)
            return
        self._high += len(piece) - len(piece.translate(None, _HIGH_BYTES))
        self._decode(piece, final)
        self._lines += piece.count(b"\n")

    def _decode(self, piece: bytes, final: bool) -> None:
        pending = self._decoder.getstate()[0]
        spans: list[tuple[int, int]] = []
        _sink.spans = spans
        try:
            self._decoder.decode(piece, final)
        finally:
            _sink.spans = None
        if not spans:
            return
        # Offsets are in `pending + piece`; the pending bytes (a cut sequence) hold no newline.
        buffer = pending + piece
        self._sequences += len(spans)
        self._bad_bytes += sum(end - start for start, end in spans)
        self._undefined = self._undefined or any(b in _CP1252_UNDEFINED for s, e in spans for b in buffer[s:e])
        line, counted = self._lines, 0
        for start, _ in spans:
            line += buffer.count(b"\n", counted, start)
            counted = start
            if line != self._last_line:
                self._last_line = line
                self._line_count += 1
                if len(self._line_numbers) < MAX_REPORTED_LINES:
                    self._line_numbers.append(line)

    def result(self, complete: bool = True) -> EncodingVerdict:
        """The verdict on what was fed; `complete=False` for a head: a sequence cut by its end is not invalid."""
        if self._bom == "utf-16":
            return EncodingVerdict("utf-16")
        if complete:
            self._decode(b"", True)  # a sequence cut by the end of the file is invalid
        utf8 = self._bom or "utf-8"
        if not self._sequences:
            return EncodingVerdict(utf8)
        if self._bom is None and self._high == self._bad_bytes:
            # Not one valid multi-byte sequence: a legacy single-byte file. Spark reads Windows-1252 itself,
            # except its undefined bytes (Java decodes them as U+FFFD).
            return EncodingVerdict("cp1252", transcode=self._undefined)
        return EncodingVerdict(utf8, self._sequences, self._line_count, tuple(self._line_numbers), transcode=True)


def encoding_verdict(pieces: Iterable[bytes]) -> EncodingVerdict:
    """The codec of the whole file whose bytes arrive in `pieces` (see EncodingCheck)."""
    check = EncodingCheck()
    for piece in pieces:
        check.feed(piece)
        if check.done:
            break
    return check.result()


def transcode(pieces: Iterable[bytes], verdict: EncodingVerdict) -> Iterator[bytes]:
    """The file as UTF-8, piece by piece: stray bytes (or, for "cp1252", every byte) by `fallback_decode`.
    Newlines are kept one for one, so every record keeps its line number."""
    codec = "cp1252" if verdict.encoding == "cp1252" else "utf-8"
    decoder = codecs.getincrementaldecoder(codec)(errors=FALLBACK_ERRORS)
    for piece in pieces:
        if text := decoder.decode(piece):
            yield text.encode("utf-8")
    if text := decoder.decode(b"", True):
        yield text.encode("utf-8")


# ---------------------------------------------------------------- compressed uploads


def compression_of(head: bytes) -> str | None:
    """"gzip", "zip" or None, from the magic number of the first bytes (whatever the key's name says)."""
    if head.startswith(b"\x1f\x8b"):
        return GZIP
    if head.startswith(_ZIP_MAGIC):
        return ZIP
    return None


def csv_member(names: Iterable[str]) -> str:
    """The one CSV file of a zip archive's member names. Raises SchemaError naming what the archive holds when
    it holds no file, several, or one that is not a CSV (an xlsx workbook is a zip of XML parts)."""
    files = [n for n in names if not n.endswith("/") and not any(part in n for part in _ZIP_NOISE)]
    if "[Content_Types].xml" in files:
        raise SchemaError("an Excel workbook (xlsx), not a CSV: save the sheet as CSV (UTF-8) and upload that")
    if not files:
        raise SchemaError("the zip archive holds no file: zip exactly one CSV")
    shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
    if len(files) > 1:
        raise SchemaError(f"the zip archive holds {len(files)} files ({shown}): zip exactly one CSV per upload")
    if not files[0].lower().endswith(CSV_MEMBER_SUFFIXES):
        raise SchemaError(f"the zip archive holds {shown}, not a .csv file: zip exactly one CSV")
    return files[0]


@dataclass(frozen=True)
class TextHead:
    """The first bytes of an upload's text. data: at most the limit asked for, decompressed; compression:
    "gzip", "zip" or None; member: the CSV's name inside a zip; complete: `data` is the whole text."""

    data: bytes
    compression: str | None = None
    member: str | None = None
    complete: bool = False


def _inflate(data: bytes, wbits: int, limit: int, members: bool) -> tuple[bytes, bool]:
    """Up to `limit` bytes of a deflate stream (gzip when `members`: concatenated members continue it);
    complete when the stream (every member in `data`) ended within `limit`."""
    out, ended = bytearray(), False
    while data and len(out) < limit:
        d = zlib.decompressobj(wbits)
        try:
            out += d.decompress(data, limit - len(out))
        except zlib.error as err:
            raise SchemaError(f"the compressed data is corrupt ({err})") from None
        ended = d.eof
        if not ended or not members:
            break
        data = d.unused_data
    return bytes(out[:limit]), ended and len(out) <= limit


def text_head(raw: bytes, raw_complete: bool, limit: int) -> TextHead:
    """The head of an upload's text from the first bytes of the object (`raw_complete`: the whole object).
    A plain file's head is its first `limit` bytes; a gzip's and a zip's, decompressed. Raises SchemaError for a
    zip that does not hold exactly one CSV, or compressed data that is corrupt."""
    kind = compression_of(raw)
    if kind is None:
        return TextHead(raw[:limit], complete=raw_complete and len(raw) <= limit)
    if kind == GZIP:
        data, ended = _inflate(raw, 31, limit, members=True)
        if raw_complete and not ended and len(data) < limit:
            raise SchemaError("the gzip data is cut short (an incomplete upload?): upload the whole file again")
        return TextHead(data, GZIP, complete=ended and raw_complete)
    if raw_complete:  # the central directory is at hand: check every member
        import io

        name, pieces = unzip_member(io.BytesIO(raw))
        data = b"".join(pieces)
        return TextHead(data[:limit], ZIP, name, complete=len(data) <= limit)
    # Only the head: the first member's local header names it and its data follows.
    if len(raw) < _ZIP_LOCAL_HEADER or not raw.startswith(b"PK\x03\x04"):
        csv_member([])
    flags, method = int.from_bytes(raw[6:8], "little"), int.from_bytes(raw[8:10], "little")
    name_len, extra_len = int.from_bytes(raw[26:28], "little"), int.from_bytes(raw[28:30], "little")
    name = raw[_ZIP_LOCAL_HEADER:_ZIP_LOCAL_HEADER + name_len].decode("utf-8" if flags & 0x800 else "cp437")
    csv_member([name])
    body = raw[_ZIP_LOCAL_HEADER + name_len + extra_len:]
    if flags & 0x1:
        raise SchemaError("the zip archive is encrypted: zip the CSV without a password")
    if method == zipfile.ZIP_STORED:
        return TextHead(body[:limit], ZIP, name)
    if method == zipfile.ZIP_DEFLATED:
        return TextHead(_inflate(body, -15, limit, members=False)[0], ZIP, name)
    raise SchemaError(f"the zip archive uses compression method {method}: zip the CSV with deflate (the default)")


def gunzip(pieces: Iterable[bytes], chunk: int = CHUNK) -> Iterator[bytes]:
    """The decompressed bytes of a gzip file arriving in `pieces` (concatenated members continue the text), at
    most `chunk` bytes at a time. Raises SchemaError when it is corrupt or cut short."""
    d: Any = None
    try:
        for piece in pieces:
            data = piece
            while data:
                if d is None or d.eof:  # the first member, or the next one
                    d = zlib.decompressobj(31)
                out = d.decompress(data, chunk)
                while out:
                    yield out
                    # All input taken but output held back by the limit: drain it.
                    out = d.decompress(b"", chunk) if not d.unconsumed_tail and not d.eof else b""
                data = d.unused_data if d.eof else d.unconsumed_tail
    except zlib.error as err:
        raise SchemaError(f"the gzip data is corrupt ({err})") from None
    if d is not None and not d.eof:
        raise SchemaError("the gzip data is cut short (an incomplete upload?): upload the whole file again")


def unzip_member(file: IO[bytes] | str, chunk: int = CHUNK) -> tuple[str, Iterator[bytes]]:
    """(the name of the one CSV in a zip archive, its decompressed bytes in pieces of at most `chunk`). `file`
    is a seekable file or a path. Raises SchemaError when the archive is not readable or does not hold exactly
    one CSV (see csv_member)."""
    try:
        archive = zipfile.ZipFile(file)
        name = csv_member(archive.namelist())
        member = archive.open(name)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as err:
        raise SchemaError(f"the zip archive cannot be read ({type(err).__name__}: {err})") from None

    def pieces() -> Iterator[bytes]:
        try:
            while piece := member.read(chunk):
                yield piece
        except (zipfile.BadZipFile, zlib.error) as err:
            raise SchemaError(f"the zip archive is corrupt ({err})") from None
        finally:
            member.close()
            archive.close()

    return name, pieces()


def text_name(name: str) -> str:
    """The file name of an upload's text: `Tickets.csv.gz` and `Tickets.zip` -> `Tickets.csv`."""
    base = PurePosixPath(name).name
    for suffix in (".gz", ".zip"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
    return base if base.lower().endswith(".csv") else f"{base}.csv"
