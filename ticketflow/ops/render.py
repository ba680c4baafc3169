"""Plain-text rendering of executions, shared by the local and the AWS paths (same API shapes).

Tables fit a 100-column terminal: the widest shrinkable column is cut (with "...") until the row fits.
Times are shown in UTC. Nothing here talks to a store: callers pass descriptions and histories in.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ticketcore.alerts import remedy
from ticketcore.layout import RAW_PREFIX
from ticketflow.local.asl import choice_rule_label
from ticketflow.local.history import StateRun, summarize_history

WIDTH = 100
ELLIPSIS = "..."
ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")
_CAUSE_LINES = 12  # longer causes are cut; `show --json` has them whole


# ---------------------------------------------------------------- small formatters
def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)  # down, as the times shown are (so start + duration = stop)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def cut(text: str, width: int) -> str:
    """At most `width` characters; a cut keeps a prefix (a name cut this way is still one `show` accepts)."""
    return text if len(text) <= width else text[: max(width - len(ELLIPSIS), 0)] + ELLIPSIS


def cut_words(text: str, width: int) -> str:
    """Prose in at most `width` characters, cut after a whole word (" ..." marks the cut)."""
    if len(text) <= width:
        return text
    kept = text[: max(width - len(ELLIPSIS) - 1, 0)]
    space = kept.rfind(" ")
    return (kept[:space] if space > width // 2 else kept).rstrip() + " " + ELLIPSIS


def source_key(desc: dict[str, Any]) -> str | None:
    """The S3 key the execution was started for (its input's `key`)."""
    try:
        value = json.loads(desc.get("input") or "{}")
    except (TypeError, ValueError):
        return None
    return value.get("key") if isinstance(value, dict) else None


def short_source(key: str | None) -> str:
    """`support_ticket/raw/eu/x.csv` -> `eu/x.csv`: the trigger only starts executions for raw/ keys."""
    return key.removeprefix(RAW_PREFIX) if key else "-"


def cause_text(cause: str | None) -> str:
    """The readable part of a cause: a Lambda error's errorMessage, a Glue job run's ErrorMessage, or the
    cause as it is."""
    if not cause:
        return ""
    try:
        value = json.loads(cause)
    except (TypeError, ValueError):
        return cause.strip()
    if not isinstance(value, dict):
        return cause.strip()
    if value.get("errorMessage"):
        return str(value["errorMessage"]).strip()
    if "JobRunState" in value:  # glue:startJobRun.sync fails with the JobRun itself as the cause
        text = f"Glue job run {value.get('Id', '?')} {value['JobRunState']}"
        return f"{text}: {value['ErrorMessage']}" if value.get("ErrorMessage") else text
    return cause.strip()


def one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def wrap(text: str, indent: str, width: int = WIDTH, max_lines: int = _CAUSE_LINES) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, width - len(indent), break_long_words=True,
                               break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"{ELLIPSIS} ({len(lines) - max_lines} more lines: see --json)"]
    return [indent + line for line in lines]


def to_json(value: Any) -> str:
    """JSON with datetimes as ISO-8601 in UTC."""
    def default(item: Any) -> Any:
        if isinstance(item, datetime):
            return (item.astimezone(UTC) if item.tzinfo else item).isoformat()
        return str(item)

    return json.dumps(value, indent=2, default=default, ensure_ascii=False)


