"""Redrive on the local runtime: resume at the failed state, with its input, without re-running the rest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.support import published_table, run_file
from ticketflow import cli
from ticketflow.generate import generate_csv
from ticketflow.local.moto_patches import VirtualClock
from ticketflow.local.runtime import LocalRuntime, RedriveRefused

pytestmark = [pytest.mark.e2e, pytest.mark.spark]
CONTRACT = Path(__file__).resolve().parents[2] / "contracts" / "support_tickets.yaml"


def entered(history):
    return [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]


def test_too_strict_expectation_corrected_then_redriven_without_rerunning_glue(tmp_path, spark, capsys):
    # GIVEN a contract copy that tolerates 2% of tickets resolved before creation, and a file with 10 of 60
    contract = tmp_path / "contract.yaml"
    shutil.copy(CONTRACT, contract)
    source = tmp_path / "skewed.csv"
    rows = ["Ticket ID,Created At,Resolved At,Priority"] + [
        f"T{i},2024-02-01T00:00:00Z,{'2024-01-01' if i < 10 else '2024-03-01'}T00:00:00Z,high"
        for i in range(60)
    ]
    source.write_text("\n".join(rows) + "\n")
    home = tmp_path / "home"
    with LocalRuntime(home=home, contract=contract, clock=VirtualClock(0, poll_interval=0.05)) as rt:
        name, desc = run_file(rt, source)
        glue_runs = [c for c, _ in rt.backend.calls if c == "glue.StartJobRun"]
    assert desc["status"] == "FAILED" and desc["error"] == "DataQualityError"
    assert len(glue_runs) == 1

    # WHEN the operator relaxes the tolerance and redrives from a new process (moto's memory is gone)
    contract.write_text(contract.read_text().replace("max_violation_share: 0.02", "max_violation_share: 0.2"))
    capsys.readouterr()
    code = cli.main(["redrive", name[:20], "--home", str(home), "--contract", str(contract)])

    # THEN validation re-ran on the same staged output, publish ran, the Glue job did not
    assert code == 0
    record = json.loads((home / "executions" / f"{name}.json").read_text())
    assert record["execution"]["status"] == "SUCCEEDED" and record["redrive_count"] == 1
    assert record["execution"]["redriveCount"] == 1
    types = [e["type"] for e in record["history"]]
    redriven_at = types.index("ExecutionRedriven")
    assert entered(record["history"][:redriven_at]) == [
        "RouteEvent", "InspectSource", "TransformTickets", "ValidateOutput"]
    assert entered(record["history"][redriven_at:]) == ["ValidateOutput", "Publish", "Published"]
    assert [e["id"] for e in record["history"]] == list(range(1, len(types) + 1))
    with LocalRuntime(home=home) as rt:
        assert published_table(rt).num_rows == 60
        assert set(published_table(rt).column("_run_id").to_pylist()) == {name}
    out = capsys.readouterr().out
    assert "-> ValidateOutput" in out and "-> TransformTickets" not in out and "redrive count 1" in out


def test_redrive_of_a_glue_failure_reruns_the_job_then_publishes(runtime, faults, tmp_path):
    faults.add("glue.JobRun", None, lambda n: RuntimeError("spot capacity lost") if n < 2 else None)
    source = tmp_path / "g.csv"
    generate_csv(source, rows=30, seed=12, dirty=0)
    name, desc = run_file(runtime, source)
    assert desc["status"] == "FAILED" and desc["error"] == "States.TaskFailed"
    inspects = sum(1 for c, n in runtime.backend.calls if c == "lambda.Invoke" and n == "inspect")

    desc = runtime.redrive(name)

    assert desc["status"] == "SUCCEEDED"
    assert sum(1 for c, n in runtime.backend.calls if c == "lambda.Invoke" and n == "inspect") == inspects
    assert entered(runtime.history(name)).count("TransformTickets") == 2
    assert published_table(runtime).num_rows == 30
    assert runtime.describe(name)["executionArn"] == runtime.execution_arn(name)  # same ARN, as on AWS


def test_redrive_refuses_a_succeeded_execution(runtime, tmp_path):
    source = tmp_path / "ok.csv"
    generate_csv(source, rows=10, seed=13, dirty=0)
    name, desc = run_file(runtime, source)
    assert desc["status"] == "SUCCEEDED"
    with pytest.raises(RedriveRefused, match=r"is SUCCEEDED: only FAILED, TIMED_OUT or ABORTED"):
        runtime.redrive(name)
    with pytest.raises(RedriveRefused, match="no execution named 'nope'"):
        runtime.redrive("nope")


def test_a_redrive_that_fails_again_raises_its_alert(tmp_path, spark):
    # GIVEN an execution that failed validation, recorded by an earlier process
    source = tmp_path / "skewed.csv"
    rows = ["Ticket ID,Created At,Resolved At,Priority"] + [
        f"T{i},2024-02-01T00:00:00Z,{'2024-01-01' if i < 10 else '2024-03-01'}T00:00:00Z,high" for i in range(60)
    ]
    source.write_text("\n".join(rows) + "\n")
    home = tmp_path / "home"
    with LocalRuntime(home=home, clock=VirtualClock(0, poll_interval=0.05)) as rt:
        name, desc = run_file(rt, source)
    assert desc["status"] == "FAILED"

    # WHEN it is redriven from a new process without a fix, and fails again at the same state
    with LocalRuntime(home=home, clock=VirtualClock(0, poll_interval=0.05)) as rt:
        desc = rt.redrive(name)
        assert desc["status"] == "FAILED" and desc["error"] == "DataQualityError"

    # THEN the second failure is alerted too, naming the execution, its state and the redrive
    alerts = [json.loads(line) for line in (home / "outbox.jsonl").read_text().splitlines()]
    assert len(alerts) == 2
    assert all("FAILED at ValidateOutput (DataQualityError)" in a["subject"] for a in alerts)
    assert name[:20] in alerts[1]["message"]
    record = json.loads((home / "executions" / f"{name}.json").read_text())
    assert record["execution"]["status"] == "FAILED" and record["redrive_count"] == 1
