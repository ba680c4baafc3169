"""What the console's pages show, computed from the records (no Flask here): an execution's timeline, events
and buttons, and the data of a run (run report, validation, quarantined rows, published partitions).

Everything returned is plain values for the templates, which escape them: a CSV cell is text, always.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ticketflow.local.history import StateRun, resume_state
from ticketflow.ops.render import ENDED_BADLY, fmt_duration, fmt_time

# RedriveExecution's limits (Step Functions developer guide, "Redriving executions"): an execution that
# ended FAILED, TIMED_OUT or ABORTED, at most 14 days ago, whose history stays under 25,000 events.
REDRIVE_WINDOW = timedelta(days=14)
REDRIVE_MAX_EVENTS = 25_000
# Step Functions execution names: 1-80 characters of letters, digits, '-' and '_' (the console's URLs).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
QUARANTINE_PAGE_ROWS = 50


def redrive_refusal(desc: dict[str, Any], events: list[dict[str, Any]], runs: list[StateRun],
                    now: datetime | None = None) -> str | None:
    """Why RedriveExecution would be refused for this execution, or None when AWS would allow it."""
    status = desc.get("status")
    if status not in ENDED_BADLY:
        return f"only FAILED, TIMED_OUT or ABORTED executions can be redriven (this one is {status})"
    stop = desc.get("stopDate")
    now = now or datetime.now(UTC)
    if isinstance(stop, datetime) and now - stop > REDRIVE_WINDOW:
        return f"it ended more than 14 days ago ({fmt_time(stop)} UTC): Step Functions no longer redrives it"
    if len(events) >= REDRIVE_MAX_EVENTS:
        return f"its history has {len(events):,} events: a redriven execution must stay under 25,000"
    if resume_state(runs) is None:
        return "no state failed: there is nothing to resume"
    return None


@dataclass
class TimelineBar:
    """One state visit on the timeline: offset and width as percentages of the execution's span."""

    run: StateRun
    offset: float
    width: float
    duration: str


def timeline(runs: list[StateRun], start: datetime | None, stop: datetime | None) -> list[TimelineBar]:
    """Bars for the state visits, placed on [start, stop] (stop: now for a running execution)."""
    end = stop or datetime.now(UTC)
    if start is None or not runs:
        return []
    span = max((end - start).total_seconds(), 1e-3)
    bars = []
    for run in runs:
        entered = run.entered or start
        exited = run.exited or end
        # At least 0.4% wide, so an instant state still shows; never past the end.
        offset = min(max((entered - start).total_seconds() / span * 100, 0.0), 99.6)
        width = min(max((exited - entered).total_seconds() / span * 100, 0.4), 100.0 - offset)
        duration = fmt_duration(run.duration) if run.exited else fmt_duration((end - entered).total_seconds()) + "+"
        bars.append(TimelineBar(run, round(offset, 2), round(width, 2), duration))
    return bars