# ---------------------------------------------------------------- tables
def table_lines(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    right: Sequence[int] = (),
    shrink: dict[int, int] | None = None,
    width: int | None = WIDTH,
) -> list[str]:
    """Header, rule, then one line per row (in order, so callers may interleave detail lines).

    shrink: column -> the narrowest it may be cut to, in the order columns are cut (each down to its
    minimum before the next) until the table fits `width`."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    gap = 2
    excess = sum(widths) + gap * (len(widths) - 1) - width if width is not None else 0
    for column, narrowest in (shrink or {}).items():
        if excess <= 0:
            break
        cut_by = min(excess, max(widths[column] - max(narrowest, len(headers[column])), 0))
        widths[column] -= cut_by
        excess -= cut_by

    def line(cells: Sequence[str]) -> str:
        parts = []
        for i, cell in enumerate(cells):
            text = cut(cell, widths[i])
            parts.append(text.rjust(widths[i]) if i in right else text.ljust(widths[i]))
        return (" " * gap).join(parts).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


# ---------------------------------------------------------------- executions
@dataclass
class ExecutionRow:
    name: str
    status: str
    source_key: str | None
    start: datetime | None
    stop: datetime | None
    failed_state: str | None
    error: str | None
    cause: str | None
    redrive_count: int

    @property
    def duration(self) -> float | None:
        if self.start is None:
            return None
        end = self.stop or (datetime.now(UTC) if self.status == "RUNNING" else None)
        return (end - self.start).total_seconds() if end else None


def failed_run(runs: list[StateRun]) -> StateRun | None:
    """The state the execution ended in, if it ended badly there (the last visit, after any redrive)."""
    return next((r for r in reversed(runs) if r.status in ENDED_BADLY), None)


def execution_row(desc: dict[str, Any], events: list[dict[str, Any]] | None) -> ExecutionRow:
    """One row; `events` only matters (and is only needed) for an execution that ended badly."""
    failed = failed_run(summarize_history(events)) if events and desc.get("status") in ENDED_BADLY else None
    return ExecutionRow(
        name=desc.get("name") or str(desc.get("executionArn", "?")).rsplit(":", 1)[-1],
        status=desc.get("status", "?"),
        source_key=source_key(desc),
        start=desc.get("startDate"),
        stop=desc.get("stopDate"),
        failed_state=failed.name if failed else None,
        error=desc.get("error") or (failed.error if failed else None),
        cause=desc.get("cause") or (failed.cause if failed else None),
        redrive_count=int(desc.get("redriveCount") or 0),
    )


def rows_for(store: Any, executions: list[dict[str, Any]]) -> list[ExecutionRow]:
    """Rows for `executions` (from store.list), reading histories only where a failed state is shown."""
    rows = []
    for desc in executions:
        events = store.history(desc["executionArn"]) if desc.get("status") in ENDED_BADLY else None
        rows.append(execution_row(desc, events))
    return rows


def _duration_cell(row: ExecutionRow) -> str:
    text = fmt_duration(row.duration)
    return f"{text}+" if row.status == "RUNNING" and row.duration is not None else text


def render_executions(rows: list[ExecutionRow], width: int | None = WIDTH) -> str:
    """NAME, STATUS, SOURCE, START (UTC), DURATION, FAILED STATE: the console's executions list. A name
    too long for `width` is cut at its end, so what is shown is still a prefix `show` accepts (None:
    never cut)."""
    headers = ["NAME", "STATUS", "SOURCE (raw/)", "START (UTC)", "DURATION", "FAILED STATE"]
    cells = [
        [r.name, r.status, short_source(r.source_key), fmt_time(r.start), _duration_cell(r),
         r.failed_state or ""]
        for r in rows
    ]
    lines = table_lines(headers, cells, right=[4], shrink={0: 20, 2: 16, 5: 12}, width=width)
    redriven = [f"{r.name} ({r.redrive_count}x)" for r in rows if r.redrive_count]
    if redriven:
        lines += ["", "redriven: " + ", ".join(redriven)]
    return "\n".join(lines)


def render_failures(rows: list[ExecutionRow]) -> str:
    """NAME, STATUS, STOPPED, FAILED STATE, ERROR, then the cause under each: for `alerts`."""
    headers = ["NAME", "STATUS", "STOPPED (UTC)", "FAILED STATE", "ERROR"]
    cells = [[r.name, r.status, fmt_time(r.stop), r.failed_state or "-", r.error or "-"] for r in rows]
    lines = table_lines(headers, cells, shrink={0: 20, 4: 16, 3: 12})
    out = lines[:2]
    for row, line in zip(rows, lines[2:], strict=True):
        out.append(line)
        if row.cause:
            out.append("    " + cut(one_line(cause_text(row.cause)), WIDTH - 4))
    return "\n".join(out)


# ---------------------------------------------------------------- one execution
def redrive_points(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """index of the first state visit after each ExecutionRedriven event -> that event."""
    points: dict[int, dict[str, Any]] = {}
    entered = 0
    for event in sorted(events, key=lambda e: e.get("id", 0)):
        kind = event.get("type", "")
        if kind.endswith("StateEntered"):
            entered += 1
        elif kind == "ExecutionRedriven":
            points[entered] = event
    return points


def _state_duration(run: StateRun) -> str:
    if run.status == "RUNNING" and run.entered is not None:
        return fmt_duration((datetime.now(UTC) - run.entered).total_seconds()) + "+"
    return fmt_duration(run.duration)


def _json_block(label: str, value: Any, indent: str) -> list[str]:
    if value is None:
        return [f"{indent}{label}: -"]
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return [f"{indent}{label}:", *(f"{indent}  {line}" for line in text.splitlines())]


def render_show(desc: dict[str, Any], events: list[dict[str, Any]], io: bool = False,
                definition: dict[str, Any] | None = None, files: Sequence[tuple[str, str]] = ()) -> str:
    """The execution as the console shows it: a header (for a failure: error, cause, and which fix fits),
    the run's files (`files`: (label, where) pairs), a picture of the state machine (`definition`) with the
    path taken, then each state visit with its status, duration, attempts, and for a failure the error and
    cause; redrives marked where they resumed; with `io`, each visit's input and output."""
    runs = summarize_history(events)
    row = execution_row(desc, events)
    status = row.status
    failed = failed_run(runs) if status in ENDED_BADLY else None
    current = next((r for r in reversed(runs) if r.status == "RUNNING"), None)

    label = "{:<10} {}".format
    lines = [label("Execution", row.name), label("ARN", desc.get("executionArn", "-"))]
    if failed:
        lines.append(label("Status", f"{status} at {failed.name}"))
    elif current and status == "RUNNING":
        lines.append(label("Status", f"{status} (in {current.name})"))
    else:
        lines.append(label("Status", status))
    lines.append(label("Source", row.source_key or "-"))
    lines.append(label("Started", f"{fmt_time(row.start)} UTC"))
    if row.stop:
        lines.append(label("Stopped", f"{fmt_time(row.stop)} UTC  (took {fmt_duration(row.duration)})"))
    elif status == "RUNNING":
        lines.append(label("Stopped", f"- (running for {fmt_duration(row.duration)})"))
    if row.redrive_count:
        when = desc.get("redriveDate")
        last = f" (last at {fmt_time(when)} UTC)" if when else ""
        lines.append(label("Redrives", f"{row.redrive_count}{last}"))
    if status in ENDED_BADLY:
        lines.append(label("Error", row.error or "-"))
        cause = cause_text(row.cause)
        if cause:
            wrapped = wrap(cause, " " * 11)
            lines.append(label("Cause", wrapped[0].lstrip()))
            lines += wrapped[1:]
        fix = wrap(remedy(row.error, row.cause).advice, " " * 11)
        lines.append(label("What fits", fix[0].lstrip()))
        lines += fix[1:]
    for name, where in files:
        lines.append(label(name, where))
    lines.append("")
    if definition is not None and runs:
        lines += [render_graph(definition, runs), ""]

    if not runs:
        lines.append("(no state entered yet)")
        return "\n".join(lines)

    headers = ["#", "STATE", "STATUS", "DURATION", "ATTEMPTS"]
    cells = [
        [str(i), r.name, r.status, _state_duration(r), str(r.attempts) if r.attempts else "-"]
        for i, r in enumerate(runs, 1)
    ]
    table = table_lines(headers, cells, right=[0, 3, 4], shrink={1: 20})
    points = redrive_points(events)
    detail = " " * 5
    lines += table[:2]
    for index, (run, line) in enumerate(zip(runs, table[2:], strict=True)):
        if index in points:
            event = points[index]
            count = event.get("executionRedrivenEventDetails", {}).get("redriveCount", "?")
            lines.append(f"{detail}-- redrive {count} at {fmt_time(event.get('timestamp'))} UTC: "
                         f"resumed at {run.name} --")
        lines.append(line)
        # Failed attempts that were retried (for a state that did not succeed, its last failure is
        # shown as error/cause below instead).
        retried = run.failures if run.status in ("SUCCEEDED", "RUNNING") else run.failures[:-1]
        for attempt, (error, why) in enumerate(retried, 1):
            said = f"{detail}attempt {attempt} failed: {error or '?'}"
            short = one_line(cause_text(why))
            lines.append(cut_words(f"{said}: {short}" if short else said, WIDTH))
        if run.status not in ("SUCCEEDED", "RUNNING") and (run.error or run.cause):
            lines.append(f"{detail}error: {run.error or '-'}")
            cause = cause_text(run.cause)
            if cause:
                wrapped = wrap(cause, detail + " " * 7)
                lines.append(f"{detail}cause: {wrapped[0].lstrip()}")
                lines += wrapped[1:]
        if io:
            lines += _json_block("input", run.input, detail)
            lines += _json_block("output", run.output, detail)
    if status == "SUCCEEDED" and io:
        try:
            output = json.loads(desc.get("output") or "null")
        except ValueError:
            output = desc.get("output")
        lines.append("")
        lines += _json_block("execution output", output, "")
    return "\n".join(lines)


