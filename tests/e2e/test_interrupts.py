"""Interrupts that lose nothing: real signals sent to a real `ticketflow run` / `ticketflow watch` process.

Ctrl-C once lets the running execution finish (Spark untouched); twice stops it, recorded ABORTED with an
alert and redrivable; `kill -9` leaves it RUNNING on disk, and the next runtime on the home records it
ABORTED, alerts, and a redrive (or the next `watch`) finishes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ticketflow.generate import generate_csv

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

REPO = Path(__file__).resolve().parents[2]
ROWS = 20_000  # the Glue job runs several seconds: long enough to be interrupted in the middle


def start(*args: str, home: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ticketflow.cli", *args, "--home", str(home)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def records(home: Path, suffix: str = ".json") -> dict[str, dict]:
    found = {}
    for path in (home / "executions").glob("*" + suffix):
        if path.name.startswith(".") or (suffix == ".json" and path.name.endswith(".running.json")):
            continue
        found[path.name.removesuffix(suffix)] = json.loads(path.read_text())
    return found


def wait_until_in_glue_job(home: Path, timeout: float = 240) -> str:
    """The name of the execution once its running record shows the Glue job started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, doc in records(home, ".running.json").items():
            if any(e.get("stateEnteredEventDetails", {}).get("name") == "TransformTickets" for e in doc["history"]):
                time.sleep(1.0)  # into the job itself
                return name
        time.sleep(0.2)
    raise AssertionError(f"no execution reached the Glue job in {timeout} s")


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


def interrupt_twice(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C, and again half a second later; what the process printed, once it ended without a traceback."""
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out = finish(proc)
    assert "Traceback" not in out, out
    return out


def cli(*args: str, home: Path) -> str:
    """A `ticketflow` command in a process of its own (another terminal on the same home); its stdout."""
    return subprocess.run([sys.executable, "-m", "ticketflow.cli", *args, "--home", str(home)], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout


def history_types(doc: dict) -> list[str]:
    return [e["type"] for e in doc["history"]]


def outbox(home: Path) -> list[dict]:
    path = home / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def tickets(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tickets_sig.csv"
    generate_csv(path, rows=ROWS, seed=88, dirty=0)
    return path


def test_ctrl_c_once_in_run_lets_the_running_execution_finish(tmp_path, tickets):
    home = tmp_path / "home"
    proc = start("run", str(tickets), home=home)
    name = wait_until_in_glue_job(home)
    # Another process sees it RUNNING, in the state it is in.
    listing = cli("executions", "--status", "RUNNING", "--wide", home=home)
    [row] = [line.split() for line in listing.splitlines() if line.startswith(name)]
    assert row[1] == "RUNNING", listing
    shown = cli("show", name, home=home)
    assert "Status     RUNNING (in TransformTickets)" in shown and "[>>] TransformTickets (Task)" in shown, shown
    proc.send_signal(signal.SIGINT)
    out = finish(proc)
    assert proc.returncode == 130, out
    assert "Traceback" not in out, out
    assert "interrupted: taking no new files" in out, out
    doc = records(home)[name]
    assert doc["execution"]["status"] == "SUCCEEDED", out
    # Spark was not cancelled by the signal: the Glue job ran once, no attempt failed.
    assert history_types(doc).count("TaskFailed") == 0, out
    assert not records(home, ".running.json")
    assert outbox(home) == []


def test_ctrl_c_twice_in_run_aborts_records_alerts_and_redrive_finishes(tmp_path, tickets):
    home = tmp_path / "home"
    proc = start("run", str(tickets), home=home)
    name = wait_until_in_glue_job(home)
    out = interrupt_twice(proc)
    assert proc.returncode == 130, out
    assert f"stopped by the interrupt: {name}" in out, out
    doc = records(home)[name]
    assert doc["execution"]["status"] == "ABORTED"
    assert doc["execution"]["error"] == "ticketflow.Interrupted"
    assert history_types(doc)[-1] == "ExecutionAborted"
    assert not records(home, ".running.json")
    alerts = outbox(home)
    assert len(alerts) == 1 and " ABORTED at TransformTickets " in alerts[0]["subject"], alerts
    assert "Error:         ticketflow.Interrupted" in alerts[0]["message"]
    assert not list((home / "bucket" / "support_ticket" / "processed").rglob("*.parquet"))

    redrive = start("redrive", name, home=home)
    out = finish(redrive)
    assert redrive.returncode == 0, out
    doc = records(home)[name]
    assert doc["execution"]["status"] == "SUCCEEDED"
    assert doc["redrive_count"] == 1
    assert "ExecutionRedriven" in history_types(doc)
    assert list((home / "bucket" / "support_ticket" / "processed").rglob("*.parquet"))


def test_a_killed_runtime_s_execution_is_recorded_aborted_on_the_next_start(tmp_path, tickets):
    home = tmp_path / "home"
    proc = start("run", str(tickets), home=home)
    name = wait_until_in_glue_job(home)
    proc.kill()
    proc.wait(30)
    # On disk it still says RUNNING; every reader sees its runtime is gone.
    assert records(home, ".running.json")[name]["execution"]["status"] == "RUNNING"
    listing = cli("executions", home=home)
    assert "ABORTED" in listing and "RUNNING" not in listing, listing
    shown = cli("show", name, home=home)
    assert "Error      ticketflow.RuntimeLost" in shown and "[XX] TransformTickets (Task)" in shown, shown
    assert "RUNNING" not in shown, shown

    redrive = start("redrive", name, home=home)  # the next runtime: records it ABORTED, alerts, redrives
    out = finish(redrive)
    assert redrive.returncode == 0, out
    alerts = outbox(home)
    assert len(alerts) == 1 and " ABORTED at TransformTickets " in alerts[0]["subject"], alerts
    assert "Error:         ticketflow.RuntimeLost" in alerts[0]["message"]
    doc = records(home)[name]
    assert doc["execution"]["status"] == "SUCCEEDED"
    types = history_types(doc)
    assert types.index("ExecutionAborted") < types.index("ExecutionRedriven")
    assert not records(home, ".running.json")


def test_ctrl_c_twice_in_watch_aborts_and_the_next_watch_resumes(tmp_path, tickets):
    home = tmp_path / "home"
    raw = home / "bucket" / "support_ticket" / "raw"
    raw.mkdir(parents=True)
    proc = start("watch", "--no-warm-up", home=home)
    (raw / tickets.name).write_bytes(tickets.read_bytes())
    name = wait_until_in_glue_job(home)
    out = interrupt_twice(proc)
    assert proc.returncode == 0, out
    assert f"aborted 1: {name}" in out, out
    assert records(home)[name]["execution"]["status"] == "ABORTED"

    again = start("watch", "--no-warm-up", home=home)
    deadline = time.monotonic() + 300
    while records(home)[name]["execution"]["status"] != "SUCCEEDED":
        assert time.monotonic() < deadline, "the resumed execution did not finish"
        time.sleep(0.5)
    again.send_signal(signal.SIGINT)
    out = finish(again)
    assert f"resuming 1 execution(s) interrupted earlier, by redrive: {name}" in out, out
    assert f"{name}: SUCCEEDED published {ROWS:,} rows" in out, out
    # The file's event was sent once: the redrive finished the same execution, nothing new started.
    assert len(records(home)) == 1
    assert len(list((home / "events").glob("*.json"))) == 1
