"""`ticketflow executions`: the executions list, as the Step Functions console shows it."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ticketflow.ops.executions import STATUSES, ExecutionFilter
from ticketflow.ops.target import add_target_options, fail, open_store, operational_errors

_AGO = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def when(text: str) -> datetime:
    """`--since`/`--until`: ISO 8601 (naive means UTC) or a time ago (`90s`, `30m`, `6h`, `2d`)."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return datetime.now(UTC) - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r}; give ISO 8601 (2026-12-01T09:30, UTC unless an offset is given) or a time "
            "ago (30m, 6h, 2d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("executions", help="list executions: name, status, source key, start, duration, "
                                          "failed state (newest first)")
    p.add_argument("--status", choices=STATUSES, type=str.upper, metavar="STATUS",
                   help=f"only executions with this status: {', '.join(STATUSES)}")
    p.add_argument("--since", type=when, metavar="TIME",
                   help="only executions started at or after TIME: ISO 8601 (UTC unless it has an offset), "
                        "or a time ago such as 30m, 6h, 2d")
    p.add_argument("--until", type=when, metavar="TIME", help="only executions started before TIME (as --since)")
    p.add_argument("--source", metavar="KEY",
                   help="only executions of source keys starting with KEY (support_ticket/raw/ may be left out)")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--wide", action="store_true", help="never cut long names to fit 100 columns")
    p.add_argument("--cost", action="store_true",
                   help="what each execution cost (or would have cost) on AWS: Glue DPU-seconds, Lambda "
                        "GB-seconds, state transitions, S3 requests, USD, and a total line")
    p.add_argument("--prices", metavar="FILE",
                   help="with --cost: price table (default: $TICKETFLOW_PRICES, else ticketflow/ops/prices.json)")
    add_target_options(p)
    p.set_defaults(func=main)


def cost_table(args: argparse.Namespace, store: Any, rows: list[Any]) -> str:
    """The `--cost` table: each row's execution costed from its history (see ticketflow.ops.cost)."""
    from ticketflow.ops.cost import CostError, PriceTable, render_cost_table
    from ticketflow.ops.cost_sources import aws_cost, cost_or_reason, local_cost
    from ticketflow.ops.target import aws_target, home_of

    try:
        prices = PriceTable.load(args.prices)
    except CostError as err:
        raise LookupError(str(err)) from err
    target = aws_target(args) if args.target == "aws" else None
    items = []
    for row in rows:
        desc = store.describe(row.name)
        events = store.history(desc["executionArn"])
        if target is not None:
            cost, why = cost_or_reason(aws_cost, target, desc, events, prices)
        else:
            cost, why = cost_or_reason(local_cost, home_of(args), desc, events, prices)
        items.append((row.name, row.status, cost, why))
    return render_cost_table(items, width=None if args.wide else 100)


def main(args: argparse.Namespace) -> int:
    from ticketflow.ops.render import WIDTH, render_executions, rows_for

    if args.limit < 1:
        return fail("--limit must be at least 1")
    if args.prices and not args.cost:
        return fail("--prices is the price table of --cost: add --cost")
    where = ExecutionFilter(status=args.status, since=args.since, until=args.until, source=args.source)
    try:
        store = open_store(args)
        rows = rows_for(store, store.list(args.status, args.limit, where))
    except operational_errors() as err:
        return fail(str(err))
    if not rows:
        shown = {"--since": args.since, "--until": args.until, "--source": args.source}
        narrowed = [f"{flag} {v.isoformat(timespec='seconds') if isinstance(v, datetime) else v}"
                    for flag, v in shown.items() if v]
        print(f"no {args.status + ' ' if args.status else ''}executions in {store.where}"
              + (f" ({', '.join(narrowed)})" if narrowed else ""))
        return 0
    if args.cost:
        try:
            print(cost_table(args, store, rows))
        except operational_errors() as err:
            return fail(str(err))
    else:
        print(render_executions(rows, width=None if args.wide else WIDTH))
    more = " (--limit reached)" if len(rows) == args.limit else ""
    print(f"\n{len(rows)} execution{'s' if len(rows) != 1 else ''}, newest first{more}; "
          f"details: ticketflow show NAME (a unique prefix is enough)")
    return 0
