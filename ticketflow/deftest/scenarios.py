"""Scenario files: mocked Task results per attempt (AWS Step Functions Local's MockConfigFile shape) plus
what the execution must do, run on the local engine on virtual time.

A file in statemachine/test/:

    {
      "StateMachines": {"pipeline": {"TestCases": {"HappyPath": {"InspectSource": "InspectOk", ...}}}},
      "MockedResponses": {
        "InspectOk": {"0": {"Return": {"StatusCode": 200, "Payload": {...}}}},
        "ServiceErrorTwice": {"0-1": {"Throw": {"Error": "Lambda.ServiceException", "Cause": "..."}},
                              "2": {"Return": {"StatusCode": 200, "Payload": {...}}}}
      },
      "Input": {...},                       # the execution input for every test case of the file
      "Expectations": {"HappyPath": {"Status": "SUCCEEDED", "States": [...], ...}}
    }

The state machine name is the definition's file stem (pipeline.asl.json -> "pipeline"); test cases of
other state machines are skipped. Mocked responses are per attempt ("0" the first call, "1-2" the next two,
consecutive, as in Step Functions Local) and are the task result as the service returns it:
- lambda:invoke: `Return` is the Invoke result, `{"StatusCode": 200, "Payload": <what the function
  returns>}`; `Throw` `Lambda.<Code>` is that API error (e.g. Lambda.ServiceException), any other error
  name is a function error with that errorType (e.g. SchemaError);
- glue:startJobRun.sync: `Return` is the finished JobRun (`JobRunState` defaults to SUCCEEDED; FAILED,
  TIMEOUT or ERROR give States.TaskFailed); `Throw` `Glue.<Code>` is a StartJobRun error,
  `States.TaskFailed` a run that ends FAILED with the Cause as ErrorMessage;
- sns:publish: `Return` is `{"MessageId": ...}`; `Throw` `SNS.<Code>` an API error.
Extensions: `"Delay": <seconds>` (virtual) makes the call (or the Glue run) take that long, and
`{"Timeout": true}` or `Throw` `States.Timeout` makes it never finish, so the state's TimeoutSeconds
passes (virtually) and it fails with States.Timeout.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ticketflow.local import (
    DEFAULT_DEFINITION,
    FunctionError,
    LocalStepFunctions,
    ServiceError,
    StateRun,
    VirtualClock,
    current_task,
    placeholders,
    substitute,
)

DEFAULT_SCENARIOS = DEFAULT_DEFINITION.parent / "test"
EXPECTATION_KEYS = (
    "Input",
    "Status",
    "Error",
    "CauseContains",
    "FailedState",
    "States",
    "Attempts",
    "Calls",
    "Output",
    "Waits",
)
STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
ACCOUNT, REGION = "123456789012", "us-east-1"
_TOLERANCE = 1e-6


class ScenarioError(ValueError):
    """A scenario file is malformed (the message names the file and the place)."""


@dataclass(frozen=True)
class MockedAttempt:
    """What one call of a mocked state does."""

    returns: Any = None
    error: str | None = None
    cause: str = ""
    delay: float = 0.0  # virtual seconds; math.inf: never finishes

    @property
    def throws(self) -> bool:
        return self.error is not None


@dataclass
class Scenario:
    path: Path
    machine: str
    case: str
    mocks: dict[str, list[MockedAttempt]]  # state -> attempt -> response
    mock_names: dict[str, str]
    input: dict[str, Any]
    expect: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.path.stem}::{self.case}"


@dataclass
class Result:
    scenario: Scenario
    failures: list[str] = field(default_factory=list)
    execution: str | None = None  # the execution ARN on the local engine
    status: str | None = None
    error: str | None = None
    cause: str | None = None
    failed_state: str | None = None
    states: list[str] = field(default_factory=list)
    runs: list[StateRun] = field(default_factory=list)
    waits: dict[str, list[float]] = field(default_factory=dict)  # state -> retry waits (base delays)
    seconds: float = 0.0  # real time
    virtual_seconds: float = 0.0  # on the execution's virtual timeline (retry waits, Delays, timeouts)

    @property
    def passed(self) -> bool:
        return not self.failures


# -- loading ---------------------------------------------------------------------------------------------
def machine_name(definition_path: str | Path) -> str:
    """pipeline.asl.json -> pipeline."""
    return Path(definition_path).name.split(".")[0]


def load_scenarios(directory: str | Path = DEFAULT_SCENARIOS, machine: str | None = None) -> list[Scenario]:
    """Every test case of every `*.json` file in `directory` (of `machine` only, if given), sorted.
    `names.scenario_problems` refuses test cases of any other state machine than the definition's."""
    scenarios = []
    for path in sorted(Path(directory).glob("*.json")):
        scenarios += [s for s in load_file(path) if machine in (None, s.machine)]
    return scenarios


