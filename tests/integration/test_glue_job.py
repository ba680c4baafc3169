"""The Glue job end to end on local Spark: real exports, generated data, unusable files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from glue.ticket_etl_job import JobArgs, run
from ticketcore.contract import SchemaError, load_contract
from ticketcore.dialect import HEAD_BYTES, detect_dialect
from ticketflow.generate import generate_csv

pytestmark = pytest.mark.spark
CONTRACT_DIR = Path(__file__).resolve().parents[2] / "contracts"


def job(tmp_path: Path, source: Path, **kw) -> JobArgs:
    return JobArgs(
        source=str(source),
        staging=str(tmp_path / "staging"),
        quarantine=str(tmp_path / "q"),
        reports=str(tmp_path / "reports"),
        run_id="test-run",
        source_key=source.name,
        **kw,
    )


def published(tmp_path: Path):
    return ds.dataset(tmp_path / "staging" / "tickets", format="parquet", partitioning="hive").to_table()


def quarantined(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "q" / "rows.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def csv_records(path: Path, encoding: str = "utf-8") -> int:
    with path.open(newline="", encoding=encoding) as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


@pytest.mark.real_data
def test_kpi_dashboard_export(spark, tmp_path, real_file):
    source = real_file("kpi_dashboard_tickets.csv")
    report = run(spark, job(tmp_path, source))
    assert report["rows_read"] == csv_records(source) == 1000
    assert report["rows_valid"] + report["rows_quarantined"] == 1000
    assert report["header_mapping"]["Created_Date"] == "created_at"
    assert report["header_mapping"]["Resolved_Date"] == "resolved_at"
    table = published(tmp_path).to_pandas().set_index("ticket_id")
    assert len(table) == report["rows_valid"]
    first = table.loc["TKT_100000"]
    assert (str(first.created_at.date()), first.channel, first.priority, first.status, first.agent) == (
        "2024-12-16",
        "phone",
        "low",
        "resolved",
        "Agent_19",
    )
    assert first.resolution_hours == 96.0
    assert first._source_line == 2
    pending = table.loc["TKT_100007"]
    assert (pending.status == "pending" and pending.resolved_at is None) or str(pending.resolved_at) == "NaT"
    # Every file's rows are written once: partitions are disjoint and add up.
    assert sum(f["rows"] for f in report["outputs"]["files"]) == report["rows_valid"]
    saved = json.loads((tmp_path / "reports" / "run_report.json").read_text())
    assert saved["rows_read"] == 1000 and saved["reconciled"] is True


@pytest.mark.real_data
def test_ticket_analytics_export(spark, tmp_path, real_file):
    source = real_file("ticket_analytics_tickets.csv")
    report = run(spark, job(tmp_path, source))
    assert report["rows_read"] == csv_records(source)
    assert report["rows_valid"] + report["rows_quarantined"] == report["rows_read"]
    table = published(tmp_path).to_pandas().set_index("ticket_id")
    one = table.loc["TKT-00001"]
    assert (one.priority, one.status, one.satisfaction_score, one.channel) == ("urgent", "closed", 5, "chat")
    assert str(one.created_at) == "2024-11-23 03:01:00+00:00"
    assert table.loc["TKT-00002"].status == "in_progress"
    assert table.loc["TKT-00004"].channel == "web"
    # Durations in hours are not timestamps: kept as unknown string columns, and reported.
    assert report["unknown_columns"]["resolution_time_hours"] == "Resolution_Time_Hours"
    assert dict(table.loc["TKT-00001"].extra)["resolution_time_hours"] == "18.05"  # one map for all of them
    assert "resolution_time_hours" not in table.columns
    # Blank CSAT is null, not a coercion.
    assert report["nulls_coerced"]["satisfaction_score"] == 0


@pytest.mark.real_data
def test_sla_breach_export_needs_a_creation_timestamp(spark, tmp_path, real_file):
    source = real_file("sla_breach_tickets.csv")
    with pytest.raises(SchemaError, match="created_at") as err:
        run(spark, job(tmp_path, source))
    assert "First_Response_Time" in str(err.value)  # the headers seen are named
    assert not (tmp_path / "staging").exists() and not (tmp_path / "reports").exists()


@pytest.mark.real_data
def test_sla_breach_export_with_a_user_contract(spark, tmp_path, real_file):
    """A user maps created_at from First_Response_Time by editing a copy of the contract: no code change."""
    source = real_file("sla_breach_tickets.csv")
    text = (CONTRACT_DIR / "support_tickets.yaml").read_text()
    text = text.replace(
        "first_response_date, first_reply_at, first_response_time]", "first_response_date, first_reply_at]"
    )
    text = text.replace(
        "submitted_at, ticket_created, created_on]",
        "submitted_at, ticket_created, created_on,\n              first_response_time]",
    )
    text = text.replace("date_resolved, resolved_on]", "date_resolved, resolved_on, time_to_resolution]")
    contract_path = tmp_path / "sla_contract.yaml"
    contract_path.write_text(text)
    report = run(spark, job(tmp_path, source, contract=str(contract_path)))
    assert report["header_mapping"]["First_Response_Time"] == "created_at"
    assert report["header_mapping"]["Time_to_Resolution"] == "resolved_at"
    assert report["rows_read"] == csv_records(source) == 2769
    assert report["rows_valid"] + report["rows_quarantined"] == 2769
    table = published(tmp_path).to_pandas().set_index("ticket_id")
    row = table.loc["4"]  # "2023-06-01 7:29": hour not zero-padded
    assert str(row.created_at) == "2023-06-01 07:29:00+00:00"
    assert row.customer_email == "bradleyolson@example.org"
    assert row.satisfaction_score == 3


def test_generated_file_counts_match_what_was_injected(spark, tmp_path):
    source = tmp_path / "gen.csv"
    stats = generate_csv(source, rows=2000, seed=11, dirty=0.06)
    report = run(spark, job(tmp_path, source))
    assert report["rows_read"] == stats.rows == csv_records(source)
    assert report["rows_quarantined"] == stats.expected_quarantined
    assert report["rows_valid"] == stats.expected_valid
    assert report["duplicates_superseded"] == stats.dirty["duplicate"]
    reasons = report["quarantined_by_reason"]
    assert reasons.get("wrong_field_count", 0) == stats.dirty["ragged"]
    assert reasons.get("missing_required:ticket_id", 0) == stats.dirty["missing_ticket_id"]
    assert reasons.get("unparseable_required:created_at", 0) == stats.dirty["bad_created_at"]
    # The quarantine file has the original headers, the reason and a line that points at the source.
    rows = quarantined(tmp_path)
    assert len(rows) == report["rows_quarantined"]
    assert {"Ticket ID", "Created At", "_error_reason", "_source_line"} <= set(rows[0])
    lines = source.read_text(encoding="utf-8").split("\n")
    for row in rows:
        if row["_error_reason"] == "missing_required:ticket_id":
            assert lines[int(row["_source_line"]) - 1].startswith(",")  # the id field really is empty there
    # Published ids are unique, and the winning duplicate is the later update.
    table = published(tmp_path).to_pandas()
    assert table.ticket_id.is_unique
    assert len(table) == report["rows_valid"]


def test_encodings_and_delimiters(spark, tmp_path):
    text = "Ticket ID;Créé le;Agent;Status\r\nT1;2024-01-02 10:00;Zoë Müller;Résolu\r\nT2;2024-01-03;José;open\r\n"
    source = tmp_path / "latin.csv"
    source.write_bytes(text.replace("Créé le", "Created At").encode("cp1252"))
    report = run(spark, job(tmp_path, source))
    assert report["dialect"]["encoding"] == "cp1252" and report["dialect"]["delimiter"] == ";"
    table = published(tmp_path).to_pandas().set_index("ticket_id")
    assert table.loc["T1"].agent == "Zoë Müller" and table.loc["T2"].agent == "José"
    assert table.loc["T1"].status == "résolu"  # unknown value kept, normalised
    assert report["unknown_enum_values"]["status"] == {"count": 1, "values": ["résolu"]}

    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes("Ticket ID\tCreated At\tAgent\nT9\t2024-05-06\tÅsa\n".encode("utf-16"))
    out = tmp_path / "u16"
    report = run(spark, job(out, utf16))
    assert report["dialect"]["encoding"] == "utf-16"
    assert published(out).to_pandas().agent.tolist() == ["Åsa"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\x1f\x8b\x08\x00binary", "gzip data is cut short"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not text"),
        (b"Ticket ID,Subject\nT1,x\n", "missing required column 'created_at'"),
    ],
)
def test_unusable_files_fail_without_output(spark, tmp_path, content, message):
    source = tmp_path / "bad.csv"
    source.write_bytes(content)
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run(spark, job(tmp_path, source))
    assert not (tmp_path / "staging").exists()


def test_header_only_file_publishes_nothing(spark, tmp_path):
    source = tmp_path / "header.csv"
    source.write_text("Ticket ID,Created At\n")
    report = run(spark, job(tmp_path, source))
    assert (report["rows_read"], report["rows_valid"], report["rows_quarantined"]) == (0, 0, 0)
    assert report["outputs"]["files"] == []


def test_contract_loads_default_when_none_given():
    assert load_contract(None).name == "support_tickets"


def test_concurrent_runs_in_one_session_keep_their_own_counts(spark, tmp_path):
    """The local runtime runs several jobs at once on one warm session: reports must not mix."""
    import threading

    sizes = {"a": 40, "b": 25, "c": 30}
    reports: dict[str, dict] = {}
    errors: list[BaseException] = []

    def one(name: str, rows: int) -> None:
        try:
            source = tmp_path / f"{name}.csv"
            generate_csv(source, rows=rows, seed=rows, dirty=0)
            reports[name] = run(spark, job(tmp_path / name, source))
        except BaseException as err:  # surfaced below, in the test thread
            errors.append(err)

    threads = [threading.Thread(target=one, args=item) for item in sizes.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    assert {n: (r["rows_read"], r["rows_valid"]) for n, r in reports.items()} == {
        n: (s, s) for n, s in sizes.items()
    }


def test_rows_spread_over_cores_give_the_same_outputs(spark, tmp_path, monkeypatch):
    """A big file's rows are spread over the cores after the parse; line numbers, the dedupe winner and every
    published value must be what the single-partition run produces."""
    from ticketcore import spark_transform as tx

    source = tmp_path / "gen.csv"
    generate_csv(source, rows=3000, seed=21, dirty=0.05)
    whole = run(spark, job(tmp_path / "whole", source))
    monkeypatch.setattr(tx, "SPREAD_BYTES", 64 * 1024)  # this ~1 MB file now counts as big
    assert tx.spread_partitions(source.stat().st_size, spark.sparkContext.defaultParallelism) > 1
    spread = run(spark, job(tmp_path / "spread", source))

    keys = ("rows_read", "rows_valid", "rows_quarantined", "quarantined_by_reason", "timestamp_formats")
    assert {k: spread[k] for k in keys} == {k: whole[k] for k in keys}
    assert quarantined(tmp_path / "spread") == quarantined(tmp_path / "whole")
    cols = [c for c in published(tmp_path / "whole").column_names if c not in ("_run_id", "_ingested_at")]
    a = published(tmp_path / "whole").select(cols).to_pandas().sort_values("ticket_id").reset_index(drop=True)
    b = published(tmp_path / "spread").select(cols).to_pandas().sort_values("ticket_id").reset_index(drop=True)
    assert len(a) == whole["rows_valid"] and a.equals(b)


def test_spread_partitions_one_per_128_mib_at_most_one_per_core():
    from ticketcore.spark_transform import spread_partitions

    mib = 2**20
    assert spread_partitions(0, 8) == 1
    assert spread_partitions(10 * mib, 8) == 1
    assert spread_partitions(129 * mib, 8) == 2
    assert spread_partitions(330 * mib, 2) == 2
    assert spread_partitions(5000 * mib, 8) == 8


def test_trailing_delimiter_file_with_the_inspect_dialect(spark, tmp_path):
    # Every line ends with `;`; line 3 has a value after its last delimiter, in a column without a header.
    source = tmp_path / "trailing.csv"
    source.write_bytes(
        b"Ticket ID;Created At;Subject;\n"
        b"T1;2024-01-02;first;\n"
        b"T2;2024-01-03;second;stray\n"
        b"T3;2024-01-04;\"third; quoted\";\n"
    )
    dialect = detect_dialect(source.read_bytes())
    assert dialect.trailing_delimiter is True
    report = run(spark, job(tmp_path, source, dialect=json.dumps(dialect.to_dict())))
    assert report["dialect"]["trailing_delimiter"] is True
    table = published(tmp_path).to_pandas().set_index("ticket_id")
    assert table.subject.to_dict() == {"T1": "first", "T3": "third; quoted"}
    assert report["quarantined_by_reason"] == {"wrong_field_count": 1}
    [row] = quarantined(tmp_path)
    assert (row["Ticket ID"], row["_source_line"], row["_raw_record"]) == ("T2", "3", "T2;2024-01-03;second;stray")


def test_mixed_line_endings(spark, tmp_path):
    source = tmp_path / "mixed.csv"
    source.write_bytes(
        b"Ticket ID,Created At,Description,Tags\r\n"
        b'T1,2024-01-02,"two\r\nlines",vip\n'  # lines 2-3; a "\r\n" inside quotes is data
        b"T2,2024-01-03,plain,billing;vip\r\n"  # line 4
        b'T3,2024-01-04,x,"quoted, last"\r\n'  # line 5
        b"T4,2024-01-05,too,many,fields\r\n"  # line 6: quarantined
        b"T5,2024-01-06,empty tags,\r\n"  # line 7
        b"T6,2024-01-07,last,vip\n"  # line 8
    )
    dialect = detect_dialect(source.read_bytes())
    assert dialect.line_terminator == "mixed"
    report = run(spark, job(tmp_path, source, dialect=json.dumps(dialect.to_dict())))
    table = published(tmp_path).to_pandas().set_index("ticket_id")
    assert table.description.to_dict() == {
        "T1": "two\r\nlines", "T2": "plain", "T3": "x", "T5": "empty tags", "T6": "last"
    }
    tags = {k: (None if v is None else list(v)) for k, v in table.tags.to_dict().items()}
    assert tags == {"T1": ["vip"], "T2": ["billing", "vip"], "T3": ["quoted", "last"], "T5": None, "T6": ["vip"]}
    assert table._source_line.to_dict() == {"T1": 2, "T2": 4, "T3": 5, "T5": 7, "T6": 8}
    [row] = quarantined(tmp_path)
    assert (row["_error_reason"], row["_source_line"], row["_raw_record"]) == (
        "wrong_field_count", "6", "T4,2024-01-05,too,many,fields"
    )
    assert report["rows_read"] == 6


def test_a_quote_left_open_after_the_inspected_head_is_quarantined(spark, tmp_path):
    # Inspect reads the first 256 KiB only; here the quote opens on line 8002 (past the head), in a middle
    # column, and is never closed: the reader takes the rest of the file into that value.
    record = "T{0},2024-01-02,2024-01-03,{1}\n"
    head = "".join(record.format(i, f'"described at length, on line {2 + 2 * i}\nand the next"') for i in range(4000))
    assert len(head.encode()) > HEAD_BYTES
    tail = 'T1,2024-01-04,2024-01-09,"never closed\nT9001,2024-01-05,2024-01-06,x\nT9002,2024-01-05,2024-01-06,y\n'
    source = tmp_path / "open_quote.csv"
    source.write_text("Ticket ID,Created At,Updated At,Description\n" + head + tail, encoding="utf-8")
    dialect = detect_dialect(source.read_bytes()[:HEAD_BYTES])
    report = run(spark, job(tmp_path, source, dialect=json.dumps(dialect.to_dict())))
    assert (report["rows_read"], report["rows_valid"], report["rows_quarantined"]) == (4001, 4000, 1)
    assert report["quarantined_by_reason"] == {"unterminated_quote": 1} and report["reconciled"] is True
    [row] = quarantined(tmp_path)
    assert (row["Ticket ID"], row["_source_line"], row["_error_reason"]) == ("T1", "8002", "unterminated_quote")
    # Its ticket id repeats T1 with a later update: it must not supersede the good T1 on line 4.
    table = published(tmp_path).to_pandas().set_index("ticket_id")
    assert table.loc["T1"]._source_line == 4 and "T9001" not in table.index
    assert "quote_scan" in report["timings_seconds"]


def test_source_pieces_are_the_exact_bytes_both_ways(spark, tmp_path):
    """The quote scan reads the object in pieces: directly for a local file, through Hadoop's FileSystem (and
    py4j) for s3:// on Glue. Both must give every byte, in order, whatever the piece size."""
    from glue.ticket_etl_job import _fs_path, hadoop_pieces, read_pieces

    data = bytes(range(256)) * 1000 + "é\r\n\"".encode() * 3
    source = tmp_path / "bytes.csv"
    source.write_bytes(data)
    fs, path = _fs_path(spark, str(source))
    for size in (1, 1000, 65_536, len(data) + 1):
        if size > 1:  # one byte at a time is fine locally, far too slow over py4j
            assert b"".join(hadoop_pieces(spark, fs, path, size)) == data
        pieces = list(read_pieces(spark, str(source), size))
        assert b"".join(pieces) == data and max(len(p) for p in pieces) <= size


