"""The `--target aws` path against moto: executions and histories from moto's Step Functions API (the same
code and rendering as the local records), stack outputs from CloudFormation, uploads to S3, alert routing
from SNS."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from ticketflow.cli import main
from ticketflow.ops.aws import AwsTarget, StackResources, TargetError, stack_resources
from ticketflow.ops.executions import AmbiguousExecution, AwsExecutionStore, ExecutionNotFound, resolve
from ticketflow.ops.render import render_executions, render_show, rows_for

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/ticketflow-states"
# Pass-only stand-ins for the pipeline's states, plus a Fail named like the state that fails in earnest.
DEFINITION = {
    "StartAt": "InspectSource",
    "States": {
        "InspectSource": {"Type": "Pass", "Result": {"rows": 3}, "ResultPath": "$.inspect", "Next": "Route"},
        "Route": {"Type": "Choice", "Default": "Publish",
                  "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "ValidateOutput"}]},
        "ValidateOutput": {
            "Type": "Fail", "Error": "DataQualityError",
            "Cause": "2 error-severity expectations failed: expect_column_values_to_not_be_null",
        },
        "Publish": {"Type": "Pass", "Next": "Published"},
        "Published": {"Type": "Succeed"},
    },
}
OK = "tickets_jan-00112233445566778899"
FAILED = "tickets_feb-aabbccddeeff00112233"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def finished(sfn: Any, arn: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc = sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING":
            return desc
        if time.monotonic() > deadline:
            pytest.fail(f"execution {arn} still RUNNING after {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def machine(aws: None) -> str:
    """A state machine with one SUCCEEDED and one FAILED execution (started in that order)."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(name="ticketflow-pipeline", definition=json.dumps(DEFINITION),
                                   roleArn=ROLE)["stateMachineArn"]
    for name, fail in ((OK, False), (FAILED, True)):
        payload = {"bucket": "b", "key": f"support_ticket/raw/{name.split('-')[0]}.csv", "fail": fail}
        execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))
        finished(sfn, execution["executionArn"])
        time.sleep(0.01)  # distinct start dates
    return arn


def test_store_lists_describes_and_reads_histories(machine: str) -> None:
    store = AwsExecutionStore(boto3.client("stepfunctions", region_name=REGION), machine)
    listed = store.list(None, 10)
    assert [(e["name"], e["status"]) for e in listed] == [(FAILED, "FAILED"), (OK, "SUCCEEDED")]
    # described, not only listed: ListExecutions has no input
    assert json.loads(listed[0]["input"])["key"] == "support_ticket/raw/tickets_feb.csv"
    assert [e["name"] for e in store.list("FAILED", 10)] == [FAILED]
    assert [e["name"] for e in store.list("SUCCEEDED", 10)] == [OK]
    assert [e["name"] for e in store.list(None, 1)] == [FAILED]
    assert store.names() == [FAILED, OK]

    desc = store.describe(FAILED)
    assert desc["executionArn"] == machine.replace(":stateMachine:", ":execution:") + ":" + FAILED
    assert (desc["status"], desc["error"]) == ("FAILED", "DataQualityError")
    assert store.describe(desc["executionArn"])["name"] == FAILED

    events = store.history(FAILED)
    assert [e["type"] for e in events] == [
        "ExecutionStarted", "PassStateEntered", "PassStateExited", "ChoiceStateEntered", "ChoiceStateExited",
        "FailStateEntered", "ExecutionFailed",
    ]
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))

    with pytest.raises(ExecutionNotFound, match=f"no execution named 'gone' in state machine {machine}"):
        store.describe("gone")
    assert resolve(store, "tickets_f")["name"] == FAILED
    with pytest.raises(AmbiguousExecution, match="'tickets_' matches 2 executions"):
        resolve(store, "tickets_")


