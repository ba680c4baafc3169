"""`ticketflow console` in a real browser: Debian's headless chromium driven by Playwright, against a real
console process (its own local runtime: moto's interpreter, the Lambda handlers, the Glue script on PySpark).

The tests run in file order over one console: an upload that reaches SUCCEEDED while the list updates by
itself; a file that fails validation, shown failed in the graph, redriven from the page after a contract fix;
a `<script>` cell shown as text; a POST without the CSRF token refused. The screenshots the README shows are
written to docs/console/ by these tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "contracts" / "support_tickets.yaml"
SCREENSHOTS = ROOT / "docs" / "console"
CHROMIUM = shutil.which("chromium")
RUN_TIMEOUT_MS = 300_000  # one file through Spark on a busy 2-core machine, with margin

pytestmark = [
    pytest.mark.e2e, pytest.mark.spark, pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed: `make test` installs it when "
                                                "run as root with apt-get (else: sudo apt-get install -y chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (make test "
                                                             "installs it with the dev extras)")

SCRIPT_PUBLISHED = "<script>window.__xss = 1</script>"
SCRIPT_QUARANTINED = "<script>window.__xss = 2</script>"


def tickets_csv(path: Path) -> Path:
    """31 tickets (one whose subject is a script tag) and one row without a ticket id (quarantined)."""
    rows = ["Ticket ID,Created At,Updated At,Status,Priority,Subject"]
    rows += [f"T{i},2024-02-01T00:00:00Z,2024-02-02T00:00:00Z,open,high,printer {i}" for i in range(1, 31)]
    rows.append(f"T31,2024-02-01T00:00:00Z,2024-02-02T00:00:00Z,open,high,{SCRIPT_PUBLISHED}")
    rows.append(f",2024-02-01T00:00:00Z,2024-02-02T00:00:00Z,open,high,{SCRIPT_QUARANTINED}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def skewed_csv(path: Path) -> Path:
    """60 tickets, 10 resolved before they were created: over the contract's 2% tolerance."""
    rows = ["Ticket ID,Created At,Resolved At,Priority"] + [
        f"S{i},2024-02-01T00:00:00Z,{'2024-01-01' if i < 10 else '2024-03-01'}T00:00:00Z,high" for i in range(60)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """A `ticketflow console` process on a free port, over a new home, with its own copy of the contract."""
    base = tmp_path_factory.mktemp("console")
    contract = base / "contract.yaml"
    shutil.copy(CONTRACT, contract)
    home, log = base / "home", base / "console.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ticketflow.cli", "console", "--home", str(home), "--port", "0",
             "--contract", str(contract)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    url = None
    while url is None and time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"console: (http://127\.0\.0\.1:\d+)/", log.read_text())
        url = found.group(1) if found else None
        time.sleep(0.2)
    assert url, f"the console did not start:\n{log.read_text()}"
    yield {"url": url, "home": home, "contract": contract, "dir": base, "log": log, "process": process}
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # stops what still runs (ABORTED, redrivable), as `watch` does
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.errors = errors
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def upload(page, console, path: Path) -> str:
    """Upload one file from the Upload page; returns the flash message shown on the list it leads to."""
    page.goto(console["url"] + "/upload")
    page.set_input_files("#files", str(path))
    page.click("#upload")
    page.wait_for_url(re.compile(r".*/executions$"))
    return page.inner_text(".flash")


def record(console, name: str) -> dict:
    return json.loads((console["home"] / "executions" / f"{name}.json").read_text())


