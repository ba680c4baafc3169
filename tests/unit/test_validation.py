"""The great-expectations suite built from the contract, run on staged Parquet laid out as the Glue job
writes it (`<staging>/tickets/year=YYYY/month=MM/*.parquet`, TIMESTAMP_MICROS UTC, lineage columns)."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ticketcore import layout
from ticketcore.contract import Contract, load_contract
from ticketcore.storage import LocalStorage, ObjectInfo
from ticketcore.validation import (
    ARROW_TYPES,
    RECONCILE_NAME,
    DataQualityError,
    build_suite,
    materialise,
    staged_keys,
    suite_columns,
    validate_run,
    validate_staged,
)

CONTRACT = load_contract()
CONTRACT_TEXT = Path(CONTRACT.source_path).read_text(encoding="utf-8")
RUN = "run-0001"
T0 = datetime(2024, 1, 20, 9, 0, tzinfo=UTC)


def with_severity(contract: Contract, type_: str, column: str, severity: str) -> Contract:
    """The shipped contract with one expectation's severity set, whatever the shipped file says."""
    expectations = tuple(
        dataclasses.replace(e, severity=severity) if (e.type, e.column) == (type_, column) else e
        for e in contract.expectations
    )
    return dataclasses.replace(contract, expectations=expectations)


def ticket(i: int, **overrides: Any) -> dict[str, Any]:
    created = T0 + timedelta(days=i % 30, hours=i % 7)  # spans January and February: two partitions
    row = {
        "ticket_id": f"T{i:04d}",
        "created_at": created,
        "updated_at": created + timedelta(hours=5),
        "resolved_at": created + timedelta(hours=3) if i % 3 else None,
        "first_response_at": created + timedelta(minutes=30),
        "status": ["new", "open", "pending", "resolved", "closed"][i % 5],
        "priority": ["low", "medium", "high", "urgent"][i % 4],
        "channel": ["email", "chat", "phone", "web"][i % 4],
        "category": "billing",
        "subject": f"subject {i}",
        "description": f"line one\nline two of ticket {i}",
        "customer_id": f"C{i % 7}",
        "customer_email": f"c{i % 7}@example.com",
        "agent": "Ana Smith",
        "satisfaction_score": (i % 5) + 1 if i % 2 else None,
        "tags": ["vip", "billing"] if i % 4 == 0 else None,
    }
    row.update(overrides)
    return row


STAGED_SCHEMA = pa.schema(
    [pa.field(name, ARROW_TYPES[col.type]) for name, col in CONTRACT.columns.items()]
    + [pa.field("region", pa.string()), pa.field("resolution_hours", pa.float64()),
       pa.field("_source_key", pa.string()), pa.field("_source_line", pa.int64()),
       pa.field("_run_id", pa.string()), pa.field("_ingested_at", pa.timestamp("us", tz="UTC"))]
)


def stage(storage: LocalStorage, rows: list[dict[str, Any]], quarantined: int = 2,
          empty_file: bool = False) -> dict[str, Any]:
    """Write `rows` as the Glue job would (one Parquet file per year/month) plus the run report."""
    full = []
    for line, row in enumerate(rows, start=2):
        resolved, created = row["resolved_at"], row["created_at"]
        hours = (resolved - created).total_seconds() / 3600 if resolved else None
        full.append({**row, "region": "emea", "resolution_hours": hours, "_source_line": line,
                     "_source_key": "support_ticket/raw/t.csv", "_run_id": RUN, "_ingested_at": T0})
    prefix = layout.staged_tickets_prefix(RUN)
    parts: dict[str, list[dict[str, Any]]] = {}
    for row in full:
        parts.setdefault(f"year={row['created_at']:%Y}/month={row['created_at']:%m}", []).append(row)
    if empty_file:  # a header-only upload, if a writer leaves an empty file behind
        parts["year=2024/month=01"] = []
    files = []
    for partition, part_rows in sorted(parts.items()):
        key = f"{prefix}{partition}/part-00000-{RUN}.c000.snappy.parquet"
        sink = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(part_rows, schema=STAGED_SCHEMA), sink, compression="snappy")
        storage.write_bytes(key, sink.getvalue())
        files.append({"uri": storage.uri(key), "bytes": len(sink.getvalue()), "rows": len(part_rows)})
    report = {"run_id": RUN, "rows_read": len(rows) + quarantined, "rows_valid": len(rows),
              "rows_quarantined": quarantined,
              "quarantined_by_reason": {"missing_required:ticket_id": quarantined},
              "outputs": {"files": files}}
    storage.write_bytes(layout.reports_prefix(RUN) + layout.RUN_REPORT, json.dumps(report).encode())
    return report


