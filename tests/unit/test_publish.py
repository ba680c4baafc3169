"""Publishing is idempotent and converges: re-uploads replace exactly their own files."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from ticketcore import layout
from ticketcore.publish import LOCK_STALE_SECONDS, PublishBusy, PublishRefused, publish, publish_lock
from ticketcore.storage import LocalStorage

SRC = "support_ticket/raw/tickets.csv"


def stage(storage, run_id, partitions, valid=True, rows=5):
    files = []
    for p in partitions:
        key = f"{layout.staged_tickets_prefix(run_id)}{p}/part-00000-{run_id}.snappy.parquet"
        storage.write_bytes(key, f"{run_id}:{p}".encode())
        files.append({"uri": storage.uri(key), "rows": rows, "bytes": 10})
    reports = layout.reports_prefix(run_id)
    storage.write_bytes(reports + layout.RUN_REPORT, json.dumps({"outputs": {"files": files}}).encode())
    storage.write_bytes(layout.validation_report_key(run_id), json.dumps({"success": valid}).encode())


def published_files(storage):
    return {o.key: storage.read_bytes(o.key).decode() for o in storage.list(layout.TICKETS_PREFIX)}


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path, "b")


def test_publish_moves_staged_files_under_deterministic_names(storage):
    stage(storage, "r1", ["year=2024/month=01", "year=2024/month=02"])
    result = publish(storage, SRC, "r1", "0A")
    assert result["outcome"] == "published" and result["rows"] == 10
    files = published_files(storage)
    assert sorted(files.values()) == ["r1:year=2024/month=01", "r1:year=2024/month=02"]
    assert all(k.endswith(layout.source_id(SRC) + ".parquet") for k in files)
    assert storage.list(layout.staging_prefix("r1")) == []  # staging cleared once published
    manifest = json.loads(storage.read_bytes(layout.manifest_key(SRC)))
    assert [f["key"] for f in manifest["files"]] == sorted(files)


def test_reupload_replaces_exactly_its_own_files(storage):
    other = "support_ticket/raw/other.csv"
    stage(storage, "o1", ["year=2024/month=01"])
    publish(storage, other, "o1", "01")
    stage(storage, "r1", ["year=2024/month=01", "year=2024/month=02"])
    publish(storage, SRC, "r1", "02")
    stage(storage, "r2", ["year=2024/month=02", "year=2024/month=03"])
    result = publish(storage, SRC, "r2", "03")
    files = published_files(storage)
    mine = sorted(v for k, v in files.items() if layout.source_id(SRC) in k)
    assert mine == ["r2:year=2024/month=02", "r2:year=2024/month=03"]
    assert [v for k, v in files.items() if layout.source_id(other) in k] == ["o1:year=2024/month=01"]
    assert result["replaced_files"] == [layout.published_key(SRC, "year=2024/month=01", 0)]


def test_publishing_twice_is_a_no_op(storage):
    stage(storage, "r1", ["year=2024/month=01"])
    publish(storage, SRC, "r1", "01")
    before = published_files(storage)
    assert publish(storage, SRC, "r1", "01")["outcome"] == "already_published"
    assert published_files(storage) == before


def test_crash_after_partial_copy_converges_on_retry(storage, monkeypatch):
    stage(storage, "r1", ["year=2024/month=01", "year=2024/month=05"])
    publish(storage, SRC, "r1", "01")
    stage(storage, "r2", ["year=2024/month=02", "year=2024/month=03"])
    real_copy, calls = storage.copy, []

    def crash_on_second(src, dst):
        calls.append(src)
        if len(calls) == 2:
            raise OSError("disk went away")
        real_copy(src, dst)

    monkeypatch.setattr(storage, "copy", crash_on_second)
    with pytest.raises(OSError):
        publish(storage, SRC, "r2", "02")
    monkeypatch.setattr(storage, "copy", real_copy)
    publish(storage, SRC, "r2", "02")  # the redrive
    assert sorted(published_files(storage).values()) == ["r2:year=2024/month=02", "r2:year=2024/month=03"]


def test_unvalidated_output_is_refused(storage):
    stage(storage, "r1", ["year=2024/month=01"], valid=False)
    with pytest.raises(PublishRefused, match="no passing validation report"):
        publish(storage, SRC, "r1", "01")
    assert published_files(storage) == {}


def test_a_passing_report_where_the_glue_job_writes_does_not_publish(storage):
    # The Glue role may write reports/ but not validation/: a report it forged there must not open the gate.
    stage(storage, "run-1", ["year=2024/month=01"], valid=False)
    storage.write_bytes(layout.reports_prefix("run-1") + layout.VALIDATION_REPORT, b'{"success": true}')
    with pytest.raises(PublishRefused, match="no passing validation report at support_ticket/validation/run-1/"):
        publish(storage, SRC, "run-1", "01")
    assert published_files(storage) == {}


def test_an_older_upload_never_overwrites_a_newer_one(storage):
    stage(storage, "new", ["year=2024/month=01"])
    publish(storage, SRC, "new", "0000B")
    stage(storage, "old", ["year=2024/month=01"])
    assert publish(storage, SRC, "old", "0000A")["outcome"] == "superseded"
    assert list(published_files(storage).values()) == ["new:year=2024/month=01"]


# ---------------------------------------------------------------- one publish per key at a time


def hold_lock(storage, run_id, age_seconds=0.0):
    taken = datetime.now(UTC) - timedelta(seconds=age_seconds)
    storage.write_bytes(layout.publish_lock_key(SRC), json.dumps({"run_id": run_id, "taken_at": taken.isoformat()})
                        .encode())


def test_lock_is_held_during_the_publish_and_released_after(storage, monkeypatch):
    stage(storage, "r1", ["year=2024/month=01"])
    seen = []
    real_copy = storage.copy
    monkeypatch.setattr(storage, "copy", lambda s, d: (seen.append(storage.exists(layout.publish_lock_key(SRC))),
                                                       real_copy(s, d)))
    publish(storage, SRC, "r1", "01")
    assert seen == [True]
    assert not storage.exists(layout.publish_lock_key(SRC))


def test_a_key_held_by_another_execution_is_busy_and_untouched(storage):
    stage(storage, "r1", ["year=2024/month=01"])
    hold_lock(storage, "other-execution", age_seconds=30)
    with pytest.raises(PublishBusy, match="being published by execution other-execution"):
        publish(storage, SRC, "r1", "01")
    assert published_files(storage) == {}
    assert storage.list(layout.staging_prefix("r1"))  # staged output kept for the retry
    assert json.loads(storage.read_bytes(layout.publish_lock_key(SRC)))["run_id"] == "other-execution"


def test_own_leftover_lock_and_stale_locks_are_taken_over(storage):
    stage(storage, "r1", ["year=2024/month=01"])
    hold_lock(storage, "r1", age_seconds=5)  # this execution's attempt died holding it; the redrive goes on
    assert publish(storage, SRC, "r1", "01")["outcome"] == "published"
    stage(storage, "r2", ["year=2024/month=02"])
    hold_lock(storage, "crashed", age_seconds=LOCK_STALE_SECONDS + 1)
    assert publish(storage, SRC, "r2", "02")["outcome"] == "published"
    assert list(published_files(storage).values()) == ["r2:year=2024/month=02"]
    assert not storage.exists(layout.publish_lock_key(SRC))


def test_a_failed_publish_releases_the_lock(storage):
    with pytest.raises(RuntimeError), publish_lock(storage, SRC, "r1"):
        raise RuntimeError("boom")
    assert not storage.exists(layout.publish_lock_key(SRC))


def test_two_executions_of_one_key_publishing_at_once_never_mix(storage, monkeypatch):
    """A re-upload's execution reaches Publish while the first one is copying: without the lock both copy over
    the same names and the key ends with a mix of the two uploads."""
    stage(storage, "old", ["year=2024/month=01", "year=2024/month=02"])
    stage(storage, "new", ["year=2024/month=01", "year=2024/month=02"])
    copying, go_on = threading.Event(), threading.Event()
    real_copy = storage.copy

    def slow_copy_for_old(src, dst):
        if "/old/" in src:
            copying.set()
            assert go_on.wait(10)
        real_copy(src, dst)

    monkeypatch.setattr(storage, "copy", slow_copy_for_old)
    results = {}
    first = threading.Thread(target=lambda: results.update(old=publish(storage, SRC, "old", "0A")))
    first.start()
    assert copying.wait(10)
    with pytest.raises(PublishBusy, match="being published by execution old"):
        publish(storage, SRC, "new", "0B")  # the definition retries this
    go_on.set()
    first.join(10)
    assert results["old"]["outcome"] == "published"
    assert publish(storage, SRC, "new", "0B")["outcome"] == "published"  # the retry
    assert sorted(published_files(storage).values()) == ["new:year=2024/month=01", "new:year=2024/month=02"]
    manifest = json.loads(storage.read_bytes(layout.manifest_key(SRC)))
    assert manifest["run_id"] == "new" and len(manifest["files"]) == 2
