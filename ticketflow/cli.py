"""`ticketflow`: the command-line tool. Each subcommand lives in ticketflow/commands/<name>.py."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Order here is the order in --help.
COMMANDS = [
    "run",
    "inspect",
    "redrive",
    "reprocess",
    "watch",
    "transform",
    "generate",
    "test-definition",
    "upload", "delete", "executions", "show", "alerts", "query",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"ticketflow.commands.{name.replace('-', '_')}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # The reader went away (`ticketflow executions | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