def test_rendering_is_shared_with_the_local_path(machine: str) -> None:
    store = AwsExecutionStore(boto3.client("stepfunctions", region_name=REGION), machine)
    rows = rows_for(store, store.list(None, 10))
    table = render_executions(rows, width=None).splitlines()
    assert re.split(r"\s{2,}", table[0]) == ["NAME", "STATUS", "SOURCE (raw/)", "START (UTC)", "DURATION",
                                             "FAILED STATE"]
    failed, ok = (re.split(r"\s{2,}", line.strip()) for line in table[2:4])
    assert [failed[i] for i in (0, 1, 2, 5)] == [FAILED, "FAILED", "tickets_feb.csv", "ValidateOutput"]
    assert (ok[0], ok[1], ok[2], len(ok)) == (OK, "SUCCEEDED", "tickets_jan.csv", 5)
    # at the default width (100 columns) the names are cut to prefixes that still resolve
    narrow = render_executions(rows).splitlines()
    assert max(map(len, narrow)) <= 100
    cut_names = [re.split(r"\s{2,}", line)[0].removesuffix("...") for line in narrow[2:4]]
    assert [resolve(store, prefix)["name"] for prefix in cut_names] == [FAILED, OK]

    shown = render_show(store.describe(FAILED), store.history(FAILED))
    assert "Status     FAILED at ValidateOutput" in shown
    assert "Error      DataQualityError" in shown
    assert "Cause      2 error-severity expectations failed: expect_column_values_to_not_be_null" in shown
    states = [re.split(r"\s{2,}", line.strip())[1:3]
              for line in shown.splitlines() if re.match(r"\s*\d\s{2}", line)]
    assert states == [["InspectSource", "SUCCEEDED"], ["Route", "SUCCEEDED"], ["ValidateOutput", "FAILED"]]