def test_an_upload_appears_in_the_list_and_reaches_succeeded_without_a_reload(page, console):
    message = upload(page, console, tickets_csv(console["dir"] / "console_tickets.csv"))
    assert re.match(r"console_tickets\.csv: uploaded to support_ticket/raw/console_tickets\.csv \(version \S+\); "
                    r"its execution starts in a moment", message), message

    # The list polls: the row appears, runs and succeeds on this same page load.
    row = 'tr[data-execution^="console_tickets-"]'
    page.wait_for_selector(row, timeout=60_000)
    page.wait_for_selector(row + '[data-status="SUCCEEDED"]', timeout=RUN_TIMEOUT_MS)
    assert page.locator("#runtime-note .note").count() == 0  # "starting ..." went away by itself too
    name = page.get_attribute(row, "data-execution")

    page.click(f"{row} a")
    page.wait_for_selector('#graph[data-drawn="true"] svg')
    for state in ("RouteEvent", "InspectSource", "TransformTickets", "ValidateOutput", "Publish", "Published"):
        assert "succeeded" in page.get_attribute(f"svg g#state-{state}", "class").split(), state
    assert "not-reached" in page.get_attribute("svg g#state-RetractSource", "class").split()
    assert page.locator("#timeline tbody tr[data-state]").count() == 6
    assert page.locator("#reprocess").count() == 1 and page.locator("#redrive").count() == 0

    page.click("#data-link")
    outcomes = {r.get_attribute("data-outcome"): r.locator("td.num").inner_text()
                for r in page.locator("#outcomes tbody tr").all()}
    assert outcomes == {"read": "32", "published": "31", "quarantined: missing_required:ticket_id": "1"}
    assert page.evaluate("Chart.getChart('outcomes-chart').data.datasets[0].data") == [32, 31, 1]
    assert record(console, name)["execution"]["status"] == "SUCCEEDED"


def test_a_script_cell_is_shown_as_text(page, console):
    name = next(p.stem for p in (console["home"] / "executions").glob("console_tickets-*.json"))
    page.goto(f"{console['url']}/executions/{name}/quarantine")
    cells = page.locator("#quarantine tbody td").all_inner_texts()
    assert SCRIPT_QUARANTINED in cells and "missing_required:ticket_id" in cells
    page.goto(console["url"] + "/query?sql=" + "SELECT subject FROM tickets WHERE ticket_id = 'T31'")
    assert page.locator("#result tbody td").all_inner_texts() == [SCRIPT_PUBLISHED]
    assert page.evaluate("window.__xss") is None  # neither script ran


def test_a_failed_execution_is_marked_in_the_graph_and_redriven_after_a_contract_fix(page, console):
    upload(page, console, skewed_csv(console["dir"] / "skewed_tickets.csv"))
    row = 'tr[data-execution^="skewed_tickets-"]'
    page.wait_for_selector(row + '[data-status="FAILED"]', timeout=RUN_TIMEOUT_MS)
    assert page.inner_text(row + " td:last-child") == "ValidateOutput"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "executions.png"))
    name = page.get_attribute(row, "data-execution")

    page.click(f"{row} a")
    page.wait_for_selector('#graph[data-drawn="true"] svg')
    assert "failed" in page.get_attribute("svg g#state-ValidateOutput", "class").split()
    assert "not-reached" in page.get_attribute("svg g#state-Publish", "class").split()
    assert page.inner_text("#failed-state") == "ValidateOutput" and page.inner_text("#error") == "DataQualityError"
    page.screenshot(path=str(SCREENSHOTS / "failed-execution.png"))

    # The operator relaxes the tolerance in the contract the console runs with, then redrives from the page.
    contract = console["contract"]
    contract.write_text(contract.read_text().replace("max_violation_share: 0.02", "max_violation_share: 0.2"))
    page.click("#redrive")
    assert "resume at ValidateOutput" in page.inner_text("main")
    page.click("#confirm")
    page.wait_for_url(re.compile(rf".*/executions/{name}$"))
    assert f"redrive of {name} started" in page.inner_text(".flash")
    page.wait_for_selector('#execution[data-status="SUCCEEDED"]', timeout=RUN_TIMEOUT_MS)
    page.wait_for_selector('#graph[data-drawn="true"] svg')
    assert page.inner_text("#redrive-count") == "1"
    assert "succeeded" in page.get_attribute("svg g#state-Publish", "class").split()
    doc = record(console, name)
    assert doc["execution"]["status"] == "SUCCEEDED" and doc["redrive_count"] == 1
    entered = [e["stateEnteredEventDetails"]["name"] for e in doc["history"] if e["type"].endswith("StateEntered")]
    assert entered[-3:] == ["ValidateOutput", "Publish", "Published"] and entered.count("TransformTickets") == 1


