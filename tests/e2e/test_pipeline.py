"""The whole pipeline on the local runtime: the real definition, handlers and Glue script."""

from __future__ import annotations

import csv
import json

import pytest

from tests.e2e.support import SAMPLE, attempts, outbox, published_table, run_file, states_entered
from ticketcore import layout
from ticketflow.generate import generate_csv
from ticketflow.local.engine import ServiceError

pytestmark = [pytest.mark.e2e, pytest.mark.spark]


def test_happy_path_on_the_sample(runtime):
    name, desc = run_file(runtime, SAMPLE)
    assert desc["status"] == "SUCCEEDED"
    assert states_entered(runtime, name) == [
        "RouteEvent",
        "InspectSource",
        "TransformTickets",
        "ValidateOutput",
        "Publish",
        "Published",
    ]
    summary = runtime.summary(name)
    report = json.loads(runtime.storage.read_bytes(summary["report_key"]))
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        records = sum(1 for _ in csv.reader(fh)) - 1
    assert report["rows_read"] == records
    assert report["rows_read"] == report["rows_valid"] + report["rows_quarantined"]
    table = published_table(runtime)
    assert table.num_rows == report["rows_valid"] == summary["rows_published"]
    # What it would have cost on AWS: 6 states entered, no retry; at least Glue's 1-minute minimum on 2 x G.1X;
    # one COPY per published file among the estimated S3 requests.
    cost = summary["cost"]
    assert cost["state_transitions"] == 6 and cost["glue_dpu_seconds"] >= 120
    assert {fn["function"] for fn in cost["lambda"]} == {"inspect", "validate", "publish", "trigger"}
    published = json.loads(runtime.storage.read_bytes(layout.manifest_key(layout.RAW_PREFIX + SAMPLE.name)))["files"]
    assert cost["s3_requests"]["put_copy_post_list"] >= 2 * len(published)  # a PUT staged, a COPY published
    # each figure is rounded to the micro-dollar on its own
    assert cost["total_usd"] == pytest.approx(sum(cost["usd"].values()), abs=2e-6)
    assert cost["prices"]["region"] == "us-east-1"
    assert set(table.column("_run_id").to_pylist()) == {name}
    assert len(set(table.column("ticket_id").to_pylist())) == table.num_rows
    # The raw upload is untouched, staging is gone, quarantine and manifest are where the layout says.
    assert runtime.storage.read_bytes(layout.RAW_PREFIX + SAMPLE.name) == SAMPLE.read_bytes()
    assert runtime.storage.list(layout.staging_prefix(name)) == []
    quarantine = layout.quarantine_prefix(layout.RAW_PREFIX + SAMPLE.name, name) + "rows.csv"
    assert runtime.storage.exists(quarantine)
    manifest = json.loads(runtime.storage.read_bytes(layout.manifest_key(layout.RAW_PREFIX + SAMPLE.name)))
    assert manifest["rows"] == report["rows_valid"] and manifest["run_id"] == name
    assert outbox(runtime) == []
    record = json.loads((runtime.home / "executions" / f"{name}.json").read_text())
    assert (
        record["execution"]["status"] == "SUCCEEDED" and record["history"][-1]["type"] == "ExecutionSucceeded"
    )
    # What the functions really returned fits the models the static data-flow check resolves paths against.
    from ticketcore import events

    payloads = {}
    for event in runtime.history(name):
        if event["type"] == "TaskStateExited":
            details = event["stateExitedEventDetails"]
            payloads[details["name"]] = json.loads(details["output"])
    events.ExecutionInput.model_validate(json.loads(record["execution"]["input"]))
    events.InspectOutput.model_validate(payloads["InspectSource"]["inspect"]["inspection"])
    events.ValidateOutput.model_validate(payloads["ValidateOutput"]["validate"]["validation"])
    events.PublishOutput.model_validate(payloads["Publish"]["publish"]["publication"])


