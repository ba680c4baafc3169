"""`ticketflow generate --rows N --out FILE`: write a synthetic support-ticket export to feed the pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from ticketflow.generate import generate_csv


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _row_count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="write a synthetic, deterministic support-ticket CSV")
    p.add_argument("--rows", type=_row_count, required=True, help="data rows to write (header excluded)")
    p.add_argument("--out", type=Path, required=True, help="CSV file to write (parent folders are created)")
    p.add_argument("--seed", type=int, default=7, help="same seed, same bytes (default: 7)")
    p.add_argument("--dirty", type=_fraction, default=0.02, help="share of dirty rows, 0..1 (default: 0.02)")
    p.add_argument("--single-line", action="store_true",
                   help="no line breaks inside descriptions: every record one line (a file Spark can split)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    stats = generate_csv(args.out, rows=args.rows, seed=args.seed, dirty=args.dirty, single_line=args.single_line)
    dirty = ", ".join(f"{kind}={n}" for kind, n in stats.dirty.items())
    print(
        f"wrote {args.out}: {stats.rows:,} rows, {stats.physical_lines:,} lines, {stats.bytes:,} bytes; "
        f"dirty {sum(stats.dirty.values())} ({dirty}); expect {stats.expected_valid:,} valid, "
        f"{stats.expected_quarantined:,} quarantined"
    )
    return 0
