"""The two ways the Glue job reads a CSV give the same result: split by lines (Spark's `multiLine` off, one task
per block of the file) when no quoted value holds a line break, whole (`multiLine`, one task) otherwise.

Every file here whose whole-file scan allows the split reading is run both ways, with Spark's blocks made small
(`spark.sql.files.maxPartitionBytes`: about six per file) so that even a small file is parsed by several tasks:
the published rows (every column, `_source_line` included), the quarantine file byte for byte, and every count of
the run report must be identical. The files: the test corpus, the field cases and real exports in ../shared,
and shapes made here (blank lines in "\n" and "\r\n" files, a lone "\r" inside a value, duplicates in different
blocks, ragged records). Files the two readers would see differently (a quoted line break past the head, a line
of whitespace only, a lone "\r" line in a "\n" file) are read whole, as the last tests check.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from glue.ticket_etl_job import JobArgs, run
from ticketcore.contract import SchemaError
from ticketcore.dialect import HEAD_BYTES, csv_parse_plan, detect_dialect, scan_stream
from ticketcore.source import text_head

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "corpus"
SHARED = ROOT.parent / "shared" / "data"
BLOCKS = 6  # Spark blocks per file in these runs (a block is at least MIN_BLOCK bytes)
MIN_BLOCK = 1024

# What the report says about the rows; timings, paths and ingestion times differ between runs by nature.
REPORT_FIELDS = ("rows_read", "rows_valid", "rows_quarantined", "quarantined_by_reason", "duplicates_superseded",
                 "timestamp_formats", "nulls_coerced", "out_of_range", "unparsed_values", "unknown_enum_values",
                 "header_mapping", "unknown_columns", "source_text")
RUN_VARYING = ("_run_id", "_ingested_at", "_source_key")


BLOCK_KEYS = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")


@pytest.fixture
def small_blocks(spark) -> Iterator[None]:
    """Restores Spark's block settings, which `compare_readings` makes small for each file."""
    before = {k: spark.conf.get(k) for k in BLOCK_KEYS}
    yield
    for k, v in before.items():
        spark.conf.set(k, v)


def block_bytes(data: bytes) -> int:
    return max(MIN_BLOCK, len(text_of(data)) // BLOCKS + 1)


def text_of(data: bytes) -> bytes:
    """The CSV text of an upload (a .csv.gz decompressed), as the job's readers see it."""
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def plan_of(data: bytes) -> Any:
    """The reading the job will choose: from the head's dialect and a scan of every byte."""
    text = text_of(data)
    dialect = detect_dialect(text_head(text[:HEAD_BYTES], len(text) <= HEAD_BYTES, HEAD_BYTES).data)
    return csv_parse_plan(dialect, scan_stream([text], dialect.encoding, dialect.delimiter))


def run_once(spark, tmp: Path, data: bytes, name: str, csv_parse: str) -> dict[str, Any]:
    """One job run; returns the report, the published rows by line, and the quarantine file's bytes (or the
    message of the SchemaError the job refused the file with, as `refused`)."""
    tmp.mkdir(parents=True)
    source = tmp / name
    source.write_bytes(data)
    args = JobArgs(source=str(source), staging=str(tmp / "staging"), quarantine=str(tmp / "q"),
                   reports=str(tmp / "reports"), run_id="parse", source_key=name, csv_parse=csv_parse)
    try:
        report = run(spark, args)
    except SchemaError as e:
        return {"refused": str(e)}
    tickets = tmp / "staging" / "tickets"
    rows = []
    if tickets.exists():
        table = ds.dataset(tickets, format="parquet", partitioning="hive").to_table()
        rows = sorted(({k: v for k, v in r.items() if k not in RUN_VARYING} for r in table.to_pylist()),
                      key=lambda r: r["_source_line"])
    quarantine = tmp / "q" / "rows.csv"
    return {"report": report, "rows": rows, "quarantine": quarantine.read_bytes() if quarantine.exists() else None}


def compare_readings(spark, tmp: Path, data: bytes, name: str) -> dict[str, Any] | None:
    """Run `data` split and whole; assert the outcomes are identical; return the split run's report (None when
    the job refused the file, with the same message both ways)."""
    for key in BLOCK_KEYS:
        spark.conf.set(key, str(block_bytes(data)))
    split = run_once(spark, tmp / "split", data, name, "auto")
    whole = run_once(spark, tmp / "whole", data, name, "multi_line")
    if "refused" in split or "refused" in whole:  # a file the contract refuses is refused alike
        assert split.get("refused") == whole.get("refused")
        return None
    assert split["report"]["csv_parse"]["multi_line"] is False, split["report"]["csv_parse"]
    assert whole["report"]["csv_parse"]["multi_line"] is True
    for key in REPORT_FIELDS:
        if key == "source_text":  # where the decompressed copy was written differs by run directory
            assert {k: v for k, v in split["report"][key].items() if k not in ("read_from", "seconds")} == {
                k: v for k, v in whole["report"][key].items() if k not in ("read_from", "seconds")}
            continue
        assert split["report"][key] == whole["report"][key], (name, key)
    assert len(split["rows"]) == split["report"]["rows_valid"]
    assert split["rows"] == whole["rows"], name
    assert split["quarantine"] == whole["quarantine"], name
    return split["report"]


def shared_files(folder: str) -> list[Path]:
    base = SHARED / folder
    return sorted(p for p in base.glob("*") if p.suffix in (".csv", ".gz")) if base.exists() else []


# 3 records under a 1,500-column header larger than the blocks: its split reading is one task, and the two runs
# took 223 s here; the 900-column field case covers wide files.
NOT_COMPARED = ("wide_long_headers.csv",)


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.glob("*.csv") if p.name not in NOT_COMPARED)


