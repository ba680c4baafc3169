"""Where the cost model's inputs come from: the local home (cdk.json's settings, the history's job runs, the
run report in the local bucket) or a deployed stack (GetJobRun, GetFunctionConfiguration, the run report in
its bucket). The model itself is `ticketflow.ops.cost`; commands and the console call `local_cost` or
`aws_cost`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ticketflow.ops.cost import (
    CostError,
    ExecutionCost,
    PriceTable,
    StackSizing,
    execution_cost,
    facts_from_report,
    job_runs_in_history,
    lambda_states,
)

Events = Sequence[Mapping[str, Any]]


def _definition() -> dict[str, Any]:
    from ticketflow.local.asl import load_definition

    return load_definition()


def local_cost(home: Path, desc: Mapping[str, Any], events: Events, prices: PriceTable,
               sizing: StackSizing | None = None) -> ExecutionCost:
    """What the execution would have cost on AWS with the stack's settings (cdk.json): the Glue job run's
    ExecutionTime as the local runtime recorded it in the history, and the run report from the local bucket."""
    from ticketflow.ops.executions import local_run_report

    report = local_run_report(home, desc)
    return execution_cost(events, str(desc.get("status", "")), sizing or StackSizing.from_cdk_json(), prices,
                          _definition(), facts=facts_from_report(report, events))


def aws_cost(target: Any, desc: Mapping[str, Any], events: Events, prices: PriceTable,
             sizing: StackSizing | None = None) -> ExecutionCost:
    """What the execution cost on AWS: each job run as GetJobRun returns it now (DPUSeconds is filled in after
    the run ends), each function's memory from GetFunctionConfiguration, the run report from the stack's bucket.
    cdk.json's settings only fill what AWS does not answer (the trigger's and notify's memory)."""
    from botocore.exceptions import ClientError

    from ticketflow.ops.executions import aws_run_report

    glue = target.client("glue")
    runs = []
    for run in job_runs_in_history(events):
        try:
            fresh = glue.get_job_run(JobName=run["JobName"], RunId=run["Id"], PredecessorsIncluded=False)["JobRun"]
        except (KeyError, ClientError):  # no id in the history, or the run is gone (Glue keeps 90 days)
            fresh = run
        runs.append({**fresh, "_task_seconds": run.get("_task_seconds")})
    memory = {}
    by_state = lambda_states(_definition())
    client = target.client("lambda")
    for state, arn in _function_arns(events).items():
        if state in by_state:
            try:
                memory[by_state[state]] = int(client.get_function_configuration(FunctionName=arn)["MemorySize"])
            except ClientError:
                continue  # the configured default stands
    report = aws_run_report(target.client("s3"), target.resources.bucket, desc)
    return execution_cost(events, str(desc.get("status", "")), sizing or StackSizing.from_cdk_json(), prices,
                          _definition(), job_runs=runs, facts=facts_from_report(report, events), memory_mb=memory)


def _function_arns(events: Events) -> dict[str, str]:
    """State name -> the FunctionName its lambda:invoke TaskScheduled events passed."""
    from ticketflow.local.history import events_in_states

    found: dict[str, str] = {}
    for state, event in events_in_states(events):
        if event.get("type") == "TaskScheduled":
            details = event.get("taskScheduledEventDetails") or {}
            try:
                params = json.loads(details.get("parameters") or "{}")
            except ValueError:
                continue
            if details.get("resourceType") == "lambda" and isinstance(params, dict) and params.get("FunctionName"):
                found[state] = str(params["FunctionName"])
    return found


def cost_or_reason(compute: Any, *args: Any, **kwargs: Any) -> tuple[ExecutionCost | None, str | None]:
    """(cost, None), or (None, why it could not be computed): a missing price or setting must not hide the
    rest of what `show` or the console prints."""
    try:
        return compute(*args, **kwargs), None
    except CostError as err:
        return None, str(err)
