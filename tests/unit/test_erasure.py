"""Deleting an upload retracts what was derived from it, once, and never a newer upload's output."""

from __future__ import annotations

import json

import pytest

from tests.unit.test_publish import published_files, stage
from ticketcore import layout
from ticketcore.erasure import DELETE_MARKER, VERSION_DELETED, retract
from ticketcore.publish import publish
from ticketcore.storage import LocalStorage
from ticketcore.trigger import execution_stem

SRC = "support_ticket/raw/tickets.csv"
OTHER = "support_ticket/raw/other.csv"
SAME_NAME = "support_ticket/raw/tickets.csv.gz"  # shares the quarantine folder `tickets/` with SRC


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path, "b")


def run_of(storage, key, run, sequencer, version="v1", quarantined=True):
    """A finished run of `key`: staged, quarantined rows, landing copy, reports; published."""
    stage(storage, run, ["year=2024/month=01", "year=2024/month=02"], rows=4)
    report_key = layout.reports_prefix(run) + layout.RUN_REPORT
    report = json.loads(storage.read_bytes(report_key))
    storage.write_bytes(report_key, json.dumps({**report, "source_key": key}).encode())
    storage.write_bytes(layout.landing_key(run, key), b"ticket_id\n1\n")
    storage.write_bytes(layout.inspection_key(run), json.dumps({"source_key": key}).encode())
    if quarantined:
        storage.write_bytes(layout.quarantine_prefix(key, run) + "rows.csv", b"ticket_id,_error_reason\n,x\n")
    return publish(storage, key, run, sequencer, {"version_id": version})


def objects_of_run(storage, key, run):
    prefixes = [layout.quarantine_prefix(key, run), layout.reports_prefix(run), layout.staging_prefix(run),
                f"{layout.LANDING_PREFIX}{run}/", f"{layout.VALIDATION_PREFIX}{run}/"]
    return [o.key for p in prefixes for o in storage.list(p)]


def test_a_deleted_upload_takes_its_published_and_quarantined_rows_and_its_runs_copies(storage):
    run_of(storage, SRC, "r1", "01")                   # an earlier upload: its rows quarantined, replaced
    run_of(storage, SRC, "r2", "02", version="v2")     # the published one
    run_of(storage, OTHER, "o1", "03")
    run_of(storage, SAME_NAME, "g1", "04")             # another key in the same quarantine folder
    result = retract(storage, SRC, "erase-1", "05", "dm1", DELETE_MARKER)
    assert result["outcome"] == "retracted"
    assert (result["files_retracted"], result["rows_retracted"], result["runs"]) == (2, 8, ["r1", "r2"])
    assert [k for k in published_files(storage) if layout.source_id(SRC) in k] == []
    assert objects_of_run(storage, SRC, "r1") == objects_of_run(storage, SRC, "r2") == []
    # Nothing of the other keys goes, not even in the shared quarantine folder.
    assert len([k for k in published_files(storage) if layout.source_id(OTHER) in k]) == 2
    assert objects_of_run(storage, OTHER, "o1") and objects_of_run(storage, SAME_NAME, "g1")
    assert storage.exists(layout.quarantine_prefix(SAME_NAME, "g1") + "rows.csv")
    tombstone = json.loads(storage.read_bytes(layout.manifest_key(SRC)))
    assert (tombstone["files"], tombstone["rows"], tombstone["retracted_by"], tombstone["sequencer"]) == (
        [], 0, "erase-1", "05")
    # 2 published files; per run its quarantined rows, run and publish reports, landing copy and inspection,
    # validation report (staging was emptied by publish): 6.
    assert result["objects_deleted"] == 2 + 2 * 6


def test_retracting_again_changes_nothing_and_reports_the_same(storage):
    run_of(storage, SRC, "r1", "01")
    first = retract(storage, SRC, "erase-1", "05", "dm1", DELETE_MARKER)
    before = sorted(o.key for o in storage.list("support_ticket/"))
    again = retract(storage, SRC, "erase-1", "05", "dm1", DELETE_MARKER)  # a retry or a redrive
    assert again == first
    assert sorted(o.key for o in storage.list("support_ticket/")) == before


def test_an_older_execution_never_publishes_after_the_erasure(storage):
    stage(storage, "slow", ["year=2024/month=01"])        # uploaded before the deletion, still running
    run_of(storage, SRC, "r1", "02")
    retract(storage, SRC, "erase-1", "05", "dm1", DELETE_MARKER)
    assert publish(storage, SRC, "slow", "03")["outcome"] == "superseded"
    assert [k for k in published_files(storage) if layout.source_id(SRC) in k] == []


