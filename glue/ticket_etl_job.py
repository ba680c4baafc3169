"""Glue 5.0 PySpark job: one support-ticket CSV -> typed, deduplicated, partitioned Parquet in staging,
quarantined rows as CSV, and a run report. Runs unchanged on local PySpark (no `awsglue` there).

Arguments (Glue style, `--name value`): --source, --staging, --quarantine, --reports, --run_id,
optional --source_key, --inspection (URI of the inspect step's JSON, whose dialect is used), --dialect (that
dialect as JSON, for runs without an inspect step), --contract (path of the contract YAML), --csv_parse
(`auto`, the default: split by lines when the file allows it; `multi_line`: always read whole).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import IO, Any, TypeVar

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from ticketcore import spark_transform as tx
from ticketcore.contract import Contract, HeaderMapping, SchemaError, load_contract, map_headers
from ticketcore.dialect import HEAD_BYTES, Dialect, ParsePlan, Scan, csv_parse_plan, detect_dialect, scan_stream
from ticketcore.layout import QUARANTINE_FILE, source_name
from ticketcore.source import GZIP, EncodingCheck, compression_of, gunzip, text_head, text_name, transcode, unzip_member
from ticketcore.timeformats import choose_format

SPARK_ENCODING = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1252": "windows-1252"}
T = TypeVar("T")
SCAN_PIECE = 16 * 1024 * 1024  # bytes of the source held at a time by the quote scan
SCAN_FIRST_BYTES = 16 * 1024 * 1024  # a file up to this size is scanned before Spark reads it (0.1 s here)
S3_SCHEMES = ("s3", "s3a", "s3n")
ARGUMENTS = ("source", "staging", "quarantine", "reports", "run_id")
OPTIONAL_ARGUMENTS = ("source_key", "inspection", "dialect", "contract", "csv_parse")


@dataclass(frozen=True)
class JobArgs:
    source: str
    staging: str
    quarantine: str
    reports: str
    run_id: str
    source_key: str | None = None
    inspection: str | None = None
    dialect: str | None = None
    contract: str | None = None
    csv_parse: str | None = None


def parse_args(argv: list[str]) -> JobArgs:
    try:  # On AWS Glue: the documented way, which also tolerates Glue's own extra arguments.
        from awsglue.utils import getResolvedOptions

        present = [a for a in OPTIONAL_ARGUMENTS if f"--{a}" in argv]
        resolved = getResolvedOptions(argv, [*ARGUMENTS, *present])
        return JobArgs(**{k: resolved[k] for k in (*ARGUMENTS, *present)})
    except ImportError:
        parser = argparse.ArgumentParser(description=__doc__)
        for name in ARGUMENTS:
            parser.add_argument(f"--{name}", required=True)
        for name in OPTIONAL_ARGUMENTS:
            parser.add_argument(f"--{name}")
        known, _ = parser.parse_known_args(argv[1:])
        return JobArgs(**vars(known))


# ---------------------------------------------------------------- storage through Hadoop's FileSystem
# The same calls work for local paths and for s3:// on Glue (the quote scan alone reads with Python: read_pieces).


def _fs_path(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    jvm: Any = spark.sparkContext._jvm
    jsc: Any = spark.sparkContext._jsc
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(jsc.hadoopConfiguration()), path


def read_raw_head(spark: SparkSession, uri: str, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of the object as stored (compressed or not)."""
    fs, path = _fs_path(spark, uri)
    if not fs.exists(path):
        raise SchemaError(f"source not found: {uri}")
    stream = fs.open(path)
    try:
        return bytes(stream.readNBytes(size))  # Java 11+: up to `size` bytes
    finally:
        stream.close()


def read_json(spark: SparkSession, uri: str) -> Any:
    """A small JSON object (the inspect step's result), read with the job's filesystem (S3 on Glue)."""
    fs, path = _fs_path(spark, uri)
    stream = fs.open(path)
    try:
        return json.loads(bytes(stream.readAllBytes()).decode("utf-8"))
    finally:
        stream.close()


def read_head(spark: SparkSession, uri: str, size: int = HEAD_BYTES) -> bytes:
    """The first `size` bytes of the upload's text: a .csv.gz or a one-CSV zip decompressed."""
    raw = read_raw_head(spark, uri, size)
    return text_head(raw, len(raw) < size, size).data


