"""Static rules for a state machine definition; each finding names the state it is about.

The rules keep the definition runnable locally and redrivable on AWS (see aws-semantics.md):
every path ends, every Task retries transient errors and has a timeout, catch-all retriers come last,
no Catch re-throws through a Fail state, placeholders match what CDK and the local runtime substitute,
JSONPath only, and every error name in a Retry/Catch is one the Task's integration can actually raise.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from ticketflow.local.asl import PIPELINE_PLACEHOLDERS, placeholders

# Rule ids, in the order they run.
RULES = (
    "parses",
    "state-fields",
    "next-exists",
    "reachable",
    "path-ends",
    "task-retry",
    "task-timeout",
    "retrier-order",
    "catch-to-fail",
    "placeholders",
    "jsonpath-only",
    "error-names",
    "no-retry-function-errors",
    "data-flow",
)
STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}
# The function errors of this project's Lambdas (ticketcore.contract.SchemaError, the validation
# function's DataQualityError): deterministic, so retrying them only delays the failure.
NON_RETRYABLE_ERRORS = ("SchemaError", "DataQualityError")
STATES_ERRORS = frozenset(
    {
        "States.ALL",
        "States.HeartbeatTimeout",
        "States.Timeout",
        "States.TaskFailed",
        "States.Permissions",
        "States.ResultPathMatchFailure",
        "States.ParameterPathFailure",
        "States.QueryEvaluationError",
        "States.BranchFailed",
        "States.NoChoiceMatched",
        "States.IntrinsicFailure",
        "States.ExceedToleratedFailureThreshold",
        "States.ItemReaderFailed",
        "States.ResultWriterFailed",
        "States.Runtime",
        "States.DataLimitExceeded",
    }
)
CATCH_ALL = ("States.ALL", "States.TaskFailed")
# Per optimised integration: the error prefix, the API operations whose errors it surfaces (from
# botocore's service models), and the errors Step Functions adds itself (SDK-level and generic ones).
INTEGRATIONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "lambda": (
        "Lambda",
        ("Invoke",),
        ("AWSLambdaException", "SdkClientException", "ClientExecutionTimeoutException", "Unknown"),
    ),
    "glue": ("Glue", ("StartJobRun", "GetJobRun", "BatchStopJobRun"), ("AWSGlueException",)),
    "sns": ("SNS", ("Publish",), ("AmazonSNSException", "SdkClientException")),
}
_JSONATA = re.compile(r"\{%.*%\}", re.DOTALL)


@dataclass(frozen=True)
class Finding:
    state: str | None  # None: the definition as a whole
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.state or '(definition)'}: [{self.rule}] {self.message}"


def check(
    definition_text: str,
    expected_placeholders: Iterable[str] | None = PIPELINE_PLACEHOLDERS,
) -> list[Finding]:
    """Every finding of every rule (empty: the definition passes)."""
    try:
        definition = json.loads(definition_text)
    except ValueError as error:
        return [Finding(None, "parses", f"not JSON: {error}")]
    findings = _structure(definition, None)
    if findings:
        return findings
    machines = list(_machines(definition, None))
    for rule in (_next_exists, _reachable, _path_ends):
        for machine, owner in machines:
            findings += rule(machine, owner)
    for name, state in _all_states(definition):
        findings += _state_fields(name, state)
        findings += _task_rules(name, state)
        findings += _retrier_order(name, state)
        findings += _error_names(name, state)
        findings += _function_errors(name, state)
    for machine, _ in machines:
        findings += _catch_to_fail(machine)
    if expected_placeholders is not None:
        findings += _placeholders(definition, definition_text, set(expected_placeholders))
    findings += _jsonpath_only(definition)
    if not any(f.rule in ("next-exists", "jsonpath-only") for f in findings):
        from ticketflow.deftest import dataflow

        # This project's shapes (the execution input; each function's payload and result, bound by the
        # placeholder a state invokes) when checking against the pipeline's placeholders; otherwise only what
        # botocore's models tell, from an input of unknown shape.
        project = expected_placeholders is not None and set(expected_placeholders) == set(PIPELINE_PLACEHOLDERS)
        findings += dataflow.check(definition, dataflow.project_flow(definition) if project else dataflow.Flow())
    order = {rule: index for index, rule in enumerate(RULES)}
    return sorted(findings, key=lambda finding: order.get(finding.rule, len(order)))


# -- walking the definition ------------------------------------------------------------------------------
def _machines(machine: dict[str, Any], owner: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The top-level machine and every nested one (Parallel branches, Map item processors)."""
    yield machine, owner
    for name, state in machine.get("States", {}).items():
        for sub in _sub_machines(state):
            yield from _machines(sub, name)


