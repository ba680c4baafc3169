from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ticketcore.storage import LOCAL_ROOT_ENV, LocalStorage
from ticketcore.trigger import S3ObjectEvent, execution_input, execution_name, start_executions
from ticketflow.local.backend import LambdaContext

EVENTS = Path(__file__).resolve().parents[1] / "events"


class FakeSfn:
    def __init__(self, fail_keys=(), existing=(), running=None):
        self.calls, self.fail_keys, self.existing = [], set(fail_keys), set(existing)
        self.running = running or {}  # name -> start date: answered like Step Functions' idempotent start

    def start_execution(self, stateMachineArn, name, input):
        self.calls.append((name, json.loads(input)))
        key = json.loads(input)["key"]
        if key in self.fail_keys:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StartExecution"
            )
        if name in self.running:
            return {"executionArn": f"arn:x:{name}", "startDate": self.running[name]}
        if name in self.existing:
            raise ClientError(
                {"Error": {"Code": "ExecutionAlreadyExists", "Message": "exists"}}, "StartExecution"
            )
        self.existing.add(name)
        return {"executionArn": f"arn:x:{name}", "startDate": datetime.now(UTC)}


def obj(key="support_ticket/raw/a.csv", size=10, seq="01", version=None):
    return S3ObjectEvent(bucket="b", key=key, size=size, version_id=version, sequencer=seq)


def test_names_are_short_safe_and_deterministic():
    long_key = "support_ticket/raw/" + "très long nom de fichier " * 10 + ".csv"
    name = execution_name(obj(long_key))
    assert len(name) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", name)
    assert execution_name(obj(long_key)) == name
    assert execution_name(obj(long_key, seq="02")) != name  # a re-upload is a new execution
    assert execution_name(obj(version="v1", seq="01")) != execution_name(obj(version="v2", seq="01"))


def test_input_is_a_pure_function_of_the_record():
    assert execution_input(obj()) == execution_input(obj())
    assert execution_input(obj()) == {
        "bucket": "b",
        "key": "support_ticket/raw/a.csv",
        "size": 10,
        "version_id": "",
        "sequencer": "01",
    }


@pytest.mark.parametrize(
    ("o", "reason"),
    [
        (obj(size=0), "zero-byte object"),
        (obj("support_ticket/raw/a.txt"), "not a CSV upload (a 'txt' file)"),
        (obj("support_ticket/raw/Q3.XLSX"), "not a CSV upload (a 'xlsx' file)"),
        (obj("support_ticket/raw/README"), "not a CSV upload (a key without extension)"),
        (obj("support_ticket/raw/a.gz"), "upload .csv, .csv.gz or a .zip holding one CSV"),
    ],
)
def test_other_objects_under_raw_are_skipped_and_recorded_with_their_reason(o, reason):
    sfn, records = FakeSfn(), {}
    result = start_executions(sfn, "arn:sm", [o], record=lambda b, k, body: records.update({(b, k): body}))
    assert sfn.calls == [] and result.ignored == []
    [skipped] = result.skipped
    assert reason in skipped["reason"] and skipped["key"] == o.key
    key = skipped["record"]
    assert key.startswith("support_ticket/reports/skipped/") and key.endswith(".json")
    doc = json.loads(records[("b", key)])
    assert (doc["key"], doc["reason"], doc["size"], doc["sequencer"]) == (o.key, skipped["reason"], o.size, "01")
    # A redelivered event rewrites the same record.
    again = start_executions(sfn, "arn:sm", [o], record=lambda b, k, body: None)
    assert again.skipped[0]["record"] == key


@pytest.mark.parametrize(
    ("o", "reason"),
    [(obj("support_ticket/raw/dir/", 0), "folder marker"), (obj("support_ticket/processed/a.csv"), "outside")],
)
def test_folder_markers_and_foreign_keys_are_ignored_without_a_record(o, reason):
    sfn, records = FakeSfn(), []
    result = start_executions(sfn, "arn:sm", [o], record=lambda *a: records.append(a))
    assert sfn.calls == [] and records == [] and result.skipped == []
    assert reason in result.ignored[0]["reason"]


@pytest.mark.parametrize("key", ["support_ticket/raw/a.csv.gz", "support_ticket/raw/A.CSV", "support_ticket/raw/x.zip"])
def test_compressed_uploads_start_an_execution(key):
    sfn = FakeSfn()
    result = start_executions(sfn, "arn:sm", [obj(key)])
    assert len(result.started) == 1 and sfn.calls[0][1]["key"] == key


def test_a_record_that_cannot_be_written_fails_the_event_so_it_is_retried():
    def refuse(bucket, key, body):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")

    result = start_executions(FakeSfn(), "arn:sm", [obj("support_ticket/raw/a.txt")], record=refuse)
    assert result.skipped == [] and result.failed[0]["error"] == "AccessDenied"