def file_size(spark: SparkSession, uri: str) -> int:
    fs, path = _fs_path(spark, uri)
    return int(fs.getFileStatus(path).getLen())


def read_pieces(spark: SparkSession, uri: str, size: int = SCAN_PIECE) -> Iterator[bytes]:
    """The whole object, `size` bytes at a time, read by Python itself where it can (no JVM round trips)."""
    if uri.split("://", 1)[0] in S3_SCHEMES:  # on Glue: boto3 streams the object with the job's role
        yield from s3_pieces(uri, size)
        return
    fs, path = _fs_path(spark, uri)
    if fs.getScheme() == "file":  # the local runtime
        with open(str(fs.pathToFile(path)), "rb") as fh:
            while piece := fh.read(size):
                yield piece
    else:  # any other Hadoop file system
        yield from hadoop_pieces(spark, fs, path, size)


def s3_pieces(uri: str, size: int, client: Any = None) -> Iterator[bytes]:
    import boto3  # on Glue and in the project's dependencies; imported only for s3:// sources

    # Split by hand: the key is the raw object key (a "?" or "#" in it is part of the key, not a URL's query).
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    body = (client or boto3.client("s3")).get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield from body.iter_chunks(size)
    finally:
        body.close()


def hadoop_pieces(spark: SparkSession, fs: Any, path: Any, size: int) -> Iterator[bytes]:
    """Through Hadoop's FileSystem (schemes other than file and s3). A piece crosses py4j as a Latin-1 string
    (one character per byte): py4j turns a Java byte[] into Python bytes one byte at a time (18 MB/s here)."""
    jvm: Any = spark.sparkContext._jvm
    left = int(fs.getFileStatus(path).getLen())
    buffer = jvm.java.io.ByteArrayOutputStream(max(1, min(size, left)))
    stream = fs.open(path)
    try:
        while left > 0:
            n = min(size, left)
            jvm.org.apache.hadoop.io.IOUtils.copyBytes(stream, buffer, n, False)
            yield buffer.toString("ISO-8859-1").encode("latin-1")
            buffer.reset()
            left -= n
    finally:
        stream.close()


def local_path(spark: SparkSession, uri: str) -> str | None:
    """The file behind `uri` when it is on the local file system (the local runtime), else None."""
    if uri.split("://", 1)[0] in S3_SCHEMES:
        return None
    fs, path = _fs_path(spark, uri)
    return str(fs.pathToFile(path)) if fs.getScheme() == "file" else None


