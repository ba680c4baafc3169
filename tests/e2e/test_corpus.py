"""The corpus of hostile and broken exports (tests/data/corpus/), each file checked against expected.yaml.

Every file is uploaded on one local runtime (the real definition, handlers and Glue script), all at once; then
one test per file checks its outcome. For every processed file an independent count of its records with
Python's csv module equals rows published + rows quarantined, and each published row's ticket_id and
description are exactly the source's, decoded.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.support import outbox
from ticketcore import layout
from ticketcore.contract import SchemaError, load_contract, map_headers
from ticketcore.dialect import HEAD_BYTES, detect_dialect, scan, sniff_delimiter
from ticketcore.inspect import inspect_source
from ticketcore.storage import LocalStorage
from ticketflow.local.moto_patches import VirtualClock
from ticketflow.local.runtime import LocalRuntime
from ticketflow.ops.query import run_query

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))["files"]


def key_of(file: str) -> str:
    return EXPECTED[file].get("key", layout.RAW_PREFIX + file)


def corpus_params() -> list[Any]:
    params = []
    for file, spec in EXPECTED.items():
        marks = [pytest.mark.xfail(strict=True, reason=" ".join(spec["xfail"].split()))] if spec.get("xfail") else []
        params.append(pytest.param(file, id=file, marks=marks))
    return params


# ---------------------------------------------------------------- running the corpus once


@dataclass
class Result:
    file: str
    key: str
    refused: Exception | None = None
    started: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    desc: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None


@dataclass
class CorpusRun:
    rt: LocalRuntime  # closed: its bucket, records and outbox stay readable under rt.home
    results: dict[str, Result]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, spark):
    home = tmp_path_factory.mktemp("corpus") / "home"
    results: dict[str, Result] = {}
    # No Glue concurrency limit here (the burst test covers it): every file runs at once.
    with LocalRuntime(home=home, clock=VirtualClock(0, poll_interval=0.05), max_concurrent_runs=len(EXPECTED)) as rt:
        for file in EXPECTED:
            result = results[file] = Result(file, key_of(file))
            try:
                upload = rt.upload(CORPUS / file, result.key)
            except Exception as err:  # a refused key: checked by the file's test
                result.refused = err
                continue
            result.started, result.skipped = upload.started, upload.skipped
        for result in results.values():
            if result.started:
                result.desc = rt.wait(result.started[0], timeout=600)
                result.summary = rt.summary(result.started[0])
    # One local Step Functions per process: close this one, so the other tests can start theirs.
    return CorpusRun(rt, results)


# ---------------------------------------------------------------- independent reading of a source file


def source_bytes(path: Path) -> bytes:
    """The file's text bytes: a gzip-compressed file decompressed by Python's gzip module."""
    data = path.read_bytes()
    return gzip.decompress(data) if data.startswith(b"\x1f\x8b") else data


def source_records(path: Path) -> tuple[list[str], list[list[str]]]:
    """(headers, records) as Python's csv module reads the file, with the detected encoding and delimiter."""
    data = source_bytes(path)
    dialect = detect_dialect(data[:HEAD_BYTES])
    text = data.decode(dialect.encoding)
    csv.field_size_limit(64 * 1024 * 1024)
    rows = [r for r in csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=dialect.delimiter) if r]
    return [h.strip() for h in rows[0]], rows[1:]


def quarantine_rows(rt: LocalRuntime, key: str, name: str) -> list[dict[str, str]]:
    path = layout.quarantine_prefix(key, name) + "rows.csv"
    if not rt.storage.exists(path):
        return []
    return list(csv.DictReader(io.StringIO(rt.storage.read_bytes(path).decode("utf-8"), newline="")))


def published_rows(rt: LocalRuntime, key: str) -> list[dict[str, Any]]:
    literal = "'" + key.replace("'", "''") + "'"
    columns, rows = run_query(rt.home, f"SELECT * FROM tickets WHERE _source_key = {literal} ORDER BY ticket_id")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# ---------------------------------------------------------------- one test per file


@pytest.mark.parametrize("file", corpus_params())
@pytest.mark.e2e
@pytest.mark.spark
def test_corpus_file(corpus, file):
    spec, result, rt = EXPECTED[file], corpus.results[file], corpus.rt
    outcome = spec["outcome"]
    if outcome == "refused":
        check_refused(rt, spec, result)
    elif outcome == "skipped":
        assert result.refused is None and result.started == [], result
        assert [(s["key"], s["reason"]) for s in result.skipped] == [(result.key, spec["reason"])]
        assert json.loads(rt.storage.read_bytes(result.skipped[0]["record"]))["reason"] == spec["reason"]
    elif outcome == "failed":
        check_failed(rt, spec, result)
    else:
        check_succeeded(rt, spec, result)


