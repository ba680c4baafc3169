"""`ticketflow alerts`: the failure alerts (the local outbox and dead letters; on AWS, where they go)."""

from __future__ import annotations

import argparse

from ticketflow.ops.target import add_target_options, aws_target, fail, home_of, operational_errors


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="failure alerts and dead-lettered upload events (on AWS: where alerts "
                                      "go, and recent failed executions)")
    p.add_argument("--limit", type=int, default=20, help="at most this many of each (default 20)")
    p.add_argument("--json", action="store_true", help="print them as one JSON document")
    add_target_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ticketflow.ops.alerts import local_alerts, render_aws_alerts, render_local_alerts
    from ticketflow.ops.render import to_json

    if args.limit < 1:
        return fail("--limit must be at least 1")
    if args.target == "local":
        doc = local_alerts(home_of(args), args.limit)
        print(to_json(doc) if args.json else render_local_alerts(doc))
        return 0
    try:
        doc, rows = aws_target(args).alerts(args.limit)
    except operational_errors() as err:
        return fail(str(err))
    print(to_json(doc) if args.json else render_aws_alerts(doc, rows))
    return 0
