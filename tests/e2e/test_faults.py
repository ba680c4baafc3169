"""Injected faults: each ends in a state that a redrive or a retry repairs, and the published data is then
exactly what one clean run of the same file produces (compared with a clean run in another home, through
`ticketflow query`: ticket ids and every value, lineage columns _run_id/_ingested_at aside)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.support import Faults, attempts, outbox, run_file, states_entered
from ticketcore import layout, validation
from ticketcore.storage import LocalStorage
from ticketflow import cli
from ticketflow.local.moto_patches import VirtualClock
from ticketflow.local.runtime import LocalRuntime
from ticketflow.ops.query import run_query

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

HEADER = "Ticket ID,Created At,Updated At,Status,Priority,Channel,Subject,Description,CSAT Score,Tags"
# An older export and a newer one of the same source: overlapping tickets, a different set of months.
V1_MONTHS, V2_MONTHS = ("2023-11", "2023-12", "2024-01"), ("2024-01", "2024-02", "2024-03")
KEYS = {
    "glue": layout.RAW_PREFIX + "faults/glue killed.csv",
    "publish": layout.RAW_PREFIX + "faults/publish crash.csv",
    "validate": layout.RAW_PREFIX + "faults/validate crash.csv",
    "trigger": layout.RAW_PREFIX + "faults/trigger throttled.csv",
    "event": layout.RAW_PREFIX + "faults/event twice.csv",
    "upload": layout.RAW_PREFIX + "faults/uploaded twice.csv",
}


def export(path: Path, months: tuple[str, ...], first: int, per_month: int = 8) -> Path:
    """Tickets T-<n> numbered from `first`, `per_month` created in each month."""
    lines = [HEADER]
    n = first
    for month in months:
        for day in range(per_month):
            lines.append(f"T-{n:03d},{month}-{day + 10}T08:{n % 60:02d}:00Z,{month}-{day + 10}T12:00:00Z,"
                         f"{('open', 'pending', 'closed')[n % 3]},{('low', 'high', 'urgent')[n % 3]},email,"
                         f"Subject {n},\"Description {n}, version {months[0]}\",{1 + n % 5},billing;vip")
            n += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("sources")
    return {"v1": export(base / "v1.csv", V1_MONTHS, first=1), "v2": export(base / "v2.csv", V2_MONTHS, first=13)}


@contextmanager
def pipeline(home: Path, **kwargs: Any) -> Iterator[LocalRuntime]:
    with LocalRuntime(home=home, clock=VirtualClock(0, poll_interval=0.05), **kwargs) as rt:
        yield rt


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def published(home: Path, key: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Every published value of `key`'s rows, lineage of the run aside, in ticket order."""
    return run_query(home, "SELECT * EXCLUDE (_run_id, _ingested_at) FROM tickets "
                           f"WHERE _source_key = {literal(key)} ORDER BY ticket_id")


def published_files(home: Path, key: str) -> set[str]:
    storage = LocalStorage(home, "any")
    return {o.key for o in storage.list(layout.TICKETS_PREFIX) if layout.source_id(key) in o.key}


