"""`ticketflow show EXECUTION`: one execution as the console shows it, or its raw history (--json)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ticketflow.ops.target import add_target_options, aws_target, fail, home_of, open_store, operational_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="one execution: which fix fits, its files, the state machine with the path "
                                    "taken, each state with status, duration, attempts, error and cause")
    p.add_argument("execution", metavar="EXECUTION",
                   help="execution name, ARN, or a unique prefix of the name")
    p.add_argument("--io", action="store_true", help="also print each state's input and output JSON")
    p.add_argument("--events", action="store_true",
                   help="also print the event history as the console's Events tab lists it")
    p.add_argument("--json", action="store_true",
                   help="print DescribeExecution and the raw GetExecutionHistory events as JSON")
    p.add_argument("--prices", metavar="FILE",
                   help="price table for the cost block (default: $TICKETFLOW_PRICES, else the bundled "
                        "ticketflow/ops/prices.json)")
    add_target_options(p)
    p.set_defaults(func=main)


def local_context(args: argparse.Namespace, desc: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The definition the local runtime runs, and the run's files that exist (paths in the local bucket)."""
    from ticketcore.storage import LocalStorage
    from ticketflow.local.asl import DEFAULT_DEFINITION
    from ticketflow.local.runtime import LOCAL_BUCKET
    from ticketflow.ops.executions import run_file_keys

    storage = LocalStorage(home_of(args).resolve(), LOCAL_BUCKET)
    files = [(label, str(storage.path(key))) for label, key in run_file_keys(desc) if storage.exists(key)]
    return json.loads(DEFAULT_DEFINITION.read_text(encoding="utf-8")), files


def aws_context(args: argparse.Namespace, desc: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The deployed definition (DescribeStateMachine), and the run's files found in the stack's bucket."""
    from botocore.exceptions import ClientError

    from ticketflow.ops.executions import run_file_keys

    target = aws_target(args)
    machine = target.client("stepfunctions").describe_state_machine(stateMachineArn=desc["stateMachineArn"])
    s3, bucket = target.client("s3"), target.resources.bucket
    files = []
    for label, key in run_file_keys(desc):
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                continue
            files.append((label, f"s3://{bucket}/{key} (not checked: {err.response['Error'].get('Code')})"))
            continue
        files.append((label, f"s3://{bucket}/{key}"))
    return json.loads(machine["definition"]), files


def run_report(args: argparse.Namespace, desc: dict[str, Any]) -> dict[str, Any] | None:
    """The execution's run report, from the local bucket or the stack's (None: none written, or unreadable)."""
    from ticketflow.ops.executions import aws_run_report, local_run_report

    unreadable: tuple[type[BaseException], ...] = (ValueError, *operational_errors())
    try:
        if args.target == "aws":
            target = aws_target(args)
            return aws_run_report(target.client("s3"), target.resources.bucket, desc)
        return local_run_report(home_of(args), desc)
    except unreadable:  # the rest of `show` stands without it
        return None


def cost_lines(args: argparse.Namespace, desc: dict[str, Any], events: list[dict[str, Any]],
               prices: Any) -> list[str]:
    """The "Cost (estimated at <region> prices of <date>)" block, or one line saying why there is none (an
    execution the model cannot cost; an unusable price table is refused before, by `main`)."""
    from ticketflow.ops.cost import CostError, render_cost_block
    from ticketflow.ops.cost_sources import aws_cost, local_cost

    unusable: tuple[type[BaseException], ...] = (CostError, *operational_errors())
    try:
        cost = (aws_cost(aws_target(args), desc, events, prices) if args.target == "aws"
                else local_cost(home_of(args), desc, events, prices))
    except unusable as err:  # the rest of `show` stands without it
        return [f"Cost       not computed: {err}"]
    return render_cost_block(cost)


def main(args: argparse.Namespace) -> int:
    from ticketflow.ops.cost import CostError, PriceTable
    from ticketflow.ops.executions import resolve
    from ticketflow.ops.render import render_events, render_history_json, render_run_report, render_show

    try:
        prices = PriceTable.load(args.prices)
    except CostError as err:  # the user's own file: an error, as `executions --cost` says it
        return fail(str(err))
    try:
        store = open_store(args)
        desc = resolve(store, args.execution)
        events = store.history(desc["executionArn"])
        if args.json:
            print(render_history_json(desc, events))
            return 0
        definition, files = (aws_context if args.target == "aws" else local_context)(args, desc)
    except operational_errors() as err:
        return fail(str(err))
    print(render_show(desc, events, io=args.io, definition=definition, files=files))
    print("")
    print("\n".join(render_run_report(run_report(args, desc))))
    print("")
    print("\n".join(cost_lines(args, desc, events, prices)))
    if args.events:
        print("\nEvents")
        print(render_events(events))
    return 0
