"""Execution records written by hand, in the shapes the local runtime records (DescribeExecution and
GetExecutionHistory as JSON under <home>/executions/): for tests of the pages and commands that read them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:ticketflow-pipeline"
OK = "tickets_2024-0a1b2c3d4e5f60718293"
GLUE_FAILED = "eu_tickets-9f8e7d6c5b4a39281706"
DQ_REDRIVEN = "tickets_march-5566778899aabbccddee"
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
GLUE_CAUSE = json.dumps({
    "Id": "jr_4c1e", "JobName": "ticketflow-transform", "JobRunState": "FAILED",
    "ErrorMessage": "SchemaError: required column ticket_id is missing", "ExecutionTime": 38,
})
DQ_CAUSE = json.dumps({
    "errorMessage": "2 error-severity expectations failed: expect_column_values_to_not_be_null(customer_id)",
    "errorType": "DataQualityError", "requestId": "8d2f0f4e-1111-4e55-9a2a-0c0ffee00001",
    "stackTrace": ['  File "/var/task/lambdas/validate/handler.py", line 40, in handler\n'],
})


def iso(value: datetime) -> str:
    return value.isoformat()


class Recorder:
    """Builds an execution's history event by event, in GetExecutionHistory's shapes."""

    def __init__(self, name: str, key: str, start: datetime) -> None:
        self.name, self.start, self.now = name, start, start
        self.events: list[dict[str, Any]] = []
        self.document: dict[str, Any] = {"bucket": "ticketflow-local", "key": key, "size": 2048,
                                         "version_id": "", "sequencer": "0000018E2A5F3C1D00"}
        self.input = json.dumps(self.document)
        self.redrive_count = 0
        self.redrive_date: datetime | None = None
        self.event("ExecutionStarted", "executionStartedEventDetails",
                   {"input": self.input, "inputDetails": {"truncated": False},
                    "roleArn": "arn:aws:iam::123456789012:role/ticketflow-local-states"})

    def event(self, kind: str, details_key: str | None = None, details: dict[str, Any] | None = None,
              after: float = 0.0) -> None:
        self.now += timedelta(seconds=after)
        event = {"timestamp": iso(self.now), "type": kind, "id": len(self.events) + 1,
                 "previousEventId": len(self.events)}
        if details_key:
            event[details_key] = details
        self.events.append(event)

    def task(self, state: str, result_key: str, result: Any, glue: bool = False, seconds: float = 1.0,
             failures: list[tuple[str, str]] = (), succeed: bool = True, retry_wait: float = 0.0) -> None:
        resource_type, resource = ("glue", "startJobRun.sync") if glue else ("lambda", "invoke")
        common = {"resourceType": resource_type, "resource": resource}
        self.event("TaskStateEntered", "stateEnteredEventDetails",
                   {"name": state, "input": json.dumps(self.document), "inputDetails": {"truncated": False}})
        outcomes = [*failures, *([None] if succeed else [])]
        for number, failure in enumerate(outcomes):
            wait = retry_wait if number else 0.0
            self.event("TaskScheduled", "taskScheduledEventDetails",
                       {**common, "region": "us-east-1", "parameters": "{}"}, after=wait)
            self.event("TaskStarted", "taskStartedEventDetails", common)
            if glue:
                self.event("TaskSubmitted", "taskSubmittedEventDetails",
                           {**common, "output": json.dumps({"JobRunId": f"jr_{number}"})})
            if failure:
                self.event("TaskFailed", "taskFailedEventDetails",
                           {**common, "error": failure[0], "cause": failure[1]}, after=seconds)
            else:
                self.event("TaskSucceeded", "taskSucceededEventDetails",
                           {**common, "output": json.dumps({"Payload": result})}, after=seconds)
        if succeed:
            self.document[result_key] = result
            self.event("TaskStateExited", "stateExitedEventDetails",
                       {"name": state, "output": json.dumps(self.document),
                        "outputDetails": {"truncated": False}})

    def succeed(self) -> None:
        body = json.dumps(self.document)
        self.event("SucceedStateEntered", "stateEnteredEventDetails", {"name": "Published", "input": body})
        self.event("SucceedStateExited", "stateExitedEventDetails", {"name": "Published", "output": body})
        self.event("ExecutionSucceeded", "executionSucceededEventDetails", {"output": body}, after=0.1)

    def fail(self, error: str, cause: str) -> None:
        self.event("ExecutionFailed", "executionFailedEventDetails", {"error": error, "cause": cause},
                   after=0.1)

    def redriven(self, after: float) -> None:
        self.redrive_count += 1
        self.event("ExecutionRedriven", "executionRedrivenEventDetails", {"redriveCount": self.redrive_count},
                   after=after)
        self.redrive_date = self.now

    def describe(self) -> dict[str, Any]:
        ended = self.events[-1]["type"]
        status = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED"}.get(ended, "RUNNING")
        desc: dict[str, Any] = {
            "executionArn": MACHINE.replace(":stateMachine:", ":execution:") + ":" + self.name,
            "stateMachineArn": MACHINE, "name": self.name, "status": status, "startDate": iso(self.start),
            "input": self.input, "inputDetails": {"included": True}, "redriveCount": self.redrive_count,
        }
        if status != "RUNNING":
            desc["stopDate"] = iso(self.now)
        if status == "SUCCEEDED":
            desc["output"] = json.dumps(self.document)
        if status == "FAILED":
            details = self.events[-1]["executionFailedEventDetails"]
            desc.update(error=details["error"], cause=details["cause"])
        if self.redrive_date:
            desc["redriveDate"] = iso(self.redrive_date)
        return desc

    def write(self, home: Path, suffix: str = ".json") -> Path:
        path = home / "executions" / f"{self.name}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"execution": self.describe(), "history": self.events, "redrive_count": self.redrive_count,
               "recorded_at": iso(self.now + timedelta(seconds=1))}
        path.write_text(json.dumps(doc, indent=1))
        return path


INSPECTION = {"inspection": {"staging_uri": "support_ticket/staging/x/", "dialect": {"delimiter": ","}}}


def succeeded(t0: datetime = T0) -> Recorder:
    r = Recorder(OK, "support_ticket/raw/tickets_2024.csv", t0)
    r.task("InspectSource", "inspect", INSPECTION, seconds=1.2)
    r.task("TransformTickets", "transform", {"job_run_id": "jr_1", "job_run_state": "SUCCEEDED"}, glue=True,
           seconds=62.5)
    r.task("ValidateOutput", "validate", {"validation": {"success": True}}, seconds=3.0)
    r.task("Publish", "publish", {"publication": {"rows": 10000}}, seconds=0.8)
    r.succeed()
    return r


def glue_failed(t0: datetime = T0) -> Recorder:
    r = Recorder(GLUE_FAILED, "support_ticket/raw/eu_tickets.csv", t0 + timedelta(hours=1))
    r.task("InspectSource", "inspect", INSPECTION, seconds=0.9)
    failure = ("States.TaskFailed", GLUE_CAUSE)
    r.task("TransformTickets", "transform", None, glue=True, seconds=40, failures=[failure, failure],
           succeed=False, retry_wait=60)
    r.fail(*failure)
    return r


def dq_redriven(t0: datetime = T0) -> Recorder:
    r = Recorder(DQ_REDRIVEN, "support_ticket/raw/tickets_march.csv", t0 + timedelta(hours=2))
    r.task("InspectSource", "inspect", INSPECTION, seconds=1.0)
    r.task("TransformTickets", "transform", {"job_run_id": "jr_9", "job_run_state": "SUCCEEDED"}, glue=True,
           seconds=30)
    failure = ("DataQualityError", DQ_CAUSE)
    r.task("ValidateOutput", "validate", None, seconds=2.5, failures=[failure], succeed=False)
    r.fail(*failure)
    r.redriven(after=600)  # ten minutes later, after someone looked at it
    r.task("ValidateOutput", "validate", None, seconds=2.0, failures=[failure], succeed=False)
    r.fail(*failure)
    return r
