"""`ticketflow transform FILE --out DIR`: the Glue job on local Spark, without the orchestration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ticketcore.contract import SchemaError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transform", help="run the Glue job on local Spark and print the run report summary")
    p.add_argument("file", type=Path)
    p.add_argument("--out", type=Path, required=True, help="directory for staging/, quarantine/, reports/")
    p.add_argument("--contract", type=Path, help="contract YAML (default: contracts/support_tickets.yaml)")
    p.add_argument("--run-id", default="local-transform")
    p.add_argument("--json", action="store_true", help="print the whole run report as JSON")
    p.set_defaults(func=main)


def summary_lines(report: dict) -> list[str]:
    lines = [
        f"run {report['run_id']}: {report['source_key']}",
        f"  rows read         {report['rows_read']:>10,}",
        f"  rows valid        {report['rows_valid']:>10,}",
        f"  rows quarantined  {report['rows_quarantined']:>10,}  {report['quarantined_by_reason'] or ''}",
        f"  duplicates superseded {report['duplicates_superseded']:,}",
        f"  dialect           {report['dialect']['encoding']}, delimiter {report['dialect']['delimiter']!r}",
    ]
    for col, fmt in report["timestamp_formats"].items():
        lines.append(f"  {col:<18} {fmt['label']}  ({fmt['reason']})")
    coerced = {k: v for k, v in report["nulls_coerced"].items() if v}
    if coerced:
        lines.append(f"  unreadable optional values set to null: {coerced}")
    unknown = {k: v["values"] for k, v in report["unknown_enum_values"].items() if v["count"]}
    if unknown:
        lines.append(f"  values outside the contract's enumerations (kept): {unknown}")
    if report["unknown_columns"]:
        lines.append(f"  columns not in the contract (kept in the extra map): {sorted(report['unknown_columns'])}")
    lines.append(
        f"  parquet files     {len(report['outputs']['files'])} under {report['outputs']['staging']}"
    )
    if report["outputs"]["quarantine"]:
        lines.append(f"  quarantine        {report['outputs']['quarantine']}")
    lines.append(f"  seconds           {report['timings_seconds']}")
    return lines


def main(args: argparse.Namespace) -> int:
    from glue.ticket_etl_job import JobArgs, run
    from ticketflow.sparkenv import local_session

    out = args.out.resolve()
    job = JobArgs(
        source=str(args.file.resolve()),
        staging=str(out / "staging"),
        quarantine=str(out / "quarantine"),
        reports=str(out / "reports"),
        run_id=args.run_id,
        source_key=args.file.name,
        contract=str(args.contract) if args.contract else None,
    )
    try:
        report = run(local_session(), job)
    except SchemaError as err:
        print(f"SchemaError: {err}")
        return 2
    print(json.dumps(report, indent=2, default=str) if args.json else "\n".join(summary_lines(report)))
    return 0