def snapshot(home: Path) -> dict[str, str]:
    """Every file under processed/ (data and manifests) with a digest of its bytes."""
    base = home / "bucket" / layout.PROCESSED_PREFIX
    return {p.relative_to(base).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean(sources, tmp_path_factory, spark) -> dict[str, Any]:
    """One clean run of v2 under each scenario's key, in a home of its own: what every scenario must end with."""
    home = tmp_path_factory.mktemp("clean") / "home"
    with pipeline(home, max_concurrent_runs=len(KEYS)) as rt:
        names = [rt.upload(sources["v2"], key).started[0] for key in KEYS.values()]
        assert [rt.wait(name, timeout=600)["status"] for name in names] == ["SUCCEEDED"] * len(KEYS)
    reference = {key: {"rows": published(home, key), "files": published_files(home, key)} for key in KEYS.values()}
    for ref in reference.values():
        assert len(ref["rows"][1]) == 24 and partitions(ref["files"]) == partitions_of(V2_MONTHS)
    return reference


def partitions(files: set[str]) -> set[str]:
    return {layout.partition_of(f) for f in files}


def partitions_of(months: tuple[str, ...]) -> set[str]:
    return {f"year={m[:4]}/month={m[5:]}" for m in months}


def assert_same_as_clean_run(home: Path, key: str, clean: dict[str, Any]) -> None:
    columns, rows = published(home, key)
    assert (columns, rows) == clean[key]["rows"]
    assert published_files(home, key) == clean[key]["files"]
    manifest = json.loads((home / "bucket" / layout.manifest_key(key)).read_text())
    assert {f["key"] for f in manifest["files"]} == clean[key]["files"]
    # Nothing of an earlier publication or of a failed attempt is left: one row per ticket in all of processed/.
    _, [(total, distinct)] = run_query(home, "SELECT count(*), count(DISTINCT ticket_id) FROM tickets")
    assert total == distinct


def failed_at(rt: LocalRuntime, name: str) -> tuple[str | None, str | None, str]:
    summary = rt.summary(name)
    return summary["failed_state"], summary["error"], summary["cause"] or ""


# ---------------------------------------------------------------- the Glue job killed mid-write


class KillJobMidWrite:
    """Inside the job's thread: leave half a Parquet file under the run's staging prefix, then die."""

    def __init__(self, times: int) -> None:
        self.times, self.kills = times, 0

    def __call__(self, service: str, operation: str, details: dict[str, Any]) -> None:
        if (service, operation) != ("glue", "JobRun") or self.kills >= self.times:
            return
        self.kills += 1
        partition = Path(details["arguments"]["--staging"]) / "tickets" / "year=1999" / "month=01"
        partition.mkdir(parents=True, exist_ok=True)
        (partition / f"part-0000{self.kills}-killed.snappy.parquet").write_bytes(b"PAR1\x15\x00 half a row group")
        raise RuntimeError("executor killed mid-write (SIGKILL)")


def test_glue_job_killed_mid_write_leaves_processed_unchanged_and_redrive_completes(tmp_path, sources, clean):
    key, home = KEYS["glue"], tmp_path / "home"
    with pipeline(home) as rt:
        # GIVEN an earlier version of the key, published
        _, first = run_file(rt, sources["v1"], key)
        assert first["status"] == "SUCCEEDED"
        before, rows_before = snapshot(home), published(home, key)
        # WHEN the job dies half-way through writing, on its first run and on the definition's retry
        rt.backend.faults = KillJobMidWrite(times=2)
        name, desc = run_file(rt, sources["v2"], key)
        # THEN the execution fails at TransformTickets with the job's error, and processed/ is untouched
        assert desc["status"] == "FAILED"
        state, error, cause = failed_at(rt, name)
        assert (state, error) == ("TransformTickets", "States.TaskFailed") and "killed mid-write" in cause
        assert attempts(rt, name, "TransformTickets") == 2
        assert [o.key for o in rt.storage.list(layout.staging_prefix(name)) if "killed" in o.key]  # it did write
        assert snapshot(home) == before and published(home, key) == rows_before
        assert "FAILED at TransformTickets (States.TaskFailed)" in outbox(rt)[-1]["subject"]

        # WHEN it is redriven
        desc = rt.redrive(name)
        # THEN the job re-runs from a clean staging prefix and the new version replaces the old one
        assert desc["status"] == "SUCCEEDED"
        assert rt.storage.list(layout.staging_prefix(name)) == []
    assert_same_as_clean_run(home, key, clean)


# ---------------------------------------------------------------- publish crashing half-way


def test_publish_crashing_after_part_of_the_files_converges_on_redrive(tmp_path, sources, clean, monkeypatch,
                                                                      capsys):
    key, home = KEYS["publish"], tmp_path / "home"
    with pipeline(home) as rt:
        # GIVEN the key published from an export with other months (other partitions) than the new one
        _, first = run_file(rt, sources["v1"], key)
        v1_files, before = published_files(home, key), snapshot(home)
        assert first["status"] == "SUCCEEDED" and partitions(v1_files) == partitions_of(V1_MONTHS)
        assert v1_files & clean[key]["files"]  # January is in both exports: its file is overwritten in place

        # WHEN the copy of the second of its three files fails (the connection drops), once
        real_copy, copies = LocalStorage.copy, []

        def flaky_copy(self: LocalStorage, src: str, dst: str, *args: str) -> None:
            if dst.startswith(layout.PROCESSED_PREFIX):  # publish's copies (not inspect's landing copy)
                copies.append(dst)
                if len(copies) == 2:
                    raise ConnectionResetError(f"connection reset while copying {src}")
            real_copy(self, src, dst, *args)

        monkeypatch.setattr(LocalStorage, "copy", flaky_copy)
        name, desc = run_file(rt, sources["v2"], key)

        # THEN it fails at Publish, half-published: one new file in place, the manifest still the old one
        assert desc["status"] == "FAILED"
        state, error, cause = failed_at(rt, name)
        assert (state, error) == ("Publish", "ConnectionResetError") and "connection reset" in cause
        manifest = json.loads(rt.storage.read_bytes(layout.manifest_key(key)))
        assert manifest["run_id"] != name and {f["key"] for f in manifest["files"]} == v1_files
        assert published_files(home, key) == v1_files | {copies[0]}
        changed = {k for k, digest in snapshot(home).items() if before.get(k) != digest}
        assert changed == {copies[0].removeprefix(layout.PROCESSED_PREFIX)}  # the one file copied before the crash
        assert "FAILED at Publish (ConnectionResetError)" in outbox(rt)[-1]["subject"]

        # WHEN it is redriven (the storage is back)
        desc = rt.redrive(name)
        assert desc["status"] == "SUCCEEDED"
        assert states_entered(rt, name)[-2:] == ["Publish", "Published"]
        assert rt.storage.list(layout.staging_prefix(name)) == []

    # THEN exactly the new file set: the old months' files are gone, no row twice (through `ticketflow query`)
    assert_same_as_clean_run(home, key, clean)
    assert not (v1_files - clean[key]["files"]) & published_files(home, key)
    capsys.readouterr()
    sql = ("SELECT count(*) AS total, count(DISTINCT ticket_id) AS tickets, min(ticket_id) AS first "
           f"FROM tickets WHERE _source_key = {literal(key)}")
    assert cli.main(["query", "--home", str(home), "--json", sql]) == 0
    assert json.loads(capsys.readouterr().out) == [{"total": 24, "tickets": 24, "first": "T-013"}]


# ---------------------------------------------------------------- validate raising


def test_validate_raising_unexpectedly_fails_there_alerts_and_redrive_publishes(tmp_path, sources, clean,
                                                                                monkeypatch):
    key, home = KEYS["validate"], tmp_path / "home"
    real, calls = validation.validate_run, []

    def crashing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("validator crashed: out of file handles")
        return real(*args, **kwargs)

    monkeypatch.setattr(validation, "validate_run", crashing)
    with pipeline(home) as rt:
        name, desc = run_file(rt, sources["v2"], key)
        # THEN FAILED at ValidateOutput (not retried: it is not a Lambda service error), with an alert naming it
        assert desc["status"] == "FAILED"
        state, error, cause = failed_at(rt, name)
        assert (state, error) == ("ValidateOutput", "RuntimeError") and "validator crashed" in cause
        assert attempts(rt, name, "ValidateOutput") == 1
        [alert] = outbox(rt)
        assert "FAILED at ValidateOutput (RuntimeError)" in alert["subject"]
        assert "RuntimeError: validator crashed: out of file handles" in alert["message"]
        assert f"Source file:   {key}" in alert["message"] and f"ticketflow redrive {name}" in alert["message"]
        # The failed report says why, so publish can never pick up an earlier passing one; nothing published.
        report = json.loads(rt.storage.read_bytes(layout.validation_report_key(name)))
        assert report["success"] is False and "validator crashed" in report["error"]
        assert not rt.storage.exists(layout.manifest_key(key))
        glue_runs = [c for c, _ in rt.backend.calls if c == "glue.StartJobRun"]

        desc = rt.redrive(name)
        assert desc["status"] == "SUCCEEDED"
        assert [c for c, _ in rt.backend.calls if c == "glue.StartJobRun"] == glue_runs  # the job did not re-run
        assert len(outbox(rt)) == 1
    assert_same_as_clean_run(home, key, clean)


# ---------------------------------------------------------------- the trigger throttled


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


def test_throttled_trigger_is_retried_then_dead_lettered_and_shown_by_alerts(tmp_path, sources, clean, capsys):
    key, home = KEYS["trigger"], tmp_path / "home"
    faults, throttling = Faults(), threading.Event()
    throttling.set()
    faults.add("lambda.Invoke", "trigger", lambda n: throttled("Invoke") if throttling.is_set() else None)
    with pipeline(home, faults=faults) as rt:
        # WHEN every invocation of the trigger is throttled
        upload = rt.upload(sources["v2"], key)
        # THEN three attempts (the first and S3's two retries), then one dead letter; nothing started
        assert upload.dead_lettered and upload.started == []
        assert faults.counts == {"lambda.Invoketrigger": 3}
        assert rt.backend.calls == [("lambda.Invoke", "trigger")] * 3
        assert rt.client.list_executions(stateMachineArn=rt.state_machine_arn)["executions"] == []
        [letter] = [json.loads(line) for line in (home / "dead_letters.jsonl").read_text().splitlines()]
        assert letter["attempts"] == 3 and "ThrottlingException" in letter["error"]

        capsys.readouterr()
        assert cli.main(["alerts", "--home", str(home)]) == 0
        shown = capsys.readouterr().out
        assert "could not start after 3 attempts" in shown
        assert f"ticketflow-local/{key}" in shown and "ThrottlingException" in shown

        # WHEN the throttling is over and the dead-lettered event is delivered again, it runs as one clean run
        throttling.clear()
        again = rt.deliver(letter["event"])
        assert len(again.started) == 1 and rt.wait(again.started[0], timeout=600)["status"] == "SUCCEEDED"
    assert_same_as_clean_run(home, key, clean)


def test_start_execution_throttled_inside_the_trigger_is_dead_lettered_too(tmp_path, sources, monkeypatch):
    from lambdas.trigger import handler as trigger

    class ThrottledStepFunctions:
        def start_execution(self, **_: Any) -> None:
            raise throttled("StartExecution")

    monkeypatch.setattr(trigger, "sfn_client", ThrottledStepFunctions)
    with pipeline(tmp_path / "home") as rt:
        upload = rt.upload(sources["v1"], KEYS["trigger"])
        assert upload.dead_lettered and rt.backend.calls == [("lambda.Invoke", "trigger")] * 3
    [letter] = [json.loads(line) for line in (tmp_path / "home" / "dead_letters.jsonl").read_text().splitlines()]
    assert letter["error"].startswith("StartExecutionFailed: 1 of 1 records failed")
    assert "ThrottlingException" in letter["error"]


# ---------------------------------------------------------------- duplicates


def test_the_same_event_delivered_twice_publishes_one_copy(tmp_path, sources, clean):
    key, home = KEYS["event"], tmp_path / "home"
    with pipeline(home) as rt:
        stored, sequencer = rt.put_raw(sources["v2"], key)
        event = rt.s3_event(stored, sequencer)
        first = rt.deliver(event)
        during = rt.deliver(event)  # while the first execution runs
        rt.wait(first.started[0], timeout=600)
        after = rt.deliver(event)  # after it has finished
        # While it runs, StartExecution with the same name and input returns the running execution (as on
        # AWS); once it has closed, it answers ExecutionAlreadyExists. Either way no second execution.
        assert len(first.started) == 1 and during.started + during.duplicates == first.started
        assert after.started == [] and after.duplicates == first.started
        executions = rt.client.list_executions(stateMachineArn=rt.state_machine_arn)["executions"]
        assert [(e["name"], e["status"]) for e in executions] == [(first.started[0], "SUCCEEDED")]
    assert_same_as_clean_run(home, key, clean)


def test_the_same_file_uploaded_twice_publishes_one_copy(tmp_path, sources, clean):
    key, home = KEYS["upload"], tmp_path / "home"
    hold, newer_done, held = threading.Event(), threading.Event(), []

    def hold_older_publish(service: str, operation: str, details: dict[str, Any]) -> None:
        # The older execution's Publish waits until the newer one has published: the order that could
        # otherwise put the older upload's output back over the newer one's.
        publish = (service, operation, details.get("name")) == ("lambda", "Invoke", "publish")
        if publish and hold.is_set() and held and details["payload"]["run_id"] == held[0]:
            assert newer_done.wait(300), "the newer execution never published"

    with pipeline(home, faults=hold_older_publish) as rt:
        hold.set()
        older = rt.upload(sources["v2"], key)
        held.append(older.started[0])
        newer = rt.upload(sources["v2"], key)  # the same bytes again: a new version of the object
        assert older.started != newer.started and len(newer.started) == 1
        assert rt.wait(newer.started[0], timeout=600)["status"] == "SUCCEEDED"
        newer_done.set()
        assert rt.wait(older.started[0], timeout=600)["status"] == "SUCCEEDED"
        outcome = json.loads(rt.storage.read_bytes(layout.reports_prefix(newer.started[0]) + layout.PUBLISH_REPORT))
        manifest = json.loads(rt.storage.read_bytes(layout.manifest_key(key)))
        assert manifest["run_id"] == outcome["run_id"] == newer.started[0]
        assert manifest["sequencer"] == newer.sequencer
        # The older one found a newer publication and stood down.
        history = rt.history(older.started[0])
        publish_out = [json.loads(e["taskSucceededEventDetails"]["output"]) for e in history
                       if e["type"] == "TaskSucceeded"][-1]
        assert publish_out["Payload"]["outcome"] == "superseded"
    assert_same_as_clean_run(home, key, clean)
