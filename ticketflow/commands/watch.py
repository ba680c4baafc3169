"""`ticketflow watch`: run the pipeline for every file that lands in the local bucket's raw prefix."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ticketflow.cli import EXIT_CODES

    p = sub.add_parser(
        "watch", epilog=EXIT_CODES,
        help="process files as they land in <home>/bucket/support_ticket/raw/")
    p.add_argument("--home", type=Path, help="local bucket and state (default .ticketflow/)")
    p.add_argument("--contract", type=Path, help="contract YAML (default: contracts/support_tickets.yaml)")
    p.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=2,
        help="the local Glue job's MaxConcurrentRuns (more start later, by the definition's retries)",
    )
    p.add_argument(
        "--no-warm-up",
        action="store_true",
        help="start watching at once; the first files then pay Spark's code generation and JIT warm-up",
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ticketflow.local.runtime import LocalRuntime, _warm_spark
    from ticketflow.local.watch import watch_forever

    with LocalRuntime(
        home=args.home, contract=args.contract, max_concurrent_runs=args.max_concurrent_runs
    ) as runtime:
        try:
            spark = _warm_spark()  # start the JVM now, so the first file does not pay for it
            if not args.no_warm_up:
                from ticketflow.local.warmup import warm_up

                print("warming up: the Glue job and the validation on a small generated file ...", flush=True)
                print(f"warm after {warm_up(spark, runtime.contract):.1f} s", flush=True)
        except KeyboardInterrupt:  # PySpark's handler until watching starts: nothing was sent yet
            print("interrupted while starting: no file was picked up", flush=True)
            return 130
        return watch_forever(runtime, runtime.home, say=lambda line: print(line, flush=True))
