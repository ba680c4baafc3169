"""`executions`, `show`, `alerts` and `upload` on a local home whose execution records are written here by
hand, in the shapes the local runtime records (DescribeExecution + GetExecutionHistory as JSON)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.records import (
    DQ_REDRIVEN,
    GLUE_FAILED,
    INSPECTION,
    OK,
    Recorder,
    dq_redriven,
    glue_failed,
    iso,
    succeeded,
)
from ticketcore.alerts import build_alert
from ticketflow.cli import main
from ticketflow.ops.executions import AmbiguousExecution, ExecutionNotFound, LocalExecutionStore, resolve


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    for recorder in (succeeded(), glue_failed(), dq_redriven()):
        recorder.write(home)
    return home


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def full_names(home: Path, out: str) -> list[str]:
    """The NAME cells of an executions table, each resolved (a cut name is still a unique prefix)."""
    store = LocalExecutionStore(home)
    return [resolve(store, row[0].removesuffix("..."))["name"] for row in table(out)[1]]


def table(out: str) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the first table in `out`: cells are separated by two or more spaces."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("NAME"))
    headers = re.split(r"\s{2,}", lines[start].strip())
    rows = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return headers, rows


# ---------------------------------------------------------------- executions
def test_executions_table_rows_and_columns(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "executions", "--home", str(home))
    assert code == 0
    headers, rows = table(out)
    assert headers == ["NAME", "STATUS", "SOURCE (raw/)", "START (UTC)", "DURATION", "FAILED STATE"]
    # THEN newest first, each with its source key, start, duration and failed state
    assert [r[1:] for r in rows] == [
        ["FAILED", "tickets_march.csv", "2026-03-01 12:00:00", "10m 35s", "ValidateOutput"],
        ["FAILED", "eu_tickets.csv", "2026-03-01 11:00:00", "2m 21s", "TransformTickets"],
        ["SUCCEEDED", "tickets_2024.csv", "2026-03-01 10:00:00", "1m 07s"],
    ]
    # the table fits 100 columns: a long name is cut at its end, leaving a prefix `show` accepts
    assert max(len(line) for line in out.splitlines()) <= 100
    for cell, name in zip([r[0] for r in rows], [DQ_REDRIVEN, GLUE_FAILED, OK], strict=True):
        assert cell == name or (cell.endswith("...") and name.startswith(cell.removesuffix("...")))
        assert resolve(LocalExecutionStore(home), cell.removesuffix("..."))["name"] == name
    assert f"redriven: {DQ_REDRIVEN} (1x)" in out
    assert "3 executions, newest first" in out


def test_executions_status_filter(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "executions", "--home", str(home), "--status", "FAILED")
    assert full_names(home, out) == [DQ_REDRIVEN, GLUE_FAILED]
    assert [r[1] for r in table(out)[1]] == ["FAILED", "FAILED"]
    _, out, _ = run(capsys, "executions", "--home", str(home), "--status", "succeeded")
    assert full_names(home, out) == [OK]
    assert [r[1] for r in table(out)[1]] == ["SUCCEEDED"]
    _, out, _ = run(capsys, "executions", "--home", str(home), "--status", "TIMED_OUT")
    assert out.strip() == f"no TIMED_OUT executions in {home / 'executions'}"
    _, out, _ = run(capsys, "executions", "--home", str(home), "--limit", "1")
    assert full_names(home, out) == [DQ_REDRIVEN]
    assert "(--limit reached)" in out


def test_executions_since_until_and_source_filters(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Started at 10:00 (OK), 11:00 (GLUE_FAILED) and 12:00 (DQ_REDRIVEN), 2026-03-01 UTC.
    _, out, _ = run(capsys, "executions", "--home", str(home), "--since", "2026-03-01T10:30")
    assert full_names(home, out) == [DQ_REDRIVEN, GLUE_FAILED]
    _, out, _ = run(capsys, "executions", "--home", str(home), "--until", "2026-03-01T12:00:00Z")
    assert full_names(home, out) == [GLUE_FAILED, OK]  # until is exclusive
    _, out, _ = run(capsys, "executions", "--home", str(home), "--since", "2026-03-01T11:30+01:00")
    assert full_names(home, out) == [DQ_REDRIVEN, GLUE_FAILED]  # 10:30 UTC
    _, out, _ = run(capsys, "executions", "--home", str(home), "--source", "tickets_")
    assert full_names(home, out) == [DQ_REDRIVEN, OK]
    _, out, _ = run(capsys, "executions", "--home", str(home), "--source", "support_ticket/raw/eu_",
                    "--status", "FAILED")
    assert full_names(home, out) == [GLUE_FAILED]
    _, out, _ = run(capsys, "executions", "--home", str(home), "--source", "nothing", "--since", "2026-03-01")
    assert out.strip() == (f"no executions in {home / 'executions'} (--since 2026-03-01T00:00:00+00:00, "
                           "--source nothing)")
    _, out, _ = run(capsys, "executions", "--home", str(home), "--since", "3000d")
    assert full_names(home, out) == [DQ_REDRIVEN, GLUE_FAILED, OK]
    with pytest.raises(SystemExit) as refused:  # argparse's usage error
        run(capsys, "executions", "--home", str(home), "--since", "last week")
    assert refused.value.code == 2 and "not a time: 'last week'" in capsys.readouterr().err


def test_executions_on_an_empty_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "executions", "--home", str(tmp_path / "fresh"))
    assert code == 0
    assert out.strip() == f"no executions in {tmp_path / 'fresh' / 'executions'}"


def test_running_record_is_listed_and_newer_record_wins(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN watch's running record of a new execution, in TransformTickets
    live = Recorder("late_upload-1234567890abcdef0123", "support_ticket/raw/late upload.csv",
                    datetime.now(UTC) - timedelta(seconds=30))
    live.task("InspectSource", "inspect", INSPECTION, seconds=1.0)
    live.event("TaskStateEntered", "stateEnteredEventDetails", {"name": "TransformTickets", "input": "{}"})
    live.write(home, ".running.json")
    # WHEN listing RUNNING executions
    _, out, _ = run(capsys, "executions", "--home", str(home), "--status", "RUNNING")
    [row] = table(out)[1]
    assert full_names(home, out) == [live.name]
    assert row[1:3] == ["RUNNING", "late upload.csv"]
    assert re.fullmatch(r"\d+\.\ds\+", row[4]), row  # elapsed so far
    _, out, _ = run(capsys, "show", "late", "--home", str(home))
    assert "Status     RUNNING (in TransformTickets)" in out

    # GIVEN a FAILED record and a newer running record of the same name (a redrive in progress)
    redrive = dq_redriven()
    redrive.events = redrive.events[:-1]  # still in ValidateOutput
    running = redrive.write(home, ".running.json")
    final = home / "executions" / f"{DQ_REDRIVEN}.json"
    os.utime(final, (1_700_000_000, 1_700_000_000))
    os.utime(running, (1_800_000_000, 1_800_000_000))
    assert LocalExecutionStore(home).describe(DQ_REDRIVEN)["status"] == "RUNNING"
    os.utime(final, (1_900_000_000, 1_900_000_000))  # the redrive ended and was recorded
    assert LocalExecutionStore(home).describe(DQ_REDRIVEN)["status"] == "FAILED"


# ---------------------------------------------------------------- show
def state_rows(out: str) -> dict[str, list[list[str]]]:
    """STATE -> its rows' cells (a state visited twice has two)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s*#\s+STATE", line))
    assert re.split(r"\s{2,}", lines[start].strip()) == ["#", "STATE", "STATUS", "DURATION", "ATTEMPTS"]
    found: dict[str, list[list[str]]] = {}
    for line in lines[start + 2:]:
        if re.match(r"\s*\d+\s{2}", line):
            cells = re.split(r"\s{2,}", line.strip())
            found.setdefault(cells[1], []).append(cells)
    return found


