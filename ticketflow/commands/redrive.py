"""`ticketflow redrive EXECUTION`: resume a failed execution at the state that failed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("redrive", help="resume a FAILED/TIMED_OUT/ABORTED execution at the state that failed")
    p.add_argument("execution", help="execution name (or a unique prefix of it), or an ARN with --target aws")
    p.add_argument("--home", type=Path, help="local bucket and state (default .ticketflow/)")
    p.add_argument("--contract", type=Path, help="contract YAML (default: contracts/support_tickets.yaml)")
    p.add_argument("--target", choices=["local", "aws"], default="local")
    p.add_argument("--stack", default="Ticketflow", help="deployed stack name (with --target aws)")
    p.add_argument("--region")
    p.add_argument("--profile")
    p.set_defaults(func=main)


def resolve_local(home: Path, wanted: str) -> str:
    names = sorted(p.stem for p in (home / "executions").glob("*.json") if not p.name.endswith(".running.json"))
    wanted = wanted.rsplit(":", 1)[-1]
    if wanted in names:
        return wanted
    matches = [n for n in names if n.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SystemExit(f"no execution named {wanted!r} under {home / 'executions'}")
    raise SystemExit(f"{wanted!r} matches several executions: {', '.join(matches)}")


def redrive_aws(args: argparse.Namespace) -> int:
    import boto3

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    sfn = session.client("stepfunctions")
    arn = args.execution
    if not arn.startswith("arn:"):
        from ticketflow.ops.aws import stack_resources

        arn = f"{stack_resources(session, args.stack)['StateMachineArn'].replace(':stateMachine:', ':execution:')}:{arn}"
    response = sfn.redrive_execution(executionArn=arn)
    print(f"redriven {arn} at {response['redriveDate']}; follow it with: ticketflow show {arn} --target aws")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.target == "aws":
        return redrive_aws(args)
    from ticketflow.commands.run import Progress, describe_summary
    from ticketflow.local.runtime import LocalRuntime, RedriveRefused, default_home

    home = (args.home or default_home()).resolve()
    name = resolve_local(home, args.execution)
    with LocalRuntime(home=home, contract=args.contract) as runtime:
        try:
            desc = runtime.redrive(name, on_event=Progress(name, enabled=True))
        except RedriveRefused as refused:
            print(f"cannot redrive: {refused}", file=sys.stderr)
            return 2
        record = runtime._load_record(name)
        print()
        print(describe_summary(runtime.summary(name)))
        print(f"  redrive count {record['redrive_count']}")
    return 0 if desc["status"] == "SUCCEEDED" else 1