def test_s3_sources_are_streamed_by_boto3_with_their_raw_keys(monkeypatch):
    """On Glue the quote scan reads s3:// sources with boto3: every byte, in order, whatever the key holds."""
    import boto3
    from moto import mock_aws

    from glue.ticket_etl_job import read_pieces, s3_pieces

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    data = bytes(range(256)) * 5000 + "é\r\n\"".encode()
    key = "support_ticket/raw/eu #1?v=2 ü.csv"
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="tickets-scan-test")
        client.put_object(Bucket="tickets-scan-test", Key=key, Body=data)
        pieces = list(s3_pieces(f"s3://tickets-scan-test/{key}", 100_000, client))
        assert b"".join(pieces) == data and max(len(p) for p in pieces) <= 100_000
        # The job's entry point takes the s3 path without touching Spark (None would fail if it did).
        assert b"".join(read_pieces(None, f"s3://tickets-scan-test/{key}", 65_536)) == data  # type: ignore[arg-type]


# ---------------------------------------------------------------- compressed uploads, encoding of the whole file


def test_gzip_and_zip_uploads_are_read_decompressed(spark, tmp_path):
    import gzip
    import zipfile

    text = "Ticket ID,Created At,Agent\nT1,2024-01-02 10:00,Zoë\nT2,2024-01-03 11:00,José\n"
    gz = tmp_path / "t.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    report = run(spark, job(tmp_path / "gz", gz))
    assert report["source_text"]["compression"] == "gzip"
    assert report["source_text"]["read_from"].endswith("staging/source/t.csv")
    assert sorted(published(tmp_path / "gz").to_pandas().agent) == ["José", "Zoë"]

    archive = tmp_path / "t.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("export/tickets.csv", text)
        zf.writestr("__MACOSX/export/._tickets.csv", b"\x00\x05")  # Finder's resource fork: not data
    report = run(spark, job(tmp_path / "zip", archive))
    assert (report["source_text"]["compression"], report["source_text"]["zip_member"]) == ("zip", "export/tickets.csv")
    assert report["rows_valid"] == 2


