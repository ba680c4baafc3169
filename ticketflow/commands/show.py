"""`ticketflow show EXECUTION`: one execution as the console shows it, or its raw history (--json)."""

from __future__ import annotations

import argparse

from ticketflow.ops.target import add_target_options, fail, open_store, operational_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="one execution: each state with status, duration, attempts, "
                                    "error and cause")
    p.add_argument("execution", metavar="EXECUTION",
                   help="execution name, ARN, or a unique prefix of the name")
    p.add_argument("--io", action="store_true", help="also print each state's input and output JSON")
    p.add_argument("--json", action="store_true",
                   help="print DescribeExecution and the raw GetExecutionHistory events as JSON")
    add_target_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ticketflow.ops.executions import resolve
    from ticketflow.ops.render import render_history_json, render_show

    try:
        store = open_store(args)
        desc = resolve(store, args.execution)
        events = store.history(desc["executionArn"])
    except operational_errors() as err:
        return fail(str(err))
    print(render_history_json(desc, events) if args.json else render_show(desc, events, io=args.io))
    return 0
