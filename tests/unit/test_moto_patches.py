"""The moto workarounds: each defect is still upstream (else the patch should go), each patch works."""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

import pytest

from ticketflow.local import LocalStepFunctions, ServiceError, VirtualClock, current_task, moto_patches

GLUE_SYNC = {
    "StartAt": "Job",
    "States": {
        "Job": {
            "Type": "Task",
            "Resource": "arn:aws:states:::glue:startJobRun.sync",
            "Parameters": {"JobName": "job"},
            "TimeoutSeconds": 60,
            "End": True,
        }
    },
}


class Backend:
    """Glue runs that succeed at once; a Lambda that fails `fail` times with Lambda.ServiceException."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.stopped: list[str] = []

    def invoke_lambda(self, function_name: str, payload: Any) -> Any:
        task = current_task()
        assert task is not None
        if task.attempt < self.fail:
            raise ServiceError("ServiceException", "try again", 500)
        return {"attempt": task.attempt}

    def start_job_run(self, job_name: str, arguments: dict[str, str]) -> str:
        return "jr_1"

    def get_job_run(self, job_name: str, run_id: str) -> dict[str, Any]:
        return {"Id": run_id, "JobRunState": "SUCCEEDED"}

    def stop_job_run(self, job_name: str, run_id: str) -> None:
        self.stopped.append(run_id)

    def publish(self, topic_arn: str, message: str, subject: str | None) -> str:
        return "m-1"


def lambda_machine(retrier: dict[str, Any], timeout: int = 60) -> str:
    return json.dumps(
        {
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "TimeoutSeconds": timeout,
                    "Parameters": {
                        "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:f",
                        "Payload": {},
                    },
                    "Retry": [{"ErrorEquals": ["Lambda.ServiceException"], **retrier}],
                    "End": True,
                }
            },
        }
    )


def run(engine: LocalStepFunctions, definition: str, name: str = "run") -> tuple[str, dict[str, Any]]:
    arn = engine.create_state_machine(f"m{abs(hash(definition)) % 10**8}", definition)
    execution = engine.start_execution(arn, name, {})
    return execution, engine.wait(execution, timeout=20)


# -- the defects are still upstream -------------------------------------------------------------------------
def test_upstream_sources_match_what_was_ported() -> None:
    moto_patches.apply()
    assert moto_patches.check_upstream() == []


def test_glue_sync_defect_is_still_upstream_and_patched() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_glue
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )

    moto_patches.apply()
    patterns = state_task_service_glue._SUPPORTED_INTEGRATION_PATTERNS
    assert ResourceCondition.WaitForTaskToken in patterns
    with LocalStepFunctions(Backend(), VirtualClock(poll_interval=0)) as engine:
        # GIVEN patch 1 undone (it is one set member): the Glue .sync task fails as the notes say
        patterns.discard(ResourceCondition.WaitForTaskToken)
        try:
            _, unpatched = run(engine, json.dumps(GLUE_SYNC), "unpatched")
        finally:
            patterns.add(ResourceCondition.WaitForTaskToken)
        # WHEN patched THEN the same definition succeeds
        _, patched = run(engine, json.dumps(GLUE_SYNC), "patched")
    assert unpatched["status"] == "FAILED" and unpatched["error"] == "States.Runtime"
    assert "interrupt_all" in unpatched["cause"], "moto fixed the Glue .sync defect: drop patch 1"
    assert patched["status"] == "SUCCEEDED"


def test_upstream_sleeps_are_where_the_patches_hook_in() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry.retrier_decl import RetrierDecl
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback,
    )

    moto_patches.apply()
    assert "time.sleep(interval_seconds)" in inspect.getsource(RetrierDecl._ticketflow_original_eval_body)
    assert "terminated_event.wait(timeout_seconds)" in inspect.getsource(
        ExecutionState._ticketflow_original_evaluate_with_timeout
    )
    assert "time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)" in inspect.getsource(
        callback.StateTaskServiceCallback._eval_sync
    )
    assert isinstance(callback.time, moto_patches._PollTime)


def test_apply_is_idempotent_and_real_time_is_the_default() -> None:
    moto_patches.apply()
    from moto.stepfunctions.parser.asl.component.common.retry.retrier_decl import RetrierDecl

    body = RetrierDecl._eval_body
    moto_patches.apply()
    assert RetrierDecl._eval_body is body
    assert moto_patches.active_clock().scale == 1.0


# -- virtual time ------------------------------------------------------------------------------------------
def test_retry_waits_are_recorded_not_slept() -> None:
    clock = VirtualClock(scale=0)
    started = time.monotonic()
    with LocalStepFunctions(Backend(fail=3), clock) as engine:
        execution, result = run(
            engine, lambda_machine({"IntervalSeconds": 100, "BackoffRate": 2, "MaxAttempts": 3})
        )
    assert result["status"] == "SUCCEEDED"
    assert [wait.seconds for wait in clock.retry_waits(execution, "Call")] == [100, 200, 400]
    assert time.monotonic() - started < 3


def test_max_delay_and_full_jitter_are_honoured() -> None:
    clock = VirtualClock(scale=0)
    with LocalStepFunctions(Backend(fail=4), clock) as engine:
        execution, result = run(
            engine,
            lambda_machine(
                {
                    "IntervalSeconds": 10,
                    "BackoffRate": 3,
                    "MaxAttempts": 4,
                    "MaxDelaySeconds": 50,
                    "JitterStrategy": "FULL",
                }
            ),
        )
    waits = clock.retry_waits(execution)
    assert result["status"] == "SUCCEEDED"
    assert [wait.base for wait in waits] == [10, 30, 50, 50]
    assert all(0 <= wait.seconds <= wait.base for wait in waits)


def test_task_timeout_is_virtual() -> None:
    class Hanging(Backend):
        def invoke_lambda(self, function_name: str, payload: Any) -> Any:
            clock.hang()

    clock = VirtualClock(scale=0)
    started = time.monotonic()
    with LocalStepFunctions(Hanging(), clock) as engine:
        execution, result = run(engine, lambda_machine({}, timeout=3600))
        assert engine.summary(execution)[0].error == "States.Timeout"
    assert result["status"] == "FAILED" and result["error"] == "States.Timeout"
    assert clock.now(execution) >= 3600
    assert time.monotonic() - started < 3


def test_scale_really_sleeps() -> None:
    clock = VirtualClock(scale=0.25)
    started = time.monotonic()
    with LocalStepFunctions(Backend(fail=1), clock) as engine:
        _, result = run(engine, lambda_machine({"IntervalSeconds": 1, "MaxAttempts": 1}))
    assert result["status"] == "SUCCEEDED"
    assert time.monotonic() - started >= 0.25


def test_wait_states_are_virtual() -> None:
    clock = VirtualClock(scale=0)
    definition = {"StartAt": "Pause", "States": {"Pause": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    started = time.monotonic()
    with LocalStepFunctions(Backend(), clock) as engine:
        execution, result = run(engine, json.dumps(definition))
    assert result["status"] == "SUCCEEDED"
    assert [(wait.kind, wait.state, wait.seconds) for wait in clock.waits] == [("wait", "Pause", 3600)]
    assert clock.now(execution) >= 3600 and time.monotonic() - started < 3


def test_sleep_outside_a_task_cannot_hang() -> None:
    with pytest.raises(RuntimeError, match="outside a task"):
        VirtualClock().hang()