def _sub_machines(state: dict[str, Any]) -> list[dict[str, Any]]:
    if not isinstance(state, dict):
        return []
    subs = list(state.get("Branches") or [])
    for key in ("ItemProcessor", "Iterator"):
        if isinstance(state.get(key), dict):
            subs.append(state[key])
    return [sub for sub in subs if isinstance(sub, dict)]


def _all_states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for machine, _ in _machines(definition, None):
        yield from machine.get("States", {}).items()


def _successors(state: dict[str, Any], with_catch: bool = True) -> list[str]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [choice.get("Next") for choice in state.get("Choices") or [] if isinstance(choice, dict)]
    if with_catch:
        targets += [catcher.get("Next") for catcher in state.get("Catch") or [] if isinstance(catcher, dict)]
    return [target for target in targets if isinstance(target, str)]


def _is_terminal(state: dict[str, Any]) -> bool:
    return state.get("Type") in ("Succeed", "Fail") or state.get("End") is True


def _integration(state: dict[str, Any]) -> str | None:
    resource = state.get("Resource")
    if state.get("Type") != "Task" or not isinstance(resource, str):
        return None
    if resource.startswith("arn:aws:lambda:") or re.match(r"arn:aws:states:::lambda:invoke(\.|$)", resource):
        return "lambda"
    match = re.match(r"arn:aws:states:::(glue|sns):", resource)
    return match.group(1) if match else None


# -- the rules -------------------------------------------------------------------------------------------
# The fields each state type may have (Amazon States Language; JSONata's are refused by `jsonpath-only`), and
# those of a retrier and a catcher. CreateStateMachine refuses a definition with any other.
_COMMON = {"Type", "Comment", "QueryLanguage", "Assign", "Output"}
_FLOW = {"Next", "End"}
_PATHS = {"InputPath", "OutputPath"}
_RESULTS = {"ResultPath", "Parameters", "ResultSelector", "Retry", "Catch"}
STATE_FIELDS = {
    "Pass": _COMMON | _FLOW | _PATHS | {"ResultPath", "Parameters", "Result"},
    "Task": _COMMON | _FLOW | _PATHS | _RESULTS | {"Arguments", "Resource", "TimeoutSeconds", "TimeoutSecondsPath",
                                                    "HeartbeatSeconds", "HeartbeatSecondsPath", "Credentials"},
    "Choice": _COMMON | _PATHS | {"Choices", "Default"},
    "Wait": _COMMON | _FLOW | _PATHS | {"Seconds", "Timestamp", "SecondsPath", "TimestampPath"},
    "Succeed": _COMMON | _PATHS,
    "Fail": {"Type", "Comment", "QueryLanguage", "Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON | _FLOW | _PATHS | _RESULTS | {"Arguments", "Branches"},
    "Map": _COMMON | _FLOW | _PATHS | _RESULTS | {"Arguments",
        "Iterator", "ItemProcessor", "ItemsPath", "Items", "ItemSelector", "ItemReader", "ItemBatcher",
        "ResultWriter", "MaxConcurrency", "MaxConcurrencyPath", "ToleratedFailurePercentage",
        "ToleratedFailurePercentagePath", "ToleratedFailureCount", "ToleratedFailureCountPath", "Label"},
}
RETRIER_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds",
                  "JitterStrategy", "Comment"}
CATCHER_FIELDS = {"ErrorEquals", "Next", "ResultPath", "Comment", "Assign", "Output"}


