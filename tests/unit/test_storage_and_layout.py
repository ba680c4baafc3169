from __future__ import annotations

from typing import Any

import pytest

from ticketcore import layout
from ticketcore.storage import LocalStorage, ObjectMissingError, S3Storage, UnsafeKeyError, for_bucket


def test_local_storage_round_trip(tmp_path):
    s = LocalStorage(tmp_path, "b")
    s.write_bytes("support_ticket/raw/a b+c%.csv", b"x,y\n")
    assert s.exists("support_ticket/raw/a b+c%.csv")
    assert (tmp_path / "bucket" / "support_ticket" / "raw" / "a b+c%.csv").read_bytes() == b"x,y\n"
    assert s.read_bytes("support_ticket/raw/a b+c%.csv", 2) == b"x,"
    s.copy("support_ticket/raw/a b+c%.csv", "support_ticket/processed/z.csv")
    assert [o.key for o in s.list("support_ticket/")] == [
        "support_ticket/processed/z.csv",
        "support_ticket/raw/a b+c%.csv",
    ]
    s.write_bytes("support_ticket/processed/tickets/p=1/y.parquet", b"y")
    s.delete("support_ticket/processed/tickets/p=1/y.parquet")
    # Emptied folders go too, up to the area's own folder (where Spark makes a run's folders: it stays).
    assert not (tmp_path / "bucket" / "support_ticket" / "processed" / "tickets").exists()
    s.delete("support_ticket/processed/z.csv")
    assert (tmp_path / "bucket" / "support_ticket" / "processed").is_dir()
    assert [o.key for o in s.list("support_ticket/processed/")] == []