def _whole(path: Path) -> bool:
    """The job reads `path` whole (or refuses it before reading): nothing to compare."""
    try:
        return bool(plan_of(path.read_bytes()).multi_line)
    except SchemaError:
        return True


# The files of every collection the job reads split by lines; the others are named in the test after this one.
SPLIT_FILES = [p for p in [*corpus_files(), *shared_files("field-cases"), *shared_files("real")] if not _whole(p)]


@pytest.mark.parametrize("path", SPLIT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_file_the_split_reading_is_chosen_for_reads_as_the_whole_reading(spark, small_blocks, tmp_path, path):
    data = path.read_bytes()
    report = compare_readings(spark, tmp_path, data, path.name)
    assert report is None or report["csv_parse"]["read_twice"] is False


def test_the_split_reading_is_chosen_for_single_line_files_in_every_collection():
    chosen = {p.name for p in [*corpus_files(), *shared_files("field-cases")] if not _whole(p)}
    # Non-vacuous: the comparison above ran on these (and on more of the real exports when ../shared is there).
    assert {"semicolon.csv", "tab_delimited.csv", "ragged_rows.csv", "trailing_delimiter.csv",
            "duplicate_ids.csv", "mixed_line_endings.csv", "cp1252_accents.csv"} <= chosen
    whole = {p.name for p in corpus_files() if _whole(p)}
    assert {"crlf.csv", "quoted_newlines.csv", "utf16_bom.csv", "unterminated_quote.csv"} <= whole


def records(n: int, start: int = 0) -> list[str]:
    return [f"T{i},2024-01-{1 + i % 28:02d}T10:00:00Z,2024-02-01T10:00:00Z,subject {i},open,high" for i in
            range(start, start + n)]


HEADER = "ticket_id,created_at,updated_at,subject,status,priority"


@pytest.mark.parametrize(("case", "text"), [
    # Blank lines between records and at the end, in a "\n" file and in a "\r\n" one.
    ("blank_lines", "\n".join([HEADER, *records(40), "", "", *records(40, 40), "", *records(40, 80), "", ""]) + "\n"),
    ("blank_lines_crlf", "\r\n".join([HEADER, *records(40), "", "", *records(40, 40), *records(40, 80), ""]) + "\r\n"),
    # CRLF records, one with a lone "\r" inside an unquoted value and one inside a quoted value's text.
    ("crlf_lone_cr", "\r\n".join([HEADER, *records(60), 'T900,2024-01-01T10:00:00Z,,a\rb,open,high',
                                  *records(60, 60)]) + "\r\n"),
    # The same ticket in blocks far apart: the later line wins the dedupe in both readings.
    ("duplicates_across_blocks", "\n".join([HEADER, *records(100), *records(100)]) + "\n"),
    # Ragged records (too few fields, too many) and quoted values with delimiters and doubled quotes.
    ("ragged_and_quoted", "\n".join([HEADER, *records(50), "T-r,2024-01-01T10:00:00Z,x", *records(50, 50),
                                     'T-q,2024-01-01T10:00:00Z,,"a, ""b""",open,high,extra', *records(20, 100),
                                     'T-z,2024-01-01T10:00:00Z,,"a, ""b""",open,high']) + "\n"),
    # Excel's `sep=` line after a BOM, blank lines before the header, trailing delimiters.
    ("sep_line_bom_trailing", "\ufeffsep=,\n\n" + "\n".join([HEADER + ",", *[r + "," for r in records(80)]]) + "\n"),
])
def test_shapes_made_here_read_the_same_both_ways(spark, small_blocks, tmp_path, case, text):
    data = text.encode("utf-8")
    assert not plan_of(data).multi_line
    report = compare_readings(spark, tmp_path, data, f"{case}.csv")
    assert report is not None
    assert report["csv_parse"]["parse_tasks"] >= 2
    assert report["rows_read"] == report["rows_valid"] + report["rows_quarantined"]


@pytest.fixture
def big_file_path(monkeypatch):
    """The job takes every file for a big one: it reads split by lines before its scan has ended (a file of more
    than 16 MiB takes that path; these tests need not write one)."""
    import glue.ticket_etl_job as job

    monkeypatch.setattr(job, "SCAN_FIRST_BYTES", 0)


def test_a_quoted_line_break_past_the_head_makes_the_job_read_the_file_again_whole(spark, tmp_path, big_file_path):
    # The head (256 KiB) shows single-line records only: the job starts split, and the whole-file scan, which
    # sees the line break in record 5000, overrules it. The result is what a whole reading gives.
    rows = records(5000)
    text = "\n".join([HEADER, *rows, 'T-ml,2024-01-01T10:00:00Z,,"two\nlines",open,high', *records(10, 9000)]) + "\n"
    assert len(text.split('"two')[0].encode()) > HEAD_BYTES
    data = text.encode()
    auto = run_once(spark, tmp_path / "auto", data, "late_break.csv", "auto")
    whole = run_once(spark, tmp_path / "whole", data, "late_break.csv", "multi_line")
    parse = auto["report"]["csv_parse"]
    assert (parse["multi_line"], parse["read_twice"], parse["parse_tasks"]) == (True, True, 1)
    assert parse["reason"] == "a quoted value opening on line 5002 holds a line break: records span lines"
    assert parse["read_again_because"] == "the whole-file scan overruled the split reading"
    assert "read_again" in auto["report"]["timings_seconds"]
    assert auto["rows"] == whole["rows"]
    assert auto["report"]["rows_read"] == 5011
    assert {r["ticket_id"]: r["_source_line"] for r in auto["rows"]}["T9000"] == 5004


@pytest.mark.parametrize(("case", "encoding", "because"), [
    # UTF-8, but one byte past the head is Windows-1252: that record is decoded by fallback, from a UTF-8 copy.
    ("stray_byte", "utf-8", "1 line(s) past its first 256 KiB hold bytes that are not UTF-8 (the first: line 5002): "
                            "decoded by fallback, from the file rewritten as UTF-8"),
    # Windows-1252 throughout, its first non-ASCII byte past the head.
    ("windows_1252", "cp1252", "the whole file is cp1252, not utf-8 as its first 256 KiB showed"),
])
def test_an_encoding_the_head_did_not_show_makes_the_job_read_a_big_file_again(spark, tmp_path, monkeypatch, case,
                                                                               encoding, because):
    # A big file is parsed in its head's encoding while the quote scan checks every byte; when the bytes past the
    # head say otherwise, the job reads the file again as they say. What it publishes is what a small file, its
    # every byte checked before the parse, gives.
    late = "T-late,2024-01-01T10:00:00Z,,Caf\xe9 au lait,open,high"
    lines = [HEADER, *records(5000), late, *records(10, 9000)]
    data = "\n".join(lines).encode("cp1252") + b"\n"
    assert data.index(b"\xe9") > HEAD_BYTES
    if case == "stray_byte":
        data = data.replace(b"subject 9005", "subject 9005 Müller".encode())
    import glue.ticket_etl_job as job

    first = run_once(spark, tmp_path / "first", data, "late.csv", "auto")
    monkeypatch.setattr(job, "SCAN_FIRST_BYTES", 0)
    again = run_once(spark, tmp_path / "again", data, "late.csv", "auto")
    parse = again["report"]["csv_parse"]
    assert (parse["multi_line"], parse["read_twice"], parse["read_again_because"]) == (False, True, because)
    assert first["report"]["csv_parse"]["read_twice"] is False
    assert again["report"]["dialect"]["encoding"] == first["report"]["dialect"]["encoding"]
    assert again["report"]["source_text"]["encoding"] == first["report"]["source_text"]["encoding"]
    assert again["report"]["source_text"]["encoding"]["encoding"] == encoding
    assert again["rows"] == first["rows"]
    subjects = {r["ticket_id"]: r["subject"] for r in again["rows"]}
    assert subjects["T-late"] == "Café au lait"
    assert subjects["T9005"] == ("subject 9005 Müller" if case == "stray_byte" else "subject 9005")
    assert {r["ticket_id"]: r["_source_line"] for r in again["rows"]}["T-late"] == 5002


def test_a_big_file_whose_head_holds_bytes_that_are_not_utf8_is_checked_before_the_parse(spark, tmp_path,
                                                                                         big_file_path):
    # The stray byte in the head makes the head guess Windows-1252, but the whole file is UTF-8 with one stray
    # byte: a guess so likely to be overruled is not parsed provisionally. The file is read once, as UTF-8.
    lines = [HEADER, *records(5), "T-stray,2024-01-01T10:00:00Z,,Caf\xe9,open,high", *records(5000, 9000)]
    data = ("\n".join(lines).encode("cp1252") + b"\n").replace(b"subject 13005", "subject 13005 Müller".encode())
    assert data.index("Müller".encode()) > HEAD_BYTES  # the head holds the stray byte and no UTF-8 sequence
    report = run_once(spark, tmp_path / "r", data, "stray_head.csv", "auto")
    assert report["report"]["csv_parse"]["read_twice"] is False
    text = report["report"]["source_text"]
    assert (text["head_encoding"], text["encoding"]["encoding"], text["encoding"]["fallback_line_numbers"]) == (
        "cp1252", "utf-8", [7])
    subjects = {r["ticket_id"]: r["subject"] for r in report["rows"]}
    assert (subjects["T-stray"], subjects["T13005"]) == ("Café", "subject 13005 Müller")


@pytest.mark.parametrize(("odd_line", "reason"), [
    ("   ", "line 32 holds only whitespace: Spark's line reader would skip it, the whole-file reader reads it as a "
           "record"),
    ("\r", "line 32 is a lone \\r in a file whose records end in \\n: the whole-file reader reads it as a record, "
           "Spark's line reader would skip it"),
])
@pytest.mark.parametrize("big", [False, True], ids=["scanned-first", "read-again"])
def test_a_line_the_two_readers_see_differently_makes_the_job_read_the_file_whole(spark, tmp_path, monkeypatch,
                                                                                  odd_line, reason, big):
    # Spark's line reader drops a line of spaces, tabs or a lone "\r"; the whole-file reader of a "\n" file reads
    # it as a (ragged) record, which the quarantine keeps with its line. The scan finds it: the file is read whole,
    # at once when the file is small enough to be scanned first, else after a provisional split reading.
    if big:
        import glue.ticket_etl_job as job

        monkeypatch.setattr(job, "SCAN_FIRST_BYTES", 0)
    text = "\n".join([HEADER, *records(30), odd_line, *records(35, 30)]) + "\n"
    auto = run_once(spark, tmp_path / "auto", text.encode(), "odd.csv", "auto")
    parse = auto["report"]["csv_parse"]
    assert (parse["multi_line"], parse["read_twice"], parse["reason"]) == (True, big, reason)
    assert (auto["report"]["rows_read"], auto["report"]["quarantined_by_reason"]) == (66, {"wrong_field_count": 1})
    [row] = csv.DictReader(io.StringIO(auto["quarantine"].decode(), newline=""))
    assert (row["_error_reason"], row["_source_line"]) == ("wrong_field_count", "32")
    if not odd_line.strip(" "):  # the spaces are kept as sent (Spark's CSV writer would trim them to nothing)
        assert row["_raw_record"] == odd_line


@pytest.mark.parametrize("big", [False, True], ids=["scanned-first", "head-decides"])
def test_a_quoted_line_break_in_the_head_reads_whole_at_once(spark, tmp_path, monkeypatch, big):
    if big:
        import glue.ticket_etl_job as job

        monkeypatch.setattr(job, "SCAN_FIRST_BYTES", 0)
    text = "\n".join([HEADER, 'T1,2024-01-01T10:00:00Z,,"two\nlines",open,high', *records(5, 10)]) + "\n"
    report = run_once(spark, tmp_path / "r", text.encode(), "head_break.csv", "auto")["report"]
    reason = ("a quoted value in the first 256 KiB holds a line break" if big
              else "a quoted value opening on line 2 holds a line break")
    assert report["csv_parse"] == {"multi_line": True, "reason": f"{reason}: records span lines", "parse_tasks": 1,
                                   "read_twice": False, "read_again_because": None}
    assert "read_again" not in report["timings_seconds"]


def test_the_report_says_why_a_single_line_file_was_split(spark, tmp_path):
    report = run_once(spark, tmp_path / "r", ("\n".join([HEADER, *records(20)]) + "\n").encode(), "one.csv",
                      "auto")["report"]
    assert report["csv_parse"] == {
        "multi_line": False,
        "reason": "no quoted value holds a line break (whole-file scan): every record is one line",
        "parse_tasks": 1, "read_twice": False, "read_again_because": None}


def test_an_unknown_csv_parse_argument_is_refused():
    from ticketcore.dialect import Dialect

    with pytest.raises(ValueError, match="unknown csv_parse 'lines': expected 'auto' or 'multi_line'"):
        csv_parse_plan(Dialect("utf-8", False, ",", ["a"], "\n"), None, "lines")


def test_the_split_order_check_refuses_blocks_out_of_file_order():
    from ticketcore.spark_transform import splits_in_file_order

    assert splits_in_file_order([[0, 0], [1, 2048], [2, 4096]])
    assert splits_in_file_order([[2, 4096], [0, 0], [1, 2048]])  # collect_set gives no order
    assert not splits_in_file_order([[0, 2048], [1, 0]])  # a later block in an earlier partition
    assert not splits_in_file_order([[0, 0], [0, 2048]])  # two blocks in one partition: ids would interleave
    assert json.dumps([]) == "[]" and splits_in_file_order([])


def test_split_blocks_are_a_whole_number_per_core_and_at_most_128_mib():
    from ticketcore.spark_transform import split_block_bytes

    mib = 2**20
    assert split_block_bytes(3 * mib, 2) is None  # one block anyway (Spark's open cost is 4 MiB)
    assert split_block_bytes(317 * mib, 2) == -(-317 * mib // 4)  # 4 blocks of 79.25 MiB, not 128 + 128 + 61
    assert split_block_bytes(100 * mib, 8) == -(-100 * mib // 8)
    assert split_block_bytes(10_000 * mib, 16) == -(-10_000 * mib // 80)  # 80 blocks of 125 MiB: 5 per core