def load_file(path: str | Path) -> list[Scenario]:
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ScenarioError(f"{path}: not JSON: {error}") from error
    where = str(path)
    _require(isinstance(document, dict), where, "the file must hold a JSON object")
    unknown = set(document) - {"StateMachines", "MockedResponses", "Input", "Expectations", "Comment"}
    _require(not unknown, where, f"unknown top-level keys {sorted(unknown)}")
    responses = _mapping(document.get("MockedResponses", {}), f"{where}: MockedResponses")
    expectations = _mapping(document.get("Expectations"), f"{where}: Expectations")
    default_input = document.get("Input", {})
    scenarios = []
    for machine, body in _mapping(document.get("StateMachines"), f"{where}: StateMachines").items():
        cases = _mapping(
            _mapping(body, f"{where}: StateMachines.{machine}").get("TestCases"),
            f"{where}: StateMachines.{machine}.TestCases",
        )
        for case, states in cases.items():
            place = f"{where}: StateMachines.{machine}.TestCases.{case}"
            states = _mapping(states, place)
            _require(case in expectations, place, f"no Expectations.{case}: a scenario must assert something")
            expect = _mapping(expectations[case], f"{where}: Expectations.{case}")
            unknown = set(expect) - set(EXPECTATION_KEYS)
            _require(
                not unknown,
                f"{where}: Expectations.{case}",
                f"unknown keys {sorted(unknown)} (known: {', '.join(EXPECTATION_KEYS)})",
            )
            _require(
                expect.get("Status") in STATUSES,
                f"{where}: Expectations.{case}.Status",
                f"must be one of {', '.join(STATUSES)}",
            )
            mocks = {}
            for state, response_name in states.items():
                _require(
                    response_name in responses, f"{place}.{state}", f"no MockedResponses.{response_name}"
                )
                mocks[state] = _attempts(
                    responses[response_name], f"{where}: MockedResponses.{response_name}"
                )
            scenarios.append(
                Scenario(path, machine, case, mocks, dict(states), expect.get("Input", default_input), expect)
            )
    unused = set(expectations) - {s.case for s in scenarios}
    _require(not unused, f"{where}: Expectations", f"{sorted(unused)} match no test case")
    return scenarios


def _attempts(ranges: Any, where: str) -> list[MockedAttempt]:
    """Step Functions Local's numbering: "0", "1-2", ... consecutive from 0."""
    entries = []
    for key, body in _mapping(ranges, where).items():
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", key)
        _require(match is not None, f"{where}.{key}", "attempt keys are 'N' or 'N-M'")
        assert match is not None
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        _require(last >= first, f"{where}.{key}", "a range must not end before it starts")
        entries.append((first, last, _attempt(body, f"{where}.{key}")))
    attempts: list[MockedAttempt] = []
    for first, last, attempt in sorted(entries, key=lambda entry: entry[0]):
        _require(
            first == len(attempts),
            where,
            f"attempts must be numbered consecutively from 0; expected {len(attempts)}, got {first}",
        )
        attempts += [attempt] * (last - first + 1)
    _require(bool(attempts), where, "no attempts")
    return attempts


