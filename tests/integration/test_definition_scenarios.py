"""Every scenario in statemachine/test/ as its own test, the `test-definition` command, and the scenario
runner's own checks (a wrong expectation or mock must fail, not pass silently)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ticketflow.cli import main
from ticketflow.deftest.scenarios import (
    DEFAULT_SCENARIOS,
    MockedAttempt,
    Scenario,
    ScenarioError,
    ScenarioRunner,
    check_waits_against_definition,
    load_file,
    load_scenarios,
    machine_name,
)
from ticketflow.local import DEFAULT_DEFINITION

SCENARIOS = load_scenarios(DEFAULT_SCENARIOS, machine_name(DEFAULT_DEFINITION))


# -- the command (first: the module's runner below holds the process's one engine once it starts) ---------
def test_command_passes_on_the_project_definition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The command on the real definition with one scenario file: the wiring (rules, loading, engine,
    # table, exit status). Every scenario runs below, one test each, through the same ScenarioRunner.
    (tmp_path / "happy_path.json").write_text((DEFAULT_SCENARIOS / "happy_path.json").read_text())
    assert main(["test-definition", str(DEFAULT_DEFINITION), "--scenarios", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "static rules (14)" in out and "happy_path::HappyPath" in out
    assert "2 checks: 2 passed, 0 failed" in out
    assert "states                6/8      75.0%" in out and "not covered: state: RetractSource" in out
    assert "retriers              0/9       0.0%" in out


def test_command_fails_on_a_broken_definition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    definition = json.loads(DEFAULT_DEFINITION.read_text())
    del definition["States"]["TransformTickets"]["Retry"][0]  # no retry of Glue.ConcurrentRunsExceeded
    broken = tmp_path / "pipeline.asl.json"
    broken.write_text(json.dumps(definition))
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "glue.json").write_text((DEFAULT_SCENARIOS / "glue.json").read_text())
    assert main(["test-definition", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "glue::GlueBusyThenRuns" in out and "FAIL" in out
    assert "Status: expected 'SUCCEEDED', got 'FAILED'" in out
    # What ended it, with the cause, not only the error's name:
    assert ("the execution ended FAILED at TransformTickets with Glue.ConcurrentRunsExceededException: "
            "Concurrent runs exceeded for ticketflow-transform") in out


def test_aws_target_without_credentials_fails_saying_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert main(["test-definition", "--target", "aws"]) == 2  # never "passed" without reaching AWS
    assert "--target aws: no AWS credentials found" in capsys.readouterr().err


# -- the scenarios -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runner() -> Iterator[ScenarioRunner]:
    with ScenarioRunner(DEFAULT_DEFINITION) as scenario_runner:
        yield scenario_runner


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.id)
def test_scenario(runner: ScenarioRunner, scenario: Scenario) -> None:
    result = runner.run(scenario)
    assert result.passed, f"{scenario.id}:\n  " + "\n  ".join(result.failures)


def test_the_issue_s_scenarios_are_all_there() -> None:
    outcomes = {(s.expect["Status"], s.expect.get("Error"), s.expect.get("FailedState")) for s in SCENARIOS}
    assert {
        ("FAILED", "States.TaskFailed", "TransformTickets"),
        ("FAILED", "SchemaError", "InspectSource"),
        ("FAILED", "DataQualityError", "ValidateOutput"),
    } <= outcomes
    assert any(status == "SUCCEEDED" for status, _, _ in outcomes)
    assert any(error == "States.Timeout" for _, error, _ in outcomes)

    def thrown(scenario: Scenario) -> set[str]:
        return {str(attempt.error) for attempts in scenario.mocks.values() for attempt in attempts}

    assert any(
        "Glue.ConcurrentRunsExceededException" in thrown(s) and s.expect["Status"] == "SUCCEEDED"
        for s in SCENARIOS
    )
    assert any(
        "Lambda.ServiceException" in thrown(s) and any(s.expect.get("Waits", {}).values()) for s in SCENARIOS
    )


# -- the runner catches what is wrong ------------------------------------------------------------------------
def _case(case: str) -> Scenario:
    return next(scenario for scenario in SCENARIOS if scenario.case == case)


def test_a_wrong_expectation_fails(runner: ScenarioRunner) -> None:
    scenario = copy.deepcopy(_case("GlueBusyThenRuns"))
    scenario.expect.update(
        Waits={"TransformTickets": [15, 31]},
        Attempts={"TransformTickets": 2},
        Output={"transform": {"job_run_state": "FAILED"}},
    )
    failures = runner.run(scenario).failures
    assert "Waits.TransformTickets: expected base delays [15, 31], got [15, 30]" in failures
    assert "Attempts.TransformTickets: expected 2, got 3" in failures
    assert "Output: $.transform.job_run_state: expected 'FAILED', got 'SUCCEEDED'" in failures


def test_waits_are_checked_against_the_definition(runner: ScenarioRunner) -> None:
    result = runner.run(_case("LambdaServiceErrorsExhausted"))
    waits = runner.clock.retry_waits(result.execution)
    assert [wait.base for wait in waits] == [2, 4, 8, 16, 32, 60]  # 64 capped at MaxDelaySeconds
    assert check_waits_against_definition(runner.definition, result.runs, waits) == []
    changed = copy.deepcopy(runner.definition)
    changed["States"]["Publish"]["Retry"][0].update(IntervalSeconds=3, MaxDelaySeconds=300)
    problems = check_waits_against_definition(changed, result.runs, waits)
    assert "Publish: retry 1 base delay 2 s, the definition asks 3 s" in problems
    assert "Publish: retry 6 base delay 60 s, the definition asks 96 s" in problems


def test_a_state_without_a_mock_fails_the_scenario(runner: ScenarioRunner) -> None:
    scenario = copy.deepcopy(_case("HappyPath"))
    del scenario.mocks["Publish"]
    result = runner.run(scenario)
    assert not result.passed and result.error == "MockMissing"
    assert "Publish: the test case mocks no response for this state" in result.failures


def test_mocks_must_fit_the_definition(runner: ScenarioRunner) -> None:
    scenario = copy.deepcopy(_case("HappyPath"))
    scenario.mocks["Inspect"] = scenario.mocks.pop("InspectSource")
    scenario.mock_names["Inspect"] = "InspectOk"
    scenario.mocks["ValidateOutput"][0] = MockedAttempt(returns={"success": True})
    problems = runner.check_mocks(scenario)
    assert "Inspect (MockedResponses.InspectOk): the definition has no Task state 'Inspect'" in problems
    assert any(problem.startswith("ValidateOutput") and '"Payload"' in problem for problem in problems)


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(document))
    return path


def test_malformed_scenario_files_are_refused(tmp_path: Path) -> None:
    base = {
        "StateMachines": {"pipeline": {"TestCases": {"Case": {"InspectSource": "Ok"}}}},
        "MockedResponses": {"Ok": {"0": {"Return": {"StatusCode": 200, "Payload": {}}}}},
        "Expectations": {"Case": {"Status": "SUCCEEDED"}},
    }
    assert len(load_file(_write(tmp_path, base))) == 1
    gap = copy.deepcopy(base)
    gap["MockedResponses"]["Ok"]["2"] = gap["MockedResponses"]["Ok"]["0"]
    with pytest.raises(ScenarioError, match="consecutively from 0; expected 1, got 2"):
        load_file(_write(tmp_path, gap))
    silent = copy.deepcopy(base)
    silent["Expectations"] = {}
    with pytest.raises(ScenarioError, match=r"no Expectations\.Case"):
        load_file(_write(tmp_path, silent))
    typo = copy.deepcopy(base)
    typo["Expectations"]["Case"]["Attempt"] = {}
    with pytest.raises(ScenarioError, match=r"unknown keys \['Attempt'\]"):
        load_file(_write(tmp_path, typo))
    dangling = copy.deepcopy(base)
    dangling["StateMachines"]["pipeline"]["TestCases"]["Case"]["InspectSource"] = "Missing"
    with pytest.raises(ScenarioError, match=r"no MockedResponses\.Missing"):
        load_file(_write(tmp_path, dangling))