class _Paged:
    """A client whose history comes in pages, as AWS serves it (moto never pages)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        page = {None: ([1, 2], "t1"), "t1": ([3, 4], "t2"), "t2": ([5], None)}[kwargs.get("nextToken")]
        events = [{"id": i, "type": "X", "timestamp": None} for i in page[0]]
        return {"events": events, **({"nextToken": page[1]} if page[1] else {})}


def test_history_follows_next_tokens() -> None:
    client = _Paged()
    store = AwsExecutionStore(client, "arn:aws:states:us-east-1:1:stateMachine:sm")
    assert [e["id"] for e in store.history("x")] == [1, 2, 3, 4, 5]
    assert [c.get("nextToken") for c in client.calls] == [None, "t1", "t2"]
    assert client.calls[0]["executionArn"] == "arn:aws:states:us-east-1:1:execution:sm:x"


def test_stack_outputs_are_matched_exactly_or_by_cdk_prefix() -> None:
    cfn = boto3.client("cloudformation", region_name=REGION)
    outputs = [
        {"OutputKey": "BucketNameA1B2C3D4", "OutputValue": "ticketflow-data-123"},
        {"OutputKey": "StateMachineArn", "OutputValue": "arn:aws:states:us-east-1:1:stateMachine:sm"},
        {"OutputKey": "StateMachineConsoleUrl", "OutputValue": "https://console"},
        {"OutputKey": "AlertTopicArnE5F6", "OutputValue": "arn:aws:sns:us-east-1:1:alerts"},
    ]
    def stack(name: str, outputs: list[dict[str, str]]) -> dict[str, Any]:
        return {"Stacks": [{"StackName": name, "CreationTime": "2026-01-01T00:00:00Z",
                            "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}]}

    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", stack("Ticketflow", outputs), {"StackName": "Ticketflow"})
        found = stack_resources(cfn, "Ticketflow")
    assert found == StackResources(stack="Ticketflow", bucket="ticketflow-data-123",
                                   state_machine_arn="arn:aws:states:us-east-1:1:stateMachine:sm",
                                   topic_arn="arn:aws:sns:us-east-1:1:alerts")

    with Stubber(cfn) as stub:
        stub.add_response("describe_stacks", stack("Other", outputs[1:]), {"StackName": "Other"})
        with pytest.raises(TargetError, match="stack Other has no output BucketName"):
            stack_resources(cfn, "Other")


def test_upload_and_alerts_against_moto(machine: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="ticketflow-data")
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="ticketflow-alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="oncall@example.com")
    target = AwsTarget("Ticketflow", session=boto3.Session(region_name=REGION))
    target.__dict__["resources"] = StackResources("Ticketflow", "ticketflow-data", machine, topic)

    source = tmp_path / "tickets_apr.csv"
    source.write_bytes(b"ticket_id,status\nT-1,open\n")
    assert target.upload([source]) == ["s3://ticketflow-data/support_ticket/raw/tickets_apr.csv"]
    body = s3.get_object(Bucket="ticketflow-data", Key="support_ticket/raw/tickets_apr.csv")["Body"].read()
    assert body == source.read_bytes() == b"ticket_id,status\nT-1,open\n"

    record = {"key": "support_ticket/raw/q3.xlsx", "size": 9, "reason": "not a CSV upload (a 'xlsx' file)",
              "skipped_at": "2026-03-01T10:00:00+00:00"}
    s3.put_object(Bucket="ticketflow-data", Key="support_ticket/reports/skipped/q3-1.json", Body=json.dumps(record))
    doc, rows = target.alerts(limit=5)
    assert doc["topic_arn"] == topic
    assert doc["skipped_total"] == 1
    assert doc["skipped"] == [{**record, "record": "support_ticket/reports/skipped/q3-1.json"}]
    assert [(s["Protocol"], s["Endpoint"]) for s in doc["subscriptions"]] == [("email", "oncall@example.com")]
    assert [(f["name"], f["failed_state"], f["error"]) for f in doc["failures"]] == [
        (FAILED, "ValidateOutput", "DataQualityError")
    ]
    assert [r.name for r in rows] == [FAILED]


def _cloudformation_available() -> bool:
    try:
        import moto.cloudformation.parsing  # noqa: F401 - needs moto's [cloudformation] extra
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _cloudformation_available(), reason="moto[cloudformation] extra not installed")
def test_cli_against_a_moto_stack(machine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a stack whose outputs name the bucket and topic it created, and the state machine (moto's
    # CloudFormation cannot create one that its Step Functions interpreter runs: a literal ARN)
    template = {
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}, "Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "BucketName8F2A11C0": {"Value": {"Ref": "Bucket"}},
            "StateMachineArn": {"Value": machine},
            "StateMachineConsoleUrl": {"Value": "https://console.aws.amazon.com/states"},
            "AlertTopicArn": {"Value": {"Ref": "Topic"}},
        },
    }
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName="TicketflowTest", TemplateBody=json.dumps(template))
    found = AwsTarget("TicketflowTest", region=REGION).resources
    assert found.state_machine_arn == machine
    assert found.bucket.startswith("ticketflowtest-bucket-")
    assert found.topic_arn.startswith("arn:aws:sns:us-east-1:123456789012:TicketflowTest-Topic-")
    common = ["--target", "aws", "--stack", "TicketflowTest", "--region", REGION]

    source = tmp_path / "tickets_may.csv"
    source.write_text("ticket_id\nT-9\n")
    assert main(["upload", str(source), *common]) == 0
    out = capsys.readouterr().out
    assert f"uploaded {source} -> s3://{found.bucket}/support_ticket/raw/tickets_may.csv" in out
    s3 = boto3.client("s3", region_name=REGION)
    uploaded = s3.get_object(Bucket=found.bucket, Key="support_ticket/raw/tickets_may.csv")["Body"].read()
    assert uploaded == b"ticket_id\nT-9\n"

    assert main(["executions", *common, "--status", "FAILED", "--wide"]) == 0
    out = capsys.readouterr().out
    [row] = [re.split(r"\s{2,}", line) for line in out.splitlines() if line.startswith(FAILED)]
    assert (row[1], row[2], row[-1]) == ("FAILED", "tickets_feb.csv", "ValidateOutput")

    assert main(["show", "tickets_f", *common]) == 0
    out = capsys.readouterr().out
    assert f"Execution  {FAILED}" in out and "Status     FAILED at ValidateOutput" in out

    assert main(["show", "tickets_", *common]) == 2
    assert "matches 2 executions in state machine" in capsys.readouterr().err

    assert main(["alerts", *common]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:3] == [
        f"Failure alerts go to the SNS topic {found.topic_arn} (stack TicketflowTest).",
        "It has no subscriptions: nobody receives the alerts. Subscribe with",
        f"  aws sns subscribe --topic-arn {found.topic_arn} --protocol email "
        "--notification-endpoint you@example.com",
    ]
    assert "Recent executions that ended FAILED, TIMED_OUT or ABORTED (1, newest first):" in out
    assert f"{FAILED}  FAILED" in out and "DataQualityError" in out

    assert main(["executions", "--target", "aws", "--stack", "NoSuchStack", "--region", REGION]) == 2
    assert "cannot read CloudFormation stack 'NoSuchStack'" in capsys.readouterr().err


def test_redrive_on_aws_resolves_and_refuses_like_the_console():
    """moto has no RedriveExecution: the call itself is recorded by a thin wrapper around its client."""
    import boto3
    from moto import mock_aws

    from ticketflow.commands.redrive import redrive_on_aws

    definition = json.dumps({"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "X", "Cause": "y"}}})
    ok_definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        role = "arn:aws:iam::123456789012:role/r"
        failing = sfn.create_state_machine(name="f", definition=definition, roleArn=role)["stateMachineArn"]
        passing = sfn.create_state_machine(name="p", definition=ok_definition, roleArn=role)["stateMachineArn"]
        sfn.start_execution(stateMachineArn=failing, name="broken-upload-1", input="{}")
        sfn.start_execution(stateMachineArn=passing, name="fine-upload-1", input="{}")
        for arn, name in ((failing, "broken-upload-1"), (passing, "fine-upload-1")):
            execution = arn.replace(":stateMachine:", ":execution:") + ":" + name
            for _ in range(100):
                if sfn.describe_execution(executionArn=execution)["status"] != "RUNNING":
                    break
                time.sleep(0.05)

        calls: list[str] = []

        class Recording:
            def __getattr__(self, item):
                return getattr(sfn, item)

            def redrive_execution(self, executionArn):
                calls.append(executionArn)
                return {"redriveDate": "2026-11-26T00:00:00Z"}

        message = redrive_on_aws(Recording(), failing, "broken")
        assert calls == [failing.replace(":stateMachine:", ":execution:") + ":broken-upload-1"]
        assert message.startswith("redriven arn:aws:states:") and "broken-upload-1" in message
        with pytest.raises(LookupError, match="is SUCCEEDED: only FAILED, TIMED_OUT or ABORTED"):
            redrive_on_aws(Recording(), passing, "fine")


@pytest.mark.skipif(not _cloudformation_available(), reason="moto[cloudformation] extra not installed")
def test_reprocess_on_aws_starts_a_derived_name_once_per_deployment(aws: None,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a stack whose definition names its Glue job in TransformTickets, and one failed upload
    definition = {"StartAt": "TransformTickets", "States": {
        "TransformTickets": {"Type": "Pass", "Parameters": {"JobName": "ticketflow-transform"}, "Next": "Check"},
        "Check": {"Type": "Choice", "Default": "Done",
                  "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "ValidateOutput"}]},
        "ValidateOutput": {"Type": "Fail", "Error": "DataQualityError", "Cause": "1 expectation failed"},
        "Done": {"Type": "Succeed"}}}
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name="ticketflow-pipeline", definition=json.dumps(definition),
                                       roleArn=ROLE)["stateMachineArn"]
    glue = boto3.client("glue", region_name=REGION)
    glue.create_job(Name="ticketflow-transform", Role=ROLE,
                    Command={"Name": "glueetl", "ScriptLocation": "s3://assets/job.py"},
                    DefaultArguments={"--contract": "s3://assets/abc123/support_tickets.yaml"})
    upload = {"bucket": "b", "key": "support_ticket/raw/tickets_feb.csv", "version_id": "v1",
              "sequencer": "0A", "fail": True}
    first = sfn.start_execution(stateMachineArn=machine, name=FAILED, input=json.dumps(upload))
    finished(sfn, first["executionArn"])
    cfn = boto3.client("cloudformation", region_name=REGION)
    cfn.create_stack(StackName="TicketflowRe", TemplateBody=json.dumps({
        "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}, "Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"BucketName": {"Value": {"Ref": "Bucket"}}, "StateMachineArn": {"Value": machine},
                    "AlertTopicArn": {"Value": {"Ref": "Topic"}}}}))
    common = ["--target", "aws", "--stack", "TicketflowRe", "--region", REGION]

    # WHEN it is reprocessed, THEN one new execution of the same input starts, under a derived name
    assert main(["reprocess", FAILED, *common]) == 0
    out = capsys.readouterr().out
    assert "started 1; already reprocessed under this deployment (not started again): 0" in out
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
    [again] = [n for n in names if n != FAILED]
    assert again.startswith("tickets_feb-re-")
    started = sfn.describe_execution(executionArn=machine.replace(":stateMachine:", ":execution:") + ":" + again)
    assert json.loads(started["input"]) == upload
    finished(sfn, started["executionArn"])
    # AND asked again under the same deployment, nothing starts
    assert main(["reprocess", FAILED, *common]) == 0
    assert f"already reprocessed under this deployment (not started again): 1 ({again})" in capsys.readouterr().out
    # AND a deployment that changes the contract's asset makes a new name
    glue.delete_job(JobName="ticketflow-transform")  # moto has no UpdateJob: the redeployed job, recreated
    glue.create_job(Name="ticketflow-transform", Role=ROLE,
                    Command={"Name": "glueetl", "ScriptLocation": "s3://assets/job.py"},
                    DefaultArguments={"--contract": "s3://assets/def456/support_tickets.yaml"})
    assert main(["reprocess", FAILED, *common]) == 0
    assert "started 1;" in capsys.readouterr().out
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 3


def test_reprocess_on_aws_keeps_at_most_max_concurrent_running() -> None:
    """The pacing alone, against a recording fake: a start waits until one of its predecessors has ended."""
    import argparse

    from ticketflow.commands.reprocess import _on_aws
    from ticketflow.ops.reprocess import Reprocess, ReprocessPlan

    calls: list[str] = []

    class FakeSfn:
        def __init__(self) -> None:
            self.polls: dict[str, int] = {}

        def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, str]:
            calls.append(f"start {name}")
            return {"executionArn": f"arn:x:{name}"}

        def describe_execution(self, executionArn: str) -> dict[str, str]:
            self.polls[executionArn] = self.polls.get(executionArn, 0) + 1
            calls.append(f"poll {executionArn.rsplit(':', 1)[-1]}")
            return {"status": "RUNNING" if self.polls[executionArn] < 3 else "SUCCEEDED"}

    class FakeTarget:
        resources = StackResources("s", "b", "arn:machine", "arn:topic")

        def client(self, service: str) -> FakeSfn:
            return sfn

    sfn = FakeSfn()
    runs = [Reprocess(f"support_ticket/raw/{n}.csv", n, f"{n}-re", {"key": n}) for n in ("a", "b", "c")]
    args = argparse.Namespace(max_concurrent=2)
    assert _on_aws(FakeTarget(), ReprocessPlan(runs, []), args, poll=0) == 0
    # Two start at once; the third only after a poll saw one of them ended (a's third look).
    assert calls[:2] == ["start a-re", "start b-re"]
    third = calls.index("start c-re")
    assert calls[third - 2:third] == ["poll a-re", "poll b-re"] and sfn.polls["arn:x:a-re"] == 3