def test_a_request_without_the_token_is_refused(page, console):
    name = next(p.stem for p in (console["home"] / "executions").glob("skewed_tickets-*.json"))
    before = record(console, name)
    response = page.request.post(f"{console['url']}/executions/{name}/reprocess", form={"confirm": "yes"})
    assert response.status == 400 and "The CSRF token is missing" in response.text()
    response = page.request.post(f"{console['url']}/executions/{name}/redrive",
                                 form={"csrf_token": "not-the-session-token"})
    assert response.status == 400
    assert record(console, name) == before
    assert not list((console["home"] / "executions").glob("skewed_tickets-re-*"))  # no reprocess started


def test_reprocess_from_the_page_runs_the_upload_again_once(page, console):
    name = next(p.stem for p in (console["home"] / "executions").glob("console_tickets-*.json") if "-re-" not in p.stem)
    page.goto(f"{console['url']}/executions/{name}")
    page.click("#reprocess")
    page.click("#confirm")
    page.wait_for_url(re.compile(r".*/executions/console_tickets-re-[0-9a-f]+$"))
    new_name = page.url.rsplit("/", 1)[-1]
    assert f"reprocess of {name} started as {new_name}" in page.inner_text(".flash")
    # While it runs, the page redraws the graph with the running state marked (the Glue job takes seconds).
    page.wait_for_selector("svg g.state.running", timeout=60_000)
    page.wait_for_selector('#execution[data-status="SUCCEEDED"]', timeout=RUN_TIMEOUT_MS)
    doc = record(console, new_name)
    assert json.loads(doc["execution"]["input"])["version_id"] == json.loads(
        record(console, name)["execution"]["input"])["version_id"]  # the same upload, run again

    # Same contract, same code: a second reprocess starts nothing.
    page.goto(f"{console['url']}/executions/{name}/reprocess")
    page.click("#confirm")
    page.wait_for_url(re.compile(rf".*/executions/{new_name}$"))
    assert "already reprocessed this upload with this contract and code" in page.inner_text(".flash")
    assert len(list((console["home"] / "executions").glob("console_tickets-re-*.json"))) == 1


def test_an_execution_run_beside_the_console_is_listed_and_run_once(page, console):
    # `ticketflow run` in another process on the same home: the console lists its execution as it runs, and the
    # console's event source does not send that upload's version again.
    source = tickets_csv(console["dir"] / "beside_run.csv")
    page.goto(console["url"] + "/executions")
    done = subprocess.run([sys.executable, "-m", "ticketflow.cli", "run", str(source), "--home", str(console["home"])],
                          capture_output=True, text=True, cwd=ROOT, timeout=RUN_TIMEOUT_MS / 1000)
    assert done.returncode == 0, done.stdout + done.stderr
    page.wait_for_selector('tr[data-execution^="beside_run-"][data-status="SUCCEEDED"]', timeout=30_000)
    time.sleep(2)  # a few of the console's scans of raw/
    assert len(list((console["home"] / "executions").glob("beside_run-*.json"))) == 1
    assert page.locator('tr[data-execution^="beside_run-"]').count() == 1


def test_an_upload_from_the_page_runs_once_beside_a_watch(page, console):
    # A `ticketflow watch` on the same home scans raw/ too: whichever process sends the version's event first
    # runs it, and the other sends nothing.
    with (console["dir"] / "watch.log").open("w") as out:
        watch = subprocess.Popen([sys.executable, "-m", "ticketflow.cli", "watch", "--no-warm-up", "--home",
                                  str(console["home"])], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while "watching" not in (console["dir"] / "watch.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        upload(page, console, tickets_csv(console["dir"] / "beside_watch.csv"))
        page.wait_for_selector('tr[data-execution^="beside_watch-"][data-status="SUCCEEDED"]',
                               timeout=RUN_TIMEOUT_MS)
        time.sleep(2)  # a few more scans of raw/ by both
        assert len(list((console["home"] / "executions").glob("beside_watch-*.json"))) == 1
        claims = [json.loads(p.read_text()) for p in (console["home"] / "events").glob("*.json")]
        assert [c["by"] for c in claims if c["key"].endswith("/beside_watch.csv")] in (["console"], ["watch"])
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(60)


def test_ctrl_c_stops_the_console(console):
    process = console["process"]
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 130
    log = console["log"].read_text()
    assert log.rstrip().endswith("console stopped") and "Traceback" not in log
