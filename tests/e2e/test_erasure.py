"""Erasure through the definition: deleting an upload runs RouteEvent -> RetractSource on the local runtime,
removes the key's published and quarantined rows (another key's stay), and a failure alerts and redrives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.support import outbox, run_file, states_entered
from ticketcore import layout
from ticketflow.ops.query import run_query

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
ERASED = layout.RAW_PREFIX + "erase me.csv"
KEPT = layout.RAW_PREFIX + "keep me.csv"


def count(rt, key: str) -> int:
    _, rows = run_query(rt.home, f"SELECT count(*) FROM tickets WHERE _source_key = '{key}'")
    return int(rows[0][0])


def test_deleting_an_upload_retracts_its_rows_and_nothing_else(runtime):
    rt = runtime
    for key in (ERASED, KEPT):
        _, desc = run_file(rt, CORPUS / "ragged_rows.csv", key)  # rows published and rows quarantined
        assert desc["status"] == "SUCCEEDED"
    published = count(rt, ERASED)
    quarantine = f"{layout.QUARANTINE_PREFIX}{layout.source_name(ERASED)}/"
    assert published > 0 and rt.storage.list(quarantine)

    deletion = rt.delete(ERASED)
    [name] = deletion.started
    desc = rt.wait(name, timeout=120)
    assert desc["status"] == "SUCCEEDED" and "-erase-" in name
    assert states_entered(rt, name) == ["RouteEvent", "RetractSource", "Retracted"]
    retraction = rt.summary(name)["retraction"]
    assert (retraction["outcome"], retraction["rows_retracted"]) == ("retracted", published)
    # Gone: its rows from the table, its quarantined rows, its runs' reports; kept: the other key's.
    assert count(rt, ERASED) == 0 and count(rt, KEPT) == published
    assert rt.storage.list(quarantine) == []
    assert rt.storage.list(f"{layout.QUARANTINE_PREFIX}{layout.source_name(KEPT)}/")
    for run in retraction["runs"]:
        assert rt.storage.list(layout.reports_prefix(run)) == []
        assert rt.storage.list(f"{layout.LANDING_PREFIX}{run}/") == []
    # The raw upload itself: a delete marker, its version kept until the lifecycle rule expires it.
    assert not rt.storage.exists(ERASED) and list((rt.home / "versions").rglob("*"))
    assert outbox(rt) == []  # an erasure that succeeded raises no alert


def test_a_failed_erasure_alerts_and_a_redrive_finishes_it(runtime, faults):
    rt = runtime
    _, desc = run_file(rt, CORPUS / "ragged_rows.csv", ERASED)
    assert desc["status"] == "SUCCEEDED" and count(rt, ERASED) > 0
    crash = {"on": True}
    faults.add("lambda.Invoke", "retract", lambda n: RuntimeError("injected crash") if crash["on"] else None)
    [name] = rt.delete(ERASED).started
    desc = rt.wait(name, timeout=120)
    assert desc["status"] == "FAILED" and desc["error"] == "RuntimeError"
    [alert] = [a for a in outbox(rt) if name in a["message"]]
    assert "FAILED at RetractSource (RuntimeError)" in alert["subject"]
    assert count(rt, ERASED) > 0  # nothing half-done is hidden: the rows are still there, and say so
    crash["on"] = False
    desc = rt.redrive(name)
    assert desc["status"] == "SUCCEEDED"
    assert not [o for o in rt.storage.list(layout.TICKETS_PREFIX) if layout.source_id(ERASED) in o.key]
    assert rt.summary(name)["retraction"]["outcome"] == "retracted"


def test_ticketflow_delete_runs_the_erasure_and_says_what_it_removed(tmp_path, spark, capsys):
    from ticketflow import cli

    home = tmp_path / "home"
    source = tmp_path / "tickets.csv"
    source.write_bytes((CORPUS / "ragged_rows.csv").read_bytes())
    assert cli.main(["run", str(source), "--home", str(home)]) == 0
    capsys.readouterr()
    assert cli.main(["delete", "tickets.csv", "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "support_ticket/raw/tickets.csv: deleted; erasure tickets-erase-" in out
    assert ("SUCCEEDED (retracted): 6 published rows in 6 files, and 1 runs' quarantined rows, copies and "
            "reports: 12 objects deleted") in out
    # Deleted again (as S3 allows: another delete marker): another erasure, which finds nothing left.
    assert cli.main(["delete", "tickets.csv", "--home", str(home)]) == 0
    assert "0 published rows in 0 files" in capsys.readouterr().out
    assert cli.main(["delete", "never.csv", "--home", str(home)]) == 2
    assert "no object at support_ticket/raw/never.csv" in capsys.readouterr().err


def test_a_redrive_after_the_erasure_reads_nothing_of_the_erased_upload(runtime, tmp_path):
    # An execution that failed before the deletion (here at InspectSource: no ticket id column), redriven
    # after it with a corrected contract would read the upload's kept version again: refused instead.
    rt = runtime
    bad = tmp_path / "no id.csv"
    bad.write_text("Reference,Created At\nR-1,2024-01-05\nR-2,2024-01-06\n", encoding="utf-8")
    name, desc = run_file(rt, bad, ERASED)
    assert (desc["status"], rt.summary(name)["failed_state"]) == ("FAILED", "InspectSource")
    [erasure] = rt.delete(ERASED).started
    assert rt.wait(erasure, timeout=120)["status"] == "SUCCEEDED"
    desc = rt.redrive(name)
    summary = rt.summary(name)
    assert (desc["status"], summary["failed_state"], summary["error"]) == ("FAILED", "InspectSource", "SourceErased")
    assert f"erasure {erasure}" in summary["cause"]
    assert rt.storage.list(f"{layout.LANDING_PREFIX}{name}/") == []
    assert rt.storage.list(layout.staging_prefix(name)) == []