def _attempt(body: Any, where: str) -> MockedAttempt:
    body = _mapping(body, where)
    unknown = set(body) - {"Return", "Throw", "Delay", "Timeout"}
    _require(not unknown, where, f"unknown keys {sorted(unknown)} (Return, Throw, Delay, Timeout)")
    _require(isinstance(body.get("Delay", 0), int | float), where, "Delay is a number of (virtual) seconds")
    delay = math.inf if body.get("Timeout") is True else float(body.get("Delay", 0))
    _require(delay >= 0, where, "Delay must not be negative")
    _require(("Return" in body) + ("Throw" in body) <= 1, where, "Return or Throw, not both")
    if "Throw" in body:
        throw = _mapping(body["Throw"], f"{where}.Throw")
        _require(isinstance(throw.get("Error"), str), f"{where}.Throw", "needs an Error name")
        if throw["Error"] == "States.Timeout":
            delay = math.inf
        return MockedAttempt(error=throw["Error"], cause=str(throw.get("Cause", "")), delay=delay)
    _require("Return" in body or delay == math.inf, where, "needs Return, Throw or Timeout")
    return MockedAttempt(returns=body.get("Return"), delay=delay)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    _require(isinstance(value, dict), where, "must be a JSON object")
    return value


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ScenarioError(f"{where}: {message}")


# -- the mock backend ------------------------------------------------------------------------------------
class MockBackend:
    """A TaskBackend answering from the scenarios' mocked responses, per execution name and attempt."""

    def __init__(self, clock: VirtualClock, definition: dict[str, Any]) -> None:
        self.clock = clock
        self.resources = {name: state.get("Resource", "") for name, state in _task_states(definition)}
        self.calls: dict[str, list[tuple[str, str]]] = {}  # execution name -> (state, operation)
        self.problems: dict[str, list[str]] = {}
        self.stopped: list[str] = []  # Glue runs the engine stopped (a timed-out task, defect 8)
        self._scenarios: dict[str, Scenario] = {}
        self._counts: dict[tuple[str, str], int] = {}
        self._runs: dict[str, tuple[MockedAttempt, bool]] = {}  # run id -> (response, polled once)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def register(self, execution_name: str, scenario: Scenario) -> None:
        with self._lock:
            self._scenarios[execution_name] = scenario
            self.calls[execution_name] = []
            self.problems[execution_name] = []

    def _next(self, operation: str) -> tuple[str, MockedAttempt]:
        task = current_task()
        if task is None:
            raise RuntimeError("a mocked call outside a task")
        with self._lock:
            scenario = self._scenarios.get(task.execution_name)
            self.calls.setdefault(task.execution_name, []).append((task.state, operation))
            count = self._counts.get((task.execution_name, task.state), 0)
            self._counts[(task.execution_name, task.state)] = count + 1
            mocks = scenario.mocks.get(task.state) if scenario else None
            if mocks is None or count >= len(mocks):
                problem = (
                    f"{task.state}: no mocked response for call {count}"
                    if mocks is not None
                    else f"{task.state}: the test case mocks no response for this state"
                )
                self.problems.setdefault(task.execution_name, []).append(problem)
                raise _MockMissing(problem)
            return task.state, mocks[count]

    def invoke_lambda(self, function_name: str, payload: Any) -> Any:
        try:
            _, attempt = self._next("invoke")
        except _MockMissing as missing:
            raise FunctionError("MockMissing", str(missing)) from None
        self._take_time(attempt)
        if attempt.throws:
            assert attempt.error is not None
            if attempt.error.startswith("Lambda."):
                raise ServiceError(attempt.error.removeprefix("Lambda."), attempt.cause)
            raise FunctionError(attempt.error, attempt.cause)
        return attempt.returns["Payload"]  # checked by ScenarioRunner.check_mocks

    def start_job_run(self, job_name: str, arguments: dict[str, str]) -> str:
        try:
            _, attempt = self._next("start_job_run")
        except _MockMissing as missing:
            raise ServiceError("MockMissing", str(missing)) from None
        if attempt.throws and attempt.error not in ("States.TaskFailed", "States.Timeout"):
            assert attempt.error is not None
            raise ServiceError(attempt.error.removeprefix("Glue."), attempt.cause)
        returned = attempt.returns if isinstance(attempt.returns, dict) else {}
        run_id = str(returned.get("Id") or f"jr_mock_{next(self._ids)}")
        with self._lock:
            self._runs[run_id] = (attempt, False)
        return run_id

    def get_job_run(self, job_name: str, run_id: str) -> dict[str, Any]:
        with self._lock:
            attempt, polled = self._runs[run_id]
            self._runs[run_id] = (attempt, True)
        if not polled:
            self._take_time(attempt)  # the run takes Delay (virtual) seconds; Timeout: forever
        run = dict(attempt.returns) if isinstance(attempt.returns, dict) else {}
        if attempt.error == "States.TaskFailed":
            run.update(JobRunState="FAILED", ErrorMessage=attempt.cause)
        run.setdefault("JobRunState", "SUCCEEDED")
        return {**run, "Id": run_id, "JobName": job_name}

    def stop_job_run(self, job_name: str, run_id: str) -> None:
        with self._lock:
            self.stopped.append(run_id)

    def publish(self, topic_arn: str, message: str, subject: str | None) -> str:
        try:
            _, attempt = self._next("publish")
        except _MockMissing as missing:
            raise ServiceError("MockMissing", str(missing)) from None
        self._take_time(attempt)
        if attempt.throws:
            assert attempt.error is not None
            raise ServiceError(attempt.error.removeprefix("SNS."), attempt.cause)
        returned = attempt.returns if isinstance(attempt.returns, dict) else {}
        return str(returned.get("MessageId", "mock-message-id"))

    def _take_time(self, attempt: MockedAttempt) -> None:
        if attempt.delay:
            self.clock.sleep(attempt.delay)


