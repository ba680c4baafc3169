"""`ticketflow run FILE...`: upload files into the local bucket and run each through the pipeline."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from ticketcore.alerts import readable_cause, remedy


def shorten(text: str, width: int) -> str:
    """`text` on one line, in at most `width` characters, cut after a whole word (`render.cut_words`)."""
    from ticketflow.ops.render import cut_words, one_line

    return cut_words(one_line(text), width)


def register(sub: argparse._SubParsersAction) -> None:
    from ticketflow.cli import EXIT_CODES

    p = sub.add_parser("run", help="upload files and run them through trigger -> state machine -> publish",
                       epilog=EXIT_CODES)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="CSV files (.csv, .csv.gz, or a .zip of one CSV), each uploaded to support_ticket/raw/<name>")
    p.add_argument("--home", type=Path,
                   help="local bucket and state (default $TICKETFLOW_HOME, else .ticketflow/)")
    p.add_argument("--contract", type=Path, help="contract YAML (default: contracts/support_tickets.yaml)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of progress")
    p.set_defaults(func=main)


class Progress:
    """Prints each state as it is entered and left, one line per event that matters to a person."""

    def __init__(self, name: str, enabled: bool) -> None:
        self.name, self.enabled = name, enabled
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        kind = event["type"]
        text = None
        if kind.endswith("StateEntered"):
            text = f"-> {event['stateEnteredEventDetails']['name']}"
        elif kind == "TaskFailed":
            d = event.get("taskFailedEventDetails", {})
            # One attempt: the definition's Retry may try again (the next line says what happened).
            text = (f"   attempt failed ({d.get('error', '?')}; the definition's Retry decides what follows): "
                    f"{shorten(readable_cause(str(d.get('cause', ''))), 200)}")
        elif kind in ("ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"):
            text = f"== {kind.removeprefix('Execution').upper()}"
        if text:
            with self.lock:
                print(f"[{self.name[:48]}] {text}", flush=True)


def describe_summary(s: dict[str, Any]) -> str:
    lines = [f"{s['name']}: {s['status']}  ({s['source_key']})"]
    if s["rows_read"] is not None:
        lines.append(
            f"  rows read {s['rows_read']:,}; published {s['rows_published'] or 0:,}; quarantined "
            f"{s['rows_quarantined']:,} (duplicates superseded {s['duplicates_superseded']:,})"
        )
    if s["validation"]:
        v = s["validation"]
        lines.append(
            f"  validation {'passed' if v['success'] else 'FAILED'}"
            + (f"; not met: {v['failed_expectations']}" if v["failed_expectations"] else "")
        )
    if s["status"] != "SUCCEEDED":
        lines.append(f"  {'stopped' if s['status'] == 'ABORTED' else 'failed'} at {s['failed_state']}: "
                     f"{shorten(readable_cause(str(s['cause'] or s['error'] or '')), 300)}")
        lines.append(f"  what fits: {remedy(s['error'], s['cause']).advice}")
    if s["report_key"]:
        lines.append(f"  report: {s['report_key']}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    from ticketflow.local.interrupts import Interrupts
    from ticketflow.local.runtime import LocalRuntime

    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        print(f"no such file: {', '.join(missing)} (nothing run)", file=sys.stderr)
        return 2
    not_files = [str(f) for f in args.files if not f.is_file()]
    if not_files:
        print(f"not a file (a directory?): {', '.join(not_files)} (nothing run; give the CSV files in it)",
              file=sys.stderr)
        return 2
    summaries = []
    skipped: list[dict[str, str]] = []  # uploads the trigger started nothing for: {"file", "key", "reason", "record"}
    not_uploaded: list[str] = []  # files left when Ctrl-C came
    # Ctrl-C once: no more uploads, the running executions finish; twice (or SIGTERM): they are stopped,
    # recorded ABORTED and alerted, and `ticketflow redrive` (or the next `watch`) resumes them.
    with LocalRuntime(home=args.home, contract=args.contract) as runtime, Interrupts() as interrupts:
        names: list[str] = []
        for path in args.files:
            if interrupts.draining.is_set():
                not_uploaded.append(str(path))
                continue
            upload = runtime.upload(path, by="run")
            skipped += [{"file": str(path), **s} for s in upload.skipped]
            if not args.json:
                if upload.skipped:
                    print(f"uploaded {path} -> {upload.key}; SKIPPED: {upload.skipped[0]['reason']}")
                else:
                    print(
                        f"uploaded {path} -> {upload.key}; executions "
                        f"{', '.join(upload.started or upload.duplicates) or '-'}"
                        + (" DEAD-LETTERED" if upload.dead_lettered else "")
                    )
            names += upload.started
        for name in names:
            runtime.wait(name, on_event=Progress(name, enabled=not args.json),
                         should_abort=interrupts.aborting.is_set)
            summaries.append(runtime.summary(name))
    if args.json:
        print(json.dumps({"executions": summaries, "skipped": skipped, "not_uploaded": not_uploaded}, indent=2,
                         default=str))
    else:
        print()
        for s in summaries:
            print(describe_summary(s))
        for s in skipped:
            print(f"{s['file']}: SKIPPED, no execution ({s['key']}): {s['reason']}\n  record: {s['record']}")
        if not_uploaded:
            print(f"not uploaded (interrupted): {', '.join(not_uploaded)}")
        aborted = [s["name"] for s in summaries if s["status"] == "ABORTED"]
        if aborted:
            print(f"stopped by the interrupt: {', '.join(aborted)}; resume each with "
                  f"`ticketflow redrive NAME` (the next `ticketflow watch` resumes them too)")
        print(f"\nlocal bucket: {runtime.home / 'bucket'}; alerts: {runtime.home / 'outbox.jsonl'}")
    if interrupts.draining.is_set():
        return 130  # as a shell reports a command ended by Ctrl-C
    # A skipped upload was not processed: as much a failure to the person who ran it as a failed execution.
    ok = summaries and not skipped and all(s["status"] == "SUCCEEDED" for s in summaries)
    return 0 if ok else 1