def check_refused(rt: LocalRuntime, spec: dict[str, Any], result: Result) -> None:
    assert type(result.refused).__name__ == spec["error"], result
    for fragment in spec["message"]:
        assert fragment in str(result.refused)
    assert result.key in str(result.refused)
    # Nothing was written where the key points, outside the bucket, or anywhere in the bucket for it.
    outside = (rt.storage.base / result.key).resolve()
    assert not outside.exists() and not list(outside.parent.glob(f".{outside.name}*"))
    assert not any(p.name.endswith(outside.name) for p in rt.storage.base.rglob("*"))


def check_failed(rt: LocalRuntime, spec: dict[str, Any], result: Result) -> None:
    assert result.refused is None and len(result.started) == 1, result
    name, desc, summary = result.started[0], result.desc, result.summary
    assert desc["status"] == "FAILED", summary
    assert (summary["failed_state"], summary["error"]) == (spec["failed_state"], spec["error"]), summary
    for fragment in spec["message"]:
        assert fragment in summary["cause"], summary["cause"]
    # The alert names the file, the state and the error; nothing of the file is published.
    alerts = [a for a in outbox(rt) if f"Execution {name} ended FAILED" in a["message"]]
    assert len(alerts) == 1
    assert f"Source file:   {result.key}" in alerts[0]["message"]
    assert f"FAILED at {spec['failed_state']} ({spec['error']})" in alerts[0]["subject"]
    assert not rt.storage.exists(layout.manifest_key(result.key))
    assert not [o for o in rt.storage.list(layout.TICKETS_PREFIX) if layout.source_id(result.key) in o.key]


def check_succeeded(rt: LocalRuntime, spec: dict[str, Any], result: Result) -> None:
    assert result.refused is None and len(result.started) == 1, result
    name, summary = result.started[0], result.summary
    assert result.desc["status"] == "SUCCEEDED", {k: summary.get(k) for k in ("failed_state", "error", "cause")}
    report = json.loads(rt.storage.read_bytes(summary["report_key"]))
    manifest = json.loads(rt.storage.read_bytes(layout.manifest_key(result.key)))
    published = published_rows(rt, result.key) if manifest["files"] else []
    quarantined = quarantine_rows(rt, result.key, name)

    # Published: the manifest, the run report, the execution summary and the query agree with expected.yaml.
    assert manifest["run_id"] == name
    assert manifest["rows"] == report["rows_valid"] == summary["rows_published"] == len(published) == spec["published"]
    # Quarantined: the run report and the quarantine file agree; reasons and source lines as expected.
    assert report["rows_quarantined"] == len(quarantined) == spec["quarantined"]
    lines: dict[str, list[int]] = {}
    for row in quarantined:
        lines.setdefault(row["_error_reason"], []).append(int(row["_source_line"]))
    assert lines == {reason: sorted(at) for reason, at in (spec.get("quarantine") or {}).items()}
    assert report["quarantined_by_reason"] == {r: len(at) for r, at in sorted(lines.items())}

    # The independent count: every record Python's csv module reads is published or quarantined.
    headers, records = source_records(CORPUS / result.file)
    assert len(records) == report["rows_read"] == len(published) + len(quarantined)

    # Each published row is its source record, decoded: ticket_id and description exactly (values trimmed
    # of spaces, missing-value tokens as null), and every ticket once. Spark's reader turns a CRLF file's
    # line endings inside quoted values into "\n" (univocity's normalizeLineEndingsWithinQuotes).
    crlf_file = detect_dialect(source_bytes(CORPUS / result.file)[:HEAD_BYTES]).line_terminator == "\r\n"
    mapping = map_headers(headers, load_contract())
    position: dict[str, int] = {}
    for column in mapping.columns:  # by position: headers may repeat (the first column of a field)
        if column.field is not None:
            position.setdefault(column.field, column.position - 1)
    tokens = set(load_contract().missing_values)
    latest = {r[position["ticket_id"]].strip(" "): r for r in records if len(r) == len(headers)}
    ids = [row["ticket_id"] for row in published]
    assert len(ids) == len(set(ids))
    for row in published:
        source = latest[row["ticket_id"]]
        description = source[position["description"]].strip(" ")
        description = description.replace("\r\n", "\n") if crlf_file else description
        assert row["description"] == (None if description.casefold() in tokens else description), row["ticket_id"]
        assert row["_source_key"] == result.key and row["_run_id"] == name

    by_id = {row["ticket_id"]: row for row in published}
    for ticket_id, values in (spec.get("values") or {}).items():
        assert ticket_id in by_id, f"{ticket_id} not published"
        assert {c: plain(by_id[ticket_id][c]) for c in values} == values, ticket_id


# ---------------------------------------------------------------- the corpus itself


