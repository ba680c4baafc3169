"""`ticketflow reprocess EXECUTION | --prefix P`: run uploads again from the start (after a contract change).

A redrive resumes the failed state with what that run already staged; a reprocess starts a new execution of
the same object version from the first state, so a new alias, synonym or format in the contract is used.
Publication replaces the key's files exactly as a re-upload does."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ticketflow.commands.executions import when
from ticketflow.ops.target import add_target_options, aws_target, fail, home_of, operational_errors


def register(sub: argparse._SubParsersAction) -> None:
    from ticketflow.cli import EXIT_CODES

    p = sub.add_parser(
        "reprocess", epilog=EXIT_CODES,
        help="run uploads again from the start (after a contract change): one execution's, or every source "
             "key's under a prefix")
    p.add_argument("execution", nargs="?", metavar="EXECUTION",
                   help="execution name, ARN or unique name prefix whose upload runs again")
    p.add_argument("--prefix", metavar="P",
                   help="instead of EXECUTION: every source key starting with P (support_ticket/raw/ may be left "
                        "out; '' for all), each with its newest execution's upload")
    p.add_argument("--since", type=when, metavar="TIME",
                   help="with --prefix: only keys with an execution started at or after TIME (ISO 8601, or 30m, "
                        "6h, 2d ago)")
    p.add_argument("--dry-run", action="store_true", help="list what would run, start nothing")
    p.add_argument("--max-concurrent", type=int, metavar="N",
                   help="at most N of these executions running at once (default: the Glue job's MaxConcurrentRuns: "
                        "2 locally, the deployed job's on AWS)")
    p.add_argument("--contract", type=Path,
                   help="local: contract YAML (default: contracts/support_tickets.yaml); on AWS the deployed one")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of progress")
    add_target_options(p)
    p.set_defaults(func=main)


def _plan(args: argparse.Namespace, store: Any, revision: str) -> Any:
    from ticketflow.ops.reprocess import plan_one, plan_prefix

    if args.prefix is not None:
        return plan_prefix(store, args.prefix, revision, since=args.since)
    return plan_one(store, args.execution, revision)


def deployed_glue_job(target: Any) -> dict[str, Any]:
    """GetJob of the Glue job the deployed definition's TransformTickets state runs."""
    from ticketflow.ops.aws import TargetError

    sfn = target.client("stepfunctions")
    machine = sfn.describe_state_machine(stateMachineArn=target.resources.state_machine_arn)
    state = json.loads(machine["definition"]).get("States", {}).get("TransformTickets", {})
    job_name = (state.get("Parameters") or {}).get("JobName")
    if not isinstance(job_name, str):
        raise TargetError(f"the deployed definition of {target.resources.state_machine_arn} has no TransformTickets "
                          "state naming a Glue JobName: is this a ticketflow stack?")
    return dict(target.client("glue").get_job(JobName=job_name)["Job"])


def _print_plan(plan: Any, dry_run: bool) -> None:
    verb = "would run" if dry_run else "runs"
    for run in plan.runs:
        if run.of == run.name:  # its newest execution is this very reprocess
            print(f"{run.source_key}: already reprocessed as {run.name} with this contract and code")
            continue
        print(f"{run.source_key}: {verb} again as {run.name} (the upload of {run.of})")
    for passed in plan.passed_over:
        print(f"{passed['source_key']}: passed over: {passed['reason']}")


def main(args: argparse.Namespace) -> int:
    from ticketflow.ops.executions import LocalExecutionStore
    from ticketflow.ops.reprocess import ReprocessRefused, aws_revision, local_revision

    refused: tuple[type[BaseException], ...] = (ReprocessRefused, *operational_errors())
    if (args.execution is None) == (args.prefix is None):
        return fail("give one EXECUTION or --prefix P (not both)" if args.execution else
                    "give one EXECUTION (name, ARN or unique prefix) or --prefix P")
    if args.since is not None and args.prefix is None:
        return fail("--since narrows --prefix; with one EXECUTION it has no use")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        return fail("--max-concurrent must be at least 1")
    if args.target == "aws" and args.contract:
        return fail("--contract applies to the local runtime only: on AWS, change contracts/support_tickets.yaml "
                    "and `cdk deploy`; a reprocess then runs with the deployed contract")
    try:
        if args.target == "aws":
            target = aws_target(args)
            store: Any = target.store()
            glue_job = deployed_glue_job(target)
            plan = _plan(args, store, aws_revision(glue_job))
            if args.max_concurrent is None:
                args.max_concurrent = int((glue_job.get("ExecutionProperty") or {}).get("MaxConcurrentRuns") or 1)
        else:
            from ticketcore.contract import DEFAULT_CONTRACT_PATH

            store = LocalExecutionStore(home_of(args).resolve())
            args.max_concurrent = args.max_concurrent or 2  # the local Glue job's MaxConcurrentRuns
            plan = _plan(args, store, local_revision(args.contract or DEFAULT_CONTRACT_PATH))
    except refused as err:
        return fail(f"cannot reprocess: {err}")
    if not args.json or args.dry_run:
        _print_plan(plan, args.dry_run)
    if not plan.runs:
        print(f"nothing to reprocess{' under ' + repr(args.prefix) if args.prefix is not None else ''}")
        return 0 if not plan.passed_over else 1
    if args.dry_run:
        return 0
    if args.target == "aws":
        return _on_aws(target, plan, args)
    return _locally(plan, args)