def pretty_json(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


# ---------------------------------------------------------------- the data of a run
def read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def outcome_counts(report: dict[str, Any], rows_published: int | None) -> list[tuple[str, int]]:
    """(label, rows) for the run report's chart: read, published, then quarantined per reason (largest
    first). Rows read = published + quarantined when the run published everything it kept."""
    counts = [("read", int(report.get("rows_read") or 0))]
    if rows_published is not None:
        counts.append(("published", rows_published))
    by_reason = report.get("quarantined_by_reason") or {}
    counts += [(f"quarantined: {reason}", int(n)) for reason, n in
               sorted(by_reason.items(), key=lambda item: (-int(item[1]), item[0]))]
    return counts


def partitions(publish_report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Published partitions (the `year=/month=` folders of the files the publish wrote) with their rows and
    files, in partition order."""
    grouped: dict[str, dict[str, Any]] = defaultdict(lambda: {"rows": 0, "files": 0, "bytes": 0})
    for item in (publish_report or {}).get("files", []):
        key = str(item.get("key", ""))
        partition = "/".join(part for part in key.split("/") if "=" in part) or "(unpartitioned)"
        entry = grouped[partition]
        entry["rows"] += int(item.get("rows") or 0)
        entry["files"] += 1
        entry["bytes"] += int(item.get("bytes") or 0)
    return [{"partition": p, **grouped[p]} for p in sorted(grouped)]


@dataclass
class QuarantinePage:
    columns: list[str]  # the source's columns, then _source_line and _error_reason first
    rows: list[list[str]]
    total: int
    page: int
    pages: int


def quarantine_page(path: Path, page: int = 1, per_page: int = QUARANTINE_PAGE_ROWS) -> QuarantinePage | None:
    """One page of the quarantined rows file (the Glue job's CSV: the source's columns, `_error_reason`,
    `_source_line`, `_raw_record`, ...), with the line and the reason as the first two columns. None when
    the run quarantined nothing."""
    if not path.is_file():
        return None
    page = max(page, 1)
    found = _read_quarantine(path, page, per_page)
    if found.rows or found.page <= found.pages:
        return found
    return _read_quarantine(path, found.pages, per_page)  # past the end: the last page


def _read_quarantine(path: Path, page: int, per_page: int) -> QuarantinePage:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        first = [c for c in ("_source_line", "_error_reason") if c in header]
        order = [header.index(c) for c in first] + [i for i, c in enumerate(header) if c not in first]
        total, rows = 0, []
        low, high = (page - 1) * per_page, page * per_page
        for record in reader:
            if low <= total < high:
                rows.append([record[i] if i < len(record) else "" for i in order])
            total += 1
    pages = max((total + per_page - 1) // per_page, 1)
    return QuarantinePage([header[i] for i in order], rows, total, page, pages)


def expectation_rows(validation: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each expectation of the validation report: name, severity, passed, the observed value in words
    (unexpected count and share, or the observed value), and its summary."""
    rows = []
    for result in (validation or {}).get("results", []):
        observed = result.get("observed") or {}
        if "unexpected_count" in observed:
            share = observed.get("unexpected_percent")
            seen = f"{observed['unexpected_count']:,} unexpected" + (f" ({share:.2f}%)" if share is not None else "")
        elif "observed_value" in observed:
            seen = str(observed["observed_value"])
        else:
            seen = "-"
        rows.append({"name": result.get("name"), "expectation": result.get("expectation"),
                     "severity": result.get("severity"), "success": bool(result.get("success")),
                     "observed": seen, "summary": result.get("summary")})
    return rows


def execution_cost(home: Path, desc: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """{"cost": rows for the page's cost table, "cost_heading", "cost_notes", "cost_error"}: what the execution
    would have cost on AWS with the stack's settings, at the price table's prices (ticketflow.ops.cost)."""
    from ticketflow.ops.cost import PriceTable, fmt_usd
    from ticketflow.ops.cost_sources import cost_or_reason, local_cost

    try:
        prices = PriceTable.load()
    except ValueError as err:
        return {"cost": None, "cost_error": str(err)}
    cost, why = cost_or_reason(local_cost, home, desc, events, prices)
    if cost is None:
        return {"cost": None, "cost_error": why}
    rows = [{"what": "Glue", "units": f"{run.dpu_seconds:,.1f} DPU-s", "usd": fmt_usd(run.usd),
             "how": f"{run.worker_type} x {run.workers}, {run.execution_class}: {run.basis}"} for run in cost.glue]
    rows += [{"what": f"Lambda {fn.function}", "units": f"{fn.gb_seconds:,.3f} GB-s", "usd": fmt_usd(fn.usd),
              "how": f"{fn.invocations} x, {fn.duration_ms:,} ms at {fn.memory_mb} MB"
                     + ("" if fn.measured else " (assumed)")} for fn in cost.lambdas]
    rows.append({"what": "Step Functions", "units": f"{cost.transitions} transitions",
                 "usd": fmt_usd(cost.usd["stepfunctions"]),
                 "how": f"Standard workflow, {cost.redrives} redrive(s)" if cost.redrives else "Standard workflow"})
    rows.append({"what": "S3 requests", "units": f"{cost.s3_put + cost.s3_get} requests",
                 "usd": fmt_usd(cost.usd["s3"]),
                 "how": f"{cost.s3_put} PUT/COPY/LIST, {cost.s3_get} GET/HEAD (estimated)"})
    rows.append({"what": "Total", "units": "", "usd": fmt_usd(cost.total_usd), "how": ""})
    return {"cost": rows, "cost_error": None, "cost_notes": cost.notes,
            "cost_heading": f"Cost (estimated at {cost.region} prices of {cost.prices_taken})"}