_KEEP = "\u00a0"  # a space `wrap` never breaks at (textwrap splits at ASCII whitespace only)


def _counts(counts: dict[str, int]) -> str:
    """`name n, name n, ...` for the non-zero counts; each name stays on one line with its count in `_wrapped`."""
    return ", ".join(f"{k}{_KEEP}{v:,}" for k, v in sorted(counts.items()) if v)


def _wrapped(lead: str, text: str) -> list[str]:
    """`text` wrapped under a 10-character `lead` label (as `show`'s header lines are)."""
    lines = [line.replace(_KEEP, " ") for line in wrap(text, " " * 11)]
    return [f"{lead:<10} {lines[0].lstrip()}", *lines[1:]]


def csv_reading(report: dict[str, Any]) -> str | None:
    """How Spark read the CSV, from the run report's `csv_parse`: split by lines (with its parse tasks) or whole
    (multiLine, one task), and why; None for a report written before the job chose (no `csv_parse`)."""
    parse = report.get("csv_parse")
    if not parse:
        return None
    how = ("read whole (multiLine, one task)" if parse.get("multi_line")
           else f"split by lines ({parse.get('parse_tasks')} parse task{'' if parse.get('parse_tasks') == 1 else 's'})")
    again = ""
    if parse.get("read_twice"):
        because = parse.get("read_again_because") or "the whole-file scan overruled the split reading"
        again = f". Read a second time: {because}"
    return f"{how}: {parse.get('reason')}{again}"


