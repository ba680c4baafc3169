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
    "console",
    "transform",
    "generate",
    "test-definition",
    "upload", "delete", "executions", "show", "alerts", "query",
]


EXIT_CODES = """exit status: 0 done (every execution SUCCEEDED); 1 something did not succeed (an execution
failed, was skipped, dead-lettered or passed over; the summary says which); 2 a usage error, or a file or
--home that cannot be used (nothing was run); 130 interrupted by Ctrl-C (see README, "Interrupts")."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketflow", description=__doc__, epilog=EXIT_CODES)
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
    except OSError as err:  # a --home or file the user named that cannot be used: said in one line
        where = f": {err.filename}" if err.filename else ""
        home = f" (--home {args.home})" if getattr(args, "home", None) else ""
        print(f"ticketflow {args.command}: {err.strerror or err}{where}{home}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
