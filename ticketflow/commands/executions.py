"""`ticketflow executions`: the executions list, as the Step Functions console shows it."""

from __future__ import annotations

import argparse

from ticketflow.ops.executions import STATUSES
from ticketflow.ops.target import add_target_options, fail, open_store, operational_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("executions", help="list executions: name, status, source key, start, duration, "
                                          "failed state (newest first)")
    p.add_argument("--status", choices=STATUSES, type=str.upper, metavar="STATUS",
                   help=f"only executions with this status: {', '.join(STATUSES)}")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--wide", action="store_true", help="never cut long names to fit 100 columns")
    add_target_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ticketflow.ops.render import WIDTH, render_executions, rows_for

    if args.limit < 1:
        return fail("--limit must be at least 1")
    try:
        store = open_store(args)
        rows = rows_for(store, store.list(args.status, args.limit))
    except operational_errors() as err:
        return fail(str(err))
    if not rows:
        print(f"no {args.status + ' ' if args.status else ''}executions in {store.where}")
        return 0
    print(render_executions(rows, width=None if args.wide else WIDTH))
    more = " (--limit reached)" if len(rows) == args.limit else ""
    print(f"\n{len(rows)} execution{'s' if len(rows) != 1 else ''}, newest first{more}; "
          f"details: ticketflow show NAME (a unique prefix is enough)")
    return 0