def encoding_read(report: dict[str, Any]) -> str:
    """The encoding the file was read in, its compression, and how many lines were decoded by fallback."""
    text = report.get("source_text") or {}
    encoding = text.get("encoding") or {}
    read = [str(encoding.get("read_as") or encoding.get("encoding") or "-")]
    if text.get("compression"):
        read.append(f"{text['compression']} compressed")
    if encoding.get("fallback_lines"):
        n = int(encoding["fallback_lines"])
        read.append(f"{n:,} line{'' if n == 1 else 's'} decoded by fallback")
    return ", ".join(read)


def render_run_report(report: dict[str, Any] | None) -> list[str]:
    """The Glue job's run report as `show` summarises it: rows read, valid and quarantined by reason; how the
    CSV was read (split by lines or whole, and why); the encoding and profile; per column the values that
    failed typing or fell outside the plausible range, and unknown enum tokens. Counts, columns and line
    numbers only: the report's example values stay in the (encrypted) report itself."""
    label = "{:<10} {}".format
    if report is None:
        return [label("Data", "no run report (the Glue job has not written one)")]
    lines = [label("Rows", f"{int(report.get('rows_read') or 0):,} read: {int(report.get('rows_valid') or 0):,} "
                           f"valid, {int(report.get('rows_quarantined') or 0):,} quarantined")]
    by_reason = _counts(report.get("quarantined_by_reason") or {})
    if by_reason:
        lines += _wrapped("", f"quarantined: {by_reason}")
    how = csv_reading(report)
    if how:
        lines += _wrapped("CSV", how)
    lines.append(label("Encoding", encoding_read(report)))
    if report.get("profile"):
        lines.append(label("Profile", str(report["profile"])))

    def counted(key: str) -> dict[str, int]:  # {column: n} or {column: {"count": n, ...}}
        return {c: int((v.get("count") if isinstance(v, dict) else v) or 0) for c, v in (report.get(key) or {}).items()}

    # Each count is of rows: one value per row and column.
    per_column = [("unreadable (text kept in _unparsed), rows", counted("unparsed_values")),
                  ("out of plausible range, rows", counted("out_of_range")),
                  ("not in the enum's values, rows", counted("unknown_enum_values"))]
    typing = [f"{what}: {_counts(counts)}" for what, counts in per_column if _counts(counts)]
    for i, text_line in enumerate(typing):
        lines += _wrapped("Values" if i == 0 else "", text_line)
    unknown = report.get("unknown_columns") or {}
    if unknown:
        lines.append(label("Columns", f"{len(unknown):,} not in the contract, published in the extra map"))
    return lines