POLL_SECONDS = 5.0  # between looks at how many reprocess executions still run on AWS


def _on_aws(target: Any, plan: Any, args: argparse.Namespace, poll: float = POLL_SECONDS) -> int:
    """StartExecution for each, at most `--max-concurrent` of them RUNNING at a time (more would queue on the
    Glue job's MaxConcurrentRuns and use up the definition's retries); returns once the last has started."""
    import time

    from botocore.exceptions import ClientError

    sfn, machine = target.client("stepfunctions"), target.resources.state_machine_arn
    started: list[str] = []
    existing: list[str] = []
    running: list[str] = []  # execution ARNs started here and last seen RUNNING
    for run in plan.runs:
        while len(running) >= args.max_concurrent:
            running = [arn for arn in running if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"]
            if len(running) >= args.max_concurrent:
                time.sleep(poll)
        try:
            response = sfn.start_execution(stateMachineArn=machine, name=run.name,
                                           input=json.dumps(run.input, sort_keys=True))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                return fail(f"cannot reprocess {run.source_key}: {err}")
            existing.append(run.name)
            continue
        started.append(run.name)
        running.append(response["executionArn"])
        print(f"started {run.name}", flush=True)
    print(f"started {len(started)}; already reprocessed under this deployment (not started again): "
          f"{len(existing)}" + (f" ({', '.join(existing)})" if existing else ""))
    print("follow them with: ticketflow executions --target aws")
    return 0


def _locally(plan: Any, args: argparse.Namespace) -> int:
    from ticketflow.commands.run import Progress, describe_summary
    from ticketflow.local.interrupts import Interrupts
    from ticketflow.local.runtime import LocalRuntime

    summaries: list[dict[str, Any]] = []
    existing: list[str] = []
    with LocalRuntime(home=home_of(args), contract=args.contract,
                      max_concurrent_runs=args.max_concurrent) as runtime, Interrupts() as interrupts:

        def one(run: Any) -> dict[str, Any] | None:
            if interrupts.draining.is_set():
                return None
            if not runtime.start_named(run.name, run.input):
                existing.append(run.name)
                return None
            runtime.wait(run.name, on_event=Progress(run.name, enabled=not args.json),
                         should_abort=interrupts.aborting.is_set)
            return runtime.summary(run.name)

        # Bounded: at most N executions in flight (the local Glue job runs N at once as well).
        with ThreadPoolExecutor(max_workers=args.max_concurrent, thread_name_prefix="reprocess") as pool:
            for summary in pool.map(one, plan.runs):
                if summary is not None:
                    summaries.append(summary)
    not_started = [r.name for r in plan.runs if r.name not in existing
                   and r.name not in {s["name"] for s in summaries}]
    if args.json:
        print(json.dumps({"executions": summaries, "already_reprocessed": existing, "not_started": not_started,
                          "passed_over": plan.passed_over}, indent=2, default=str))
    else:
        print()
        for s in summaries:
            print(describe_summary(s))
        if existing:
            print(f"already reprocessed with this contract and code (not run again): {', '.join(existing)}")
        if not_started:
            print(f"not started (interrupted): {', '.join(not_started)}")
        succeeded = sum(s["status"] == "SUCCEEDED" for s in summaries)
        print(f"\nreprocessed {len(summaries)} upload(s): {succeeded} succeeded, {len(summaries) - succeeded} not; "
              f"{len(existing)} already done; {len(plan.passed_over)} passed over", file=sys.stdout)
    if interrupts.draining.is_set():
        return 130
    ok = all(s["status"] == "SUCCEEDED" for s in summaries) and not plan.passed_over
    return 0 if ok else 1
