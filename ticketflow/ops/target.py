"""The options every operating command shares: where the pipeline is (local home or a deployed stack)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ticketflow.ops.executions import ExecutionStore, LocalExecutionStore


def add_home_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", type=Path,
                   help="local runtime home (default: $TICKETFLOW_HOME or .ticketflow/)")


def add_target_options(p: argparse.ArgumentParser) -> None:
    add_home_option(p)
    p.add_argument("--target", choices=("local", "aws"), default="local",
                   help="the local runtime (default) or a deployed stack")
    p.add_argument("--stack", help="with --target aws: the CloudFormation stack (default: $TICKETFLOW_STACK "
                                   "or Ticketflow)")
    p.add_argument("--region", help="with --target aws: AWS region (default: the usual AWS settings)")
    p.add_argument("--profile", help="with --target aws: AWS profile (default: the usual AWS settings)")


def home_of(args: argparse.Namespace) -> Path:
    """The local home (`--home`, else $TICKETFLOW_HOME, else .ticketflow). Raises NotADirectoryError when it is
    a file: a mistyped home must not read as an empty one."""
    import errno

    from ticketflow.local.runtime import default_home

    home = Path(args.home) if args.home else default_home()
    if home.exists() and not home.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(home))
    return home


def aws_target(args: argparse.Namespace) -> Any:
    from ticketflow.ops.aws import AwsTarget, default_stack

    return AwsTarget(args.stack or default_stack(), region=args.region, profile=args.profile)


def open_store(args: argparse.Namespace) -> ExecutionStore:
    if args.target == "aws":
        store: ExecutionStore = aws_target(args).store()
        return store
    return LocalExecutionStore(home_of(args))


def fail(message: str, code: int = 2) -> int:
    print(message, file=sys.stderr)
    return code


def operational_errors() -> tuple[type[BaseException], ...]:
    """What a command reports as one line on stderr instead of a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from ticketflow.ops.aws import TargetError

    return (LookupError, TargetError, BotoCoreError, ClientError)
