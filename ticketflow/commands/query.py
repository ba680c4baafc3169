"""`ticketflow query "SQL"`: DuckDB over the published Parquet (`tickets`, `tickets_latest`)."""

from __future__ import annotations

import argparse

from ticketflow.ops.target import add_home_option, fail, home_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("query", help="SQL over the published tickets (tables: tickets, tickets_latest)")
    p.add_argument("sql", metavar="SQL", help='e.g. "SELECT status, count(*) FROM tickets_latest GROUP BY 1"')
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="a JSON list of objects (dates ISO-8601)")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    add_home_option(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ticketflow.ops import query

    try:
        columns, rows = query.run_query(home_of(args), args.sql)
    except query.NothingPublished as err:
        return fail(str(err), code=1)
    except query.QueryError as err:
        return fail(f"query failed: {err}", code=1)
    if args.json:
        print(query.format_json(columns, rows))
    elif args.csv:
        print(query.format_csv(columns, rows), end="")
    else:
        print(query.format_table(columns, rows))
    return 0
