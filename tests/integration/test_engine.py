"""The local Step Functions engine running the real statemachine/pipeline.asl.json against a mock backend."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.handlers import BUILTIN_HANDLERS

from ticketflow.local import (
    DEFAULT_DEFINITION,
    FunctionError,
    InvalidDefinition,
    LocalStepFunctions,
    PlaceholderError,
    ServiceError,
    VirtualClock,
    current_task,
    substitute,
    summarize_history,
)
from ticketflow.local import engine as engine_module

ACCOUNT = "123456789012"
VALUES = {
    "InspectFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:inspect",
    "TransformJobName": "transform",
    "ValidateFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:validate",
    "PublishFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:publish",
    "RetractFunctionArn": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:retract",
}
INPUT = {"bucket": "data", "key": "raw/tickets.csv", "version_id": "v1", "sequencer": "0055AED6DCD90281E5"}
INSPECTION = {
    "source_uri": "s3://data/landing/r/source.csv",
    "inspection_uri": "s3://data/landing/r/inspection.json",
    "source": {"key": "raw/tickets.csv", "version_id": "v1", "etag": '"9b2cf535f27731c974343645a3985328"', "bytes": 10},
    "staging_uri": "s3://data/staging/r",
    "quarantine_uri": "s3://data/quarantine/r",
    "reports_uri": "s3://data/reports/r",
    "dialect": {"delimiter": ",", "encoding": "utf-8"},
}


class DataQualityError(Exception):
    pass


class Backend:
    """Per execution name, a `plan` of what each state does on each attempt (default: succeed)."""

    def __init__(self) -> None:
        self.plans: dict[str, dict[str, list[Any]]] = {}
        self.calls: list[tuple[str, str, str, Any]] = []  # (execution name, state, operation, detail)
        self.stopped: list[str] = []
        self.release = threading.Event()
        self._ids = itertools.count(1)
        self._runs: dict[str, str] = {}
        self._lock = threading.Lock()

    def _step(self, operation: str, detail: Any) -> Any:
        task = current_task()
        assert task is not None, "backend called outside a task"
        with self._lock:
            self.calls.append((task.execution_name, task.state, operation, detail))
        plan = self.plans.get(task.execution_name, {}).get(task.state, [])
        return plan[task.attempt] if task.attempt < len(plan) else None

    def invoke_lambda(self, function_name: str, payload: Any) -> Any:
        step = self._step("invoke", payload)
        if isinstance(step, BaseException):
            raise step
        if step == "block":
            self.release.wait(10)
        if isinstance(step, dict):  # a result of its own
            return step
        return INSPECTION if function_name == VALUES["InspectFunctionArn"] else {"ok": True}

    def start_job_run(self, job_name: str, arguments: dict[str, str]) -> str:
        step = self._step("start", arguments)
        if isinstance(step, BaseException):
            raise step
        run_id = f"jr_{next(self._ids)}"
        if isinstance(step, tuple):  # ("slow", real seconds, final state): a job running in the background
            _, seconds, final = step
            self._runs[run_id] = "RUNNING"
            timer = threading.Timer(seconds, self._runs.__setitem__, (run_id, final))
            timer.daemon = True
            timer.start()
        else:
            self._runs[run_id] = step or "SUCCEEDED"
        return run_id

    def get_job_run(self, job_name: str, run_id: str) -> dict[str, Any]:
        outcome = self._runs[run_id]
        if outcome == "hang":
            engine_clock().hang()
        with self._lock:
            self.calls.append(("", "", "poll", (run_id, outcome)))
        return {"Id": run_id, "JobName": job_name, "JobRunState": outcome, "ErrorMessage": "boom"}

    def stop_job_run(self, job_name: str, run_id: str) -> None:
        self.stopped.append(run_id)

    def publish(self, topic_arn: str, message: str, subject: str | None) -> str:
        return "m-1"


_CLOCK = VirtualClock(scale=0, poll_interval=0)


def engine_clock() -> VirtualClock:
    return _CLOCK


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[LocalStepFunctions, Backend, str]]:
    backend = Backend()
    with LocalStepFunctions(backend, _CLOCK) as local:
        arn = local.create_state_machine("pipeline", substitute(DEFAULT_DEFINITION.read_text(), VALUES))
        yield local, backend, arn


_names = itertools.count()


def execute(
    engine: tuple[LocalStepFunctions, Backend, str],
    plan: dict[str, list[Any]] | None = None,
) -> tuple[str, str, dict[str, Any]]:
    local, backend, arn = engine
    name = f"exec-{next(_names)}"
    backend.plans[name] = plan or {}
    execution = local.start_execution(arn, name, INPUT)
    return name, execution, local.wait(execution, timeout=20)


def named(summary: list[Any], state: str) -> Any:
    """The summary row of `state` (the definition starts with the RouteEvent Choice)."""
    [run] = [run for run in summary if run.name == state]
    return run


def test_handlers_are_removed_and_one_engine_at_a_time() -> None:
    # Runs before the module's shared engine starts (one engine per process at a time).
    ours = {handler for _, handler in engine_module._HANDLERS}
    with LocalStepFunctions(Backend()) as local:
        assert ours <= {entry[1] for entry in BUILTIN_HANDLERS}
        with pytest.raises(RuntimeError, match="already active"), LocalStepFunctions(Backend()):
            pass
        assert local.client is not None
    assert not ours & {entry[1] for entry in BUILTIN_HANDLERS}
    assert engine_module._active is None


def test_success_path_history_has_the_aws_shape(engine: Any) -> None:
    local, backend, _ = engine
    name, execution, result = execute(engine)
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["transform"]["job_run_state"] == "SUCCEEDED"
    assert output["inspect"]["inspection"] == INSPECTION
    types = [event["type"] for event in local.history(execution)]
    glue = types.index("TaskStateEntered", types.index("TaskStateExited"))
    assert types[glue : glue + 6] == [
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSubmitted",
        "TaskSucceeded",
        "TaskStateExited",
    ]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    # Glue gets its arguments the way Glue passes them: strings; the inspection by its address, not inline
    (arguments,) = [detail for run, state, op, detail in backend.calls if run == name and op == "start"]
    assert arguments["--run_id"] == name and arguments["--inspection"] == INSPECTION["inspection_uri"]
    assert "--dialect" not in arguments
    summary = local.summary(execution)
    assert [(run.name, run.status, run.attempts) for run in summary] == [
        ("RouteEvent", "SUCCEEDED", 0),  # the Choice: an upload, not a deletion
        ("InspectSource", "SUCCEEDED", 1),
        ("TransformTickets", "SUCCEEDED", 1),
        ("ValidateOutput", "SUCCEEDED", 1),
        ("Publish", "SUCCEEDED", 1),
        ("Published", "SUCCEEDED", 0),
    ]
    assert all(run.duration is not None and run.duration >= 0 for run in summary)
    # the same rows from events stored as JSON (timestamps as text), as the operations tools keep them
    stored = json.loads(json.dumps(local.history(execution), default=str))
    assert [(run.name, run.status, run.duration) for run in summarize_history(stored)] == [
        (run.name, run.status, run.duration) for run in summary
    ]


def test_an_exception_class_name_becomes_the_error_name(engine: Any) -> None:
    local, backend, _ = engine
    name, execution, result = execute(engine, {"ValidateOutput": [DataQualityError("3 rows failed")]})
    assert result["status"] == "FAILED" and result["error"] == "DataQualityError"
    cause = json.loads(result["cause"])
    assert cause["errorType"] == "DataQualityError" and cause["errorMessage"] == "3 rows failed"
    failed = local.summary(execution)[-1]
    assert (failed.name, failed.status, failed.attempts, failed.error) == (
        "ValidateOutput",
        "FAILED",
        1,
        "DataQualityError",
    )
    assert not [call for call in backend.calls if call[0] == name and call[1] == "Publish"]


def test_function_error_sets_the_error_type_exactly(engine: Any) -> None:
    _, _, result = execute(engine, {"InspectSource": [FunctionError("SchemaError", "no ticket_id column")]})
    assert result["error"] == "SchemaError"


def sized_result(size: int) -> dict[str, Any]:
    """A task result whose JSON is exactly `size` bytes."""
    result = {**INSPECTION, "pad": ""}
    result["pad"] = "x" * (size - len(json.dumps(result).encode()))
    assert len(json.dumps(result).encode()) == size
    return result


def test_a_result_over_the_256_kib_payload_quota_fails_the_task_unretried(engine: Any) -> None:
    # Step Functions' quota on a state's data (256 KiB of UTF-8 JSON), enforced by moto's interpreter as on
    # AWS: States.DataLimitExceeded, which the definition's Retry does not name. The inspect step keeps its
    # result small for this reason (the whole inspection goes to S3).
    local, backend, _ = engine
    _, _, result = execute(engine, {"InspectSource": [sized_result(200 * 1024)]})
    assert result["status"] == "SUCCEEDED"
    name, execution, result = execute(engine, {"InspectSource": [sized_result(256 * 1024)]})
    assert (result["status"], result["error"]) == ("FAILED", "States.DataLimitExceeded")
    assert "exceeding the maximum number of bytes service limit" in result["cause"]
    inspect = named(local.summary(execution), "InspectSource")
    assert (inspect.name, inspect.attempts, inspect.error) == ("InspectSource", 1, "States.DataLimitExceeded")
    assert not [call for call in backend.calls if call[0] == name and call[1] == "TransformTickets"]


def test_service_error_is_lambda_service_exception_and_retried(engine: Any) -> None:
    local, _, _ = engine
    failure = ServiceError("ServiceException", "try again", 500)
    _, execution, result = execute(engine, {"InspectSource": [failure, failure]})
    assert result["status"] == "SUCCEEDED"
    inspect = named(local.summary(execution), "InspectSource")
    assert inspect.attempts == 3
    assert [error for error, _ in inspect.failures] == ["Lambda.ServiceException"] * 2
    waits = _CLOCK.retry_waits(execution, "InspectSource")
    assert [wait.base for wait in waits] == [2, 4] and all(0 <= w.seconds <= w.base for w in waits)


def test_glue_start_error_is_glue_error_code(engine: Any) -> None:
    local, _, _ = engine
    busy = ServiceError("ConcurrentRunsExceededException", "1 run at a time")
    _, execution, result = execute(engine, {"TransformTickets": [busy]})
    assert result["status"] == "SUCCEEDED"
    assert named(local.summary(execution), "TransformTickets").failures[0][0] == "Glue.ConcurrentRunsExceededException"


def test_failed_glue_run_is_states_task_failed(engine: Any) -> None:
    _, _, result = execute(engine, {"TransformTickets": ["FAILED", "FAILED"]})
    assert result["status"] == "FAILED" and result["error"] == "States.TaskFailed"
    assert json.loads(result["cause"])["JobRunState"] == "FAILED"


def test_a_timed_out_glue_task_stops_its_run(engine: Any) -> None:
    local, backend, _ = engine
    started = time.monotonic()
    _, execution, result = execute(engine, {"TransformTickets": ["hang"]})
    assert result["status"] == "FAILED" and result["error"] == "States.Timeout"
    assert len({f"jr_{i}" for i in range(1, 1000)} & set(backend.stopped)) == 1  # defect 8 handled
    assert local.open_job_runs(execution) == []
    assert time.monotonic() - started < 5  # 7200 virtual seconds


def test_same_name_and_input_while_running_is_a_no_op(engine: Any) -> None:
    local, backend, arn = engine
    backend.release.clear()
    backend.plans["twice"] = {"InspectSource": ["block"]}
    first = local.start_execution(arn, "twice", INPUT)
    second = local.start_execution(
        arn, "twice", dict(reversed(list(INPUT.items())))
    )  # same input, other order
    assert first == second
    with pytest.raises(ClientError, match="ExecutionAlreadyExists"):
        local.start_execution(arn, "twice", {**INPUT, "key": "raw/other.csv"})
    backend.release.set()
    assert local.wait(first, timeout=20)["status"] == "SUCCEEDED"
    with pytest.raises(local.client.exceptions.ExecutionAlreadyExists):
        local.start_execution(arn, "twice", INPUT)
    executions = local.client.list_executions(stateMachineArn=arn)["executions"]
    assert [e["name"] for e in executions].count("twice") == 1
    assert sum(1 for call in backend.calls if call[0] == "twice" and call[1] == "InspectSource") == 1


def test_wait_gives_up_with_the_execution_arn(engine: Any) -> None:
    local, backend, arn = engine
    backend.release.clear()
    backend.plans["slow"] = {"InspectSource": ["block"]}
    execution = local.start_execution(arn, "slow", INPUT)
    with pytest.raises(TimeoutError, match=r"slow.*RUNNING"):
        local.wait(execution, timeout=0.1)
    backend.release.set()
    assert local.wait(execution, timeout=20)["status"] == "SUCCEEDED"


def test_concurrent_executions(engine: Any) -> None:
    local, _, arn = engine
    executions = [
        local.start_execution(arn, f"parallel-{i}", {**INPUT, "key": f"raw/{i}.csv"}) for i in range(5)
    ]
    assert {local.wait(execution, timeout=30)["status"] for execution in executions} == {"SUCCEEDED"}


def test_definitions_are_checked_before_moto_sees_them(engine: Any) -> None:
    local, _, _ = engine
    with pytest.raises(PlaceholderError, match="TransformJobName"):
        local.create_state_machine("raw", DEFAULT_DEFINITION.read_text())
    with pytest.raises(InvalidDefinition):
        local.create_state_machine("broken", "{not json")
    with pytest.raises(InvalidDefinition, match="ASLParserException"):
        local.create_state_machine("bogus", '{"StartAt": "A", "States": {"A": {"Type": "Bogus"}}}')
    same = substitute(DEFAULT_DEFINITION.read_text(), VALUES)
    assert local.create_state_machine("pipeline", same) == engine[2]
    with pytest.raises(local.client.exceptions.StateMachineAlreadyExists):
        local.create_state_machine("pipeline", json.dumps({**json.loads(same), "Comment": "changed"}))
    with pytest.raises(ValueError, match="invalid execution name"):
        local.start_execution("arn:aws:states:us-east-1:123456789012:stateMachine:pipeline", "a b", {})


# -- regression: a .sync retry after a run that lasted real seconds ---------------------------------------
SLOW_RETRY = {"TransformTickets": [("slow", 1.5, "FAILED"), ("slow", 1.5, "SUCCEEDED")]}


def _check_slow_retry(local: LocalStepFunctions, backend: Backend, execution: str, result: dict) -> None:
    types = [event["type"] for event in local.history(execution)]
    assert "TaskTimedOut" not in types, types[-4:]
    assert result["status"] == "SUCCEEDED", (result.get("error"), result.get("cause"))
    transform = named(local.summary(execution), "TransformTickets")
    assert (transform.name, transform.attempts) == ("TransformTickets", 2)
    assert [error for error, _ in transform.failures] == ["States.TaskFailed"]
    assert [wait.base for wait in _CLOCK.retry_waits(execution, "TransformTickets")] == [60]
    # the second attempt waited for its own run (polled RUNNING, then SUCCEEDED), which nobody stopped
    run_id = json.loads(result["output"])["transform"]["job_run_id"]
    polls = [detail[1] for _, _, op, detail in list(backend.calls) if op == "poll" and detail[0] == run_id]
    assert polls[0] == "RUNNING" and polls[-1] == "SUCCEEDED"
    assert run_id not in backend.stopped
    assert local.open_job_runs(execution) == []


@pytest.mark.parametrize("first", [SLOW_RETRY["TransformTickets"][0], "FAILED"], ids=["slow", "fast"])
def test_a_glue_retry_after_a_failed_run_waits_for_its_own_run(
    engine: Any, monkeypatch: pytest.MonkeyPatch, first: Any
) -> None:
    # Every attempt of a state shared the task token made when the state was entered, so the second
    # attempt's .sync wait listened on the callback endpoint the first attempt had interrupted: it ended
    # at once as a callback timeout (TaskTimedOut, States.Timeout) unless its run ended by the first poll.
    local, backend, _ = engine
    monkeypatch.setattr(_CLOCK, "poll_interval", 0.05)
    _, execution, result = execute(engine, {"TransformTickets": [first, SLOW_RETRY["TransformTickets"][1]]})
    _check_slow_retry(local, backend, execution, result)


def test_concurrent_glue_retries_after_slow_failed_runs(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    local, backend, arn = engine
    monkeypatch.setattr(_CLOCK, "poll_interval", 0.05)
    executions = []
    for i in range(4):
        name = f"slow-retry-{i}"
        backend.plans[name] = SLOW_RETRY
        executions.append(local.start_execution(arn, name, {**INPUT, "key": f"raw/slow-{i}.csv"}))
    results = [local.wait(execution, timeout=30) for execution in executions]
    for execution, result in zip(executions, results, strict=True):
        _check_slow_retry(local, backend, execution, result)