def test_a_zip_of_several_files_is_refused_naming_them(spark, tmp_path):
    import zipfile

    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.csv", "Ticket ID,Created At\nT1,2024-01-01\n")
        zf.writestr("notes.txt", "secret text")
    with pytest.raises(SchemaError, match=r"holds 2 files \(a.csv, notes.txt\)") as err:
        run(spark, job(tmp_path, archive, dialect=json.dumps(detect_dialect(b"Ticket ID,Created At\n").to_dict())))
    assert "secret" not in str(err.value)


def test_encoding_is_decided_from_the_whole_file(spark, tmp_path):
    # The first non-ASCII byte comes after the head: Windows-1252 (no valid UTF-8 sequence anywhere).
    rows = [f"T{i},2024-01-02 10:00,{'x' * 200}" for i in range(1, 1400)]
    legacy = tmp_path / "legacy.csv"
    text = "Ticket ID,Created At,Subject\n" + "\n".join(rows) + "\nT9999,2024-01-03,Café\n"
    legacy.write_bytes(text.encode("cp1252"))
    assert legacy.stat().st_size > HEAD_BYTES
    report = run(spark, job(tmp_path / "a", legacy))
    assert (report["source_text"]["head_encoding"], report["dialect"]["encoding"]) == ("utf-8", "cp1252")
    assert published(tmp_path / "a").to_pandas().set_index("ticket_id").loc["T9999"].subject == "Café"

    # UTF-8 with one Windows-1252 byte on line 3: that byte alone is decoded by fallback, and reported.
    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes("Ticket ID,Created At,Subject\nT1,2024-01-02,Müller\n".encode() + b"T2,2024-01-02,Caf\xe9\n"
                      + "T3,2024-01-02,東京\n".encode())
    report = run(spark, job(tmp_path / "b", mixed))
    encoding = report["source_text"]["encoding"]
    assert (encoding["encoding"], encoding["fallback_lines"], encoding["fallback_line_numbers"]) == ("utf-8", 1, [3])
    subjects = published(tmp_path / "b").to_pandas().set_index("ticket_id").subject.to_dict()
    assert subjects == {"T1": "Müller", "T2": "Café", "T3": "東京"}
    assert report["source_text"]["read_from"].endswith("staging/source/utf8-mixed.csv")