def render_history_json(desc: dict[str, Any], events: list[dict[str, Any]]) -> str:
    """DescribeExecution and the raw GetExecutionHistory events (`events`, as the API names them)."""
    return to_json({"execution": desc, "events": events})


# ---------------------------------------------------------------- the state machine, as a picture
_MARKS = {"SUCCEEDED": "ok", "RUNNING": ">>", "CAUGHT": "~~"}  # anything else that ended a visit: XX


def _chain(states: dict[str, Any], start: str | None, seen: set[str]) -> list[str]:
    """State names from `start` along Next until an end (or a state already drawn)."""
    names = []
    while start and start in states and start not in seen:
        names.append(start)
        seen.add(start)
        state = states[start]
        start = state.get("Default") if state.get("Type") == "Choice" else state.get("Next")
    return names


def render_graph(definition: dict[str, Any], runs: list[StateRun]) -> str:
    """A text picture of the state machine: each state with its type and a mark for this execution (`ok`
    succeeded, `XX` where it failed, `>>` running, blank not reached); a Choice lists its branches, and the
    main line follows the branch the execution took."""
    states: dict[str, Any] = definition.get("States") or {}
    last = {run.name: run for run in runs}

    def box(name: str) -> str:
        run = last.get(name)
        mark = "  " if run is None else _MARKS.get(run.status, "XX")
        kind = states.get(name, {}).get("Type", "?")
        where = ""
        if run is not None and mark == "XX":
            where = f"   <- {run.status.lower().replace('_', ' ')} here" + (f": {run.error}" if run.error else "")
        elif mark == ">>":
            where = "   <- running"
        return f"[{mark}] {name} ({kind}){where}"

    lines, seen = [], set()
    start = definition.get("StartAt")
    while start and start in states and start not in seen:
        seen.add(start)
        state = states[start]
        lines.append(box(start))
        if state.get("Type") != "Choice":
            start = state.get("Next")
            if start:
                lines.append("   |")
            continue
        branches = [(choice_rule_label(c), c.get("Next")) for c in state.get("Choices", [])]
        branches.append(("otherwise", state.get("Default")))
        taken = next((nxt for _, nxt in branches if nxt in last), state.get("Default"))
        for label, nxt in branches:
            if nxt == taken:
                lines.append(f"   |-- {label}: below")
                continue
            drawn = _chain(states, nxt, set(seen))
            lines.append(f"   |-- {label}: " + " -> ".join(box(n) for n in drawn))
        lines.append("   |")
        start = taken
    return "\n".join(lines)


# ---------------------------------------------------------------- the console's Events tab
def event_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The console's Events tab, one dict per event: id, type, step (the state it belongs to), resource,
    after_ms (milliseconds since the first event, None without timestamps), time (UTC text), and for a
    failure its error and cause."""
    start = events[0].get("timestamp") if events else None
    steps: dict[int, str] = {}
    rows = []
    for event in events:
        kind = str(event.get("type", ""))
        details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
        # The execution's own events belong to no step; a task's events to the state that scheduled them.
        step = "" if kind.startswith("Execution") else str(
            details.get("name") or steps.get(event.get("previousEventId", -1), ""))
        steps[event.get("id", 0)] = step
        when = event.get("timestamp")
        after = ((when - start).total_seconds() * 1000
                 if isinstance(start, datetime) and isinstance(when, datetime) else None)
        resource = f"{details['resourceType']}:{details.get('resource', '')}" if details.get("resourceType") else ""
        rows.append({"id": event.get("id"), "type": kind, "step": step, "resource": resource,
                     "after_ms": None if after is None else round(after), "time": fmt_time(when),
                     "error": details.get("error"), "cause": details.get("cause")})
    return rows


def render_events(events: list[dict[str, Any]], width: int | None = WIDTH) -> str:
    """ID, TYPE, STEP, RESOURCE, AFTER (ms since the execution started), DATE AND TIME (UTC): one
    row per history event, as the console's Events tab lists them."""
    if not events:
        return "(no events)"
    cells = [[str(r["id"] or ""), r["type"], r["step"], r["resource"],
              "" if r["after_ms"] is None else f"{r['after_ms']:,}", r["time"]] for r in event_rows(events)]
    headers = ["ID", "TYPE", "STEP", "RESOURCE", "AFTER (ms)", "DATE AND TIME (UTC)"]
    return "\n".join(table_lines(headers, cells, right=[0, 4], shrink={2: 16, 3: 18}, width=width))
