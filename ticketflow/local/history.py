"""Reading an execution history (GetExecutionHistory events, AWS or local) as one row per state visit."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_ATTEMPT_EVENTS = {"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"}
_FAILED_EVENTS = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "TaskStartFailed": "taskStartFailedEventDetails",
    "TaskSubmitFailed": "taskSubmitFailedEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "LambdaFunctionStartFailed": "lambdaFunctionStartFailedEventDetails",
    "LambdaFunctionScheduleFailed": "lambdaFunctionScheduleFailedEventDetails",
    "ActivityFailed": "activityFailedEventDetails",
    "ActivityTimedOut": "activityTimedOutEventDetails",
}
_SUCCEEDED_EVENTS = {"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"}
_EXECUTION_END = {
    "ExecutionSucceeded": ("SUCCEEDED", None),
    "ExecutionFailed": ("FAILED", "executionFailedEventDetails"),
    "ExecutionTimedOut": ("TIMED_OUT", "executionTimedOutEventDetails"),
    "ExecutionAborted": ("ABORTED", "executionAbortedEventDetails"),
}


@dataclass
class StateRun:
    """One visit of one state.

    status: SUCCEEDED, CAUGHT (left through a Catch), FAILED, TIMED_OUT or ABORTED (the execution ended
    there), RUNNING. attempts: TaskScheduled events of this visit (1 + retries; 0 for non-Task states).
    failures: (error, cause) of every failed attempt, in order; error/cause: for a state that did not
    succeed, its last failure, or the execution's error for the state it failed in (a Fail state).
    """

    name: str
    state_type: str
    status: str
    entered: datetime | None
    exited: datetime | None = None
    attempts: int = 0
    error: str | None = None
    cause: str | None = None
    input: Any = None
    output: Any = None
    failures: list[tuple[str | None, str | None]] = field(default_factory=list)
    last_attempt_failed: bool = False

    @property
    def duration(self) -> float | None:
        """Seconds from entering to leaving (or to the end of the execution)."""
        if self.entered is None or self.exited is None:
            return None
        return (self.exited - self.entered).total_seconds()


def event_time(value: Any) -> datetime | None:
    """A history timestamp: a datetime from boto3, or its ISO text once the events were stored as JSON."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, datetime) else None


def _parse(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def events_in_states(events: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each event of a history in id order, with the name of the state entered last before it (or the state
    it enters, for a StateEntered event; "" before the first state)."""
    state = ""
    for event in sorted(events, key=lambda e: e.get("id", 0)):
        if str(event.get("type", "")).endswith("StateEntered"):
            state = str((event.get("stateEnteredEventDetails") or {}).get("name", ""))
        yield state, event


def summarize_history(events: list[dict[str, Any]]) -> list[StateRun]:
    """Per state entered, in order: its status, attempts, error, input/output and timing."""
    runs: list[StateRun] = []
    open_runs: list[StateRun] = []
    by_event: dict[int, StateRun] = {}
    for event in sorted(events, key=lambda item: item["id"]):
        kind: str = event["type"]
        run: StateRun | None
        if kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails", {})
            run = StateRun(
                name=details.get("name", "?"),
                state_type=kind[: -len("StateEntered")],
                status="RUNNING",
                entered=event_time(event.get("timestamp")),
                input=_parse(details.get("input")),
            )
            runs.append(run)
            open_runs.append(run)
        elif kind.endswith("StateExited"):
            details = event.get("stateExitedEventDetails", {})
            run = next((item for item in reversed(open_runs) if item.name == details.get("name")), None)
            if run is None:
                continue
            open_runs.remove(run)
            run.exited = event_time(event.get("timestamp"))
            run.output = _parse(details.get("output"))
            run.status = "CAUGHT" if run.last_attempt_failed else "SUCCEEDED"
            if run.status == "SUCCEEDED":  # retried and then succeeded: the failures stay in `failures`
                run.error = run.cause = None
        elif kind in _EXECUTION_END:
            status, details_key = _EXECUTION_END[kind]
            details = event.get(details_key, {}) if details_key else {}
            for item in open_runs:
                item.status = status
                item.exited = event_time(event.get("timestamp"))
                if details.get("error") and item is open_runs[-1] and item.error is None:
                    item.error, item.cause = details.get("error"), details.get("cause")
            open_runs.clear()
            continue
        else:
            run = by_event.get(event.get("previousEventId", -1)) or (open_runs[-1] if open_runs else None)
            if run is None:
                continue
            if kind in _ATTEMPT_EVENTS:
                run.attempts += 1
                run.last_attempt_failed = False
            elif kind in _FAILED_EVENTS:
                details = event.get(_FAILED_EVENTS[kind], {})
                run.error, run.cause = details.get("error"), details.get("cause")
                run.failures.append((run.error, run.cause))
                run.last_attempt_failed = True
            elif kind in _SUCCEEDED_EVENTS:
                run.last_attempt_failed = False
        by_event[event["id"]] = run
    return runs


def resume_state(runs: list[StateRun]) -> StateRun | None:
    """The visit a redrive resumes at: the last one that did not succeed (None: nothing to resume)."""
    return next((run for run in reversed(runs) if run.status != "SUCCEEDED"), None)