def test_a_tool_export_lands_with_its_profile_and_keeps_what_it_cannot_type(spark, tmp_path):
    """A Zendesk-shaped export: its profile is detected and applied (space-separated tags, `normal`, `solved`),
    a satisfaction `good` is published as null with its text in `_unparsed` and counted with an example, the
    columns beyond the contract land in one `extra` map, and a repeated header's values are kept apart. A row
    quarantined for a missing id keeps its original headers, the repeated one told apart."""
    source = tmp_path / "zendesk.csv"
    source.write_text(
        "Id,Requester,Requester id,Via,Subject,Tags,Status,Priority,Created at,Solved at,Satisfaction Score,"
        "Group,Group\n"
        "5000,R1,900,web,S1,billing vip,solved,normal,2024-05-01T09:00:00Z,2024-05-02T09:00:00Z,good,L1,L2\n"
        "5001,R2,901,email,S2,refund,open,high,2024-05-02T09:00:00Z,,4,L1,\n"
        ",R3,902,api,S3,,new,low,2024-05-03T09:00:00Z,,bad,,\n",
        encoding="utf-8",
    )
    report = run(spark, job(tmp_path, source))
    assert report["profile"] == "zendesk"
    assert report["header_mapping"]["Id"] == "ticket_id" and report["header_mapping"]["Solved at"] == "resolved_at"
    assert report["unknown_columns"] == {"requester": "Requester", "group": "Group", "group_2": "Group"}
    assert [(n["header"], n["field"], n["preferred"]) for n in report["columns_not_preferred"]] == [
        ("Requester", "customer_id", "Requester id")]
    assert report["headers"][0] == {"position": 1, "header": "Id", "name": "ticket_id", "field": "ticket_id",
                                    "rule": "profile:zendesk", "matched": "id"}
    assert report["unparsed_values"]["satisfaction_score"] == {"count": 1, "examples": [{"line": 2, "value": "good"}]}
    assert (report["rows_valid"], report["rows_quarantined"]) == (2, 1)
    rows = {r["ticket_id"]: r for r in published(tmp_path).to_pylist()}
    first = rows["5000"]
    assert (first["tags"], first["priority"], first["status"], first["resolution_hours"]) == (
        ["billing", "vip"], "medium", "resolved", 24.0)
    assert (first["satisfaction_score"], dict(first["_unparsed"])) == (None, {"satisfaction_score": "good"})
    assert dict(first["extra"]) == {"requester": "R1", "group": "L1", "group_2": "L2"}
    assert (rows["5001"]["satisfaction_score"], rows["5001"]["_unparsed"]) == (4, None)
    (bad,) = quarantined(tmp_path)
    assert list(bad)[:13] == ["Id", "Requester", "Requester id", "Via", "Subject", "Tags", "Status", "Priority",
                              "Created at", "Solved at", "Satisfaction Score", "Group", "Group (13)"]
    assert (bad["Requester"], bad["Satisfaction Score"], bad["_error_reason"]) == ("R3", "bad",
                                                                                 "missing_required:ticket_id")
