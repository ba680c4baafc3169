"""`ticketflow redrive EXECUTION`: resume a failed execution at the state that failed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ticketflow.ops.target import add_target_options, aws_target, fail, operational_errors


def register(sub: argparse._SubParsersAction) -> None:
    from ticketflow.cli import EXIT_CODES

    p = sub.add_parser(
        "redrive", epilog=EXIT_CODES,
        help="resume a FAILED/TIMED_OUT/ABORTED execution at the state that failed")
    p.add_argument("execution", help="execution name, a unique prefix of it, or its ARN")
    p.add_argument(
        "--contract", type=Path, help="local: contract YAML (default: contracts/support_tickets.yaml)"
    )
    add_target_options(p)
    p.set_defaults(func=main)


def resolve_local(home: Path, wanted: str) -> str:
    from ticketflow.ops.executions import LocalExecutionStore, resolve

    return str(resolve(LocalExecutionStore(home), wanted)["name"])


REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")


def redrive_on_aws(sfn: Any, state_machine_arn: str, wanted: str) -> str:
    """RedriveExecution on a deployed stack; refuses clearly what AWS would refuse less clearly."""
    from ticketflow.ops.executions import AwsExecutionStore, resolve

    desc = resolve(AwsExecutionStore(sfn, state_machine_arn), wanted)
    if desc["status"] not in REDRIVABLE:
        raise LookupError(
            f"execution {desc['name']} is {desc['status']}: only FAILED, TIMED_OUT or ABORTED "
            "executions can be redriven"
        )
    response = sfn.redrive_execution(executionArn=desc["executionArn"])
    return f"redriven {desc['executionArn']} at {response['redriveDate']}"


def main(args: argparse.Namespace) -> int:
    if args.target == "aws" and args.contract:
        return fail("cannot redrive: --contract applies to the local runtime only; on AWS the deployed Glue job "
                    "reads the contract the stack was deployed with: change contracts/support_tickets.yaml, "
                    "`cdk deploy`, then `ticketflow reprocess NAME --target aws` (a redrive resumes the failed "
                    "state with what is deployed; a reprocess runs the upload again from the start)")
    if args.target == "aws":
        try:
            target = aws_target(args)
            print(
                redrive_on_aws(
                    target.client("stepfunctions"), target.resources.state_machine_arn, args.execution
                )
            )
        except operational_errors() as err:
            return fail(f"cannot redrive: {err}")
        print(f"follow it with: ticketflow show {args.execution} --target aws")
        return 0
    from ticketflow.commands.run import Progress, describe_summary
    from ticketflow.local.interrupts import Interrupts
    from ticketflow.local.runtime import LocalRuntime, RedriveRefused, default_home

    home = (args.home or default_home()).resolve()
    try:
        name = resolve_local(home, args.execution)
    except LookupError as err:
        return fail(f"cannot redrive: {err}")
    with LocalRuntime(home=home, contract=args.contract) as runtime, Interrupts() as interrupts:
        try:
            desc = runtime.redrive(name, on_event=Progress(name, enabled=True),
                                   should_abort=interrupts.aborting.is_set)
        except RedriveRefused as refused:
            print(f"cannot redrive: {refused}", file=sys.stderr)
            return 2
        record = runtime._load_record(name)
        print()
        print(describe_summary(runtime.summary(name)))
        print(f"  redrive count {record['redrive_count']}")
    return 0 if desc["status"] == "SUCCEEDED" else 1
