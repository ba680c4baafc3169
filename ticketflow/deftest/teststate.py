"""Opt-in: the same scenarios through AWS's TestState API (`ticketflow test-definition --target aws`).

Tested against botocore's service model and recorded answers only (no AWS account here: tests/integration/
test_definition_no_false_passes.py). It walks each test case state by
state: every state is sent to TestState with the whole definition and `stateName`, Task states with the
scenario's mocked result or error for that attempt (`mock`) and the attempt number
(`stateConfiguration.retrierRetryCount`); RETRIABLE means another attempt, CAUGHT_ERROR and SUCCEEDED
follow `nextState`, FAILED ends the walk. Mocked calls never reach Lambda or Glue, so the placeholders
get plausible ARNs in the caller's account; TICKETFLOW_TESTSTATE_ROLE_ARN may name a role for TestState.
`Calls` expectations are not checked here (nothing is called), nor is the jitter of waits.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ticketflow.deftest.scenarios import MockedAttempt, Result, Scenario, evaluate, fake_substitutions
from ticketflow.local import StateRun, Wait, substitute

_MAX_STEPS = 200


class TestStateUnavailable(Exception):
    """TestState cannot be called: no credentials, or they are refused (the message says which and what to do)."""


def _session() -> Any:
    import boto3

    return boto3.Session()


def run_teststate(definition_text: str, scenarios: list[Scenario], client: Any = None,
                  session: Any = None) -> list[Result]:
    """Each scenario walked state by state through TestState. Raises TestStateUnavailable when there are no
    credentials or AWS refuses them or the call (a run that cannot reach AWS must fail, never pass)."""
    from botocore.exceptions import BotoCoreError, ClientError

    session = session or _session()
    if session.get_credentials() is None:
        raise TestStateUnavailable(
            "no AWS credentials found (environment, shared config or instance role): set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, with a role allowed states:TestState and sts:GetCallerIdentity")
    try:
        client = client or session.client("stepfunctions")
        account = session.client("sts").get_caller_identity()["Account"]
    except ClientError as err:
        raise TestStateUnavailable(f"AWS refused the credentials: {err}") from err
    except BotoCoreError as err:  # no network, an unknown region, an endpoint that cannot be reached
        raise TestStateUnavailable(f"could not reach AWS: {err}") from err
    try:
        return _run(client, session, account, definition_text, scenarios)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        raise TestStateUnavailable(f"TestState failed with {code}: {err.response.get('Error', {}).get('Message', err)}"
                                   + (" (the caller needs states:TestState)" if "AccessDenied" in code else "")
                                   ) from err
    except BotoCoreError as err:
        raise TestStateUnavailable(f"TestState could not be called: {err}") from err


def _run(client: Any, session: Any, account: str, definition_text: str, scenarios: list[Scenario]
         ) -> list[Result]:
    definition = substitute(
        definition_text, fake_substitutions(definition_text, session.region_name or "us-east-1", account)
    )
    return [_walk(client, definition, scenario) for scenario in scenarios]


def _mock(attempt: MockedAttempt) -> dict[str, Any]:
    if attempt.delay == float("inf"):
        return {"errorOutput": {"error": "States.Timeout", "cause": "mocked: the call never finished"}}
    if attempt.throws:
        return {"errorOutput": {"error": attempt.error, "cause": attempt.cause}}
    return {"result": json.dumps(attempt.returns)}


def _walk(client: Any, definition: str, scenario: Scenario) -> Result:
    states = json.loads(definition)["States"]
    state, data = json.loads(definition)["StartAt"], scenario.input
    runs: list[StateRun] = []
    waits: list[Wait] = []
    calls: list[tuple[str, str]] = []
    counts: dict[str, int] = {}
    description: dict[str, Any] = {"status": "RUNNING"}
    run: StateRun | None = None
    retry_count = 0
    role = os.environ.get("TICKETFLOW_TESTSTATE_ROLE_ARN")
    for _ in range(_MAX_STEPS):
        if run is None or run.name != state:
            run = StateRun(
                name=state, state_type=states[state]["Type"], status="RUNNING", entered=None, input=data
            )
            runs.append(run)
            retry_count = 0
        kwargs: dict[str, Any] = {
            "definition": definition,
            "stateName": state,
            "input": json.dumps(data),
            "inspectionLevel": "DEBUG",
            "stateConfiguration": {"retrierRetryCount": retry_count},
        }
        if role:
            kwargs["roleArn"] = role
        if states[state]["Type"] == "Task":
            attempts = scenario.mocks.get(state, [])
            index = counts.get(state, 0)
            counts[state] = index + 1
            if index >= len(attempts):
                return Result(scenario, failures=[f"{state}: no mocked response for call {index}"])
            kwargs["mock"] = _mock(attempts[index])
            calls.append((state, "invoke"))
            run.attempts += 1
        answer = client.test_state(**kwargs)
        status = answer["status"]
        if status == "RETRIABLE":
            run.failures.append((answer.get("error"), answer.get("cause")))
            details = answer.get("inspectionData", {}).get("errorDetails", {})
            base = float(details.get("retryBackoffIntervalSeconds", 0))
            waits.append(Wait(None, state, base, base, "retry", "teststate"))
            retry_count += 1
            continue
        if status == "FAILED":
            run.status, run.error, run.cause = "FAILED", answer.get("error"), answer.get("cause")
            run.failures.append((run.error, run.cause))
            description = {"status": "FAILED", "error": run.error, "cause": run.cause}
            break
        run.status = "CAUGHT" if status == "CAUGHT_ERROR" else "SUCCEEDED"
        data = json.loads(answer.get("output") or "null")
        run.output = data
        if not answer.get("nextState"):
            description = {"status": "SUCCEEDED", "output": json.dumps(data)}
            break
        state = answer["nextState"]
    result = Result(scenario, runs=runs)
    # Waits: TestState reports retryBackoffIntervalSeconds, compared as the base delay (no jitter check).
    evaluate(result, description, json.loads(definition), calls, waits)
    result.failures = [failure for failure in result.failures if not failure.startswith("Calls.")]
    return result


def trace(result: Result) -> dict[str, Any]:
    """What one scenario's execution did, state by state (`--record`): the status, error and cause, and for
    each state visit its status, attempts, the errors of its failed attempts, its retry waits (base delays,
    seconds), input and output."""
    waits = dict(result.waits)
    states = []
    for run in result.runs:
        own = waits.get(run.name, [])
        retries = len([e for e, _ in run.failures]) if run.status in ("SUCCEEDED", "CAUGHT") else max(
            len(run.failures) - 1, 0)
        states.append({"name": run.name, "status": run.status, "attempts": run.attempts,
                       "errors": [error for error, _ in run.failures], "waits": own[:retries],
                       "input": run.input, "output": run.output})
        waits[run.name] = own[retries:]
    return {"scenario": result.scenario.id, "status": result.status, "error": result.error, "cause": result.cause,
            "states": states}


def compare(local: dict[str, Any], aws: dict[str, Any]) -> list[str]:
    """Where TestState's walk (`aws`) differs from the local interpreter's run (`local`), both `trace`s: the
    states entered, and for each visit its status, attempts, retry decisions and backoff, output; then the
    execution's status and error. Empty: they agree."""
    differences = []
    local_names = [s["name"] for s in local["states"]]
    aws_names = [s["name"] for s in aws["states"]]
    if local_names != aws_names:
        differences.append(f"states entered: local {local_names}, TestState {aws_names}")
    for number, (mine, theirs) in enumerate(zip(local["states"], aws["states"], strict=False), start=1):
        if mine["name"] != theirs["name"]:
            break
        where = f"{mine['name']} (visit {number})"
        for key, what in (("status", "status"), ("attempts", "attempts"), ("errors", "retried errors"),
                          ("waits", "retry base delays (s)"), ("output", "output")):
            if mine[key] != theirs[key]:
                differences.append(f"{where}: {what}: local {mine[key]!r}, TestState {theirs[key]!r}")
    for key in ("status", "error"):
        if local[key] != aws[key]:
            differences.append(f"execution {key}: local {local[key]!r}, TestState {aws[key]!r}")
    return differences
