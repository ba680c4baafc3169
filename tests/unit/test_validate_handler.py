"""The validate Lambda on the local bucket: it always leaves a validation report, and fails with
DataQualityError (the Step Functions error name) when an error-severity expectation fails."""

from __future__ import annotations

import importlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from ticketcore import layout
from ticketcore.contract import DEFAULT_CONTRACT_PATH
from ticketcore.storage import ObjectMissingError, for_bucket
from ticketcore.validation import DataQualityError

BUCKET = "ticketflow-data"
RUN = "exec-0001"
SOURCE_KEY = "support_ticket/raw/tickets.csv"


@dataclass
class FakeLambdaContext:
    function_name: str = "ticketflow-validate"
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ticketflow-validate"
    aws_request_id: str = "req-0001"


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKETFLOW_LOCAL_ROOT", str(tmp_path))
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ticketflow")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Ticketflow")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("TICKETFLOW_CONTRACT", raising=False)
    return tmp_path


def contract_with_channel(path: Path, severity: str) -> Path:
    """The shipped contract with `in_set(channel)` at `severity`, whatever the shipped file says."""
    doc = yaml.safe_load(DEFAULT_CONTRACT_PATH.read_text())
    for entry in doc["expectations"]:
        if (entry["type"], entry.get("column")) == ("in_set", "channel"):
            entry["severity"] = severity
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def handler(env, monkeypatch):
    monkeypatch.setenv("TICKETFLOW_CONTRACT", str(contract_with_channel(env / "lenient.yaml", "warning")))
    return importlib.import_module("lambdas.validate.handler").handler


@pytest.fixture
def storage(env):
    return for_bucket(BUCKET)


def stage(storage, ticket_ids: list[str], channel: str = "email") -> None:
    """A staged output in the Glue job's layout (the suite's columns are enough here) and its run report."""
    created = [datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(len(ticket_ids))]
    table = pa.table({
        "ticket_id": pa.array(ticket_ids, pa.string()),
        "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
        "resolved_at": pa.array([c + timedelta(hours=2) for c in created], pa.timestamp("us", tz="UTC")),
        "status": pa.array(["open"] * len(ticket_ids)),
        "priority": pa.array(["high"] * len(ticket_ids)),
        "channel": pa.array([channel] * len(ticket_ids)),
        "satisfaction_score": pa.array([4] * len(ticket_ids), pa.int32()),
    })
    sink = io.BytesIO()
    pq.write_table(table, sink)
    storage.write_bytes(f"{layout.staged_tickets_prefix(RUN)}year=2024/month=03/part-00000.c000.snappy.parquet",
                        sink.getvalue())
    n = len(ticket_ids)
    report = {"run_id": RUN, "rows_read": n, "rows_valid": n, "rows_quarantined": 0}
    storage.write_bytes(layout.reports_prefix(RUN) + layout.RUN_REPORT, json.dumps(report).encode())


def event(storage) -> dict[str, Any]:
    return {"bucket": BUCKET, "key": SOURCE_KEY, "run_id": RUN,
            "staging_uri": storage.uri(layout.staging_prefix(RUN)),
            "reports_uri": storage.uri(layout.reports_prefix(RUN))}


def validation_report(storage) -> dict[str, Any]:
    return json.loads(storage.read_bytes(layout.validation_report_key(RUN)))


def test_a_passing_run_returns_a_summary_and_writes_the_report(handler, storage):
    stage(storage, ["T1", "T2", "T3"])
    result = handler(event(storage), FakeLambdaContext())
    report_key = layout.validation_report_key(RUN)
    assert result == {"success": True, "row_count": 3, "failed_expectations": [], "warnings": [],
                      "report_uri": storage.uri(report_key)}
    report = validation_report(storage)
    assert report["success"] is True and report["run_id"] == RUN and report["source_key"] == SOURCE_KEY
    assert report["row_count"] == 3 and report["failed_errors"] == []
    # one result per contract expectation (row_count_reconciles gives two: the GX row count and the
    # run report's own reconciliation), the run-report quarantine share included
    names = [r["name"] for r in report["results"]]
    assert len(names) == len(yaml.safe_load(DEFAULT_CONTRACT_PATH.read_text())["expectations"]) + 1 == 12
    assert names[-1] == "quarantine_share(rows quarantined <= 50% of rows read)"


def test_warnings_pass_and_are_returned(handler, storage):
    stage(storage, ["T1", "T2"], channel="carrier_pigeon")
    result = handler(event(storage), FakeLambdaContext())
    assert result["success"] is True
    assert result["failed_expectations"] == result["warnings"] == ["in_set(channel)"]


def test_a_failing_run_writes_the_report_then_raises_data_quality_error(handler, storage):
    stage(storage, ["T1", "T2", "T2"])
    expected = r"unique\(ticket_id\): 2 rows share duplicate values \(examples in the validation report\)"
    with pytest.raises(DataQualityError, match=expected):
        handler(event(storage), FakeLambdaContext())
    report = validation_report(storage)
    assert report["success"] is False
    assert report["failed_errors"] == ["unique(ticket_id)"]
    assert DataQualityError.__name__ == "DataQualityError"  # the error name Step Functions matches on


def test_the_contract_is_read_at_each_invocation(handler, storage, env, monkeypatch):
    """An operator tightens the contract and redrives: the same warm function applies the new file."""
    stage(storage, ["T1", "T2"], channel="carrier_pigeon")
    assert handler(event(storage), FakeLambdaContext())["success"] is True
    monkeypatch.setenv("TICKETFLOW_CONTRACT", str(contract_with_channel(env / "strict.yaml", "error")))
    with pytest.raises(DataQualityError, match=r"in_set\(channel\)"):
        handler(event(storage), FakeLambdaContext())
    assert validation_report(storage)["failed_errors"] == ["in_set(channel)"]


def test_a_run_that_cannot_be_validated_still_leaves_a_failing_report(handler, storage):
    storage.write_bytes(layout.validation_report_key(RUN), b'{"success": true}')  # stale
    with pytest.raises(ObjectMissingError):  # no run report (a FileNotFoundError, on S3 as locally)
        handler(event(storage), FakeLambdaContext())
    report = validation_report(storage)
    assert report["success"] is False and report["error"].startswith("ObjectMissingError")
