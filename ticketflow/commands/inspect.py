"""`ticketflow inspect FILE|s3://URI`: onboard an unknown export; uploads nothing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ticketcore.contract import DEFAULT_CONTRACT_PATH, ContractError, load_contract


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="show how an export would land: dialect, encoding, header mapping, timestamp readings, outcome preview",
    )
    p.add_argument("target", help="a CSV file (.csv, .csv.gz, .zip) or s3://BUCKET/KEY")
    p.add_argument("--contract", type=Path, help="contract YAML (default: contracts/support_tickets.yaml)")
    p.add_argument("--sample", type=int, default=1000, metavar="N", help="records the preview runs on (1000)")
    p.add_argument("--no-preview", action="store_true", help="skip the Glue job on the sample (no Spark start)")
    p.add_argument("--write-contract", type=Path, metavar="FILE",
                   help="write a contract overlay with the unmapped headers ready to assign")
    p.add_argument("--json", action="store_true", help="print the whole document as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ticketflow.ops.onboard import InspectInputError, contract_overlay, inspect_export, text_report

    contract_path = str(args.contract) if args.contract else None
    try:
        contract = load_contract(contract_path)
    except (OSError, ContractError) as err:
        print(f"cannot load the contract: {err}", file=sys.stderr)
        return 2
    if args.sample < 1:
        print("--sample must be at least 1", file=sys.stderr)
        return 2
    try:
        doc = inspect_export(args.target, contract, contract_path, args.sample, with_preview=not args.no_preview)
    except InspectInputError as err:
        print(str(err), file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=2, default=str, ensure_ascii=False) if args.json else "\n".join(text_report(doc)))
    if args.write_contract and "dialect" in doc:  # a refused file's headers are what the overlay is for
        base = str(Path(contract_path).resolve()) if contract_path else str(DEFAULT_CONTRACT_PATH)
        try:
            args.write_contract.write_text(contract_overlay(doc, base, contract), encoding="utf-8")
        except OSError as err:
            print(f"cannot write {args.write_contract}: {err}", file=sys.stderr)
            return 2
        if not args.json:
            print(f"contract overlay written to {args.write_contract}")
    return 1 if doc["problems"] else 0