@pytest.fixture
def storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path, "bucket")


def run(storage: LocalStorage, report: dict[str, Any], contract: Contract = CONTRACT):
    return validate_run(storage, storage.uri(layout.staging_prefix(RUN)), report, contract)


def by_name(result) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in result.results}


# ------------------------------------------------------------------ the suite


def test_suite_has_one_expectation_per_contract_entry_with_its_severity():
    suite = build_suite(CONTRACT)
    gx_types = {"not_null": "expect_column_values_to_not_be_null",
                "unique": "expect_column_values_to_be_unique",
                "max_length": "expect_column_value_lengths_to_be_between",
                "in_set": "expect_column_values_to_be_in_set",
                "between": "expect_column_values_to_be_between",
                "not_before": "expect_column_pair_values_a_to_be_greater_than_b",
                "row_count_reconciles": "expect_table_row_count_to_equal"}
    # The quarantine share is checked on the run report, not by great-expectations.
    gx_entries = [e for e in CONTRACT.expectations if e.type != "quarantine_share"]
    assert len(suite.expectations) == len(gx_entries) == len(CONTRACT.expectations) - 1 == 10
    for gx_exp, entry in zip(suite.expectations, gx_entries, strict=True):
        assert gx_exp.expectation_type == gx_types[entry.type]
        assert gx_exp.meta["severity"] == entry.severity
        assert gx_exp.meta["contract_type"] == entry.type
    configs = {e.meta["name"]: e.configuration.kwargs for e in suite.expectations}
    assert configs["in_set(status)"]["value_set"] == list(CONTRACT.columns["status"].values)
    assert configs["in_set(priority)"]["value_set"] == ["low", "medium", "high", "urgent"]
    between = configs["between(satisfaction_score)"]
    assert (between["min_value"], between["max_value"]) == (1, 5)
    assert configs["max_length(ticket_id)"]["max_value"] == CONTRACT.columns["ticket_id"].max_length == 255
    pair = configs["not_before(resolved_at >= created_at)"]
    assert (pair["column_A"], pair["column_B"], pair["or_equal"], pair["mostly"]) == (
        "resolved_at", "created_at", True, 0.98)
    assert pair["ignore_row_if"] == "either_value_is_missing"
    assert configs["row_count_reconciles(staged rows == rows_valid)"]["value"] == {"$PARAMETER": "rows_valid"}


def test_suite_reads_only_the_columns_it_checks():
    assert suite_columns(CONTRACT) == ["ticket_id", "created_at", "resolved_at", "status", "priority",
                                       "channel", "satisfaction_score"]


# ------------------------------------------------------------------ outcomes


def test_clean_output_passes_every_expectation(storage, capfd):
    report = stage(storage, [ticket(i) for i in range(40)])
    result = run(storage, report)
    assert result.success and result.failed_errors == [] and result.failed_warnings == []
    assert result.row_count == 40
    assert [r["name"] for r in result.results] == [
        "not_null(ticket_id)", "not_null(created_at)", "unique(ticket_id)", "max_length(ticket_id)", "in_set(status)",
        "in_set(priority)", "in_set(channel)", "between(satisfaction_score)",
        "not_before(resolved_at >= created_at)", "row_count_reconciles(staged rows == rows_valid)",
        RECONCILE_NAME, SHARE_NAME,
    ]
    assert all(r["success"] for r in result.results)
    assert result.statistics["files"] == 2 and result.statistics["evaluated"] == 12
    assert by_name(result)["between(satisfaction_score)"]["observed"]["missing_count"] == 20
    json.dumps(result.to_report())  # plain JSON all the way down
    assert "Calculating Metrics" not in capfd.readouterr().err  # GX's tqdm bars are off