class _MockMissing(Exception):
    pass


# -- running ---------------------------------------------------------------------------------------------
def fake_substitutions(definition_text: str, region: str = REGION, account: str = ACCOUNT) -> dict[str, str]:
    """A plausible value for every placeholder: `*FunctionArn` a Lambda ARN, `*TopicArn` an SNS topic,
    anything else (e.g. a Glue job name) a plain name."""
    values = {}
    for name in sorted(placeholders(definition_text)):
        base = re.sub(r"(FunctionArn|TopicArn|Arn|Name)$", "", name) or name
        snake = re.sub(r"(?<!^)(?=[A-Z])", "-", base).lower()
        if name.endswith("FunctionArn"):
            values[name] = f"arn:aws:lambda:{region}:{account}:function:{snake}"
        elif name.endswith("TopicArn"):
            values[name] = f"arn:aws:sns:{region}:{account}:{snake}"
        else:
            values[name] = snake
    return values


def _task_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        if state.get("Type") == "Task":
            yield name, state
        for sub in _sub_machines(state):
            yield from _task_states(sub)


class ScenarioRunner:
    """One local engine and one state machine (the definition), running scenarios against it.

    Use as a context manager. Virtual time: retries, Delays and timeouts take no real time.
    """

    def __init__(self, definition_path: str | Path = DEFAULT_DEFINITION) -> None:
        self.definition_path = Path(definition_path)
        self.text = self.definition_path.read_text(encoding="utf-8")
        self.definition = json.loads(self.text)
        self.machine = machine_name(self.definition_path)
        self.clock = VirtualClock(scale=0, poll_interval=0)
        self.backend = MockBackend(self.clock, self.definition)
        self._engine: LocalStepFunctions | None = None
        self._arn = ""
        self._names = itertools.count(1)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> ScenarioRunner:
        self._stack.enter_context(_quiet_moto())
        self._engine = self._stack.enter_context(
            LocalStepFunctions(self.backend, self.clock, REGION, ACCOUNT)
        )
        self._arn = self._engine.create_state_machine(
            self.machine, substitute(self.text, fake_substitutions(self.text))
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._engine = None

    def start(self, scenario: Scenario) -> tuple[str, str]:
        """Start the scenario's execution; returns (execution name, ARN)."""
        assert self._engine is not None, "use ScenarioRunner as a context manager"
        name = f"{re.sub(r'[^0-9A-Za-z_-]', '-', scenario.case)[:60]}-{next(self._names)}"
        self.backend.register(name, scenario)
        return name, self._engine.start_execution(self._arn, name, scenario.input)

    def finish(
        self, scenario: Scenario, name: str, execution: str, started: float, timeout: float = 60
    ) -> Result:
        assert self._engine is not None
        result = Result(scenario, execution=execution)
        try:
            description = self._engine.wait(execution, timeout=timeout)
        except TimeoutError as error:
            result.failures.append(str(error))
            return result
        result.seconds = time.monotonic() - started
        result.virtual_seconds = self.clock.now(execution)
        result.runs = self._engine.summary(execution)
        evaluate(
            result,
            description,
            self.definition,
            self.backend.calls.get(name, []),
            self.clock.retry_waits(execution),
        )
        result.failures += self.backend.problems.get(name, [])
        return result

    def run(self, scenario: Scenario) -> Result:
        problems = self.check_mocks(scenario)
        if problems:
            return Result(scenario, failures=problems)
        started = time.monotonic()
        name, execution = self.start(scenario)
        return self.finish(scenario, name, execution, started)

    def run_all(self, scenarios: list[Scenario]) -> list[Result]:
        """All at once (independent executions on one engine); results in the given order."""
        pending: list[tuple[Scenario, str, str, float] | Result] = []
        for scenario in scenarios:
            problems = self.check_mocks(scenario)
            if problems:
                pending.append(Result(scenario, failures=problems))
            else:
                started = time.monotonic()
                pending.append((scenario, *self.start(scenario), started))
        return [item if isinstance(item, Result) else self.finish(*item) for item in pending]

    def check_mocks(self, scenario: Scenario) -> list[str]:
        """What in the scenario cannot apply to this definition (empty: it can run)."""
        if scenario.machine != self.machine:
            return [
                f"the scenario is for state machine {scenario.machine!r}, the definition is {self.machine!r}"
            ]
        problems = []
        for state, attempts in scenario.mocks.items():
            kind = _kind(self.backend.resources.get(state))
            mocked = f"{state} (MockedResponses.{scenario.mock_names[state]})"
            if state not in self.backend.resources:
                problems.append(f"{mocked}: the definition has no Task state {state!r}")
            elif kind is None:
                problems.append(f"{mocked}: the local engine cannot mock {self.backend.resources[state]!r}")
            for number, attempt in enumerate(attempts):
                if (
                    kind == "lambda"
                    and not attempt.throws
                    and attempt.delay != math.inf
                    and not (isinstance(attempt.returns, dict) and "Payload" in attempt.returns)
                ):
                    problems.append(
                        f"{mocked} call {number}: a lambda:invoke Return is the Invoke result, "
                        '{"StatusCode": 200, "Payload": ...}'
                    )
                allowed = {
                    "glue": ("Glue.", "States.TaskFailed", "States.Timeout"),
                    "sns": ("SNS.", "States.Timeout"),
                }
                if kind in allowed and attempt.throws and not str(attempt.error).startswith(allowed[kind]):
                    problems.append(
                        f"{mocked} call {number}: a {kind} task cannot throw {attempt.error!r} "
                        f"(only {', '.join(allowed[kind])}...)"
                    )
        return problems


def _kind(resource: str | None) -> str | None:
    if not resource:
        return None
    if resource.startswith("arn:aws:lambda:") or resource.startswith("arn:aws:states:::lambda:invoke"):
        return "lambda"
    for kind, prefix in (
        ("glue", "arn:aws:states:::glue:startJobRun"),
        ("sns", "arn:aws:states:::sns:publish"),
    ):
        if resource.startswith(prefix):
            return kind
    return None


@contextlib.contextmanager
def _quiet_moto() -> Iterator[None]:
    """moto's interpreter logs every failed state at ERROR with its whole parse tree: expected here."""
    logger = logging.getLogger("moto.stepfunctions.parser")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_scenarios(definition_path: str | Path, scenarios: list[Scenario]) -> list[Result]:
    """Each scenario in turn on one engine (one at a time, so each row's real time means something)."""
    with ScenarioRunner(definition_path) as runner:
        return [runner.run(scenario) for scenario in scenarios]


# -- expectations ----------------------------------------------------------------------------------------
def evaluate(
    result: Result,
    description: dict[str, Any],
    definition: dict[str, Any],
    calls: list[tuple[str, str]],
    waits: list[Any],
) -> None:
    """Fill `result` from the execution and compare it with the scenario's Expectations."""
    expect = result.scenario.expect
    runs = result.runs
    result.status = description["status"]
    result.error = description.get("error")
    result.cause = description.get("cause")
    result.states = [run.name for run in runs]
    failed = [run for run in runs if run.status in ("FAILED", "TIMED_OUT", "ABORTED")]
    result.failed_state = failed[-1].name if failed else None
    for wait in waits:
        result.waits.setdefault(wait.state, []).append(wait.base)
    problems = result.failures

    def compare(key: str, actual: Any) -> None:
        if key in expect and expect[key] != actual:
            problems.append(f"{key}: expected {expect[key]!r}, got {actual!r}")

    compare("Status", result.status)
    compare("Error", result.error)
    unexpected = expect.get("Status") != result.status or expect.get("Error", result.error) != result.error
    if unexpected and result.error:  # an unexpected end: say what ended it, whatever the expectation missed
        where = f" at {result.failed_state}" if result.failed_state else ""
        problems.append(f"the execution ended {result.status}{where} with {result.error}: "
                        f"{result.cause or '(no cause)'}")
    compare("FailedState", result.failed_state)
    compare("States", result.states)
    if "CauseContains" in expect and expect["CauseContains"] not in (description.get("cause") or ""):
        problems.append(
            f"CauseContains: {expect['CauseContains']!r} not in cause {description.get('cause')!r}"
        )
    attempts: dict[str, int] = {}
    for run in runs:
        attempts[run.name] = attempts.get(run.name, 0) + run.attempts
    for state, count in (expect.get("Attempts") or {}).items():
        if attempts.get(state, 0) != count:
            problems.append(f"Attempts.{state}: expected {count}, got {attempts.get(state, 0)}")
    for state, count in (expect.get("Calls") or {}).items():
        made = sum(
            1
            for called, operation in calls
            if called == state and operation in ("invoke", "start_job_run", "publish")
        )
        if made != count:
            problems.append(f"Calls.{state}: expected {count} call(s) to the service, got {made}")
    if "Output" in expect:
        output = json.loads(description.get("output") or "null")
        mismatch = _subset_mismatch(expect["Output"], output, "$")
        if mismatch:
            problems.append(f"Output: {mismatch}")
    for state, expected_waits in (expect.get("Waits") or {}).items():
        actual = result.waits.get(state, [])
        if len(actual) != len(expected_waits) or any(
            abs(a - e) > _TOLERANCE for a, e in zip(actual, expected_waits, strict=False)
        ):
            problems.append(f"Waits.{state}: expected base delays {expected_waits}, got {_fmt(actual)}")
    problems += check_waits_against_definition(definition, runs, waits)


def check_waits_against_definition(
    definition: dict[str, Any], runs: list[StateRun], waits: list[Any]
) -> list[str]:
    """Each retry wait the interpreter made must be what the state's Retry asks for: the matching
    retrier's IntervalSeconds * BackoffRate**n capped at MaxDelaySeconds, and with JitterStrategy FULL a
    wait in [0, that]. Returns the mismatches."""
    states = dict(_all_states(definition))
    problems = []
    by_state: dict[str, list[Any]] = {}
    for wait in waits:
        by_state.setdefault(wait.state, []).append(wait)
    expected: dict[str, list[tuple[float, bool]]] = {}
    for run in runs:
        retriers = states.get(run.name, {}).get("Retry") or []
        expected.setdefault(run.name, []).extend(
            expected_retry_delays(retriers, [e for e, _ in run.failures])
        )
    for state in sorted(set(expected) | set(by_state)):
        plan, actual = expected.get(state, []), by_state.get(state, [])
        if len(plan) != len(actual):
            problems.append(
                f"{state}: {len(actual)} retry wait(s) {_fmt([w.base for w in actual])}, but its Retry "
                f"asks for {len(plan)} {_fmt([base for base, _ in plan])} after those errors"
            )
            continue
        for index, ((base, jitter), wait) in enumerate(zip(plan, actual, strict=True), start=1):
            if abs(wait.base - base) > _TOLERANCE:
                problems.append(
                    f"{state}: retry {index} base delay {wait.base:g} s, the definition asks {base:g} s"
                )
            elif jitter and not -_TOLERANCE <= wait.seconds <= base + _TOLERANCE:
                problems.append(
                    f"{state}: retry {index} waited {wait.seconds:g} s, outside FULL jitter [0, {base:g}]"
                )
            elif not jitter and abs(wait.seconds - base) > _TOLERANCE:
                problems.append(
                    f"{state}: retry {index} waited {wait.seconds:g} s, the definition asks {base:g} s"
                )
    return problems


def retry_decisions(retriers: list[dict[str, Any]], errors: list[str | None]
                    ) -> tuple[list[tuple[int, int]], int | None]:
    """What the Retry field decides after this sequence of failed attempts: (retrier index, that retrier's
    retry number from 0) for each retry, in order; and the index of the retrier whose MaxAttempts was used up
    when the retries stopped (None: an error no retrier matches stopped them, or they did not stop)."""
    counts = [0] * len(retriers)
    decided: list[tuple[int, int]] = []
    for error in errors:
        index = next(
            (i for i, retrier in enumerate(retriers) if _matches(retrier.get("ErrorEquals", []), error)), None
        )
        if index is None:
            return decided, None
        if counts[index] >= retriers[index].get("MaxAttempts", 3):
            return decided, index
        decided.append((index, counts[index]))
        counts[index] += 1
    return decided, None


def expected_retry_delays(
    retriers: list[dict[str, Any]], errors: list[str | None]
) -> list[tuple[float, bool]]:
    """(base delay, FULL jitter?) of each retry the Retry field makes for this sequence of errors."""
    delays = []
    for index, number in retry_decisions(retriers, errors)[0]:
        retrier = retriers[index]
        base = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** number
        base = min(base, retrier.get("MaxDelaySeconds", math.inf))
        delays.append((float(base), retrier.get("JitterStrategy", "NONE") == "FULL"))
    return delays


def _matches(error_equals: list[str], error: str | None) -> bool:
    if error is None:
        return False
    if "States.ALL" in error_equals or error in error_equals:
        return True
    # States.TaskFailed matches every error except the States.* ones (as the interpreter does)
    return "States.TaskFailed" in error_equals and not error.startswith("States.")


def _all_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        yield name, state
        for sub in _sub_machines(state):
            yield from _all_states(sub)


def _sub_machines(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Parallel branches and a Map's item processor."""
    return [*(state.get("Branches") or []), state.get("ItemProcessor") or state.get("Iterator") or {}]


def _subset_mismatch(expected: Any, actual: Any, path: str) -> str | None:
    """None when `expected` is contained in `actual` (objects: a subset of keys, recursively)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path}: expected an object, got {actual!r}"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key}: missing"
            mismatch = _subset_mismatch(value, actual[key], f"{path}.{key}")
            if mismatch:
                return mismatch
        return None
    return None if expected == actual else f"{path}: expected {expected!r}, got {actual!r}"


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{value:g}" for value in values) + "]"
