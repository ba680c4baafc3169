from __future__ import annotations

from typing import Any

import pytest

from ticketcore import layout
from ticketcore.storage import LocalStorage, S3Storage, UnsafeKeyError, for_bucket


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
    s.delete("support_ticket/processed/z.csv")
    assert not (tmp_path / "bucket" / "support_ticket" / "processed").exists()  # emptied folders go too


def test_uri_and_key_round_trip(tmp_path):
    s = LocalStorage(tmp_path, "b")
    uri = s.uri("support_ticket/staging/run-1/")
    assert uri.endswith("/bucket/support_ticket/staging/run-1/")
    assert s.key_of(uri) == "support_ticket/staging/run-1/"
    assert s.key_of("file://" + s.uri("support_ticket/x.csv")) == "support_ticket/x.csv"


@pytest.mark.parametrize("key", ["support_ticket/raw/../../etc/passwd", "/etc/passwd", "a/../../b", "x\x00y"])
def test_keys_that_escape_the_root_are_refused(tmp_path, key):
    with pytest.raises(UnsafeKeyError, match="refused"):
        LocalStorage(tmp_path, "b").write_bytes(key, b"")


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