def test_duplicate_ticket_ids_fail_with_an_error_naming_them(storage):
    rows = [ticket(i) for i in range(30)] + [ticket(100, ticket_id="T0003"), ticket(101, ticket_id="T0007")]
    result = run(storage, stage(storage, rows))
    assert not result.success
    assert result.failed_errors == ["unique(ticket_id)"]
    unique = by_name(result)["unique(ticket_id)"]
    assert unique["observed"]["unexpected_count"] == 4  # GX counts both rows of each pair
    assert sorted(set(unique["observed"]["partial_unexpected_list"])) == ["T0003", "T0007"]
    with pytest.raises(DataQualityError) as raised:
        result.raise_on_failure()
    message = str(raised.value)
    assert message.startswith("1 expectation failed: unique(ticket_id): 4 rows share duplicate values")
    # Counts in the message (it reaches history, logs and the alert); the values only in the report.
    assert "T0003" not in message and "T0007" not in message and "examples in the validation report" in message
    assert raised.value.result is result


def test_a_staged_id_longer_than_its_max_length_fails_without_quoting_it(storage):
    # The Glue job quarantines such rows (field_too_long:ticket_id); this is the gate behind it.
    long_id = "T" + "9" * 255
    result = run(storage, stage(storage, [ticket(i) for i in range(20)] + [ticket(50, ticket_id=long_id)]))
    assert result.failed_errors == ["max_length(ticket_id)"]
    with pytest.raises(DataQualityError) as raised:
        result.raise_on_failure()
    assert "max_length(ticket_id): 1 values longer than 255 characters" in str(raised.value)
    assert long_id not in str(raised.value)


def test_unknown_status_fails_when_the_contract_says_error(storage):
    contract = with_severity(CONTRACT, "in_set", "status", "error")
    rows = [ticket(i) for i in range(20)] + [ticket(50, status="awaiting_parts")]
    result = run(storage, stage(storage, rows), contract)
    assert not result.success and result.failed_errors == ["in_set(status)"]
    expected = (r"in_set\(status\): 1 values outside the set \(4.8% of the non-null values\) \(examples in the "
                r"validation report\)$")
    with pytest.raises(DataQualityError, match=expected):
        result.raise_on_failure()
    assert by_name(result)["in_set(status)"]["observed"]["partial_unexpected_list"] == ["awaiting_parts"]


def test_unknown_channel_is_a_reported_warning_and_passes(storage):
    contract = with_severity(CONTRACT, "in_set", "channel", "warning")
    rows = [ticket(i) for i in range(20)] + [ticket(50, channel="whatsapp"), ticket(51, channel="whatsapp")]
    result = run(storage, stage(storage, rows), contract)
    assert result.success
    assert result.failed_errors == [] and result.failed_warnings == ["in_set(channel)"]
    channel = by_name(result)["in_set(channel)"]
    assert channel["severity"] == "warning" and channel["success"] is False
    assert channel["observed"]["unexpected_count"] == 2
    assert channel["observed"]["partial_unexpected_list"] == ["whatsapp", "whatsapp"]
    result.raise_on_failure()  # warnings never raise


def resolved_all(n: int, skewed: int) -> list[dict[str, Any]]:
    """n resolved tickets, the first `skewed` of them resolved 2 h before they were created."""
    rows = []
    for i in range(n):
        row = ticket(i)
        row["resolved_at"] = row["created_at"] + timedelta(hours=-2 if i < skewed else 4)
        rows.append(row)
    return rows


def test_resolved_before_created_is_tolerated_up_to_the_contract_share(storage):
    result = run(storage, stage(storage, resolved_all(100, 1)))  # 1% <= 2%
    assert result.success
    pair = by_name(result)["not_before(resolved_at >= created_at)"]
    assert pair["success"] is True and pair["observed"]["unexpected_count"] == 1


def test_resolved_before_created_above_the_share_fails(storage):
    result = run(storage, stage(storage, resolved_all(100, 5)))  # 5% > 2%
    assert result.failed_errors == ["not_before(resolved_at >= created_at)"]
    expected = (r"not_before\(resolved_at >= created_at\): 5 of the 100 rows with both resolved_at and created_at "
                r"violate \(5.0%; 2.0% tolerated\)")
    with pytest.raises(DataQualityError, match=expected):
        result.raise_on_failure()