def test_show_success_timeline(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", OK, "--home", str(home))
    assert code == 0
    assert f"Execution  {OK}" in out
    assert "Status     SUCCEEDED\n" in out
    assert "Source     support_ticket/raw/tickets_2024.csv" in out
    assert "Started    2026-03-01 10:00:00 UTC" in out
    assert "Stopped    2026-03-01 10:01:07 UTC  (took 1m 07s)" in out
    assert "Error" not in out
    assert state_rows(out) == {
        "InspectSource": [["1", "InspectSource", "SUCCEEDED", "1.2s", "1"]],
        "TransformTickets": [["2", "TransformTickets", "SUCCEEDED", "1m 02s", "1"]],
        "ValidateOutput": [["3", "ValidateOutput", "SUCCEEDED", "3.0s", "1"]],
        "Publish": [["4", "Publish", "SUCCEEDED", "0.8s", "1"]],
        "Published": [["5", "Published", "SUCCEEDED", "0.0s", "-"]],
    }


def test_show_failure_after_retry(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "show", GLUE_FAILED, "--home", str(home))
    assert "Status     FAILED at TransformTickets" in out
    assert "Error      States.TaskFailed" in out
    assert "Cause      Glue job run jr_4c1e FAILED: SchemaError: required column ticket_id is missing" in out
    rows = state_rows(out)
    assert rows["InspectSource"] == [["1", "InspectSource", "SUCCEEDED", "0.9s", "1"]]
    # THEN two attempts, 40 s each with a 60 s retry wait between them
    assert rows["TransformTickets"] == [["2", "TransformTickets", "FAILED", "2m 20s", "2"]]
    assert set(rows) == {"InspectSource", "TransformTickets"}
    after = out.split("TransformTickets  FAILED", 1)[1].splitlines()[1:4]
    assert after == [
        "     attempt 1 failed: States.TaskFailed: Glue job run jr_4c1e FAILED: SchemaError: required ...",
        "     error: States.TaskFailed",
        "     cause: Glue job run jr_4c1e FAILED: SchemaError: required column ticket_id is missing",
    ]
    assert max(len(line) for line in out.splitlines() if not line.startswith("ARN ")) <= 100
    # Which fix fits: a missing column is the contract's or the file's to fix; a redrive would fail again.
    assert "What fits  if the file's columns are right but named differently, add the names to the" in out
    # The picture: the path taken, and where it failed (this recorded history predates RouteEvent).
    picture = out[out.index("[  ] RouteEvent"):out.index("#  STATE")].splitlines()
    assert picture[:9] == [
        "[  ] RouteEvent (Choice)",
        "   |-- $.removal present: [  ] RetractSource (Task) -> [  ] Retracted (Succeed)",
        "   |-- otherwise: below",
        "   |",
        "[ok] InspectSource (Task)",
        "   |",
        "[XX] TransformTickets (Task)   <- failed here: States.TaskFailed",
        "   |",
        "[  ] ValidateOutput (Task)",
    ]


def test_show_lists_the_run_s_files_that_exist_and_the_events(home: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    reports = home / "bucket" / "support_ticket" / "reports" / OK
    reports.mkdir(parents=True)
    (reports / "run_report.json").write_text("{}")
    _, out, _ = run(capsys, "show", OK, "--home", str(home), "--events")
    assert f"Report     {reports / 'run_report.json'}" in out
    assert "Validation " not in out and "Quarantine " not in out  # not written: not listed
    events = out[out.index("\nEvents\n") + 8:].splitlines()
    assert re.split(r"\s{2,}", events[0].strip()) == ["ID", "TYPE", "STEP", "RESOURCE", "AFTER (ms)",
                                                      "DATE AND TIME (UTC)"]
    rows = [re.split(r"\s{2,}", line.strip()) for line in events[2:]]
    recorded = json.loads((home / "executions" / f"{OK}.json").read_text())["history"]
    assert [int(r[0]) for r in rows] == [e["id"] for e in recorded]
    assert rows[0] == ["1", "ExecutionStarted", "0", "2026-03-01 10:00:00"]
    glue = next(r for r in rows if r[1] == "TaskScheduled" and r[2] == "TransformTickets")
    assert glue[3] == "glue:startJobRun.sync"


def test_show_summarises_the_run_report_with_counts_and_no_values(home: Path, capsys: pytest.CaptureFixture[str]
                                                                  ) -> None:
    reports = home / "bucket" / "support_ticket" / "reports" / OK
    reports.mkdir(parents=True)
    report = {
        "rows_read": 1200, "rows_valid": 1190, "rows_quarantined": 10,
        "quarantined_by_reason": {"wrong_field_count": 7, "duplicate_superseded": 3},
        "csv_parse": {"multi_line": False, "reason": "no quoted value holds a line break (whole-file scan)",
                      "parse_tasks": 4, "read_twice": False},
        "source_text": {"compression": "gzip", "encoding": {"read_as": "windows-1252", "fallback_lines": 2}},
        "profile": "zendesk",
        "unparsed_values": {"satisfaction_score": {"count": 5, "examples": [{"line": 14, "value": "SECRET-CELL"}]},
                            "created_at": {"count": 0, "examples": []}},
        "out_of_range": {"resolved_at": 2, "created_at": 0},
        "unknown_enum_values": {"status": {"count": 4, "values": ["SECRET-TOKEN"]}},
        "unknown_columns": {"x_custom": "Custom", "x_other": "Other"},
    }
    (reports / "run_report.json").write_text(json.dumps(report))
    _, out, _ = run(capsys, "show", OK, "--home", str(home))
    assert "Rows       1,200 read: 1,190 valid, 10 quarantined" in out
    assert "quarantined: duplicate_superseded 3, wrong_field_count 7" in out
    assert ("CSV        split by lines (4 parse tasks): no quoted value holds a line break (whole-file scan)"
            in out)
    assert "Encoding   windows-1252, gzip compressed, 2 lines decoded by fallback" in out
    assert "Profile    zendesk" in out
    assert "Values     unreadable (text kept in _unparsed), rows: satisfaction_score 5" in out
    assert "out of plausible range, rows: resolved_at 2" in out and "not in the enum's values, rows: status 4" in out
    assert "\u00a0" not in out
    assert "Columns    2 not in the contract, published in the extra map" in out
    assert "SECRET" not in out  # example values stay in the encrypted report


def test_the_run_report_summary_never_parts_a_reason_from_its_count() -> None:
    from ticketflow.ops.render import render_run_report

    reasons = {f"missing_required:column_with_a_long_name_{i}": i + 1 for i in range(12)}
    lines = render_run_report({"rows_read": 100, "rows_valid": 22, "rows_quarantined": 78,
                               "quarantined_by_reason": reasons,
                               "csv_parse": {"multi_line": False, "reason": "r", "parse_tasks": 1}})
    body = [line.strip() for line in lines[1:] if line.startswith(" ")]  # the lines under "Rows"
    assert len(body) > 3  # wrapped over several lines
    items = [item.strip() for line in body for item in line.removeprefix("quarantined:").split(",") if item.strip()]
    assert sorted(items) == sorted(f"{k} {v}" for k, v in reasons.items())  # every item whole on one line
    assert all(len(line) <= 100 for line in lines)
    assert "CSV        split by lines (1 parse task): r" in lines


def test_the_csv_reading_says_why_a_file_was_read_a_second_time() -> None:
    from ticketflow.ops.render import csv_reading

    parse = {"multi_line": False, "reason": "no quoted value holds a line break", "parse_tasks": 2,
             "read_twice": True,
             "read_again_because": "the whole file is cp1252, not utf-8 as its first 256 KiB showed"}
    assert csv_reading({"csv_parse": parse}) == (
        "split by lines (2 parse tasks): no quoted value holds a line break. Read a second time: the whole file is "
        "cp1252, not utf-8 as its first 256 KiB showed")
    # A report written before the reason was recorded: a second reading then always had the one cause.
    old = {"multi_line": True, "reason": "a quoted value opening on line 9 holds a line break", "parse_tasks": 1,
           "read_twice": True}
    assert str(csv_reading({"csv_parse": old})).endswith(
        ". Read a second time: the whole-file scan overruled the split reading")
    assert "second time" not in str(csv_reading({"csv_parse": {**parse, "read_twice": False}}))


def test_show_says_when_no_run_report_was_written(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "show", GLUE_FAILED, "--home", str(home))
    assert "Data       no run report (the Glue job has not written one)" in out
    assert "\nRows " not in out


def test_show_redriven_failure(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "show", DQ_REDRIVEN, "--home", str(home))
    assert "Status     FAILED at ValidateOutput" in out
    assert "Redrives   1 (last at 2026-03-01 12:10:33 UTC)" in out
    assert "Error      DataQualityError" in out
    cause = "2 error-severity expectations failed: expect_column_values_to_not_be_null(customer_id)"
    assert f"Cause      {cause}" in out
    assert "stackTrace" not in out  # the readable part only; --json has the whole cause
    rows = state_rows(out)
    assert rows["ValidateOutput"] == [["3", "ValidateOutput", "FAILED", "2.6s", "1"],
                                      ["4", "ValidateOutput", "FAILED", "2.1s", "1"]]
    # THEN the redrive is marked where it resumed: between the two visits of ValidateOutput
    lines = out.splitlines()
    marker = lines.index("     -- redrive 1 at 2026-03-01 12:10:33 UTC: resumed at ValidateOutput --")
    assert re.match(r"\s*3\s+ValidateOutput", lines[marker - 3])
    assert lines[marker - 2:marker] == [
        "     error: DataQualityError",
        "     cause: 2 error-severity expectations failed: expect_column_values_to_not_be_null(customer_id)",
    ]
    assert re.match(r"\s*4\s+ValidateOutput", lines[marker + 1])


def test_show_io_adds_each_states_input_and_output(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, plain, _ = run(capsys, "show", OK, "--home", str(home))
    _, out, _ = run(capsys, "show", OK, "--home", str(home), "--io")
    assert "input:" not in plain
    assert out.count("     input:") == 5 and out.count("     output:") == 5
    # Publish's output carries every earlier result (ResultPath keeps the document)
    publish = out.split("Publish  ", 1)[1]
    assert '"job_run_id": "jr_1"' in publish and '"rows": 10000' in publish
    assert "execution output:" in out


def test_show_json_round_trips_the_recorded_history(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads((home / "executions" / f"{DQ_REDRIVEN}.json").read_text())
    code, out, _ = run(capsys, "show", DQ_REDRIVEN, "--home", str(home), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["events"] == record["history"]
    assert doc["execution"] == record["execution"]
    assert [e["type"] for e in doc["events"]].count("ExecutionRedriven") == 1


def test_prefix_arn_and_unknown_names(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = LocalExecutionStore(home)
    assert resolve(store, "eu_")["name"] == GLUE_FAILED
    arn = f"arn:aws:states:us-east-1:123456789012:execution:ticketflow-pipeline:{OK}"
    assert resolve(store, arn)["name"] == OK
    code, out, _ = run(capsys, "show", "tickets_m", "--home", str(home))
    assert code == 0 and f"Execution  {DQ_REDRIVEN}" in out

    with pytest.raises(AmbiguousExecution):
        resolve(store, "tickets_")
    code, out, err = run(capsys, "show", "tickets_", "--home", str(home))
    assert code == 2 and out == ""
    assert err.splitlines() == [
        f"'tickets_' matches 2 executions in {home / 'executions'}; give more of the name:",
        f"  {DQ_REDRIVEN}",
        f"  {OK}",
    ]

    with pytest.raises(ExecutionNotFound):
        resolve(store, "arn:aws:states:us-east-1:123456789012:execution:ticketflow-pipeline:gone")
    code, _, err = run(capsys, "show", "nope", "--home", str(home))
    assert code == 2
    assert err.strip() == f"no execution named 'nope' (nor starting with it) in {home / 'executions'}"


# ---------------------------------------------------------------- alerts
def write_alerts(home: Path) -> None:
    """The outbox as the notify handler fills it (its real message), and one dead-lettered upload event."""
    messages = []
    for number, recorder in enumerate((glue_failed(), dq_redriven())):
        desc = recorder.describe()
        event = {"detail": {**desc, "status": "FAILED"}}
        alert = build_alert(event, recorder.events, "us-east-1")
        assert alert is not None
        messages.append({"message_id": f"m-{number}", "topic_arn": "arn:aws:sns:us-east-1:123456789012:t",
                         "subject": alert.subject, "message": alert.message,
                         "sent_at": iso(recorder.now + timedelta(seconds=2))})
    (home / "outbox.jsonl").write_text("".join(json.dumps(m) + "\n" for m in messages))
    s3_event = json.loads((Path(__file__).parent.parent / "events" / "s3_put.json").read_text())
    s3_event["Records"] = s3_event["Records"][:1]
    letter = {"failed_at": "2026-03-01T13:00:00+00:00", "attempts": 3,
              "error": "ClientError: An error occurred (AccessDenied) when calling StartExecution",
              "event": s3_event}
    (home / "dead_letters.jsonl").write_text(json.dumps(letter) + "\n")


def test_alerts_show_the_outbox_and_dead_letters(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_alerts(home)
    code, out, _ = run(capsys, "alerts", "--home", str(home))
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Failure alerts sent (local SNS outbox {home / 'outbox.jsonl'}), newest last:"
    subjects = [line for line in lines if line.startswith("[")]
    assert subjects == [
        f"[2026-03-01 11:02:23 UTC] ticketflow: {GLUE_FAILED} FAILED at TransformTickets (States.TaskFailed)",
        f"[2026-03-01 12:10:37 UTC] ticketflow: {DQ_REDRIVEN} FAILED at ValidateOutput (DataQualityError)",
    ]
    assert "    Source file:   support_ticket/raw/eu_tickets.csv" in lines
    # Each alert says which fix fits its error: a missing column is the contract's (reprocess), a
    # validation failure the file's (upload again); neither is a redrive.
    assert f"      ticketflow reprocess {GLUE_FAILED} --contract OVERLAY.yaml   (local runtime)" in lines
    assert (f"      ticketflow reprocess {GLUE_FAILED} --target aws   (a deployed stack, after `cdk deploy` of the "
            "contract)") in lines
    assert any(line.startswith("    What fits: the output failed validation: fix the file and upload it again")
               for line in lines), lines
    assert not any("ticketflow redrive" in line for line in lines)
    heading = (f"Events the trigger could not start after 3 attempts (dead letters "
               f"{home / 'dead_letters.jsonl'}), newest last:")
    assert heading in lines
    after = lines[lines.index(heading) + 1:]
    assert after[:2] == [
        "  [2026-03-01 13:00:00 UTC] tickets-bucket/support_ticket/raw/eu/Tickets 2024 été 50%.csv",
        "      error: ClientError: An error occurred (AccessDenied) when calling StartExecution",
    ]


def test_alerts_limit_json_and_empty(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_alerts(home)
    _, out, _ = run(capsys, "alerts", "--home", str(home), "--limit", "1")
    assert "newest last (1 of 2):" in out
    assert GLUE_FAILED not in out and f"ticketflow: {DQ_REDRIVEN} FAILED" in out

    _, out, _ = run(capsys, "alerts", "--home", str(home), "--json")
    doc = json.loads(out)
    assert [m["message_id"] for m in doc["messages"]] == ["m-0", "m-1"]
    assert doc["dead_letters"][0]["attempts"] == 3

    _, out, _ = run(capsys, "alerts", "--home", str(tmp_path / "empty"))
    assert out.splitlines() == [
        f"No failure alerts: the local SNS outbox {tmp_path / 'empty' / 'outbox.jsonl'} is empty.",
        "",
        "No dead-lettered trigger events: every upload event started its execution.",
        "",
        "No skipped uploads: every object under raw/ started an execution.",
    ]


def test_alerts_show_skipped_uploads_with_their_reason(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ticketcore.storage import LocalStorage
    from ticketcore.trigger import S3ObjectEvent, skip_reason, skip_record, skip_record_key

    storage = LocalStorage(home, "b")
    for n, (key, size) in enumerate([("support_ticket/raw/q3.xlsx", 5120), ("support_ticket/raw/empty.csv", 0)]):
        obj = S3ObjectEvent("b", key, size, sequencer=f"0{n}")
        when = datetime(2026, 3, 1, 10 + n, tzinfo=UTC)
        storage.write_bytes(skip_record_key(obj), json.dumps(skip_record(obj, skip_reason(obj) or "", when)).encode())
    code, out, _ = run(capsys, "alerts", "--home", str(home))
    assert code == 0
    lines = out.splitlines()
    at = lines.index("Uploads under raw/ that started no execution, newest last:")
    assert lines[at + 1:at + 3] == [
        "  [2026-03-01 10:00:00 UTC] support_ticket/raw/q3.xlsx (5120 bytes): not a CSV upload (a 'xlsx' file): "
        "upload .csv, .csv.gz or a .zip holding one CSV",
        "  [2026-03-01 11:00:00 UTC] support_ticket/raw/empty.csv (0 bytes): zero-byte object",
    ]
    _, out, _ = run(capsys, "alerts", "--home", str(home), "--json", "--limit", "1")
    doc = json.loads(out)
    assert doc["skipped_total"] == 2 and [r["key"] for r in doc["skipped"]] == ["support_ticket/raw/empty.csv"]


# ---------------------------------------------------------------- upload
def test_upload_places_files_and_runs_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in" / "tickets 2024.csv"
    source.parent.mkdir()
    source.write_bytes(b"ticket_id,status\nT-1,open\n")
    os.utime(source, (1_700_000_000, 1_700_000_000))
    home = tmp_path / "home"
    code, out, _ = run(capsys, "upload", str(source), "--home", str(home))
    assert code == 0
    target = home / "bucket" / "support_ticket" / "raw" / "tickets 2024.csv"
    assert target.read_bytes() == b"ticket_id,status\nT-1,open\n"
    first = out.splitlines()[0]
    assert re.fullmatch(rf"uploaded {re.escape(str(source))} -> support_ticket/raw/tickets 2024\.csv "
                        r"\(version [0-9a-f]+\.[0-9a-f]{12}\)", first), first
    assert "nothing was run" in out
    # THEN the original is untouched, no temp file is left, and nothing ran
    assert source.read_bytes() == b"ticket_id,status\nT-1,open\n"
    assert source.stat().st_mtime == 1_700_000_000
    assert sorted(p.name for p in target.parent.iterdir()) == ["tickets 2024.csv"]
    assert not (home / "executions").exists() and not (home / "outbox.jsonl").exists()

    source.write_bytes(b"ticket_id,status\nT-1,closed\n")
    _, out, _ = run(capsys, "upload", str(source), "--home", str(home))
    assert "; the version that was there stays as an older version)" in out
    assert target.read_bytes() == b"ticket_id,status\nT-1,closed\n"
    # Each upload is an object version of its own, as on the versioned bucket: the watch sends each once.
    versions = home / "versions" / "support_ticket" / "raw" / "tickets 2024.csv"
    kept = sorted(p.read_bytes() for p in versions.iterdir() if not p.name.startswith("."))
    assert kept == [b"ticket_id,status\nT-1,closed\n", b"ticket_id,status\nT-1,open\n"]


def test_upload_refuses_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "a.csv"
    real.write_text("ticket_id\nT-1\n")
    missing = tmp_path / "missing.csv"
    code, out, err = run(capsys, "upload", str(real), str(missing), "--home", str(tmp_path / "h"))
    assert code == 2 and out == ""
    assert err.strip() == f"no such file: {tmp_path / 'missing.csv'} (nothing uploaded)"
    assert not (tmp_path / "h").exists()


def test_user_mistakes_get_one_line_and_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    code, out, err = run(capsys, "run", str(folder), "--home", str(tmp_path / "h"))
    assert (code, out) == (2, "")
    assert err.strip() == f"not a file (a directory?): {folder} (nothing run; give the CSV files in it)"
    code, _, err = run(capsys, "run", str(tmp_path / "missing.csv"), "--home", str(tmp_path / "h"))
    assert code == 2 and err.strip() == f"no such file: {tmp_path / 'missing.csv'} (nothing run)"
    # A --home that cannot be a folder (a file is in the way): one line naming it, no traceback.
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    source = tmp_path / "a.csv"
    source.write_text("ticket_id\nT-1\n")
    code, _, err = run(capsys, "run", str(source), "--home", str(blocker / "home"))
    assert code == 2 and err.startswith("ticketflow run: Not a directory: ") and "Traceback" not in err
    assert str(blocker) in err
    code, _, err = run(capsys, "redrive", "x", "--target", "aws", "--contract", str(source))
    assert code == 2 and err.startswith("cannot redrive: --contract applies to the local runtime only")
    assert "`cdk deploy`, then `ticketflow reprocess NAME --target aws`" in err
