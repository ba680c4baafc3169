"""`ticketflow test-definition` cannot pass by mistake: broken copies of the definition and of the scenario
files each fail with a message naming the problem; what the scenarios covered is measured and can gate the
run; the results come out as JSON and JUnit XML; and the TestState path builds requests AWS's model accepts
and fails, saying why, when AWS cannot be reached."""

from __future__ import annotations

import copy
import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ticketflow.cli import main
from ticketflow.deftest.scenarios import DEFAULT_SCENARIOS, load_scenarios
from ticketflow.local import DEFAULT_DEFINITION

DEFINITION = json.loads(DEFAULT_DEFINITION.read_text())


def project(tmp_path: Path, definition: dict[str, Any] | None = None, files: tuple[str, ...] | None = None
            ) -> Path:
    """A copy of the definition (changed or not) with a copy of the project's scenario files beside it."""
    (tmp_path / "test").mkdir()
    path = tmp_path / "pipeline.asl.json"
    path.write_text(json.dumps(definition or DEFINITION, indent=2))
    for scenario in sorted(DEFAULT_SCENARIOS.glob("*.json")):
        if files is None or scenario.stem in files:
            shutil.copy(scenario, tmp_path / "test" / scenario.name)
    return path


def edit_scenarios(path: Path, name: str, change) -> None:
    file = path.parent / "test" / f"{name}.json"
    document = json.loads(file.read_text())
    change(document)
    file.write_text(json.dumps(document))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["test-definition", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- broken copies
def test_a_renamed_state_is_named_with_the_closest_state(tmp_path, capsys):
    definition = copy.deepcopy(DEFINITION)
    states = definition["States"]
    states["Validate"] = states.pop("ValidateOutput")
    states["TransformTickets"]["Next"] = "Validate"
    code, _, err = run(capsys, str(project(tmp_path, definition)))
    assert code == 2
    assert ("happy_path.json: HappyPath: TestCases.ValidateOutput: no state 'ValidateOutput' in the definition; "
            "did you mean 'Validate'?") in err
    assert "nothing was run" in err


def test_a_misspelt_state_machine_name_is_an_error_not_a_skip(tmp_path, capsys):
    path = project(tmp_path, files=("happy_path",))
    edit_scenarios(path, "happy_path", lambda d: d["StateMachines"].update(pipline=d["StateMachines"].pop("pipeline")))
    code, _, err = run(capsys, str(path))
    assert code == 2
    assert ("happy_path.json: StateMachines.pipline: no state machine 'pipline': the definition is 'pipeline'; "
            "did you mean 'pipeline'?") in err


def test_an_expectation_on_a_missing_state_is_an_error(tmp_path, capsys):
    path = project(tmp_path, files=("lambda",))
    edit_scenarios(path, "lambda", lambda d: d["Expectations"]["SchemaErrorAtInspect"]["Calls"].update(Validate=0))
    code, _, err = run(capsys, str(path))
    assert code == 2  # `Calls: {"Validate": 0}` held for any definition before: nothing calls a missing state
    assert ("lambda.json: SchemaErrorAtInspect: Expectations.Calls: no state 'Validate' in the definition; "
            "did you mean 'ValidateOutput'?") in err


def test_misspelt_error_names_in_mocks_and_expectations_are_errors(tmp_path, capsys):
    path = project(tmp_path, files=("lambda",))

    def misspell(document):
        document["MockedResponses"]["ServiceErrorThreeTimesThenPasses"]["0-2"]["Throw"]["Error"] = \
            "Lambda.ServiceExeption"
        document["Expectations"]["DataQualityErrorAtValidate"]["Error"] = "DataQualtyError"

    edit_scenarios(path, "lambda", misspell)
    code, _, err = run(capsys, str(path))
    assert code == 2
    assert ("throws 'Lambda.ServiceExeption': not an error this integration can raise; did you mean "
            "'Lambda.ServiceException'?") in err
    # One problem per misspelt name, with the calls that throw it (not one line per call).
    assert "MockedResponses.ServiceErrorThreeTimesThenPasses calls 0-2 (TestCases." in err
    assert len(set(re.findall(r"calls 0-2 \(TestCases\.(\w+)\.", err))) == err.count("calls 0-2")
    assert ("DataQualityErrorAtValidate: Expectations.Error 'DataQualtyError': neither a mocked response of this "
            "test case nor Step Functions raises it; did you mean 'DataQualityError'?") in err


def test_a_removed_retrier_fails_its_scenario_with_the_error_and_cause(tmp_path, capsys):
    definition = copy.deepcopy(DEFINITION)
    del definition["States"]["TransformTickets"]["Retry"][1]  # Glue.AWSGlueException / InternalServiceException
    code, out, _ = run(capsys, str(project(tmp_path, definition)))
    assert code == 1
    assert "retries::GlueInternalErrorThenRuns" in out
    assert ("the execution ended FAILED at TransformTickets with Glue.InternalServiceException: "
            "Internal service error") in out


def test_a_jsonpath_typo_is_a_static_finding_and_fails_the_scenarios_that_reach_it(tmp_path, capsys):
    definition = copy.deepcopy(DEFINITION)
    definition["States"]["Publish"]["Parameters"]["Payload"]["run_id.$"] = "$$.Execution.Nam"
    code, out, _ = run(capsys, str(project(tmp_path, definition, files=("happy_path",))))
    assert code == 1
    # Found with no scenario needed: the context object has no Nam.
    assert ("Publish: [data-flow] Parameters.Payload.run_id.$ '$$.Execution.Nam': $$.Execution has no field 'Nam' "
            "(it has: Id, Input, Name, RedriveCount, RedriveTime, RoleArn, StartTime); did you mean "
            "$$.Execution.Name?") in out
    assert "happy_path::HappyPath" in out and "the execution ended FAILED at Publish with States.Runtime: " in out


def test_a_typo_in_a_state_no_scenario_reaches_is_found_statically(tmp_path, capsys):
    definition = copy.deepcopy(DEFINITION)
    definition["States"]["RetractSource"]["Parameters"]["Payload"]["removal.$"] = "$.remval"
    code, out, _ = run(capsys, str(project(tmp_path, definition, files=("happy_path",))))
    assert code == 1  # happy_path never reaches RetractSource: only the static check sees it
    assert "RetractSource: [data-flow] Parameters.Payload.removal.$ '$.remval': $ has no field 'remval'" in out
    assert "did you mean $.removal?" in out


# ---------------------------------------------------------------- coverage
def test_the_project_s_scenarios_cover_every_state_transition_retrier_and_failure(tmp_path, capsys):
    code, out, _ = run(capsys, "--min-coverage", "100", "--strict")
    assert code == 0, out
    for line in ("states                8/8     100.0%", "transitions          10/10    100.0%",
                 "retriers              9/9     100.0%", "retriers exhausted    9/9     100.0%",
                 "error outcomes        5/5     100.0%"):
        assert line in out
    assert "not covered" not in out


def test_min_coverage_fails_below_and_names_what_is_missing(tmp_path, capsys):
    path = project(tmp_path, files=("happy_path", "glue", "lambda", "erasure"))  # no retries.json, exhaustion.json
    code, out, _ = run(capsys, str(path), "--min-coverage", "90")
    assert code == 1
    assert "retriers              6/9      66.7%" in out and "retriers exhausted    3/9      33.3%" in out
    assert "not covered: retrier: InspectSource Retry[0] (Lambda.ServiceException" in out
    assert "not covered: retrier: TransformTickets Retry[1] (Glue.AWSGlueException, Glue.InternalServiceException)" \
        in out
    assert "coverage 33.3% is below --min-coverage 90%" in out
    assert run(capsys, str(path))[0] == 0  # without the gate the same run passes


# ---------------------------------------------------------------- CI output
def test_json_and_junit_reports(tmp_path, capsys):
    path = project(tmp_path, files=("happy_path", "lambda"))
    edit_scenarios(path, "lambda", lambda d: d["Expectations"]["SchemaErrorAtInspect"].update(Status="SUCCEEDED"))
    junit = tmp_path / "reports" / "definition.xml"
    code, out, _ = run(capsys, str(path), "--json", "--junit", str(junit))
    assert code == 1
    document = json.loads(out)
    assert document["passed"] is False and document["findings"] == []
    failed = [s for s in document["scenarios"] if not s["passed"]]
    assert [s["id"] for s in failed] == ["lambda::SchemaErrorAtInspect"]
    assert failed[0]["error"] == "SchemaError" and "ticket_id is missing" in failed[0]["cause"]
    assert document["coverage"]["states"] == {"covered": 6, "total": 8, "percent": 75.0,
                                              "missing": ["RetractSource", "Retracted"]}

    root = ET.parse(junit).getroot()
    suites = {suite.get("name"): suite for suite in root}
    assert suites["static-rules"].get("tests") == "14" and suites["static-rules"].get("failures") == "0"
    cases = {case.get("name"): case for case in suites["scenarios"]}
    assert len(cases) == 7 and suites["scenarios"].get("failures") == "1"
    failure = cases["SchemaErrorAtInspect"].find("failure")
    assert failure is not None and "Status: expected 'SUCCEEDED', got 'FAILED'" in failure.text
    assert cases["HappyPath"].find("failure") is None and cases["HappyPath"].get("classname") == "happy_path"


def test_junit_reports_a_finding_under_its_rule(tmp_path, capsys):
    definition = copy.deepcopy(DEFINITION)
    definition["States"]["InspectSource"]["Retry"][0]["ErrorEquals"].append("Lambda.ServiceExeption")
    junit = tmp_path / "out.xml"
    code, _, _ = run(capsys, str(project(tmp_path, definition, files=("happy_path",))), "--junit", str(junit))
    assert code == 1
    rules = {case.get("name"): case for case in ET.parse(junit).getroot().find("testsuite")}
    failure = rules["error-names"].find("failure")
    assert failure is not None and "Retry[0] 'Lambda.ServiceExeption'" in failure.text
    assert rules["reachable"].find("failure") is None


# ---------------------------------------------------------------- the AWS path
def test_aws_refusing_the_credentials_fails_saying_why(monkeypatch, capsys):
    from botocore.exceptions import ClientError

    from ticketflow.deftest import teststate

    class Refusing:
        region_name = "eu-west-1"

        def get_credentials(self):
            return object()

        def client(self, service):
            class Client:
                def get_caller_identity(self):
                    raise ClientError({"Error": {"Code": "InvalidClientTokenId", "Message": "The security token "
                                                 "included in the request is invalid."}}, "GetCallerIdentity")
            return Client()

    monkeypatch.setattr(teststate, "_session", lambda: Refusing())
    code, out, err = run(capsys, "--target", "aws")
    assert code == 2 and "passed" not in out
    assert "--target aws: AWS refused the credentials: An error occurred (InvalidClientTokenId)" in err


def test_load_scenarios_reads_every_machine_so_none_is_skipped_silently():
    machines = {s.machine for s in load_scenarios(DEFAULT_SCENARIOS)}
    assert machines == {"pipeline"}


def _teststate_session(recorded: list[dict[str, Any]], expected: list[dict[str, Any]]):
    """A boto3-like session whose Step Functions client is a real botocore client behind a Stubber: every
    request is validated against botocore's service model (TestState with `mock` and `stateConfiguration`)
    and answered with the recorded responses in order."""
    import boto3
    from botocore.stub import Stubber

    real = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    sfn = real.client("stepfunctions")
    stubber = Stubber(sfn)
    for response, params in zip(recorded, expected, strict=True):
        stubber.add_response("test_state", response, params)
    stubber.activate()

    class Session:
        region_name = "us-east-1"

        def get_credentials(self):
            return object()

        def client(self, service):
            if service == "stepfunctions":
                return sfn

            class Sts:
                def get_caller_identity(self):
                    return {"Account": "123456789012"}
            return Sts()

    return Session(), stubber


def _recorded_happy_path() -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    """HappyPath's responses as TestState gives them (status, nextState, output), taken from the local run of
    the same scenario, and the request expected for each state."""
    from botocore.stub import ANY

    from ticketflow.deftest.scenarios import ScenarioRunner

    scenario = next(s for s in load_scenarios(DEFAULT_SCENARIOS) if s.case == "HappyPath")
    with ScenarioRunner(DEFAULT_DEFINITION) as runner:
        local = runner.run(scenario)
    assert local.passed
    recorded, expected = [], []
    for run, following in zip(local.runs, [*local.runs[1:], None], strict=True):
        response: dict[str, Any] = {"status": "SUCCEEDED", "output": json.dumps(run.output)}
        if following is not None:
            response["nextState"] = following.name
        recorded.append(response)
        params: dict[str, Any] = {"definition": ANY, "stateName": run.name, "input": ANY, "inspectionLevel": "DEBUG",
                                  "stateConfiguration": {"retrierRetryCount": 0}}
        if run.name in scenario.mocks:
            params["mock"] = {"result": json.dumps(scenario.mocks[run.name][0].returns)}
        expected.append(params)
    return scenario, recorded, expected


def test_teststate_requests_fit_the_service_model_and_agreeing_answers_pass():
    from ticketflow.deftest import teststate

    scenario, recorded, expected = _recorded_happy_path()
    session, stubber = _teststate_session(recorded, expected)
    [result] = teststate.run_teststate(DEFAULT_DEFINITION.read_text(), [scenario], session=session)
    stubber.assert_no_pending_responses()  # one TestState call per state, each validated by the Stubber
    assert result.passed, result.failures
    assert result.states == ["RouteEvent", "InspectSource", "TransformTickets", "ValidateOutput", "Publish",
                             "Published"]


def test_a_teststate_answer_that_differs_is_a_failure():
    from ticketflow.deftest import teststate

    scenario, recorded, expected = _recorded_happy_path()
    validate = next(i for i, p in enumerate(expected) if p["stateName"] == "ValidateOutput")
    recorded[validate]["nextState"] = "Published"  # AWS skipping Publish would be a difference
    session, _ = _teststate_session([*recorded[: validate + 1], recorded[-1]],
                                    [*expected[: validate + 1], expected[-1]])
    [result] = teststate.run_teststate(DEFAULT_DEFINITION.read_text(), [scenario], session=session)
    assert not result.passed
    assert any(f.startswith("States: expected ['RouteEvent', 'InspectSource', 'TransformTickets', 'ValidateOutput', "
                            "'Publish', 'Published'], got") for f in result.failures), result.failures


def test_record_writes_what_the_local_interpreter_did(tmp_path, capsys):
    path = project(tmp_path, files=("glue",))
    record = tmp_path / "trace.json"
    assert run(capsys, str(path), "--record", str(record))[0] == 0
    traces = {t["scenario"]: t for t in json.loads(record.read_text())}
    busy = traces["glue::GlueBusyThenRuns"]
    assert busy["status"] == "SUCCEEDED" and [s["name"] for s in busy["states"]][:3] == [
        "RouteEvent", "InspectSource", "TransformTickets"]
    transform = busy["states"][2]
    assert transform["attempts"] == 3 and transform["waits"] == [15, 30]
    assert transform["errors"] == ["Glue.ConcurrentRunsExceededException"] * 2
    assert transform["output"]["transform"]["job_run_state"] == "SUCCEEDED"
    never = traces["glue::GlueJobNeverFinishes"]
    assert never["error"] == "States.Timeout" and never["states"][-1]["status"] == "FAILED"


@pytest.mark.parametrize("differ", [False, True])
def test_teststate_answers_are_compared_with_the_local_interpreter(tmp_path, monkeypatch, capsys, differ):
    from ticketflow.deftest import teststate

    _, recorded, expected = _recorded_happy_path()
    inspect = next(i for i, p in enumerate(expected) if p["stateName"] == "InspectSource")
    if differ:  # a field no expectation looks at: only the comparison with the local run can see it
        output = json.loads(recorded[inspect]["output"])
        output["inspect"]["inspection"]["dialect"]["columns"] = 13
        recorded[inspect]["output"] = json.dumps(output)
    session, _ = _teststate_session(recorded, expected)
    monkeypatch.setattr(teststate, "_session", lambda: session)
    code, out, _ = run(capsys, str(project(tmp_path, files=("happy_path",))), "--target", "aws")
    if not differ:
        assert code == 0 and "differs" not in out
        return
    assert code == 1
    assert "differs from the local interpreter: InspectSource (visit 2): output: local {" in out
    assert "'columns': 12" in out and "'columns': 13" in out


# ---------------------------------------------------------------- from a CI engineer's trial
def test_weakened_retry_settings_fail_the_exhaustion_scenarios(tmp_path, capsys):
    definition = copy.deepcopy(DEFINITION)
    states = definition["States"]
    states["InspectSource"]["Retry"][0]["MaxAttempts"] = 1
    states["TransformTickets"]["Retry"][1]["ErrorEquals"] = ["Glue.InternalServiceException"]
    states["Publish"]["Retry"][1]["MaxDelaySeconds"] = 30
    code, out, _ = run(capsys, str(project(tmp_path, definition)), "--strict", "--min-coverage", "100")
    assert code == 1
    assert "exhaustion::InspectThrottledUntilExhausted" in out and "Attempts.InspectSource: expected 7, got 2" in out
    # Glue.AWSGlueException no longer listed: only the States.TaskFailed catch-all retries it, once, after 60 s.
    assert "Waits.TransformTickets: expected base delays [15, 30, 60, 120, 240, 300], got [60, 15]" in out
    assert "Waits.Publish: expected base delays [5, 10, 20, 40, 60, 60, 60, 60], got [5, 10, 20, 30, 30" in out


def test_a_failed_expectation_must_name_its_error_and_function_errors_are_spelt_right(tmp_path, capsys):
    path = project(tmp_path, files=("lambda",))

    def loosen(document):
        del document["Expectations"]["InspectTimesOut"]["Error"]
        document["MockedResponses"]["SchemaError"]["0"]["Throw"]["Error"] = "SchemaEror"
        document["Expectations"]["SchemaErrorAtInspect"]["Error"] = "SchemaEror"  # agreeing with the mock

    edit_scenarios(path, "lambda", loosen)
    code, _, err = run(capsys, str(path))
    assert code == 2
    assert "lambda.json: InspectTimesOut: Expectations: a FAILED expectation must name its Error" in err
    assert "throws 'SchemaEror': no function raises 'SchemaEror'; did you mean 'SchemaError'?" in err


def test_another_state_machine_is_checked_without_this_project_s_shapes(tmp_path, capsys):
    machine = {"StartAt": "Stamp", "States": {
        "Stamp": {"Type": "Pass", "Parameters": {"at.$": "$$.State.EnteredTime"}, "ResultPath": "$.stamp",
                  "Next": "Choose"},
        "Choose": {"Type": "Choice", "Choices": [{"Variable": "$.level", "StringEquals": "high", "Next": "Page"}],
                   "Default": "Done"},
        "Page": {"Type": "Fail", "Error": "Paged", "Cause": "a high level"},
        "Done": {"Type": "Succeed"}}}
    (tmp_path / "test").mkdir()
    definition = tmp_path / "alerting.asl.json"
    definition.write_text(json.dumps(machine))
    (tmp_path / "test" / "levels.json").write_text(json.dumps({
        "StateMachines": {"alerting": {"TestCases": {"High": {}, "Low": {}}}},
        "MockedResponses": {},
        "Expectations": {"High": {"Input": {"level": "high"}, "Status": "FAILED", "Error": "Paged",
                                  "FailedState": "Page"},
                         "Low": {"Input": {"level": "low"}, "Status": "SUCCEEDED"}}}))
    code, out, err = run(capsys, str(definition), "--min-coverage", "100")
    assert code == 0, out + err  # no pipeline placeholders asked for, no path judged against unknown input
    assert "transitions           6/6     100.0%" in out  # the Fail state's end is covered by the High case


def test_a_placeholder_typo_is_one_finding_not_a_cascade(tmp_path, capsys):
    definition = copy.deepcopy(DEFINITION)
    definition["States"]["ValidateOutput"]["Parameters"]["FunctionName"] = "${ValidateFunctionArnn}"
    code, out, _ = run(capsys, str(project(tmp_path, definition, files=("happy_path",))))
    assert code == 1
    assert "[placeholders]" in out and "[data-flow]" not in out


def test_every_way_a_run_ends_writes_its_json_and_junit(tmp_path, capsys):
    path = project(tmp_path, files=("happy_path",))
    junit = tmp_path / "run.xml"
    code, out, _ = run(capsys, str(path), "--min-coverage", "100", "--json", "--junit", str(junit))
    assert code == 1 and json.loads(out)["failures"] == [
        "coverage 0.0% is below --min-coverage 100%"]
    gates = ET.parse(junit).getroot().find("testsuite[@name='run']")
    assert gates.get("failures") == "1" and "below --min-coverage" in gates.find("testcase/failure").text

    edit_scenarios(path, "happy_path", lambda d: d["Expectations"]["HappyPath"]["Attempts"].update(Inspect=1))
    code, out, _ = run(capsys, str(path), "--json", "--junit", str(junit))
    assert code == 2  # refused before running: still a document, and a red one
    document = json.loads(out)
    assert document["passed"] is False and "no state 'Inspect'" in document["failures"][0]
    assert "no state 'Inspect'" in ET.parse(junit).getroot().find("testsuite[@name='run']/testcase/failure").text


@pytest.mark.parametrize("value", ["150", "-5", "0"])
def test_min_coverage_is_a_percentage(capsys, value):
    code, _, err = run(capsys, "--min-coverage", value)
    assert code == 2 and "--min-coverage is a percentage in (0, 100]" in err


def test_a_missing_scenarios_folder_is_named(tmp_path, capsys):
    code, _, err = run(capsys, "--scenarios", str(tmp_path / "tests-typo"))
    assert code == 2 and "tests-typo does not exist" in err


def test_the_readme_s_example_scenario_passes(tmp_path, capsys):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("### Adding a scenario"):]
    example = section[section.index("```json") + len("```json"):section.index("```", section.index("```json") + 7)]
    (tmp_path / "example.json").write_text(example)
    code, out, err = run(capsys, "--scenarios", str(tmp_path))
    assert code == 0, out + err
    assert "example::GlueBusyThenRuns" in out and "2 checks: 2 passed, 0 failed" in out