def _state_fields(name: str, state: dict[str, Any]) -> list[Finding]:
    allowed = STATE_FIELDS.get(state.get("Type", ""), set())
    findings = [Finding(name, "state-fields", f"a {state.get('Type')} state has no field {key!r}"
                        + _suggest_field(key, allowed)) for key in state if key not in allowed]
    for field_name, fields in (("Retry", RETRIER_FIELDS), ("Catch", CATCHER_FIELDS)):
        for index, item in enumerate(state.get(field_name) or []):
            if isinstance(item, dict):
                findings += [Finding(name, "state-fields", f"{field_name}[{index}] has no field {key!r}"
                                     + _suggest_field(key, fields)) for key in item if key not in fields]
    return findings


def _suggest_field(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else f" (it may have: {', '.join(sorted(allowed))})"


def _structure(machine: Any, owner: str | None) -> list[Finding]:
    where = f"in {owner}: " if owner else ""
    if not isinstance(machine, dict):
        return [Finding(owner, "parses", f"{where}a state machine must be a JSON object")]
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        return [Finding(owner, "parses", f"{where}`States` must be a non-empty object")]
    findings = []
    if machine.get("StartAt") not in states:
        findings.append(Finding(owner, "parses", f"{where}StartAt {machine.get('StartAt')!r} is not a state"))
    for name, state in states.items():
        if not isinstance(state, dict) or state.get("Type") not in STATE_TYPES:
            findings.append(
                Finding(name, "parses", f"`Type` must be one of {', '.join(sorted(STATE_TYPES))}")
            )
            continue
        if state.get("Type") == "Task" and not isinstance(state.get("Resource"), str):
            findings.append(Finding(name, "parses", "a Task needs a `Resource`"))
        for sub in _sub_machines(state):
            findings += _structure(sub, name)
    return findings


def _next_exists(machine: dict[str, Any], owner: str | None) -> list[Finding]:
    states = machine["States"]
    return [
        Finding(
            name,
            "next-exists",
            f"transition to {target!r}, which is not a state" + (f" of {owner}'s branch" if owner else ""),
        )
        for name, state in states.items()
        for target in _successors(state)
        if target not in states
    ]


def _reachable(machine: dict[str, Any], owner: str | None) -> list[Finding]:
    states = machine["States"]
    seen, todo = set(), [machine["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        todo += _successors(states[name])
    return [
        Finding(name, "reachable", f"not reachable from StartAt {machine['StartAt']!r}")
        for name in states
        if name not in seen
    ]


def _path_ends(machine: dict[str, Any], owner: str | None) -> list[Finding]:
    states = machine["States"]
    findings = []
    for name, state in states.items():
        if state.get("Type") in ("Succeed", "Fail") or state.get("Type") == "Choice":
            continue
        has_next, has_end = "Next" in state, state.get("End") is True
        if has_next == has_end:
            findings.append(Finding(name, "path-ends", 'needs exactly one of `Next` or `"End": true`'))
    # Every state must be able to reach an end: walk the transitions backwards from the terminal states.
    can_end = {name for name, state in states.items() if _is_terminal(state)}
    changed = True
    while changed:
        changed = False
        for name, state in states.items():
            if name not in can_end and any(target in can_end for target in _successors(state)):
                can_end.add(name)
                changed = True
    if not any(_is_terminal(state) for state in states.values()):
        findings.append(Finding(owner, "path-ends", "no terminal state (Succeed, Fail or End: true)"))
    findings += [
        Finding(name, "path-ends", "no path from this state reaches an end (a loop with no exit)")
        for name in states
        if name not in can_end and _successors(states[name])
    ]
    return findings


def _task_rules(name: str, state: dict[str, Any]) -> list[Finding]:
    if state.get("Type") != "Task":
        return []
    findings = []
    if not state.get("Retry"):
        findings.append(
            Finding(
                name,
                "task-retry",
                "a Task needs a `Retry` for the transient errors of its "
                "integration (e.g. Lambda.ServiceException)",
            )
        )
    if "TimeoutSeconds" not in state and "TimeoutSecondsPath" not in state:
        findings.append(
            Finding(
                name,
                "task-timeout",
                "a Task needs `TimeoutSeconds` (the default is 99999999 s:"
                " a hung call would hold the execution for a year)",
            )
        )
    return findings


def _error_lists(state: dict[str, Any], field_name: str) -> list[list[str]]:
    return [
        [str(error) for error in item.get("ErrorEquals") or []]
        for item in state.get(field_name) or []
        if isinstance(item, dict)
    ]


def _retrier_order(name: str, state: dict[str, Any]) -> list[Finding]:
    findings = []
    for field_name, noun in (("Retry", "retrier"), ("Catch", "catcher")):
        lists = _error_lists(state, field_name)
        for index, errors in enumerate(lists):
            if "States.ALL" in errors and len(errors) > 1:
                findings.append(
                    Finding(
                        name, "retrier-order", f"{field_name}[{index}]: States.ALL must be alone in ErrorEquals"
                    )
                )
            wildcard = next((error for error in CATCH_ALL if error in errors), None)
            if wildcard is None:
                continue
            for later, later_errors in enumerate(lists[index + 1 :], start=index + 1):
                shadowed = [
                    error
                    for error in later_errors
                    if wildcard == "States.ALL" or error not in ("States.Timeout", "States.HeartbeatTimeout")
                ]
                if shadowed:
                    findings.append(
                        Finding(
                            name,
                            "retrier-order",
                            (
                                f"{field_name}[{index}] ({wildcard}) comes before {field_name}[{later}] "
                                f"({', '.join(shadowed)}), which it shadows: list the specific {noun}s first"
                            ),
                        )
                    )
    return findings


def _catch_to_fail(machine: dict[str, Any]) -> list[Finding]:
    states = machine["States"]
    findings = []
    for name, state in states.items():
        for catcher in state.get("Catch") or []:
            if not isinstance(catcher, dict) or catcher.get("Next") not in states:
                continue
            path = _path_to_fail(states, catcher["Next"])
            if path:
                findings.append(
                    Finding(
                        name,
                        "catch-to-fail",
                        (
                            f"Catch {catcher.get('ErrorEquals')} leads to Fail state {path[-1]!r} via "
                            f"{' -> '.join(path)}: a redrive re-enters the Fail state and fails again. "
                            "Drop the Catch (the execution then fails at this state, and a redrive re-runs "
                            "it); alert from an EventBridge rule on the execution status instead"
                        ),
                    )
                )
    return findings


def _path_to_fail(states: dict[str, Any], start: str) -> list[str] | None:
    """The shortest path of transitions (not Catch) from `start` to a Fail state, if any."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        state = states.get(path[-1], {})
        if state.get("Type") == "Fail":
            return path
        for target in _successors(state, with_catch=False):
            if target in states and target not in seen:
                seen.add(target)
                paths.append([*path, target])
    return None


def _placeholders(definition: dict[str, Any], text: str, expected: set[str]) -> list[Finding]:
    used = placeholders(text)
    findings = []
    users: dict[str, list[str | None]] = {}
    for name, state in _all_states(definition):
        for placeholder in sorted(placeholders(json.dumps(state))):
            users.setdefault(placeholder, []).append(name)
        if placeholders(str(state.get("Comment", ""))):
            findings.append(
                Finding(
                    name, "placeholders", "`${...}` in a Comment is substituted too: keep it out of comments"
                )
            )
        if placeholders(str(state.get("Resource", ""))):
            findings.append(
                Finding(
                    name,
                    "placeholders",
                    "`${...}` in `Resource` makes CreateStateMachine fail "
                    "locally: put the ARN in Parameters (FunctionName)",
                )
            )
    for placeholder in sorted(used - expected):
        for user in users.get(placeholder, [None]):
            findings.append(
                Finding(
                    user,
                    "placeholders",
                    (
                        f"${{{placeholder}}} is not substituted by CDK or the local runtime (they provide "
                        f"{', '.join(sorted(expected)) or 'nothing'})"
                    ),
                )
            )
    for placeholder in sorted(expected - used):
        findings.append(
            Finding(
                None,
                "placeholders",
                (
                    f"${{{placeholder}}} is provided by CDK and the local runtime but the definition "
                    "never uses it (the strict substitution refuses it)"
                ),
            )
        )
    return findings


def _jsonpath_only(definition: dict[str, Any]) -> list[Finding]:
    findings = []
    for machine, owner in _machines(definition, None):
        if machine.get("QueryLanguage", "JSONPath") != "JSONPath":
            findings.append(
                Finding(
                    owner,
                    "jsonpath-only",
                    f"QueryLanguage {machine['QueryLanguage']!r}: the local interpreter runs JSONPath only",
                )
            )
    for name, state in _all_states(definition):
        if state.get("QueryLanguage", "JSONPath") != "JSONPath":
            findings.append(
                Finding(
                    name,
                    "jsonpath-only",
                    f"QueryLanguage {state['QueryLanguage']!r}: the local interpreter runs JSONPath only",
                )
            )
        for key in ("Assign", "Arguments", "Output"):
            if key in state:
                findings.append(
                    Finding(
                        name,
                        "jsonpath-only",
                        f"`{key}` is JSONata/variables syntax, which the local interpreter cannot run",
                    )
                )
        own = {
            key: value for key, value in state.items() if key not in ("Branches", "ItemProcessor", "Iterator")
        }
        if any(_JSONATA.search(text) for text in _strings(own)):
            findings.append(Finding(name, "jsonpath-only", "a `{% ... %}` JSONata expression: use JSONPath"))
    return findings


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@cache
@functools.lru_cache
def service_model(service: str) -> Any:
    """botocore's model of an AWS service (loaded once per process: the rules and the data-flow walk ask for
    the same few)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def known_errors(integration: str) -> frozenset[str]:
    """The `<Prefix>.<Code>` names an integration surfaces, from botocore's model of its operations."""
    prefix, operations, extra = INTEGRATIONS[integration]
    model = service_model(integration)
    codes = set(extra)
    for operation in operations:
        for shape in model.operation_model(operation).error_shapes:
            codes |= {shape.name, shape.error_code or shape.name}
    return frozenset(f"{prefix}.{code}" for code in codes)


def _error_names(name: str, state: dict[str, Any]) -> list[Finding]:
    integration = _integration(state)
    prefixes = {prefix: key for key, (prefix, _, _) in INTEGRATIONS.items()}
    findings = []
    for field_name in ("Retry", "Catch"):
        for index, errors in enumerate(_error_lists(state, field_name)):  # 0-based, as AWS numbers them
            for error in errors:
                problem = _error_problem(error, integration, prefixes)
                if problem:
                    findings.append(
                        Finding(name, "error-names", f"{field_name}[{index}] {error!r}: {problem}")
                    )
    return findings


def _error_problem(error: str, integration: str | None, prefixes: dict[str, str]) -> str | None:
    prefix = error.split(".", 1)[0] if "." in error else None
    if prefix == "States":
        return None if error in STATES_ERRORS else _unknown(error, STATES_ERRORS)
    if integration is None:
        return None  # Pass/Parallel/Map or an integration without a model here: only States.* is checked
    own_prefix = INTEGRATIONS[integration][0]
    if prefix == own_prefix:
        known = known_errors(integration)
        return None if error in known else _unknown(error, known)
    if prefix in prefixes:
        return f"a {own_prefix} task never raises {prefix} errors"
    if integration == "glue":
        return (
            "a Glue task raises only Glue.<ErrorCode> (the StartJobRun call) and States.* errors "
            "(States.TaskFailed for a failed run)"
        ) + _suggest(error, known_errors("glue"))
    if integration == "sns":
        return "an SNS task raises only SNS.<ErrorCode> and States.* errors" + _suggest(
            error, known_errors("sns")
        )
    return None  # a Lambda function error: its exception class name (or Runtime.*, Sandbox.*)


def _unknown(error: str, known: Iterable[str]) -> str:
    return "not an error this integration can raise" + _suggest(error, known)


def _suggest(error: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(error, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _function_errors(name: str, state: dict[str, Any]) -> list[Finding]:
    if _integration(state) != "lambda":
        return []
    findings = []
    for index, errors in enumerate(_error_lists(state, "Retry")):
        retried = [error for error in errors if error in NON_RETRYABLE_ERRORS or error in CATCH_ALL]
        for error in retried:
            what = (
                error
                if error in NON_RETRYABLE_ERRORS
                else f"{error}, which matches {' and '.join(NON_RETRYABLE_ERRORS)}"
            )
            findings.append(
                Finding(
                    name,
                    "no-retry-function-errors",
                    (
                        f"Retry[{index}] retries {what}: a function error is deterministic, retrying it "
                        "only delays the failure; retry the Lambda.* service errors only"
                    ),
                )
            )
    return findings