def test_committed_corpus_is_what_make_corpus_writes():
    check = subprocess.run([sys.executable, str(CORPUS / "make_corpus.py"), "--check"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stderr
    files = {p.name for p in CORPUS.iterdir() if p.suffix == ".csv"}
    assert files == set(EXPECTED), "every corpus file has an expected outcome, and every outcome a file"
    assert sum(p.stat().st_size for p in CORPUS.iterdir()) < 3 * 1024 * 1024


def test_an_empty_upload_is_skipped_logged_and_counted(tmp_path, capsys):
    from lambdas.trigger import handler as trigger

    # GIVEN a quiet runtime (metrics off) that has already skipped one empty upload
    with LocalRuntime(home=tmp_path / "quiet", clock=VirtualClock(0)) as rt:
        assert rt.upload(CORPUS / "empty.csv").skipped
    assert not trigger.metrics.metric_set  # nothing held back from the quiet invocation
    # AND Lambdas that print their metrics (EMF), as on AWS
    with LocalRuntime(home=tmp_path / "home", clock=VirtualClock(0), quiet_lambdas=False) as rt:
        capsys.readouterr()
        # WHEN a zero-byte object arrives
        upload = rt.upload(CORPUS / "empty.csv")
        # THEN no execution, the skip is in the trigger's answer and counted in its ObjectsSkipped metric
        assert upload.started == [] and [(s["key"], s["reason"]) for s in upload.skipped] == [
            (upload.key, "zero-byte object")
        ]
        assert rt.client.list_executions(stateMachineArn=rt.state_machine_arn)["executions"] == []
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    metrics = [doc for doc in printed if "ObjectsSkipped" in doc]
    assert len(metrics) == 1
    assert (metrics[0]["ObjectsSkipped"], metrics[0]["ExecutionsStarted"]) == ([1.0], [0.0])


# ---------------------------------------------------------------- the dialect and inspect fixes


def test_sniffer_prefers_the_delimiter_the_records_agree_with():
    # Tab-padded comma headers: more tabs than commas in the header line, but the records split on commas.
    head = (CORPUS / "whitespace_padded.csv").read_bytes()
    assert detect_dialect(head).delimiter == ","
    assert sniff_delimiter("a\t,b\t,c\t") == "\t"  # the header line alone still decides when nothing else can
    assert sniff_delimiter("a\t,b\t,c\t", "a\t,b\t,c\t\n1,2,3\n4,5,6\n") == ","


def test_line_terminator_counts_record_ends_only():
    # CRLF inside a quoted value of an LF file is data, not a second kind of line ending.
    assert detect_dialect((CORPUS / "quoted_newlines.csv").read_bytes()).line_terminator == "\n"
    assert detect_dialect((CORPUS / "crlf.csv").read_bytes()).line_terminator == "\r\n"
    assert detect_dialect((CORPUS / "mixed_line_endings.csv").read_bytes()).line_terminator == "mixed"


def test_trailing_delimiter_is_recorded():
    assert detect_dialect((CORPUS / "trailing_delimiter.csv").read_bytes()).trailing_delimiter is True
    assert detect_dialect((CORPUS / "crlf.csv").read_bytes()).trailing_delimiter is False
    assert "trailing_delimiter" in detect_dialect(b"a,b\n1,2\n").to_dict()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('a,b\n1,"x\n2,y\n', 2),
        ('a,b\n1,"x ""quoted"" \n more"\n2,"open\n', 4),
        ('a,b\n1,5" screen\n2,y\n', None),  # a quote inside an unquoted value is data
        ('a,b\n1,"x"\n', None),
        ('a;b\r\n"1;2";"\r\n', 2),
    ],
)
def test_scan_finds_the_line_an_unclosed_quote_opens_on(text, line):
    assert scan(text, ";" if ";" in text.splitlines()[0] else ",").open_quote_line == line


def _inspect(tmp_path: Path, name: str, data: bytes) -> dict[str, Any]:
    storage = LocalStorage(tmp_path, "bucket")
    storage.write_bytes(layout.RAW_PREFIX + name, data)
    return inspect_source(storage, layout.RAW_PREFIX + name, "run-1", load_contract())


def test_inspect_reads_a_head_holding_a_value_longer_than_the_csv_field_limit(tmp_path):
    # The head cuts the 1 MB description: no "field larger than field limit", no unterminated-quote alarm,
    # with the csv module's limit as a fresh Lambda process has it (128 KiB).
    previous = csv.field_size_limit(128 * 1024)
    try:
        result = _inspect(tmp_path, "big.csv", (CORPUS / "big_description.csv").read_bytes())
    finally:
        csv.field_size_limit(previous)
    assert result["dialect"]["delimiter"] == "," and result["bytes"] > HEAD_BYTES


def test_inspect_rejects_an_unterminated_quote_naming_the_line(tmp_path):
    with pytest.raises(SchemaError, match=r"unterminated quote: .* opens on line 5 .* lines 5-9"):
        _inspect(tmp_path, "uq.csv", (CORPUS / "unterminated_quote.csv").read_bytes())


