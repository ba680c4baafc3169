"""The console without a browser: its graph's DOT, what its pages compute, and the Flask application over a
home whose execution records and run files are written here (tests/records.py). The browser tests are in
tests/e2e/test_console_browser.py."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.records import DQ_REDRIVEN, GLUE_FAILED, OK, dq_redriven, glue_failed, succeeded
from ticketcore import layout
from ticketflow.console import views
from ticketflow.console.app import create_app, refusal_of_upload
from ticketflow.console.graph import path_taken, state_machine_dot
from ticketflow.local.asl import DEFAULT_DEFINITION, transitions
from ticketflow.local.history import summarize_history
from ticketflow.ops.executions import LocalExecutionStore, revive_dates
from ticketflow.ops.render import event_rows

DEFINITION = json.loads(DEFAULT_DEFINITION.read_text(encoding="utf-8"))
SCRIPT = "<script>window.__xss = 1</script>"
VENDOR = Path(__file__).resolve().parents[2] / "ticketflow" / "console" / "static" / "vendor"


def node_attrs(dot: str, state: str) -> str:
    match = re.search(rf'^  "{re.escape(state)}" \[(.*)\];$', dot, re.M)
    assert match, f"no node {state} in\n{dot}"
    return match.group(1)


def runs_of(recorder) -> list:
    return summarize_history(json.loads(json.dumps(recorder.events)))


# ---------------------------------------------------------------- graph
def test_every_transition_of_the_definition_is_an_edge():
    edges = {(a, b, kind) for a, b, _, kind in transitions(DEFINITION)}
    assert ("__start__", "RouteEvent", "next") in edges
    assert ("RouteEvent", "RetractSource", "choice") in edges and ("RouteEvent", "InspectSource", "default") in edges
    assert {("InspectSource", "TransformTickets", "next"), ("TransformTickets", "ValidateOutput", "next"),
            ("ValidateOutput", "Publish", "next"), ("Publish", "Published", "next"),
            ("Published", "__end__", "end"), ("Retracted", "__end__", "end")} <= edges
    assert len(edges) == 10


def test_a_failed_execution_marks_its_failed_state_retries_and_path():
    runs = runs_of(glue_failed())  # TransformTickets failed twice (one retry), then the execution failed
    dot = state_machine_dot(DEFINITION, runs)
    failed = node_attrs(dot, "TransformTickets")
    assert 'class="state failed"' in failed and 'id="state-TransformTickets"' in failed
    assert "2 attempts: 1 retry" in failed and "penwidth=2.6" in failed
    assert 'class="state succeeded"' in node_attrs(dot, "InspectSource")
    assert 'class="state not-reached"' in node_attrs(dot, "ValidateOutput")
    assert 'class="state not-reached"' in node_attrs(dot, "RetractSource")
    assert '"InspectSource" -> "TransformTickets" [penwidth=2.2, color="#424242", class="edge taken"]' in dot
    assert '"TransformTickets" -> "ValidateOutput" [class="edge"]' in dot
    assert '"Published" -> "__end__" [class="edge"]' in dot  # not reached: the end is not taken


def test_a_succeeded_execution_takes_the_end_and_a_redrive_keeps_one_path():
    assert ("Published", "__end__") in path_taken(runs_of(succeeded()))
    runs = runs_of(dq_redriven())  # ValidateOutput failed, was redriven, failed again
    assert [r.name for r in runs][-2:] == ["ValidateOutput", "ValidateOutput"]
    assert ("ValidateOutput", "ValidateOutput") not in path_taken(runs)
    assert 'class="state failed"' in node_attrs(state_machine_dot(DEFINITION, runs), "ValidateOutput")


def test_names_are_quoted_for_dot():
    definition = {"StartAt": 'A "quoted"\\name', "States": {'A "quoted"\\name': {"Type": "Succeed"}}}
    dot = state_machine_dot(definition, [])
    assert '"A \\"quoted\\"\\\\name" [id="state-A \\"quoted\\"\\\\name"' in dot


# ---------------------------------------------------------------- views
def test_redrive_refusal_follows_aws_limits():
    recorder = glue_failed()
    events = json.loads(json.dumps(recorder.events))
    runs = summarize_history(events)
    desc = LocalExecutionStore._describe({"execution": recorder.describe()})
    stop = desc["stopDate"]
    assert views.redrive_refusal(desc, events, runs, now=stop + timedelta(days=13)) is None
    assert "more than 14 days ago" in views.redrive_refusal(desc, events, runs, now=stop + timedelta(days=15))
    assert "25,000" in views.redrive_refusal(desc, events * 2500, runs, now=stop)
    ok = LocalExecutionStore._describe({"execution": succeeded().describe()})
    assert "this one is SUCCEEDED" in views.redrive_refusal(ok, [], [], now=stop)


def test_timeline_places_each_visit_on_the_execution_span():
    recorder = succeeded()
    runs = runs_of(recorder)
    desc = LocalExecutionStore._describe({"execution": recorder.describe()})
    bars = views.timeline(runs, desc["startDate"], desc["stopDate"])
    assert [b.run.name for b in bars] == ["InspectSource", "TransformTickets", "ValidateOutput", "Publish",
                                          "Published"]
    glue = bars[1]
    total = (desc["stopDate"] - desc["startDate"]).total_seconds()
    assert glue.width == pytest.approx(62.5 / total * 100, abs=0.05)
    assert glue.offset == pytest.approx(1.2 / total * 100, abs=0.05) and glue.duration == "1m 02s"
    assert all(0 <= b.offset <= 100 and b.offset + b.width <= 100.01 for b in bars)


def test_event_rows_name_the_step_and_the_failure():
    rows = event_rows(revive_dates(json.loads(json.dumps(glue_failed().events))))
    failed = [r for r in rows if r["type"] == "TaskFailed"]
    assert len(failed) == 2 and {r["step"] for r in failed} == {"TransformTickets"}
    assert failed[0]["error"] == "States.TaskFailed" and failed[0]["resource"] == "glue:startJobRun.sync"
    assert rows[0]["step"] == "" and rows[0]["after_ms"] == 0


def quarantine_file(path: Path, rows: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Ticket ID", "Subject", "_error_reason", "_source_line", "_raw_record"])
        for i in range(rows):
            writer.writerow([f"T{i}", SCRIPT if i == 0 else f"subject {i}", "missing_required:created_at",
                             str(i + 2), ""])
    return path


def test_quarantine_page_puts_line_and_reason_first_and_pages(tmp_path):
    path = quarantine_file(tmp_path / "rows.csv", 120)
    first = views.quarantine_page(path, 1)
    assert first.columns[:2] == ["_source_line", "_error_reason"] and first.total == 120 and first.pages == 3
    assert first.rows[0][:4] == ["2", "missing_required:created_at", "T0", SCRIPT]
    last = views.quarantine_page(path, 3)
    assert len(last.rows) == 20 and last.rows[-1][0] == "121"
    past = views.quarantine_page(path, 99)  # a page past the end shows the last one, not an empty table
    assert past.page == 3 and past.rows == last.rows
    assert views.quarantine_page(tmp_path / "none.csv") is None


def test_partitions_and_outcomes_from_the_reports():
    publication = {"rows": 9, "files": [
        {"key": "support_ticket/processed/tickets/year=2024/month=02/a.parquet", "rows": 4, "bytes": 10},
        {"key": "support_ticket/processed/tickets/year=2024/month=01/a.parquet", "rows": 3, "bytes": 20},
        {"key": "support_ticket/processed/tickets/year=2024/month=02/b.parquet", "rows": 2, "bytes": 5}]}
    assert views.partitions(publication) == [
        {"partition": "year=2024/month=01", "rows": 3, "files": 1, "bytes": 20},
        {"partition": "year=2024/month=02", "rows": 6, "files": 2, "bytes": 15}]
    report = {"rows_read": 12, "quarantined_by_reason": {"wrong_field_count": 1, "duplicate_superseded": 2}}
    assert views.outcome_counts(report, 9) == [("read", 12), ("published", 9),
                                               ("quarantined: duplicate_superseded", 2),
                                               ("quarantined: wrong_field_count", 1)]


# ---------------------------------------------------------------- the application
@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    recent = datetime.now(UTC) - timedelta(days=1)  # within the 14 days a redrive is allowed
    for recorder in (succeeded(recent), glue_failed(recent), dq_redriven(recent)):
        recorder.write(home)
    bucket = home / "bucket"
    reports = bucket / layout.reports_prefix(OK)
    reports.mkdir(parents=True)
    (reports / layout.RUN_REPORT).write_text(json.dumps(
        {"rows_read": 12, "rows_quarantined": 3, "quarantined_by_reason": {"missing_required:created_at": 3},
         "csv_parse": {"multi_line": True, "reason": "a quoted value holds a line break (line 3)", "parse_tasks": 1,
                       "read_twice": False},
         "source_text": {"compression": "gzip", "encoding": {"read_as": "utf-8", "fallback_lines": 1}}}))
    (reports / layout.PUBLISH_REPORT).write_text(json.dumps({"rows": 9, "files": [
        {"key": "support_ticket/processed/tickets/year=2024/month=01/x.parquet", "rows": 9, "bytes": 100}]}))
    quarantine_file(bucket / layout.quarantine_prefix("support_ticket/raw/tickets_2024.csv", OK)
                    / layout.QUARANTINE_FILE, 3)
    tickets = bucket / layout.TICKETS_PREFIX / "year=2024" / "month=01"
    tickets.mkdir(parents=True)
    created = pa.array([datetime(2024, 1, 2, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"ticket_id": ["T1", "T2"], "subject": [SCRIPT, "printer"], "created_at": created,
                             "updated_at": created, "_ingested_at": created, "_source_key": ["k", "k"]}),
                   tickets / "x.parquet")
    return home


@pytest.fixture
def client(home):
    app = create_app(home, None, DEFINITION, trusted_hosts=["127.0.0.1:8080", "localhost:8080"])
    app.config["TESTING"] = True
    return app.test_client()


def get(client, url: str, **kwargs):
    return client.get(url, base_url="http://127.0.0.1:8080", **kwargs)


def token(client, url: str) -> str:
    page = get(client, url).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_the_list_shows_every_execution_and_filters_it(client):
    page = get(client, "/executions").get_data(as_text=True)
    for name, status in ((OK, "SUCCEEDED"), (GLUE_FAILED, "FAILED"), (DQ_REDRIVEN, "FAILED")):
        assert f'data-execution="{name}" data-status="{status}"' in page
    assert "redriven 1x" in page and "TransformTickets" in page  # a failed state and a redrive are shown
    failed = get(client, "/executions/table?status=FAILED").get_data(as_text=True)
    assert OK not in failed and GLUE_FAILED in failed and 'hx-get="/executions/table?status=FAILED"' in failed
    by_source = get(client, "/executions/table?source=eu_").get_data(as_text=True)
    assert re.findall(r'data-execution="([^"]+)"', by_source) == [GLUE_FAILED]
    wrong = get(client, "/executions/table?since=yesterday").get_data(as_text=True)
    assert "since:" in wrong


def test_an_execution_page_shows_its_failure_graph_and_buttons(client):
    page = get(client, f"/executions/{GLUE_FAILED}").get_data(as_text=True)
    assert '<dd id="failed-state">TransformTickets</dd>' in page
    assert '<dd id="error">States.TaskFailed</dd>' in page
    assert "SchemaError: required column ticket_id is missing" in page  # the cause, as the console shows it
    dot = re.search(r'data-dot="([^"]*)"', page).group(1)
    assert "class=&#34;state failed&#34;" in dot  # escaped in the attribute; the browser reads it back as DOT
    assert "attempt 2 failed" in page and "hx-trigger" not in page  # ended: no polling
    ok = get(client, f"/executions/{OK}").get_data(as_text=True)
    assert 'id="redrive"' not in ok
    # Read-only (no runtime): no buttons, and no upload form.
    assert 'id="redrive"' not in page and 'id="reprocess"' not in page
    assert 'id="upload-off"' in get(client, "/upload").get_data(as_text=True)
    meta = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    refused = client.post("/upload", base_url="http://127.0.0.1:8080", follow_redirects=True,
                          data={"csrf_token": meta, "files": [(io.BytesIO(b"id\n1\n"), "ro.csv")]})
    assert "read-only (--read-only): nothing uploaded" in refused.get_data(as_text=True)


def test_the_button_of_the_fix_that_fits_stands_out(running):
    page = get(running, f"/executions/{GLUE_FAILED}").get_data(as_text=True)
    # A job that found a required column missing: a reprocess with a contract that names it; a redrive stays
    # offered, plain.
    assert 'class="button primary" id="reprocess"' in page and 'class="button" id="redrive"' in page


def test_a_redrive_that_succeeded_shows_no_failed_state_and_marks_where_it_resumed(tmp_path):
    recent = datetime.now(UTC) - timedelta(hours=1)
    recorder = glue_failed(recent)
    recorder.redriven(after=60)
    recorder.task("TransformTickets", "transform", {"job_run_state": "SUCCEEDED"}, glue=True)
    recorder.task("ValidateOutput", "validate", {"validation": {"success": True}})
    recorder.task("Publish", "publish", {"publication": {"rows": 3}})
    recorder.succeed()
    recorder.write(tmp_path / "home")
    client = create_app(tmp_path / "home", None, DEFINITION, trusted_hosts=["127.0.0.1:8080"]).test_client()
    page = get(client, f"/executions/{GLUE_FAILED}").get_data(as_text=True)
    assert 'id="status">SUCCEEDED' in page and 'id="failed-state"' not in page and 'id="error"' not in page
    assert re.search(r"redrive 1 resumed here \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\)", page)
    assert '<dd id="redrive-count">1</dd>' in page


def test_the_data_page_escapes_cells_and_counts_rows(client):
    page = get(client, f"/executions/{OK}/data").get_data(as_text=True)
    assert SCRIPT not in page and "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert re.search(r'data-outcome="published"><td>published</td><td class="num">9</td>', page)
    assert "year=2024/month=01" in page
    chart = json.loads(re.search(r"data-chart='([^']*)'", page).group(1))
    assert chart == [["read", 12], ["published", 9], ["quarantined: missing_required:created_at", 3]]
    assert ('<p id="reading">CSV read whole (multiLine, one task): a quoted value holds a line break (line 3); '
            "encoding utf-8, gzip compressed, 1 line decoded by fallback</p>") in page


def test_a_post_without_the_token_is_refused_and_changes_nothing(client, home):
    before = (home / "executions" / f"{GLUE_FAILED}.json").read_bytes()
    response = client.post(f"/executions/{GLUE_FAILED}/redrive", base_url="http://127.0.0.1:8080")
    assert response.status_code == 400 and "CSRF token is missing" in response.get_data(as_text=True)
    forged = client.post(f"/executions/{GLUE_FAILED}/redrive", data={"csrf_token": "forged"},
                         base_url="http://127.0.0.1:8080")
    assert forged.status_code == 400
    upload = client.post("/upload", data={"files": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")},
                         base_url="http://127.0.0.1:8080")  # refused for the token before read-only is looked at
    assert upload.status_code == 400 and not (home / "bucket" / layout.RAW_PREFIX / "x.csv").exists()
    assert (home / "executions" / f"{GLUE_FAILED}.json").read_bytes() == before


def test_a_redrive_with_the_token_but_no_runtime_says_so(client):  # the button is hidden; a hand-made POST
    response = client.post(f"/executions/{GLUE_FAILED}/redrive", base_url="http://127.0.0.1:8080",
                           data={"csrf_token": token(client, f"/executions/{GLUE_FAILED}/redrive")},
                           follow_redirects=True)
    assert "this console runs no runtime" in response.get_data(as_text=True)


def test_an_untrusted_host_is_refused(client):
    assert client.get("/executions", base_url="http://attacker.example:8080").status_code == 400


@pytest.mark.parametrize("url", [
    "/executions/..%2F..%2Fetc%2Fpasswd", "/executions/../../etc/passwd", "/executions/no-such-execution",
    "/executions/%2e%2e/data", "/static/..%2F..%2Fapp.py",
])
def test_urls_never_leave_the_home(client, url):
    response = get(client, url)
    assert response.status_code == 404, url


@pytest.fixture
def running(home):
    """The application with a worker (not started: uploads are PUT, and no runtime sends their events here)."""
    from ticketflow.console.worker import ConsoleWorker

    return create_app(home, ConsoleWorker(home), DEFINITION, trusted_hosts=["127.0.0.1:8080"]).test_client()


def test_upload_puts_a_version_and_refuses_what_the_trigger_skips(running, home):
    client = running
    csrf = token(client, "/upload")
    response = client.post("/upload", base_url="http://127.0.0.1:8080", follow_redirects=True,
                           data={"csrf_token": csrf, "files": [(io.BytesIO(b"id,created\n1,2024-01-01\n"), "ok.csv"),
                                                                (io.BytesIO(b"PK\x03\x04"), "book.xlsx"),
                                                                (io.BytesIO(b""), "empty.csv"),
                                                                (io.BytesIO(b"a\n"), ".hidden.csv")]})
    page = response.get_data(as_text=True)
    raw = home / "bucket" / layout.RAW_PREFIX
    assert sorted(p.name for p in raw.iterdir() if p.is_file()) == ["ok.csv"]
    assert (raw / "ok.csv").read_bytes() == b"id,created\n1,2024-01-01\n"
    assert "ok.csv: uploaded to support_ticket/raw/ok.csv (version " in page
    assert "book.xlsx: not uploaded: not a CSV upload (a &#39;xlsx&#39; file)" in page
    assert "empty.csv: not uploaded: zero-byte object" in page
    assert ".hidden.csv: not uploaded" in page
    assert response.request.path == "/executions"  # something went up: the list, where it appears


def test_an_upload_while_the_console_stops_is_refused(home):
    from ticketflow.console.worker import ConsoleWorker

    worker = ConsoleWorker(home)  # not started: only its flags are read here
    worker.draining.set()
    client = create_app(home, worker, DEFINITION, trusted_hosts=["127.0.0.1:8080"]).test_client()
    response = client.post("/upload", base_url="http://127.0.0.1:8080", follow_redirects=True,
                           data={"csrf_token": token(client, "/upload"),
                                 "files": [(io.BytesIO(b"id\n1\n"), "late.csv")]})
    page = response.get_data(as_text=True)
    assert "the console is stopping (Ctrl-C): nothing uploaded" in page and response.request.path == "/upload"
    assert not (home / "bucket" / layout.RAW_PREFIX / "late.csv").exists()
    assert "stopping (Ctrl-C)" in page  # the note every page shows meanwhile


def test_upload_names_that_would_leave_raw_are_refused():
    assert "path separator" in refusal_of_upload("../x.csv", 10)
    assert "path separator" in refusal_of_upload("a\\b.csv", 10)
    assert "255" in refusal_of_upload("x" * 300 + ".csv", 10)
    assert refusal_of_upload("tickets.csv.gz", 10) is None


def test_the_query_page_runs_one_select_read_only(client):
    page = get(client, "/query?sql=SELECT+ticket_id,+subject+FROM+tickets+ORDER+BY+1").get_data(as_text=True)
    assert "<td>T1</td><td>&lt;script&gt;window.__xss = 1&lt;/script&gt;</td>" in page
    for sql in ("COPY (SELECT 1) TO '/tmp/x.csv'", "SELECT 1; SELECT 2", "SELECT * FROM read_csv('/etc/passwd')"):
        refused = get(client, "/query", query_string={"sql": sql}).get_data(as_text=True)
        assert 'id="query-error"' in refused, sql
    assert "only one SELECT statement" in get(client, "/query", query_string={"sql": "DROP VIEW tickets"}
                                              ).get_data(as_text=True)


def test_the_vendored_javascript_is_the_pinned_release():
    sums = dict(reversed(line.split()) for line in (VENDOR / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"viz-global.js", "htmx.min.js", "chart.umd.min.js"}
    for name, digest in sums.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert (VENDOR / "viz-global.js").read_text()[:40].find("Viz.js 3.31.0") >= 0


def test_dates_on_the_page_are_utc():
    assert views.fmt_time(datetime(2026, 3, 1, 11, 0, tzinfo=UTC)) == "2026-03-01 11:00:00"
