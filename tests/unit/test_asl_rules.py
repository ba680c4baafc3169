"""The static rules: the real definition passes; each deliberately broken copy fails naming its state.
Also the strict placeholder substitution they rely on."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from ticketflow.deftest.rules import RULES, Finding, check, known_errors
from ticketflow.local import (
    DEFAULT_DEFINITION,
    PIPELINE_PLACEHOLDERS,
    PlaceholderError,
    placeholders,
    substitute,
)

TEXT = DEFAULT_DEFINITION.read_text()
DEFINITION = json.loads(TEXT)
States = dict[str, Any]


def test_the_definition_passes_every_rule() -> None:
    assert check(TEXT) == []


def test_the_definition_uses_exactly_the_pipeline_placeholders() -> None:
    assert placeholders(TEXT) == set(PIPELINE_PLACEHOLDERS)


# -- broken copies: (how to break it, the state named, the rule, a phrase of the message) --------------------
def _catch_to_fail(states: States) -> None:
    states["ValidateOutput"]["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "NotifyFailure"}]
    states["NotifyFailure"] = {"Type": "Pass", "Next": "Failed"}
    states["Failed"] = {"Type": "Fail", "Error": "PipelineFailed"}


def _loop(states: States) -> None:
    states["Publish"]["Next"] = "Again"
    states["Again"] = {"Type": "Pass", "Next": "Publish"}


def _misspelt(states: States) -> None:
    states["TransformTickets"]["Retry"][0]["ErrorEquals"][0] = "Glue.ConcurrentRunsExceeded"


def _jsonata_state(states: States) -> None:
    states["Publish"]["QueryLanguage"] = "JSONata"
    states["Publish"]["Arguments"] = {"FunctionName": "{% $states.input.fn %}"}


def _catch_all_first(states: States) -> None:
    states["TransformTickets"]["Retry"].reverse()


BROKEN: list[tuple[str, Callable[[States], None], str | None, str, str]] = [
    (
        "missing retrier",
        lambda s: s["TransformTickets"].pop("Retry"),
        "TransformTickets",
        "task-retry",
        "needs a `Retry`",
    ),
    (
        "missing timeout",
        lambda s: s["ValidateOutput"].pop("TimeoutSeconds"),
        "ValidateOutput",
        "task-timeout",
        "needs `TimeoutSeconds`",
    ),
    (
        "catch to fail",
        _catch_to_fail,
        "ValidateOutput",
        "catch-to-fail",
        "leads to Fail state 'Failed' via NotifyFailure -> Failed",
    ),
    (
        "misspelt error name",
        _misspelt,
        "TransformTickets",
        "error-names",
        "did you mean 'Glue.ConcurrentRunsExceededException'?",
    ),
    (
        "misspelt lambda error",
        lambda s: s["InspectSource"]["Retry"][0]["ErrorEquals"].append("Lambda.ServiceExeption"),
        "InspectSource",
        "error-names",
        "Retry[0] 'Lambda.ServiceExeption': not an error this integration can raise; did you mean "
        "'Lambda.ServiceException'?",  # indexed from 0, as AWS's findings are
    ),
    (
        "another service's error",
        lambda s: s["InspectSource"]["Retry"][0]["ErrorEquals"].append("Glue.AWSGlueException"),
        "InspectSource",
        "error-names",
        "a Lambda task never raises Glue errors",
    ),
    (
        "function error on a Glue task",
        lambda s: s["TransformTickets"]["Retry"][0]["ErrorEquals"].append("SchemaError"),
        "TransformTickets",
        "error-names",
        "a Glue task raises only Glue.<ErrorCode>",
    ),
    (
        "unknown States error",
        lambda s: s["TransformTickets"]["Retry"][1]["ErrorEquals"].append("States.Timeouts"),
        "TransformTickets",
        "error-names",
        "Retry[1] 'States.Timeouts': not an error this integration can raise; did you mean 'States.Timeout'?",
    ),
    (
        "unreachable state",
        lambda s: s.update(Orphan={"Type": "Pass", "End": True}),
        "Orphan",
        "reachable",
        "not reachable from StartAt 'RouteEvent'",
    ),
    (
        "transition to nowhere",
        lambda s: s["Publish"].update(Next="Publsihed"),
        "Publish",
        "next-exists",
        "'Publsihed', which is not a state",
    ),
    ("loop with no exit", _loop, "Again", "path-ends", "no path from this state reaches an end"),
    (
        "neither Next nor End",
        lambda s: s["Publish"].pop("Next"),
        "Publish",
        "path-ends",
        "needs exactly one of `Next`",
    ),
    (
        "leftover placeholder",
        lambda s: s["Publish"]["Parameters"]["Payload"].update({"topic": "${AlertTopicArn}"}),
        "Publish",
        "placeholders",
        "${AlertTopicArn} is not substituted",
    ),
    (
        "placeholder no longer used",
        lambda s: s["Publish"]["Parameters"].update(
            FunctionName="arn:aws:lambda:us-east-1:123456789012:function:publish"
        ),
        None,
        "placeholders",
        "${PublishFunctionArn} is provided by CDK and the local runtime but the definition never uses it",
    ),
    (
        "placeholder in a comment",
        lambda s: s["Publish"].update(Comment="calls ${PublishFunctionArn}"),
        "Publish",
        "placeholders",
        "in a Comment",
    ),
    (
        "placeholder in Resource",
        lambda s: s["Publish"].update(Resource="${PublishFunctionArn}"),
        "Publish",
        "placeholders",
        "`Resource` makes CreateStateMachine fail",
    ),
    (
        "States.TaskFailed before the specific retrier",
        _catch_all_first,
        "TransformTickets",
        "retrier-order",
        "Retry[0] (States.TaskFailed) comes before Retry[1]",
    ),
    (
        "States.ALL first",
        lambda s: s["InspectSource"]["Retry"].insert(0, {"ErrorEquals": ["States.ALL"]}),
        "InspectSource",
        "retrier-order",
        "Retry[0] (States.ALL) comes before Retry[1]",
    ),
    ("JSONata machine", lambda s: None, None, "jsonpath-only", "QueryLanguage 'JSONata'"),
    ("JSONata state", _jsonata_state, "Publish", "jsonpath-only", "`{% ... %}` JSONata expression"),
    ("Arguments", _jsonata_state, "Publish", "jsonpath-only", "`Arguments` is JSONata"),
    (
        "Assign",
        lambda s: s["InspectSource"].update(Assign={"key.$": "$.key"}),
        "InspectSource",
        "jsonpath-only",
        "`Assign`",
    ),
    (
        "retrying a function error",
        lambda s: s["ValidateOutput"]["Retry"].append({"ErrorEquals": ["DataQualityError"]}),
        "ValidateOutput",
        "no-retry-function-errors",
        "retries DataQualityError",
    ),
    (
        "a field the state type does not have",
        lambda s: s["RouteEvent"].update(ResultPath="$.x"),
        "RouteEvent",
        "state-fields",
        "a Choice state has no field 'ResultPath'",
    ),
    (
        "a misspelt retrier field",
        lambda s: s["Publish"]["Retry"][0].update(MaxDelaySecond=3),
        "Publish",
        "state-fields",
        "Retry[0] has no field 'MaxDelaySecond'; did you mean 'MaxDelaySeconds'?",
    ),
    (
        "a Catch on a Fail state",
        lambda s: s.update(Failed={"Type": "Fail", "Error": "X", "Catch": [{"ErrorEquals": ["States.ALL"],
                                                                              "Next": "Published"}]}),
        "Failed",
        "state-fields",
        "a Fail state has no field 'Catch'",
    ),
    (
        "JSONPath typo",
        lambda s: s["Publish"]["Parameters"]["Payload"].update({"key.$": "$.kye"}),
        "Publish",
        "data-flow",
        "Parameters.Payload.key.$ '$.kye': $ has no field 'kye'",
    ),
    (
        "States.ALL on a Lambda task",
        lambda s: s["InspectSource"]["Retry"].append({"ErrorEquals": ["States.ALL"]}),
        "InspectSource",
        "no-retry-function-errors",
        "retries States.ALL, which matches SchemaError and DataQualityError",
    ),
]


@pytest.mark.parametrize(
    ("breakage", "state", "rule", "phrase"), [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN]
)
def test_a_broken_copy_fails_naming_the_state(
    breakage: Callable[[States], None], state: str | None, rule: str, phrase: str
) -> None:
    definition = copy.deepcopy(DEFINITION)
    breakage(definition["States"])
    if rule == "jsonpath-only" and state is None:
        definition["QueryLanguage"] = "JSONata"
    findings = check(json.dumps(definition))
    matching = [f for f in findings if f.state == state and f.rule == rule and phrase in f.message]
    assert matching, f"no [{rule}] finding for {state} containing {phrase!r} in:\n" + "\n".join(
        map(str, findings)
    )
    assert str(matching[0]).startswith(f"{state or '(definition)'}: [{rule}]")


def test_every_rule_has_a_broken_copy() -> None:
    assert {case[3] for case in BROKEN} | {"parses"} == set(RULES)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("{not json", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"StartAt": "A", "States": {}}', "`States` must be a non-empty object"),
        ('{"StartAt": "B", "States": {"A": {"Type": "Succeed"}}}', "StartAt 'B' is not a state"),
        ('{"StartAt": "A", "States": {"A": {"Type": "Sleep"}}}', "`Type` must be one of"),
    ],
)
def test_a_definition_that_does_not_parse(text: str, phrase: str) -> None:
    findings = check(text)
    assert findings and all(f.rule == "parses" for f in findings)
    assert any(phrase in f.message for f in findings), findings


def test_nested_machines_are_checked() -> None:
    definition = {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {
                        "StartAt": "Work",
                        "States": {
                            "Work": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::lambda:invoke",
                                "End": True,
                                "Parameters": {"FunctionName": "${InspectFunctionArn}"},
                            },
                            "Stray": {"Type": "Pass", "End": True},
                        },
                    }
                ],
            }
        },
    }
    findings = check(json.dumps(definition), expected_placeholders={"InspectFunctionArn"})
    assert (
        Finding("Work", "task-retry", findings[[f.state for f in findings].index("Work")].message) in findings
    )
    assert any(f.state == "Stray" and f.rule == "reachable" for f in findings)


def test_known_errors_come_from_the_service_models() -> None:
    assert {"Glue.ConcurrentRunsExceededException", "Glue.AWSGlueException"} <= known_errors("glue")
    assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "Lambda.Unknown"} <= known_errors(
        "lambda"
    )


# -- strict substitution -------------------------------------------------------------------------------------
def test_substitute_refuses_missing_and_unused_values() -> None:
    values = {name: f"value-{name}" for name in PIPELINE_PLACEHOLDERS}
    assert placeholders(substitute(TEXT, values)) == set()
    with pytest.raises(PlaceholderError, match=r"no value for \$\{TransformJobName\}"):
        substitute(TEXT, {k: v for k, v in values.items() if k != "TransformJobName"})
    with pytest.raises(PlaceholderError, match="does not use AlertTopicArn"):
        substitute(TEXT, {**values, "AlertTopicArn": "arn"})


def test_substituted_values_cannot_break_the_json() -> None:
    text = substitute('{"a": "${X}"}', {"X": 'quote " and \\ backslash'})
    assert json.loads(text) == {"a": 'quote " and \\ backslash'}


# -- data flow -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "state", "message"), [
    (lambda s: s["TransformTickets"]["Parameters"]["Arguments"].update({"--staging.$": "$.inspect.inspection.stagin"}),
     "TransformTickets", "'$.inspect.inspection.stagin': $.inspect.inspection has no field 'stagin'"),
    (lambda s: s["TransformTickets"]["ResultSelector"].update({"job_run_state.$": "$.JobRunStatus"}),
     "TransformTickets", "did you mean $.JobRunState?"),  # Glue's JobRun, from botocore's model
    (lambda s: s["InspectSource"]["Parameters"]["Payload"].pop("run_id.$"),
     "InspectSource", "Parameters.Payload gives no run_id, which InspectInput requires"),
    (lambda s: s["ValidateOutput"].update(ResultPath="$.validation"),  # Publish then reads $.inspect still: fine
     None, None),
    (lambda s: s["InspectSource"].update(ResultPath="$.inspected"),
     "TransformTickets", "$ has no field 'inspect'"),
    (lambda s: s["RouteEvent"]["Choices"].append({"Variable": "$.size_bytes", "NumericGreaterThan": 0,
                                                  "Next": "InspectSource"}),
     "RouteEvent", "Choices[1].Variable '$.size_bytes': $ has no field 'size_bytes'"),
])
def test_data_flow_paths_resolve_against_what_reaches_them(change, state, message):
    definition = json.loads(DEFAULT_DEFINITION.read_text())
    change(definition["States"])
    found = [f for f in check(json.dumps(definition)) if f.rule == "data-flow"]
    if message is None:
        assert found == []
        return
    assert any(f.state == state and message in f.message for f in found), [str(f) for f in found]