def test_the_share_of_a_pair_rule_is_of_the_rows_that_have_both_values(storage):
    # 60 open tickets (no resolved_at) take no part: 3 of the 40 resolved ones is 7.5%, not 3 of 100.
    rows = [ticket(i, resolved_at=None) for i in range(60)] + [
        {**row, "ticket_id": f"R-{i}"} for i, row in enumerate(resolved_all(40, 3))]
    result = run(storage, stage(storage, rows))
    expected = (r"not_before\(resolved_at >= created_at\): 3 of the 40 rows with both resolved_at and created_at "
                r"violate \(7.5%; 2.0% tolerated\)")
    with pytest.raises(DataQualityError, match=expected):
        result.raise_on_failure()


def test_missing_values_on_either_side_are_not_violations(storage):
    rows = [ticket(i, resolved_at=None) for i in range(10)] + resolved_all(10, 0)
    result = run(storage, stage(storage, rows))
    assert by_name(result)["not_before(resolved_at >= created_at)"]["observed"]["unexpected_count"] == 0


def test_staged_rows_must_match_the_run_reports_valid_count(storage):
    report = stage(storage, [ticket(i) for i in range(10)])
    report.update(rows_valid=11, rows_read=13)  # still reconciles: 13 == 11 + 2
    result = run(storage, report)
    assert result.failed_errors == ["row_count_reconciles(staged rows == rows_valid)"]
    assert "staged output has 10 rows, run report rows_valid 11" in result.error_message()


def test_a_run_report_that_does_not_add_up_fails(storage):
    report = stage(storage, [ticket(i) for i in range(10)])
    report["rows_read"] = 20  # 20 != 10 + 2
    result = run(storage, report)
    assert result.failed_errors == [RECONCILE_NAME]
    observed = by_name(result)[RECONCILE_NAME]["observed"]
    assert observed == {"rows_read": 20, "rows_valid": 10, "rows_quarantined": 2}


def test_several_failures_are_all_listed(storage):
    rows = [ticket(i) for i in range(10)] + [ticket(20, ticket_id="T0001", priority="p9")]
    result = run(storage, stage(storage, rows))
    assert result.failed_errors == ["unique(ticket_id)", "in_set(priority)"]
    assert result.error_message().startswith(
        "2 expectations failed: unique(ticket_id): 2 rows share duplicate values (examples in the validation "
        "report); "
        "in_set(priority): 1 values outside the set")


def test_a_missing_column_fails_its_expectation_instead_of_crashing(storage):
    report = stage(storage, [ticket(i) for i in range(5)])
    paths = materialise(storage, staged_keys(storage, storage.uri(layout.staging_prefix(RUN))))
    table = pq.read_table(paths[0]).drop_columns(["priority"])
    result = validate_staged(table, {**report, "rows_valid": table.num_rows, "rows_read": table.num_rows + 2},
                             CONTRACT)
    assert result.failed_errors == ["in_set(priority)"]
    assert "could not be evaluated" in by_name(result)["in_set(priority)"]["summary"]


@pytest.mark.parametrize("empty_file", [False, True], ids=["no files", "one empty file"])
def test_an_empty_output_passes(storage, empty_file):
    report = stage(storage, [], quarantined=0, empty_file=empty_file)
    result = run(storage, report)
    assert result.success, result.error_message()
    assert result.row_count == 0 and result.statistics["files"] == (1 if empty_file else 0)
    assert all(r["success"] for r in result.results)


# ------------------------------------------------------------------ reading


def test_staged_keys_are_the_runs_parquet_files_only(storage):
    stage(storage, [ticket(i) for i in range(40)])
    storage.write_bytes(layout.staged_tickets_prefix(RUN) + "_SUCCESS", b"")
    keys = staged_keys(storage, storage.uri(layout.staging_prefix(RUN)))
    assert [layout.partition_of(k) for k in keys] == ["year=2024/month=01", "year=2024/month=02"]


class RemoteStorage:
    """A bucket whose URIs are not local paths (S3-like): materialise must download."""

    bucket = "remote"

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def uri(self, key: str) -> str:
        return f"s3://remote/{key}"

    def read_bytes(self, key: str, max_bytes: int | None = None) -> bytes:
        return self.objects[key]

    def list(self, prefix: str) -> list[ObjectInfo]:
        return [ObjectInfo(k, len(v)) for k, v in self.objects.items() if k.startswith(prefix)]