def test_an_upload_after_the_erasure_publishes_and_a_late_erasure_event_keeps_it(storage):
    run_of(storage, SRC, "r1", "02")
    retract(storage, SRC, "erase-1", "05", "dm1", DELETE_MARKER)
    assert run_of(storage, SRC, "r3", "07", version="v3")["outcome"] == "published"
    # The deletion's event delivered again, late: the newer upload stays published.
    assert retract(storage, SRC, "erase-2", "05", "dm1", DELETE_MARKER)["outcome"] == "superseded"
    assert len([k for k in published_files(storage) if layout.source_id(SRC) in k]) == 2


def test_deleting_a_version_that_is_not_the_published_one_retracts_nothing(storage):
    run_of(storage, SRC, "r2", "02", version="v2")
    result = retract(storage, SRC, "erase-1", "05", "v1", VERSION_DELETED)
    assert (result["outcome"], result["files_retracted"]) == ("version_not_published", 0)
    assert len([k for k in published_files(storage) if layout.source_id(SRC) in k]) == 2
    # The published version deleted for good: retracted.
    assert retract(storage, SRC, "erase-2", "06", "v2", VERSION_DELETED)["outcome"] == "retracted"


def test_a_key_never_published_is_retracted_to_a_tombstone(storage):
    storage.write_bytes(layout.quarantine_prefix(SRC, "r1") + "rows.csv", b"x\n")
    storage.write_bytes(layout.reports_prefix("r1") + layout.RUN_REPORT, json.dumps({"source_key": SRC}).encode())
    result = retract(storage, SRC, "erase-1", "05", "dm1", DELETE_MARKER)
    assert (result["outcome"], result["files_retracted"], result["runs"]) == ("retracted", 0, ["r1"])
    assert storage.list(layout.QUARANTINE_PREFIX) == []


def test_every_run_of_the_key_is_found_by_its_name_even_without_quarantined_rows(storage):
    # Runs are execution names `<stem>-<digest>`: an older upload's run that quarantined nothing and was
    # replaced still has its landing copy (the whole upload) and reports; a failed run never published.
    stem = execution_stem(SRC)
    run_of(storage, SRC, f"{stem}-old", "01", quarantined=False)
    run_of(storage, SRC, f"{stem}-new", "02", version="v2", quarantined=False)
    storage.write_bytes(layout.landing_key(f"{stem}-failed", SRC), b"ticket_id\n9\n")
    storage.write_bytes(layout.inspection_key(f"{stem}-failed"), json.dumps({"source_key": SRC}).encode())
    # Another key with the same name stem (`tickets.csv.gz`): its run stays.
    run_of(storage, SAME_NAME, f"{execution_stem(SAME_NAME)}-gz", "03", quarantined=False)
    result = retract(storage, SRC, "erase-1", "05", "dm1", DELETE_MARKER)
    assert result["runs"] == [f"{stem}-failed", f"{stem}-new", f"{stem}-old"]
    assert all(objects_of_run(storage, SRC, run) == [] for run in result["runs"])
    assert objects_of_run(storage, SAME_NAME, f"{stem}-gz")


def test_an_erasure_that_crashed_half_way_finishes_on_retry(storage, monkeypatch):
    run_of(storage, SRC, "r1", "01")
    run_of(storage, SRC, "r2", "02", version="v2")
    real_delete, deleted = storage.delete, []

    def crash_after_three(key):
        if len(deleted) == 3:
            raise OSError("injected: storage went away")
        deleted.append(key)
        real_delete(key)

    monkeypatch.setattr(storage, "delete", crash_after_three)
    with pytest.raises(OSError, match="injected"):
        retract(storage, SRC, "erase-1", "05", "dm1", DELETE_MARKER)
    monkeypatch.setattr(storage, "delete", real_delete)
    result = retract(storage, SRC, "erase-1", "05", "dm1", DELETE_MARKER)  # the Task's retry, or a redrive
    assert (result["outcome"], result["runs"], result["rows_retracted"]) == ("retracted", ["r1", "r2"], 8)
    assert objects_of_run(storage, SRC, "r1") == objects_of_run(storage, SRC, "r2") == []
    assert [k for k in published_files(storage) if layout.source_id(SRC) in k] == []
