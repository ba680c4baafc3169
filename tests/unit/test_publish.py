"""Publishing is idempotent and converges: re-uploads replace exactly their own files."""

from __future__ import annotations

import json

import pytest

from ticketcore import layout
from ticketcore.publish import PublishRefused, publish
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
    storage.write_bytes(reports + layout.VALIDATION_REPORT, json.dumps({"success": valid}).encode())


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


def test_an_older_upload_never_overwrites_a_newer_one(storage):
    stage(storage, "new", ["year=2024/month=01"])
    publish(storage, SRC, "new", "0000B")
    stage(storage, "old", ["year=2024/month=01"])
    assert publish(storage, SRC, "old", "0000A")["outcome"] == "superseded"
    assert list(published_files(storage).values()) == ["new:year=2024/month=01"]