class PiecesReader(io.RawIOBase):
    """A readable file over an iterator of byte pieces (what boto3's upload_fileobj streams from)."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._pieces = iter(pieces)
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._left = memoryview(piece)
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def write_pieces(spark: SparkSession, uri: str, pieces: Iterable[bytes]) -> None:
    """Write an object from byte pieces, holding one piece at a time (S3: a streamed multipart upload)."""
    if uri.split("://", 1)[0] in S3_SCHEMES:
        import boto3

        bucket, _, key = uri.split("://", 1)[1].partition("/")
        boto3.client("s3").upload_fileobj(PiecesReader(pieces), bucket, key)
        return
    target = local_path(spark, uri)
    if target is not None:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            for piece in pieces:
                fh.write(piece)
        return
    fs, path = _fs_path(spark, uri)
    out = fs.create(path, True)
    try:
        for piece in pieces:
            out.write(bytearray(piece))
    finally:
        out.close()


def seekable_source(spark: SparkSession, uri: str) -> IO[bytes] | str:
    """What zipfile can read (it seeks to the archive's directory at the end): the local file, or the object
    copied piece by piece to a temporary file on the driver's disk."""
    path = local_path(spark, uri)
    if path is not None:
        return path
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (returned open: zipfile reads it, its close deletes it)
    for piece in read_pieces(spark, uri):
        spool.write(piece)
    spool.seek(0)
    return spool


def delete_tree(spark: SparkSession, uri: str) -> None:
    fs, path = _fs_path(spark, uri)
    fs.delete(path, True)


@dataclass(frozen=True)
class PreparedSource:
    """What the CSV readers read: `uri` (the upload itself, or a UTF-8 / decompressed copy in staging) in
    `dialect` (the inspect step's, its encoding decided from every byte); `report`: how, for the run report."""

    uri: str
    dialect: Dialect
    report: dict[str, Any]


def checked_pieces(pieces: Iterable[bytes], check: EncodingCheck) -> Iterator[bytes]:
    """`pieces`, each fed to `check` on its way through."""
    for piece in pieces:
        check.feed(piece)
        yield piece


@dataclass(frozen=True)
class SourceText:
    """The upload as text, its encoding not yet settled: `uri` (the upload, or its decompressed copy in staging)
    and `check`, fed with every byte already when `checked` (a decompressed upload), else to be fed by whoever
    reads the bytes next (the job's quote scan: one read of the object serves both)."""

    uri: str
    compression: str | None
    member: str | None
    check: EncodingCheck
    checked: bool
    seconds: float


def open_source(spark: SparkSession, source: str, staging: str, name: str) -> SourceText:
    """A .csv.gz or a one-CSV zip (by magic number) decompressed to `<staging>/source/<name>.csv`, every byte
    fed to the encoding check on the way; any other upload as it is, nothing read. Raises SchemaError for an
    unreadable archive."""
    t0 = time.monotonic()
    compression = compression_of(read_raw_head(spark, source, 4))
    member: str | None = None
    check = EncodingCheck()
    if compression is None:
        return SourceText(source, None, None, check, False, round(time.monotonic() - t0, 3))
    uri = join(staging, "source", text_name(name))
    if compression == GZIP:
        text = gunzip(read_pieces(spark, source))
    else:
        member, text = unzip_member(seekable_source(spark, source))
    write_pieces(spark, uri, checked_pieces(text, check))
    return SourceText(uri, compression, member, check, True, round(time.monotonic() - t0, 3))


def settle_encoding(spark: SparkSession, text: SourceText, staging: str, name: str, dialect: Dialect) -> PreparedSource:
    """The source as Spark's CSV reader reads it, once `text.check` has seen every byte: the encoding of the whole
    file (`ticketcore.source.EncodingCheck`) overrides the head's guess; only a UTF-8 file with stray bytes (or
    Windows-1252 with its undefined bytes) is rewritten as UTF-8, to `<staging>/source/utf8-<name>.csv`, newline
    for newline, so lines found in the original hold in the copy."""
    t0 = time.monotonic()
    verdict = text.check.result()
    uri = text.uri
    if verdict.transcode:
        utf8 = join(staging, "source", "utf8-" + text_name(name))
        write_pieces(spark, utf8, transcode(read_pieces(spark, uri), verdict))
        uri = utf8
    report = {
        "compression": text.compression,
        "zip_member": text.member,
        "read_from": uri,
        "head_encoding": dialect.encoding,
        "encoding": verdict.to_dict(),
        # Decompressing and rewriting; a plain upload is checked by the quote scan, beside the parse.
        "seconds": round(text.seconds + time.monotonic() - t0, 3),
    }
    return PreparedSource(uri, replace(dialect, encoding=verdict.read_as), report)


def prepare_source(spark: SparkSession, source: str, staging: str, name: str, dialect: Dialect) -> PreparedSource:
    """Make the upload readable by Spark's CSV reader, which knows one codec per file and no compression, in one
    go: `open_source`, every byte checked, `settle_encoding`. (The job itself checks a plain upload's bytes in
    its quote scan instead.) Raises SchemaError for an unreadable archive."""
    text = open_source(spark, source, staging, name)
    if not text.checked:
        for piece in read_pieces(spark, text.uri):
            text.check.feed(piece)
            if text.check.done:
                break
    return settle_encoding(spark, text, staging, name, dialect)


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    fs, path = _fs_path(spark, uri)
    out = fs.create(path, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()


def list_files(spark: SparkSession, uri: str, suffix: str) -> list[tuple[str, int]]:
    fs, path = _fs_path(spark, uri)
    if not fs.exists(path):
        return []
    found, it = [], fs.listFiles(path, True)
    while it.hasNext():
        status = it.next()
        name = status.getPath().toString()
        if name.endswith(suffix):
            found.append((name, int(status.getLen())))
    return sorted(found)


def parquet_rows(spark: SparkSession, uri: str) -> int:
    """Rows in one Parquet file, from its footer: the report's per-file counts cost no Spark job."""
    jvm: Any = spark.sparkContext._jvm
    fs, path = _fs_path(spark, uri)
    source = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(path, fs.getConf())
    reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(source)
    try:
        return int(reader.getRecordCount())
    finally:
        reader.close()


def move_single_part(spark: SparkSession, tmp_dir: str, target: str) -> None:
    """Spark writes a directory of parts; quarantine is one named CSV a person can open."""
    fs, tmp = _fs_path(spark, tmp_dir)
    _, dst = _fs_path(spark, target)
    parts = [s.getPath() for s in fs.listStatus(tmp) if s.getPath().getName().startswith("part-")]
    fs.delete(dst, False)
    fs.rename(parts[0], dst)
    fs.delete(tmp, True)


def in_background(fn: Callable[..., T], *args: Any) -> Future[T]:
    """`fn(*args)` in a thread of its own; its result (or exception) comes from the future."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=fn.__name__)
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)  # the thread ends with its one task


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


# ---------------------------------------------------------------- the job


def build_session(app_name: str = "ticketflow-transform") -> SparkSession:
    return (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.parquet.compression.codec", "snappy")
        .getOrCreate()
    )


def configure(spark: SparkSession) -> None:
    """Settings the transform relies on, also applied to a session someone else built (Glue, warm runtime)."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    spark.conf.set("spark.sql.parquet.compression.codec", "snappy")
    spark.conf.set("spark.sql.ansi.enabled", "false")
    # Timestamps outside the contract's plausible range never reach Parquet; should one (year 1, before the
    # 1582 calendar reform) get there anyway, it is written as the proleptic calendar value instead of failing
    # the job with Spark's SparkUpgradeException.
    spark.conf.set("spark.sql.parquet.datetimeRebaseModeInWrite", "CORRECTED")
    spark.conf.set("spark.sql.parquet.int96RebaseModeInWrite", "CORRECTED")
    # The cache is scanned a few times and then dropped: compressing its column batches cost more than the scans
    # it saved (measured: building the cache of a 1M-row file 3-4x slower).
    spark.conf.set("spark.sql.inMemoryColumnarStorage.compressed", "false")
    # The typing stage is wide: its generated methods exceed HotSpot's 8000-byte limit for JIT compilation and
    # would run interpreted. At this limit Spark falls back to per-expression code for such stages instead.
    spark.conf.set("spark.sql.codegen.hugeMethodLimit", "8000")
    # Spark compiles no plan node whose rows have more than 100 fields (nested ones counted): the typing's last
    # projections carry the raw, trimmed, typed and flag columns and the timestamp parts, about 150 for a
    # 16-column file, and ran interpreted. Wider files still fall back (the limit above guards the methods).
    spark.conf.set("spark.sql.codegen.maxFields", "400")


def read_source(spark: SparkSession, uri: str, dialect: Dialect, mapping: HeaderMapping,
                multi_line: bool = True) -> DataFrame:
    """The CSV as the dialect describes it: every mapped column a raw string, ragged records in the corrupt
    column, trailing delimiters' fields and the carriage return ending a mixed file's records already taken off.
    Read without a header: the header (and a `sep=` line before it) are the first `dialect.skip_records`
    records, which `tx.with_record_index` drops, so a preamble never becomes the header.

    `multi_line` False reads the file split by lines (see `csv_parse_plan`): "\n" ends every line, and the
    "\r" of a "\r\n" is taken off as for a mixed file (Hadoop's default line reader would also end a line at
    a lone "\r", which the whole-file reader keeps as data)."""
    by_lf = dialect.line_terminator == "mixed" or (not multi_line and dialect.line_terminator == "\r\n")
    raw = (
        spark.read.options(
            header=False,
            multiLine=multi_line,
            escape='"',
            sep=dialect.delimiter,
            encoding=SPARK_ENCODING.get(dialect.encoding, dialect.encoding),
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=tx.CORRUPT,
            enforceSchema=True,
            ignoreLeadingWhiteSpace=False,
            ignoreTrailingWhiteSpace=False,
            # Without it the reader takes the first line's ending as the only one: "\n" ends every record.
            **({"lineSep": "\n"} if by_lf or not multi_line else {}),
        )
        .schema(tx.source_schema(mapping, dialect.extra_fields))
        .csv(uri)
    )
    if by_lf:
        raw = tx.strip_record_cr(raw)
    if dialect.extra_fields:
        raw = tx.drop_trailing_field(raw, dialect.delimiter)
    return raw


def blank_lines(whole_file: Scan, dialect: Dialect) -> tuple[int, ...]:
    """The lines the CSV reader skips: every blank line, except that a lone "\r" is a record to the reader of a
    file whose records end in "\n" (only a "\r\n" file's reader takes "\r\n" alone as an empty line)."""
    if dialect.line_terminator == "\r\n" or not whole_file.cr_lines:
        return whole_file.blank_lines
    records = set(whole_file.cr_lines)
    return tuple(b for b in whole_file.blank_lines if b not in records)


@dataclass(frozen=True)
class ParsedCsv:
    """The parsed file in the columnar cache (`base`), the evidence pass over it, and how it was read."""

    base: DataFrame
    evidence: dict[str, Any]
    timestamp_columns: list[str]
    multi_line: bool
    parse_tasks: int  # Spark tasks that parsed the file: 1 for a multi-line reading, one per block when split
    in_file_order: bool  # the record index follows file order (always for a multi-line reading)


def parse_csv(spark: SparkSession, uri: str, dialect: Dialect, mapping: HeaderMapping, contract: Contract,
              multi_line: bool, source_bytes: int) -> ParsedCsv:
    """Read, number and clean the records into the columnar cache, and run the evidence pass (row count and
    timestamp shapes) over it: the first Spark action of the job."""
    raw = read_source(spark, uri, dialect, mapping, multi_line)
    indexed = tx.with_record_index(raw, dialect.skip_records, split=not multi_line)
    if multi_line:
        # One task parses a multi-line file and numbers its records in file order. A big file's rows are then
        # spread over the cores (by record number, so no sort is needed) for the typing, dedupe and write; a
        # small one stays whole, since the shuffle would cost more than it saves. A split reading is spread
        # already: one partition per block of the file.
        spread = tx.spread_partitions(source_bytes, spark.sparkContext.defaultParallelism)
        if spread > 1:
            indexed = indexed.repartition(spread, tx.RECORD)
    # Parsed once, into the columnar cache; every later pass reads only the cached columns it needs. The field
    # lengths are checked here, while every raw value is in hand, so the outcome pass reads no raw column.
    base = tx.blank_missing(tx.with_too_long(indexed, contract, mapping), contract).persist()
    ts_cols = [c.name for c in contract.columns_of_type("timestamp") if tx.value(c.name) in base.columns]
    block = None if multi_line else tx.split_block_bytes(source_bytes, spark.sparkContext.defaultParallelism)
    with session_conf(spark, "spark.sql.files.maxPartitionBytes", block):  # read when the scan is planned
        evidence = tx.timestamp_evidence(base, [tx.value(c) for c in ts_cols], split_order=not multi_line)
    if multi_line:
        return ParsedCsv(base, evidence, ts_cols, True, 1, True)
    blocks = json.loads(evidence.get(tx.SPLITS) or "[]")
    return ParsedCsv(base, evidence, ts_cols, False, len(blocks), tx.splits_in_file_order(blocks))


@contextmanager
def session_conf(spark: SparkSession, key: str, value: int | str | None) -> Iterator[None]:
    """`key` set to `value` in the session for the block, then put back (nothing when `value` is None). A
    concurrent run in the same warm session (the local runtime) may read it meanwhile: only its block sizes
    change, never its rows (the split order is checked on every run)."""
    if value is None:
        yield
        return
    before = spark.conf.get(key, None)
    spark.conf.set(key, str(value))
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def distinct_examples(observed: str | None) -> list[dict[str, Any]]:
    """The (line, value) examples of an observed JSON array, without nulls (no such value) and repeats."""
    examples: list[dict[str, Any]] = []
    for example in json.loads(observed or "[]"):
        if example and example not in examples:
            examples.append(example)
    return examples


def run(spark: SparkSession, args: JobArgs, contract: Contract | None = None) -> dict[str, Any]:
    """Run the transform; returns the run report (also written to `<reports>/run_report.json`)."""
    configure(spark)
    timings: dict[str, float] = {}
    t0 = clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = round(now - clock, 3)
        clock = now

    contract = contract or load_contract(args.contract)
    if args.inspection:  # the definition's way: every header, however wide the file, travels through S3
        dialect = Dialect.from_dict(read_json(spark, args.inspection)["dialect"])
    elif args.dialect:
        dialect = Dialect.from_dict(json.loads(args.dialect))
    else:
        dialect = detect_dialect(read_head(spark, args.source))
    mapping = map_headers(dialect.headers, contract)
    # The tool the headers point to (a profile of the contract): its aliases, vocabularies and list formats.
    contract = contract.with_profile(mapping.profile)
    ingested_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    source_key = args.source_key or args.source
    lap("inspect")
    # Spark's CSV reader knows one codec per file and no compression: a compressed upload is decompressed (its
    # bytes checked for their encoding on the way). Inspect scans only the head: the whole text is scanned here,
    # in a thread while Spark parses the file, for a quote left open, blank lines, and a quoted line break, which
    # decides how Spark may read the file; a plain upload's bytes are checked for their encoding in that same
    # read. Both verdicts come from every byte and may overrule the head's guesses.
    name = source_name(source_key)
    text = open_source(spark, args.source, args.staging, name)
    pieces = read_pieces(spark, text.uri)
    quote_scan = in_background(scan_stream, pieces if text.checked else checked_pieces(pieces, text.check),
                               dialect.encoding, dialect.delimiter)
    source_bytes = file_size(spark, text.uri)
    # A small file's scan ends at once: the encoding and the reading are decided from every byte, before Spark
    # reads it; so is a file whose head already held bytes that are not UTF-8 (its verdict may well differ). Any
    # other is read as its head shows (in the head's encoding; split by lines when no quoted line break is
    # seen), provisionally, until the scan has seen every byte.
    scan_first = source_bytes <= SCAN_FIRST_BYTES or dialect.encoding == "cp1252"
    settled = scan_first or text.checked  # every byte checked for its encoding before the parse
    whole_file = quote_scan.result() if scan_first else None
    prepared = settle_encoding(spark, text, args.staging, name, dialect) if settled else None
    if prepared:
        dialect = prepared.dialect
    source_uri = prepared.uri if prepared else text.uri
    lap("prepare_source")
    plan = csv_parse_plan(dialect, whole_file, args.csv_parse)
    parsed = parse_csv(spark, source_uri, dialect, mapping, contract, plan.multi_line, source_bytes)
    lap("read_and_infer")
    whole_file = quote_scan.result()
    open_quote_line = whole_file.open_quote_line
    prepared = prepared or settle_encoding(spark, text, args.staging, name, dialect)
    lap("quote_scan")
    again: list[str] = []  # why the provisional reading is dropped, if it is
    head = f"its first {HEAD_BYTES // 1024} KiB"
    if prepared.dialect.encoding != dialect.encoding:
        again.append(f"the whole file is {prepared.dialect.encoding}, not {dialect.encoding} as {head} showed")
    elif prepared.uri != source_uri:
        fallback = prepared.report["encoding"]
        lines = fallback["fallback_line_numbers"]
        again.append(f"{fallback['fallback_lines']} line(s) past {head} hold bytes that are not UTF-8 (the first: "
                     f"line {lines[0] if lines else '?'}): decoded by fallback, from the file rewritten as UTF-8")
    if not plan.multi_line:
        plan = plan if scan_first else csv_parse_plan(prepared.dialect, whole_file, args.csv_parse)
        if not plan.multi_line and not parsed.in_file_order:  # never seen; the line numbers depend on it
            plan = ParsePlan(True, "Spark's blocks of the file were not in file order: read whole instead")
        if plan.multi_line:
            again.append("the whole-file scan overruled the split reading")
    if again:  # the provisional reading is dropped, and the file read again as every byte showed it must be
        parsed.base.unpersist()
        dialect, source_uri = prepared.dialect, prepared.uri
        parsed = parse_csv(spark, source_uri, dialect, mapping, contract, plan.multi_line,
                           file_size(spark, source_uri))
        lap("read_again")
    base, evidence, ts_cols = parsed.base, parsed.evidence, parsed.timestamp_columns
    rows_read = int(evidence.get("__rows") or 0)
    formats = {
        c: choose_format(c, tx.evidence_from_row(evidence, tx.value(c)), contract.timestamps) for c in ts_cols
    }

    typed, info = tx.type_columns(base, contract, mapping, formats)
    # Line numbers and the dedupe need the whole file: they are computed on a narrow frame (Spark prunes the
    # typing to the three columns involved) and come back to the wide rows through one broadcast join.
    # The timestamps the outcomes read anyway travel with them, so the wide typing below reads each value once.
    carried = tx.carried_columns(contract, base, info)
    outcomes = tx.record_outcomes(
        tx.classify(typed, contract, info), header_lines=dialect.lines_before_data, open_quote_line=open_quote_line,
        blank_lines=blank_lines(whole_file, dialect), carry=tx.carried_fields(carried, info),
    ).persist()
    # Records per outcome (None: valid), counted on the narrow frame, which builds its cache here (so the report
    # times this phase on its own). Counting them in the write compared 20-odd reasons on every wide row.
    by_outcome = {r[tx.REASON]: int(r["count"]) for r in outcomes.groupBy(tx.REASON).count().collect()}
    lap("lines_and_dedupe")
    typed, info = tx.type_columns(base.join(F.broadcast(outcomes), tx.RECORD), contract, mapping, formats, carried)
    final = tx.derive(typed, args.run_id, source_key, ingested_at)

    # Every count of the published rows is gathered while they are written (no separate counting jobs).
    enum_cols = [c for c in contract.columns_of_type("enum")]
    is_valid = F.col(tx.REASON).isNull()
    unknown = {c.name: F.col(c.name).isNotNull() & ~F.col(c.name).isin(list(c.values)) for c in enum_cols}
    # Published values that failed typing (their text is in `_unparsed`): counted, with the first and the last
    # (line, text) as examples. Examples only here: the run report lives in the encrypted reports prefix.
    unparsed = {n: F.col(tx.UNPARSED)[n].isNotNull() for n in info.coerced_flags}

    def unparsed_example(name: str, agg: Callable[[Any], Any]) -> Any:
        example = F.struct(F.col(tx.LINE).alias("line"), F.col(tx.UNPARSED)[name].alias("value"))
        return agg(F.when(unparsed[name], example))
    # Observations are matched by name across the session: concurrent runs in one warm session (the local
    # runtime) must not share one, or each would read the other's counts.
    observation = Observation(f"run_report_{uuid.uuid4().hex}")
    observed = final.where(is_valid).observe(
        observation,
        F.count(F.lit(1)).alias("rows_written"),
        *[F.sum(F.col(flag).cast("int")).alias(f"coerced__{name}") for name, flag in info.coerced_flags.items()],
        *[
            F.sum(F.col(flag).cast("int")).alias(f"out_of_range__{name}")
            for name, flag in info.out_of_range_flags.items()
        ],
        *[F.sum(u.cast("int")).alias(f"unknown__{name}") for name, u in unknown.items()],
        *[F.sum(u.cast("int")).alias(f"unparsed__{name}") for name, u in unparsed.items()],
        *[
            F.to_json(F.array(unparsed_example(name, F.min), unparsed_example(name, F.max))).alias(
                f"unparsed_examples__{name}"
            )
            for name in unparsed
        ],
        # Distinct unknown tokens, not rows: a handful in practice; the report keeps 20. As JSON, because
        # observed metrics come back to Python as plain values only.
        *[
            F.to_json(F.collect_set(F.when(u, F.col(name)))).alias(f"unknown_values__{name}")
            for name, u in unknown.items()
        ],
    )

    tickets_uri = join(args.staging, "tickets")
    published_cols = tx.output_columns(contract, mapping)
    (
        observed.select(*published_cols, "year", "month")
        .write.mode("overwrite")
        .options(**tx.parquet_write_options(contract, published_cols))
        .partitionBy("year", "month")
        .parquet(tickets_uri)
    )
    counts = observation.get
    lap("write_valid")

    reasons = {r: n for r, n in by_outcome.items() if r is not None}
    rows_valid = by_outcome.get(None, 0)
    rows_quarantined = sum(reasons.values())
    quarantine_file = join(args.quarantine, QUARANTINE_FILE) if rows_quarantined else None
    if quarantine_file:
        tmp = join(args.quarantine, "_tmp_rows")
        bad = outcomes.where(F.col(tx.REASON).isNotNull())
        (
            base.join(F.broadcast(bad), tx.RECORD)
            .select(*tx.quarantine_columns(mapping))
            .coalesce(1)  # one file; the rows are few, and one partition needs no shuffle to sort
            .sortWithinPartitions("_source_line")
            .write.mode("overwrite")
            # Spark's CSV writer trims every value unless told not to: a quarantined row keeps its values as sent.
            .options(header=True, escape='"', quoteAll=False, emptyValue="", ignoreLeadingWhiteSpace=False,
                     ignoreTrailingWhiteSpace=False)
            .csv(tmp)
        )
        move_single_part(spark, tmp, quarantine_file)
    lap("write_quarantine")

    files = [
        {"uri": uri, "bytes": size, "rows": parquet_rows(spark, uri)}
        for uri, size in list_files(spark, tickets_uri, ".parquet")
    ]
    base.unpersist()
    outcomes.unpersist()
    if source_uri != args.source:  # the decompressed / UTF-8 copy: read for the last time above
        delete_tree(spark, join(args.staging, "source"))
    lap("report")
    report: dict[str, Any] = {
        "run_id": args.run_id,
        "source": args.source,
        "source_key": source_key,
        "contract": contract.source_path,
        "ingested_at": ingested_at,
        "dialect": dialect.to_dict(),
        # Compression, the encoding of the whole file, and the lines whose stray bytes were decoded by fallback.
        "source_text": prepared.report,
        # How Spark read the CSV: split by lines (every core, every Glue worker) or whole (multiLine, one task),
        # and why; `read_twice`: the provisional reading of a big file was dropped once the scan had seen every
        # byte (`read_again_because`: a quoted line break past the head, or an encoding other than the head's).
        "csv_parse": {**plan.to_dict(), "parse_tasks": parsed.parse_tasks, "read_twice": bool(again),
                      "read_again_because": "; ".join(again) or None},
        "rows_read": rows_read,
        "rows_valid": rows_valid,
        "rows_quarantined": rows_quarantined,
        "quarantined_by_reason": dict(sorted(reasons.items())),
        "duplicates_superseded": reasons.get(tx.DUPLICATE_SUPERSEDED, 0),
        # The source profile applied (None: the base contract), header -> field, and per source position the
        # header, its name, the field it fills and the rule that matched.
        "profile": mapping.profile,
        "header_mapping": mapping.canonical,
        "headers": mapping.to_dict()["columns"],
        # Columns the contract does not name, published in the `extra` map: key in `extra` -> source header.
        "unknown_columns": {c.name: c.header for c in mapping.unmapped},
        # Columns that could fill a field the contract prefers another column for (kept in `extra`).
        "columns_not_preferred": [n.to_dict() for n in mapping.not_preferred],
        "timestamp_formats": {c: f.to_dict() for c, f in formats.items()},
        "nulls_coerced": {n: int(counts.get(f"coerced__{n}") or 0) for n in info.coerced_flags},
        # Timestamps read but outside the contract's plausible range, nulled in published rows (a required
        # column's rows are quarantined instead: `out_of_range_required:<column>`).
        "out_of_range": {n: int(counts.get(f"out_of_range__{n}") or 0) for n in info.out_of_range_flags},
        # Values that failed typing, published as null with their original text in `_unparsed[<column>]`.
        "unparsed_values": {
            n: {
                "count": int(counts.get(f"unparsed__{n}") or 0),
                "examples": distinct_examples(counts.get(f"unparsed_examples__{n}")),
            }
            for n in unparsed
        },
        "unknown_enum_values": {
            c.name: {
                "count": int(counts.get(f"unknown__{c.name}") or 0),
                "values": sorted(json.loads(counts.get(f"unknown_values__{c.name}") or "[]"))[:20],
            }
            for c in enum_cols
        },
        "outputs": {
            "staging": tickets_uri,
            "files": files,
            "quarantine": quarantine_file,
        },
        # Read in the first pass, classified in the outcome pass, written in the last: every record accounted for.
        "reconciled": rows_read == rows_valid + rows_quarantined and rows_valid == int(counts.get("rows_written") or 0),
        "timings_seconds": {**timings, "total": round(time.monotonic() - t0, 3)},
    }
    if not report["reconciled"]:  # cannot happen by construction; a bug must not publish silently
        raise RuntimeError(
            f"row accounting broken: read {rows_read}, valid {rows_valid} + quarantined {rows_quarantined}, "
            f"written {counts.get('rows_written')}"
        )
    write_text(spark, join(args.reports, "run_report.json"), json.dumps(report, indent=2, default=str))
    return report


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(argv)
    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        spark = glue_context.spark_session
        job = Job(glue_context)
        from awsglue.utils import getResolvedOptions

        job.init(getResolvedOptions(argv, ["JOB_NAME"])["JOB_NAME"], {})
    except ImportError:
        spark, job = build_session(), None
    report = run(spark, args)
    print(json.dumps({k: report[k] for k in ("run_id", "rows_read", "rows_valid", "rows_quarantined")}))
    if job is not None:
        job.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