def test_duplicate_event_starts_nothing_new(runtime, tmp_path):
    source = tmp_path / "dup.csv"
    generate_csv(source, rows=50, seed=3, dirty=0)
    key, sequencer = runtime.put_raw(source)
    event = runtime.s3_event(key, sequencer)
    first = runtime.deliver(event)
    runtime.wait(first.started[0])
    again = runtime.deliver(event)
    assert again.started == [] and again.duplicates == first.started
    executions = runtime.client.list_executions(stateMachineArn=runtime.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == first.started


def test_missing_ticket_id_fails_fast_at_inspect(runtime, tmp_path):
    source = tmp_path / "no_id.csv"
    source.write_text("Subject,Created At\nhello,2024-01-01\n")
    name, desc = run_file(runtime, source)
    assert desc["status"] == "FAILED" and desc["error"] == "SchemaError"
    assert "missing required column 'ticket_id'" in desc["cause"]
    assert "headers found: ['Subject', 'Created At']" in desc["cause"]
    assert states_entered(runtime, name) == ["RouteEvent", "InspectSource"]
    assert attempts(runtime, name, "InspectSource") == 1  # SchemaError is never retried
    assert not any(call.startswith("glue.") for call, _ in runtime.backend.calls)
    alerts = outbox(runtime)
    assert len(alerts) == 1 and "FAILED at InspectSource (SchemaError)" in alerts[0]["subject"]
    assert "support_ticket/raw/no_id.csv" in alerts[0]["message"]


def resolved_before_created(path, rows=60, bad=10):
    lines = ["Ticket ID,Created At,Resolved At,Priority"]
    for i in range(rows):
        resolved = "2024-01-01T00:00:00Z" if i < bad else "2024-03-01T00:00:00Z"
        lines.append(f"T{i},2024-02-01T00:00:00Z,{resolved},high")
    path.write_text("\n".join(lines) + "\n")


def test_failed_expectation_blocks_publication(runtime, tmp_path):
    source = tmp_path / "skewed.csv"
    resolved_before_created(source)
    name, desc = run_file(runtime, source)
    assert desc["status"] == "FAILED" and desc["error"] == "DataQualityError"
    assert "not_before" in desc["cause"] and "resolved_at" in desc["cause"]
    assert states_entered(runtime, name)[-1] == "ValidateOutput"
    assert attempts(runtime, name, "ValidateOutput") == 1
    assert published_table(runtime) is None
    report = json.loads(runtime.storage.read_bytes(layout.validation_report_key(name)))
    assert report["success"] is False
    assert "FAILED at ValidateOutput (DataQualityError)" in outbox(runtime)[0]["subject"]


def test_glue_job_failing_is_retried_as_defined_then_fails(runtime, faults, clock, tmp_path):
    faults.add("glue.JobRun", None, lambda n: RuntimeError(f"executor lost (attempt {n + 1})"))
    source = tmp_path / "g.csv"
    generate_csv(source, rows=20, seed=4, dirty=0)
    name, desc = run_file(runtime, source)
    assert desc["status"] == "FAILED" and desc["error"] == "States.TaskFailed"
    assert "executor lost (attempt 2)" in desc["cause"]  # the JobRun JSON is the cause, as on AWS
    assert states_entered(runtime, name)[-1] == "TransformTickets"
    assert attempts(runtime, name, "TransformTickets") == 2  # 1 + the single States.TaskFailed retry
    waits = [w.seconds for w in clock.retry_waits(state="TransformTickets")]
    assert waits == [60]
    assert published_table(runtime) is None


def test_concurrent_runs_exceeded_is_retried_with_backoff(runtime, faults, clock, tmp_path):
    faults.add(
        "glue.StartJobRun",
        None,
        lambda n: ServiceError("ConcurrentRunsExceededException", "too many runs") if n < 2 else None,
    )
    source = tmp_path / "c.csv"
    generate_csv(source, rows=20, seed=5, dirty=0)
    name, desc = run_file(runtime, source)
    assert desc["status"] == "SUCCEEDED"
    assert attempts(runtime, name, "TransformTickets") == 3
    failures = [
        e["taskFailedEventDetails"]["error"] for e in runtime.history(name) if e["type"] == "TaskFailed"
    ]
    assert failures == ["Glue.ConcurrentRunsExceededException"] * 2
    waits = [w for w in clock.retry_waits(state="TransformTickets")]
    # Full jitter: each wait lies in [0, base], base = 15 s then 30 s.
    assert len(waits) == 2 and 0 <= waits[0].seconds <= 15 and 0 <= waits[1].seconds <= 30


def test_reupload_of_a_key_replaces_its_published_files(runtime, tmp_path):
    first, second, other = tmp_path / "v1.csv", tmp_path / "v2.csv", tmp_path / "other.csv"
    generate_csv(first, rows=120, seed=8, dirty=0)
    generate_csv(second, rows=40, seed=9, dirty=0)
    generate_csv(other, rows=30, seed=10, dirty=0)
    key = layout.RAW_PREFIX + "tickets.csv"
    run_file(runtime, other)
    _name1, _ = run_file(runtime, first, key)
    name2, desc = run_file(runtime, second, key)
    assert desc["status"] == "SUCCEEDED"
    table = published_table(runtime).to_pandas()
    mine = table[table._source_key == key]
    assert set(mine._run_id) == {name2} and len(mine) == 40
    assert len(table[table._source_key == layout.RAW_PREFIX + "other.csv"]) == 30
    files = [o.key for o in runtime.storage.list(layout.TICKETS_PREFIX)]
    manifest = json.loads(runtime.storage.read_bytes(layout.manifest_key(key)))
    assert sorted(f for f in files if layout.source_id(key) in f) == sorted(
        f["key"] for f in manifest["files"]
    )
