"""The cost model (ticketflow/ops/cost.py) on hand-built histories, with hand-computed figures at the bundled
prices (Glue $0.44/DPU-hour, Flex $0.29; Lambda $0.0000166667/GB-s + $0.20/1M requests; Step Functions
$0.025/1,000 transitions; S3 $0.005/1,000 PUT-class, $0.0004/1,000 GET-class), and the commands and pages
that show it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.records import DQ_REDRIVEN, GLUE_FAILED, OK, T0, Recorder, dq_redriven, glue_failed, succeeded
from ticketcore.sizing import FUNCTION_MEMORY_MB, GLUE_DPU_PER_WORKER
from ticketflow.cli import main
from ticketflow.local.asl import load_definition
from ticketflow.ops.cost import (
    CostError,
    PriceTable,
    RunFacts,
    StackSizing,
    execution_cost,
    glue_run_cost,
    s3_requests,
    state_transitions,
)

SIZING = StackSizing("G.1X", 2, memory_mb={**FUNCTION_MEMORY_MB, "validate": 3008})
DEFINITION = load_definition()


@pytest.fixture
def prices(monkeypatch: pytest.MonkeyPatch) -> PriceTable:
    monkeypatch.delenv("TICKETFLOW_PRICES", raising=False)
    return PriceTable.load()


def events(recorder: Recorder) -> list[dict]:
    return recorder.events


# ---------------------------------------------------------------- Glue
def test_a_short_run_pays_glues_one_minute_minimum(prices: PriceTable) -> None:
    # GIVEN a 23 s standard run on 2 G.1X workers WHEN it is priced THEN 2 DPU x 60 s, not x 23 s
    run = glue_run_cost({"Id": "jr_a", "ExecutionTime": 23}, SIZING, prices)
    assert run.dpu_seconds == 120.0
    assert run.usd == pytest.approx(120 / 3600 * 0.44)  # $0.014667
    assert "1-minute minimum (23 s run)" in run.basis


def test_a_long_run_pays_its_execution_time_times_capacity(prices: PriceTable) -> None:
    job_run = {"Id": "jr_b", "ExecutionTime": 150, "WorkerType": "G.2X", "NumberOfWorkers": 5}
    run = glue_run_cost(job_run, SIZING, prices)  # the job run's own sizes win over the stack's
    assert (run.worker_type, run.workers, run.dpu_seconds) == ("G.2X", 5, 1500.0)
    assert run.usd == pytest.approx(1500 / 3600 * 0.44)  # $0.183333
    assert "minimum" not in run.basis


def test_reported_dpu_seconds_replace_the_capacity_estimate(prices: PriceTable) -> None:
    # An auto-scaled run used 386 DPU-s of the 10 x 200 s it could have used.
    job_run = {"Id": "jr_c", "ExecutionTime": 200, "WorkerType": "G.1X", "NumberOfWorkers": 10,
               "DPUSeconds": 386.0}
    run = glue_run_cost(job_run, SIZING, prices)
    assert run.dpu_seconds == 386.0
    assert run.usd == pytest.approx(386 / 3600 * 0.44)  # $0.047178
    assert run.basis.startswith("DPUSeconds reported by Glue")


def test_flex_runs_are_priced_at_the_flex_rate(prices: PriceTable) -> None:
    reported = glue_run_cost({"Id": "jr_d", "ExecutionTime": 30, "ExecutionClass": "FLEX", "DPUSeconds": 45.0},
                             SIZING, prices)
    assert reported.usd == pytest.approx(0.003625)  # 45 DPU-s at $0.29/DPU-hour, no minimum on DPUSeconds
    flex_stack = StackSizing("G.1X", 2, glue_execution_class="FLEX")
    local = glue_run_cost({"Id": "jr_e", "ExecutionTime": 30}, flex_stack, prices)
    assert (local.execution_class, local.dpu_seconds) == ("FLEX", 120.0)
    assert local.usd == pytest.approx(120 / 3600 * 0.29)  # $0.009667


def test_memory_optimized_workers_need_their_own_price(prices: PriceTable) -> None:
    with pytest.raises(CostError, match=r"R\.1X .*memory_optimized_dpu_hour"):
        glue_run_cost({"Id": "jr_f", "ExecutionTime": 90, "WorkerType": "R.1X"}, SIZING, prices)


def test_every_worker_type_the_stack_accepts_has_a_dpu_figure() -> None:
    from infra.settings import GLUE_WORKER_TYPES

    assert set(GLUE_WORKER_TYPES) == set(GLUE_DPU_PER_WORKER)


# ---------------------------------------------------------------- whole executions
def test_failed_glue_attempts_each_pay_and_retries_are_transitions(prices: PriceTable) -> None:
    # GIVEN two Glue attempts that each failed after ExecutionTime 38 s (the cause is the JobRun)
    cost = execution_cost(events(glue_failed()), "FAILED", SIZING, prices, DEFINITION)
    assert [run.dpu_seconds for run in cost.glue] == [120.0, 120.0]
    assert cost.usd["glue"] == pytest.approx(240 / 3600 * 0.44)
    # InspectSource, TransformTickets entered; one retried attempt
    assert (cost.transitions, cost.redrives) == (3, 0)
    by_fn = {fn.function: fn for fn in cost.lambdas}
    assert (by_fn["inspect"].duration_ms, by_fn["inspect"].gb_seconds) == (900, 0.45)
    # trigger and notify (it failed) at their assumed durations: 0.3 s and 0.5 s at 256 MB
    assert (by_fn["trigger"].gb_seconds, by_fn["notify"].gb_seconds) == (0.075, 0.125)
    assert not by_fn["notify"].measured


def test_retried_lambda_attempts_are_each_billed(prices: PriceTable) -> None:
    # GIVEN validate failing once after 3 s (a service error, retried 2 s later) and succeeding after 3 s
    r = Recorder("retry-1", "support_ticket/raw/a.csv", T0)
    r.task("ValidateOutput", "validate", {"success": True}, seconds=3.0, retry_wait=2.0,
           failures=[("Lambda.ServiceException", "busy")])
    r.task("Publish", "publish", {"files": []}, seconds=0.5)
    r.succeed()
    cost = execution_cost(events(r), "SUCCEEDED", SIZING, prices, DEFINITION)
    validate = next(fn for fn in cost.lambdas if fn.function == "validate")
    # THEN 2 invocations, 6,000 ms (the 2 s wait between them is not billed) at 3,008 MB = 17.625 GB-s
    assert (validate.invocations, validate.duration_ms, validate.gb_seconds) == (2, 6000, 17.625)
    assert validate.usd == pytest.approx(17.625 * 0.0000166667 + 2 * 0.20 / 1e6)  # $0.000294151
    # ValidateOutput, Publish, Published entered + 1 retry
    assert cost.transitions == 4


def test_a_redriven_execution_counts_both_runs_and_the_redrive(prices: PriceTable) -> None:
    # Inspect, Transform, Validate (failed); redrive; Validate (failed again): 4 states entered + 1 redrive
    assert state_transitions(events(dq_redriven())) == (5, 1)
    r = Recorder("redrive-ok", "support_ticket/raw/b.csv", T0)
    r.task("InspectSource", "inspect", {}, seconds=1.0)
    r.task("TransformTickets", "transform", {}, glue=True, seconds=30)
    r.task("ValidateOutput", "validate", None, failures=[("DataQualityError", "x")], succeed=False)
    r.fail("DataQualityError", "x")
    r.redriven(after=60)
    r.task("ValidateOutput", "validate", {"success": True}, seconds=2.0)
    r.task("Publish", "publish", {"files": []}, seconds=0.5)
    r.succeed()
    cost = execution_cost(events(r), "SUCCEEDED", SIZING, prices, DEFINITION)
    assert (cost.transitions, cost.redrives) == (7, 1)  # 3 + (Validate, Publish, Published) + 1
    assert cost.usd["stepfunctions"] == pytest.approx(0.000175)


def test_s3_requests_follow_the_steps_that_ran() -> None:
    # A whole run with 2 staged files and quarantined rows:
    # PUT-class 1 upload + 2 inspect + (2 files + report + quarantine) + 2 validate + (lock, LIST, 2 COPY, 2) = 15
    # GET-class 3 inspect + (3 assets + inspection + scan + 1 split) + (report + 2 files) + (5 + 2 HEAD) = 19
    r = succeeded()
    facts = RunFacts(source_bytes=1000, staged_files=2, rows_quarantined=3)
    assert s3_requests(events(r), facts) == (15, 19)
    # No quarantine, a 300 MiB file (3 splits of 128 MiB)
    assert s3_requests(events(r), RunFacts(300 * 2**20, 2, 0)) == (14, 21)
    # Only InspectSource ran (SchemaError): the upload and inspect's own requests
    inspect_only = Recorder("x", "support_ticket/raw/x.csv", T0)
    inspect_only.task("InspectSource", "inspect", None, failures=[("SchemaError", "no ticket_id")], succeed=False)
    assert s3_requests(events(inspect_only)) == (3, 3)


def test_the_total_is_the_sum_of_the_services(prices: PriceTable) -> None:
    cost = execution_cost(events(succeeded()), "SUCCEEDED", SIZING, prices, DEFINITION,
                          facts=RunFacts(2048, 2, 0))
    assert cost.total_usd == pytest.approx(sum(cost.usd.values()))
    assert cost.usd["s3"] == pytest.approx(14 * 0.005 / 1000 + 19 * 0.0004 / 1000)
    doc = cost.as_dict()
    assert doc["prices"]["region"] == "us-east-1" and doc["s3_requests"]["estimated"] is True
    # The Glue task in these records has no JobRun: its 62.5 s task duration x 2 DPU
    assert doc["glue_dpu_seconds"] == 125.0


def test_cost_output_holds_no_cell_value(prices: PriceTable) -> None:
    # GIVEN a failure whose cause quotes a customer's cell WHEN costed THEN the cell is nowhere in the cost
    cell = "jane.doe@example.com"
    r = Recorder("cells", "support_ticket/raw/c.csv", T0)
    cause = json.dumps({"Id": "jr_x", "JobRunState": "FAILED", "ExecutionTime": 12, "ErrorMessage": f"bad {cell}"})
    r.task("TransformTickets", "transform", None, glue=True, failures=[("States.TaskFailed", cause)], succeed=False)
    r.fail("States.TaskFailed", cause)
    from ticketflow.ops.cost import render_cost_block

    cost = execution_cost(events(r), "FAILED", SIZING, prices, DEFINITION)
    assert cell not in json.dumps(cost.as_dict()) and cell not in "\n".join(render_cost_block(cost))


# ---------------------------------------------------------------- the price table
def test_a_price_override_file_changes_only_what_it_gives(tmp_path: Path, prices: PriceTable,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "prices.json"
    override.write_text(json.dumps({"region": "eu-west-1", "taken": "2026-11-30", "glue": {"dpu_hour": 0.48}}))
    table = PriceTable.load(override)
    assert (table.region, table.taken, table.glue_dpu_hour) == ("eu-west-1", "2026-11-30", 0.48)
    assert table.lambda_gb_second == prices.lambda_gb_second  # left out: the bundled price
    assert glue_run_cost({"Id": "jr", "ExecutionTime": 10}, SIZING, table).usd == pytest.approx(0.016)
    monkeypatch.setenv("TICKETFLOW_PRICES", str(override))
    assert PriceTable.load().region == "eu-west-1"


@pytest.mark.parametrize(("doc", "problem"), [
    ({"region": "eu-west-1"}, "'taken' must be given"),
    ({"region": "eu-west-1", "taken": "2026-11-30", "s3": {"per_thousand_get_head": "cheap"}},
     r"s3.per_thousand_get_head must be a number >= 0, found 'cheap'"),
    ({"region": "eu-west-1", "taken": "last week"}, "Invalid isoformat string"),
    # A typo is refused, never silently ignored (the bundled price would be used under the file's region).
    ({"region": "eu-west-1", "taken": "2026-11-30", "glu": {"dpu_hour": 0.29}},
     r"unknown entry 'glu' \(did you mean 'glue'\?\)"),
    ({"region": "eu-west-1", "taken": "2026-11-30", "glue": {"dpu_hours": 0.29}},
     r"unknown entry 'glue.dpu_hours' \(did you mean 'glue.dpu_hour'\?\)"),
])
def test_a_bad_price_file_is_refused_saying_what_was_found(tmp_path: Path, doc: dict, problem: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CostError, match=problem):
        PriceTable.load(path)


def test_stack_sizing_reads_cdk_json_and_names_a_bad_value(tmp_path: Path) -> None:
    sizing = StackSizing.from_cdk_json()
    assert sizing.glue_worker_type in GLUE_DPU_PER_WORKER and sizing.memory_mb["trigger"] == 256
    with pytest.raises(CostError, match=r"glue_worker_type 'G\.3X'"):
        StackSizing.from_context({"glue_worker_type": "G.3X", "glue_workers": 2, "validate_memory_mb": 3008})
    flex = StackSizing.from_context({"glue_worker_type": "G.2X", "glue_workers": "4", "validate_memory_mb": "2048",
                                     "glue_execution_class": "flex", "glue_auto_scaling": "true"})
    assert (flex.glue_execution_class, flex.glue_auto_scaling, flex.memory_mb["validate"]) == ("FLEX", True, 2048)


# ---------------------------------------------------------------- commands
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TICKETFLOW_PRICES", raising=False)
    home = tmp_path / "home"
    for recorder in (succeeded(), glue_failed(), dq_redriven()):
        recorder.write(home)
    return home


def test_executions_cost_lists_each_execution_and_a_total(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["executions", "--cost", "--wide", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert rows[GLUE_FAILED][1:6] == ["FAILED", "240.0", "0.650", "3", "14"]
    assert rows[OK][1:5] == ["SUCCEEDED", "125.0", "9.887", "5"]
    assert rows[DQ_REDRIVEN][4] == "5"
    assert rows["total"][1:3] == ["3", "costed"] and rows["total"][5] == str(3 + 5 + 5)
    assert "USD estimated at us-east-1 prices of" in out


def test_show_prints_the_cost_block(home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    override = tmp_path / "p.json"
    override.write_text(json.dumps({"region": "eu-west-1", "taken": "2026-11-30"}))
    assert main(["show", GLUE_FAILED, "--home", str(home), "--prices", str(override)]) == 0
    out = capsys.readouterr().out
    block = out[out.index("Cost (estimated at eu-west-1 prices of 2026-11-30)"):].splitlines()
    assert block[1].split()[:3] == ["Glue", "120.0", "DPU-s"] and "1-minute minimum (38 s run)" in out
    assert any(line.split()[:2] == ["Lambda", "notify"] and "(assumed)" in line for line in block)
    assert any(line.split()[:2] == ["Total", "$0.0294"] for line in block)
    assert max(len(line) for line in block) <= 100


def test_an_unusable_price_table_is_an_error_for_show_and_executions_alike(
        home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["show", OK, "--home", str(home), "--prices", str(bad)]) == 2
    assert f"price table {bad} is not JSON" in capsys.readouterr().err
    assert main(["executions", "--cost", "--home", str(home), "--prices", str(bad)]) == 2
    assert f"price table {bad} is not JSON" in capsys.readouterr().err
    # --prices alone would be ignored: refused instead
    assert main(["executions", "--home", str(home), "--prices", str(bad)]) == 2
    assert "--prices is the price table of --cost: add --cost" in capsys.readouterr().err


def test_a_start_glue_refused_is_not_billed(prices: PriceTable) -> None:
    from ticketflow.ops.cost import job_runs_in_history

    # GIVEN StartJobRun refused twice (no job run: the cause is Glue's API error), then a run of 38 s
    t = T0
    history = [{"id": 1, "type": "TaskStateEntered", "timestamp": t,
                "stateEnteredEventDetails": {"name": "TransformTickets"}}]
    for i, outcome in enumerate(["refused", "refused", "ran"]):
        start, end = t + timedelta(seconds=10 * i), t + timedelta(seconds=10 * i + (40 if outcome == "ran" else 0.03))
        history.append({"id": 10 * i + 2, "type": "TaskScheduled", "timestamp": start})
        history.append({"id": 10 * i + 3, "type": "TaskStarted", "timestamp": start,
                        "taskStartedEventDetails": {"resourceType": "glue", "resource": "startJobRun.sync"}})
        if outcome == "refused":
            history.append({"id": 10 * i + 4, "type": "TaskFailed", "timestamp": end, "taskFailedEventDetails": {
                "error": "Glue.ConcurrentRunsExceededException", "cause": "Concurrent runs exceeded (Service: Glue)"}})
        else:
            history.append({"id": 10 * i + 4, "type": "TaskSucceeded", "timestamp": end, "taskSucceededEventDetails": {
                "output": json.dumps({"Id": "jr_1", "JobRunState": "SUCCEEDED", "ExecutionTime": 38})}})
    runs = job_runs_in_history(history)
    # THEN only the run that ran is billed: 120 DPU-s (the 1-minute minimum on 2 x G.1X), not three of them
    assert [r["Id"] for r in runs] == ["jr_1"]
    assert glue_run_cost(runs[0], SIZING, prices).dpu_seconds == 120.0
    # and a task that timed out (its job run may have been running) is billed for its duration
    history[-1] = {**history[-1], "type": "TaskTimedOut", "taskTimedOutEventDetails": {"error": "States.Timeout"}}
    assert [(r["Id"], r["_task_seconds"]) for r in job_runs_in_history(history)] == [("?", 40.0)]


def test_the_console_execution_page_shows_the_cost(home: Path) -> None:
    from ticketflow.console.app import create_app

    app = create_app(home, None, DEFINITION)
    page = app.test_client().get(f"/executions/{DQ_REDRIVEN}").get_data(as_text=True)
    assert "Cost (estimated at us-east-1 prices of" in page
    assert '<tr data-service="Step Functions"><td>Step Functions</td><td class="num">5 transitions</td>' in page
    assert "Standard workflow, 1 redrive(s)" in page


def test_redrive_wait_is_not_billed_as_lambda_time(prices: PriceTable) -> None:
    # The ten minutes between the failure and the redrive are no invocation's time.
    cost = execution_cost(events(dq_redriven()), "FAILED", SIZING, prices, DEFINITION)
    validate = next(fn for fn in cost.lambdas if fn.function == "validate")
    assert (validate.invocations, validate.duration_ms) == (2, 4500)
    assert timedelta(milliseconds=validate.duration_ms) < timedelta(minutes=1)


class _Answers:
    """A stand-in for AwsTarget: each client answers the one call aws_cost makes of it."""

    class resources:  # named as the attribute AwsTarget has
        bucket = "ticketflow-data"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def client(self, service: str) -> object:
        answers = self

        class Client:
            def get_job_run(self, **kwargs: object) -> dict:
                answers.calls.append(("glue", kwargs))
                return {"JobRun": {"Id": kwargs["RunId"], "JobRunState": "SUCCEEDED", "ExecutionTime": 95,
                                   "WorkerType": "G.2X", "NumberOfWorkers": 4, "ExecutionClass": "FLEX",
                                   "DPUSeconds": 300.0}}

            def get_function_configuration(self, **kwargs: object) -> dict:
                answers.calls.append(("lambda", kwargs))
                return {"MemorySize": 1024}

            def get_object(self, **kwargs: object) -> dict:
                import io

                answers.calls.append(("s3", kwargs))
                report = {"rows_quarantined": 0, "outputs": {"files": [{"uri": "a"}, {"uri": "b"}, {"uri": "c"}]}}
                return {"Body": io.BytesIO(json.dumps(report).encode())}

        return Client()


def test_on_aws_the_cost_comes_from_getjobrun_and_the_functions_configuration(prices: PriceTable) -> None:
    from ticketflow.ops.cost_sources import aws_cost

    # GIVEN an execution whose Glue task returned a JobRun without DPUSeconds (Glue fills it in afterwards)
    r = Recorder("aws-1", "support_ticket/raw/d.csv", T0)
    r.task("TransformTickets", "transform", None, glue=True, seconds=120)
    r.task("ValidateOutput", "validate", {"success": True}, seconds=2.0)
    r.succeed()
    glue_end = next(e for e in r.events if e["type"] == "TaskSucceeded")
    glue_end["taskSucceededEventDetails"]["output"] = json.dumps(
        {"Id": "jr_aws", "JobName": "TicketflowJob", "JobRunState": "SUCCEEDED", "ExecutionTime": 95})
    validate_scheduled = [e for e in r.events if e["type"] == "TaskScheduled"][1]
    validate_scheduled["taskScheduledEventDetails"]["parameters"] = json.dumps(
        {"FunctionName": "arn:aws:lambda:us-east-1:1:function:Ticketflow-Validate", "Payload": {}})
    target = _Answers()
    cost = aws_cost(target, {"name": "aws-1", "status": "SUCCEEDED"}, r.events, prices)
    # THEN GetJobRun's DPUSeconds at the Flex price, validate at its deployed 1,024 MB, 3 staged files
    assert ("glue", {"JobName": "TicketflowJob", "RunId": "jr_aws", "PredecessorsIncluded": False}) in target.calls
    assert (cost.glue[0].dpu_seconds, cost.glue[0].execution_class) == (300.0, "FLEX")
    assert cost.usd["glue"] == pytest.approx(300 / 3600 * 0.29)
    validate = next(fn for fn in cost.lambdas if fn.function == "validate")
    assert (validate.memory_mb, validate.gb_seconds) == (1024, 2.0)
    assert ("s3", {"Bucket": "ticketflow-data", "Key": "support_ticket/reports/aws-1/run_report.json"}) in target.calls
    # PUT-class: upload 1 + Transform (3 files + report) + Validate 2 = 7
    assert cost.s3_put == 7