def test_writes_and_deletes_racing_in_one_folder_never_fail(tmp_path):
    # Publish runs at once (the corpus test runs 37) write and delete objects under shared folders; a delete
    # that empties a folder removes it, while another thread is writing into it. Neither may fail.
    import threading

    s, errors = LocalStorage(tmp_path, "b"), []

    def churn(worker: int) -> None:
        try:
            for n in range(300):
                key = f"support_ticket/locks/shared/{n % 3}/w{worker}"
                if n % 2:
                    assert s.create_exclusive(key, b"lock")
                else:
                    s.write_bytes(key, b"x")
                    s.copy(key, key + ".copy")
                    s.delete(key + ".copy")
                s.delete(key)
        except Exception as err:  # collected: an exception in a thread would not fail the test
            errors.append(f"worker {worker}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert s.list("support_ticket/") == []


def test_uri_and_key_round_trip(tmp_path):
    s = LocalStorage(tmp_path, "b")
    uri = s.uri("support_ticket/staging/run-1/")
    assert uri.endswith("/bucket/support_ticket/staging/run-1/")
    assert s.key_of(uri) == "support_ticket/staging/run-1/"
    assert s.key_of("file://" + s.uri("support_ticket/x.csv")) == "support_ticket/x.csv"


KEYS_A_FILESYSTEM_WOULD_RESOLVE = [
    "support_ticket/raw/../../etc/passwd", "/etc/passwd", "a/../../b", "support_ticket/raw//x.csv",
    "support_ticket/raw/./x.csv", "support_ticket/raw/x.csv", "support_ticket/raw/%x.csv", "support_ticket/raw/%%x.csv",
    "support_ticket/raw/*.csv", "support_ticket/raw/[ab].csv", "support_ticket/raw/{a,b}?.csv",
]


def test_keys_are_names_never_paths(tmp_path):
    # Each key is its own object inside the bucket directory, as on S3: `..`, `.`, `//` and a leading `/` are
    # never resolved (so no key reaches another's file or leaves the bucket), and listing gives the keys back.
    s = LocalStorage(tmp_path, "b")
    for i, key in enumerate(KEYS_A_FILESYSTEM_WOULD_RESOLVE):
        s.write_bytes(key, f"{i}".encode())
    for i, key in enumerate(KEYS_A_FILESYSTEM_WOULD_RESOLVE):
        assert s.read_bytes(key) == f"{i}".encode(), key
        assert s.base in s.path(key).parents
    assert sorted(o.key for o in s.list("")) == sorted(KEYS_A_FILESYSTEM_WOULD_RESOLVE)
    assert not (tmp_path / "etc").exists() and not (tmp_path.parent / "etc" / "passwd").exists()


@pytest.mark.parametrize("key", ["", "x\x00y"])
def test_keys_a_filesystem_cannot_hold_are_refused(tmp_path, key):
    with pytest.raises(UnsafeKeyError, match="refused"):
        LocalStorage(tmp_path, "b").write_bytes(key, b"")


def test_uploads_keep_every_version(tmp_path):
    s = LocalStorage(tmp_path, "b")
    key = "support_ticket/raw/t.csv"
    s.write_bytes(key, b"v1")
    first = s.head(key)
    (tmp_path / "v2.csv").write_bytes(b"version 2")
    second = s.put_file(key, tmp_path / "v2.csv")
    assert first.version_id and second.version_id and first.version_id != second.version_id
    assert (first.size, second.size) == (2, 9) and first.etag != second.etag
    assert s.read_bytes(key) == b"version 2" and s.read_bytes(key, version_id=first.version_id) == b"v1"
    assert s.head(key) == second and s.head(key, first.version_id) == first
    s.copy(key, "support_ticket/landing/r/source.csv", first.version_id, first.etag)
    assert s.read_bytes("support_ticket/landing/r/source.csv") == b"v1"
    with pytest.raises(ObjectMissingError):
        s.copy(key, "support_ticket/landing/r2/source.csv", first.version_id, second.etag)  # ETag check
    with pytest.raises(ObjectMissingError):
        s.head(key, "no-such-version")
    s.delete(key)  # a delete marker: the versions stay
    with pytest.raises(ObjectMissingError):
        s.head(key)
    assert s.read_bytes(key, version_id=second.version_id) == b"version 2"
    assert s.head("support_ticket/landing/r/source.csv").version_id == ""  # only uploads are versioned


def test_snapshot_versions_a_file_put_into_the_directory(tmp_path):
    s = LocalStorage(tmp_path, "b")
    key = "support_ticket/raw/dropped.csv"
    s.path(key).parent.mkdir(parents=True)
    s.path(key).write_bytes(b"a")
    mtime = s.path(key).stat().st_mtime_ns
    v1 = s.snapshot(key)
    assert s.path(key).stat().st_mtime_ns == mtime  # the file is left alone (its mtime is the watch's signature)
    assert s.snapshot(key) == v1  # unchanged bytes: the same version
    s.path(key).write_bytes(b"bb")  # rewritten in place
    v2 = s.snapshot(key)
    assert v2.version_id != v1.version_id and s.read_bytes(key, version_id=v1.version_id) == b"a"


def test_listing_skips_spark_side_files(tmp_path):
    s = LocalStorage(tmp_path, "b")
    for key in ["p/_SUCCESS", "p/.part-0.crc", "p/year=2024/part-0.parquet"]:
        s.write_bytes(key, b"1")
    assert [o.key for o in s.list("p/")] == ["p/year=2024/part-0.parquet"]


def test_for_bucket_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKETFLOW_LOCAL_ROOT", str(tmp_path))
    assert isinstance(for_bucket("any"), LocalStorage)


def test_layout_names_are_safe_and_distinct():
    # Only [A-Za-z0-9_.-] survive in names; the hash in source_id keeps similar keys apart.
    assert layout.source_name("support_ticket/raw/eu/Tickets 2024 été.csv") == "eu_Tickets_2024_t"
    a = layout.published_key("support_ticket/raw/a.csv", "year=2024/month=01", 0)
    b = layout.published_key("support_ticket/raw/A.csv", "year=2024/month=01", 0)
    assert a != b and a.startswith("support_ticket/processed/tickets/year=2024/month=01/a-")
    assert layout.published_key("support_ticket/raw/a.csv", "year=2024/month=01", 0) == a  # deterministic
    assert layout.partition_of("s/tickets/year=2024/month=03/part-1.parquet") == "year=2024/month=03"
    assert layout.quarantine_prefix("support_ticket/raw/x y.csv", "r1") == "support_ticket/quarantine/x_y/r1/"


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_create_exclusive_writes_once(tmp_path, backend, monkeypatch):
    """The publish lock's primitive: locally O_EXCL, on S3 a conditional write (If-None-Match: *)."""
    if backend == "s3":
        import boto3
        from moto import mock_aws

        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.setenv(name, "testing")
        mock = mock_aws()
        mock.start()
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="tickets-lock-test")
        store: Any = S3Storage("tickets-lock-test", client)
    else:
        store = LocalStorage(tmp_path, "b")
    try:
        key = "support_ticket/locks/k.lock"
        assert store.create_exclusive(key, b"first") is True
        assert store.create_exclusive(key, b"second") is False
        assert store.read_bytes(key) == b"first"
        store.delete(key)
        assert store.create_exclusive(key, b"third") is True
    finally:
        if backend == "s3":
            mock.stop()