def test_materialise_uses_local_files_in_place_and_downloads_the_others(storage, tmp_path):
    stage(storage, [ticket(i) for i in range(40)])
    keys = staged_keys(storage, storage.uri(layout.staging_prefix(RUN)))
    assert materialise(storage, keys) == [storage.uri(k) for k in keys]
    remote = RemoteStorage({k: storage.read_bytes(k) for k in keys})
    workdir = tmp_path / "downloads"
    workdir.mkdir()
    paths = materialise(remote, keys, workdir)  # type: ignore[arg-type]
    assert [p.startswith(str(workdir)) for p in paths] == [True, True]
    assert [Path(p).read_bytes() for p in paths] == [storage.read_bytes(k) for k in keys]
    assert pq.read_table(paths[0]).num_rows + pq.read_table(paths[1]).num_rows == 40


# ------------------------------------------------------------------ the honest outcome

SHARE_NAME = "quarantine_share(rows quarantined <= 50% of rows read)"


def test_a_file_mostly_quarantined_fails_naming_the_main_reasons(storage):
    report = stage(storage, [ticket(i) for i in range(3)])
    report.update(rows_read=11, rows_quarantined=8, quarantined_by_reason={
        "unparseable_required:created_at": 5, "missing_required:ticket_id": 2, "duplicate_superseded": 1})
    result = run(storage, report)
    assert result.failed_errors == [SHARE_NAME]
    observed = by_name(result)[SHARE_NAME]["observed"]
    # The superseded duplicate is not a bad row: 7 of 11.
    assert observed["by_reason"] == {"unparseable_required:created_at": 5, "missing_required:ticket_id": 2}
    assert (observed["rows_quarantined_bad"], observed["rows_read"]) == (7, 11)
    with pytest.raises(DataQualityError, match=r"7 of 11 rows read quarantined \(63.6%\); main reasons: "
                                               r"unparseable_required:created_at 5; missing_required:ticket_id 2"):
        result.raise_on_failure()


def test_every_row_quarantined_fails_whatever_the_share(storage):
    report = stage(storage, [])
    report.update(rows_read=3, rows_valid=0, rows_quarantined=3,
                  quarantined_by_reason={"wrong_field_count": 3})
    contract = load_contract_with_share(1.0)
    result = run(storage, report, contract)
    assert SHARE_NAME.replace("50%", "100%") in result.failed_errors
    expected = "3 of 3 rows read quarantined (100.0%), every row; main reasons: wrong_field_count 3"
    assert expected in result.error_message()


@pytest.mark.parametrize(("read", "bad", "duplicates", "ok"), [
    (0, 0, 0, True),  # a header-only file
    (10, 5, 0, True),  # exactly the share
    (10, 6, 0, False),
    (10, 1, 9, True),  # superseded duplicates are accounted-for versions, not bad rows
    (1, 1, 0, False),
])
def test_quarantine_share_rule(read, bad, duplicates, ok):
    from ticketcore.validation import quarantine_share_check

    report = {"rows_read": read, "quarantined_by_reason": {"missing_required:created_at": bad,
                                                           "duplicate_superseded": duplicates}}
    assert quarantine_share_check(report, 0.5)[0] is ok


def load_contract_with_share(share: float):
    from ticketcore.contract import parse_contract

    text = CONTRACT_TEXT.replace("{type: quarantine_share, max_share: 0.5, severity: error}",
                                 f"{{type: quarantine_share, max_share: {share}, severity: error}}")
    assert text != CONTRACT_TEXT
    return parse_contract(text)


def test_the_quarantine_share_says_why_it_counts_fewer_rows_than_the_run_report():
    from ticketcore.contract import Expectation
    from ticketcore.validation import _quarantine_share

    report = {"rows_read": 300, "rows_quarantined": 9,
              "quarantined_by_reason": {"duplicate_superseded": 2, "missing_required:ticket_id": 7}}
    result = _quarantine_share(report, Expectation("quarantine_share", "error", None, {"max_share": 0.5}))
    assert result["summary"] == (f"{SHARE_NAME}: 7 of 300 rows read quarantined (2.3%); main reasons: "
                                 "missing_required:ticket_id 7; 2 superseded duplicate(s) not counted")