def test_duplicate_event_is_a_counted_no_op():
    sfn = FakeSfn()
    first = start_executions(sfn, "arn:sm", [obj()])
    again = start_executions(sfn, "arn:sm", [obj()])
    assert len(first.started) == 1 and again.started == [] and again.duplicates == first.started


def test_one_failing_record_does_not_stop_the_others():
    sfn = FakeSfn(fail_keys={"support_ticket/raw/bad.csv"})
    result = start_executions(
        sfn, "arn:sm", [obj("support_ticket/raw/bad.csv"), obj("support_ticket/raw/ok.csv")]
    )
    assert len(result.started) == 1 and result.failed[0]["error"] == "ThrottlingException"


def test_handler_decodes_keys_and_raises_when_a_record_failed(monkeypatch, tmp_path):
    from lambdas.trigger import handler as trigger

    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:sm")
    monkeypatch.setenv(LOCAL_ROOT_ENV, str(tmp_path))  # skip records go to the local bucket
    sfn = FakeSfn()
    monkeypatch.setattr(trigger, "sfn_client", lambda: sfn)
    event = json.loads((EVENTS / "s3_put.json").read_text())
    result = trigger.handler(event, LambdaContext("ticketflow-trigger"))
    assert [c[1]["key"] for c in sfn.calls] == ["support_ticket/raw/eu/Tickets 2024 été 50%.csv"]
    assert [i["reason"] for i in result["ignored"]] == ["folder marker"]
    [skipped] = result["skipped"]
    assert skipped["reason"].startswith("not a CSV upload")
    record = json.loads(LocalStorage(tmp_path, "b").read_bytes(skipped["record"]))
    assert record["key"] == skipped["key"] and record["reason"] == skipped["reason"]

    failing = FakeSfn(fail_keys={"support_ticket/raw/eu/Tickets 2024 été 50%.csv"})
    monkeypatch.setattr(trigger, "sfn_client", lambda: failing)
    with pytest.raises(trigger.StartExecutionFailed, match="1 of 3 records failed"):
        trigger.handler(event, LambdaContext("ticketflow-trigger"))


def test_a_deletion_starts_its_erasure_under_a_name_of_its_own(monkeypatch):
    # S3's ObjectRemoved records carry no size; the execution input says which removal it was (RouteEvent
    # sends it to RetractSource). A removed object that was never a CSV upload is ignored, unrecorded.
    from lambdas.trigger import handler as trigger

    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:sm")
    sfn = FakeSfn()
    monkeypatch.setattr(trigger, "sfn_client", lambda: sfn)
    event = json.loads((EVENTS / "s3_delete.json").read_text())
    result = trigger.handler(event, LambdaContext("ticketflow-trigger"))
    [(name, execution)] = sfn.calls
    assert execution == {"bucket": "ticketflow-data", "key": "support_ticket/raw/eu/Tickets 2024.csv", "size": 0,
                         "version_id": "DmZtUZ1C4Cpx7sWVNTWhNeLc.aZqAUeh", "sequencer": "0065E2F3A1B2C3D4E5",
                         "removal": "ObjectRemoved:DeleteMarkerCreated"}
    assert re.fullmatch(r"eu_Tickets_2024-erase-[0-9a-f]{20}", name) and result["started"] == [name]
    assert result["ignored"] == [{"key": "support_ticket/raw/notes.txt",
                                  "reason": "removed object that was never a CSV upload"}]
    assert result["skipped"] == []
    upload = S3ObjectEvent("ticketflow-data", "support_ticket/raw/eu/Tickets 2024.csv", 10,
                           "DmZtUZ1C4Cpx7sWVNTWhNeLc.aZqAUeh", "0065E2F3A1B2C3D4E5")
    assert execution_name(upload) != name and "removal" not in execution_input(upload)


def test_a_redelivery_answered_with_the_running_execution_counts_as_a_duplicate():
    name = execution_name(obj())
    sfn = FakeSfn(running={name: datetime.now(UTC) - timedelta(seconds=30)})
    result = start_executions(sfn, "arn:sm", [obj()])
    assert result.started == [] and result.duplicates == [name]


def test_a_start_date_without_zone_is_read_as_utc():
    name = execution_name(obj())
    old = (datetime.now(UTC) - timedelta(minutes=5)).replace(tzinfo=None)
    assert start_executions(FakeSfn(running={name: old}), "arn:sm", [obj()]).duplicates == [name]
    fresh = datetime.now(UTC).replace(tzinfo=None)
    assert start_executions(FakeSfn(running={name: fresh}), "arn:sm", [obj()]).started == [name]
