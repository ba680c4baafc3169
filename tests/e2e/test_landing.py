"""Landing by version, through the local runtime (trigger, the real definition, inspect, the Glue script,
validate, publish) on a bucket that keeps object versions: each execution reads exactly the upload version its
event names, from a copy under a generated name, whatever the key looks like."""

from __future__ import annotations

import json

import pytest

from tests.e2e.support import outbox, published_table
from ticketcore import layout
from ticketflow.local.moto_patches import VirtualClock
from ticketflow.local.runtime import LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

# Keys a glob would expand or a path would resolve (Hadoop resolves `//`, `./` and `..` inside S3 keys; Spark
# reads `*`, `?`, `[]`, `{}` as patterns): each must publish its own rows and nothing else.
TRICKY_KEYS = [
    "support_ticket/raw/*.csv",
    "support_ticket/raw/?.csv",
    "support_ticket/raw/[ab].csv",
    "support_ticket/raw/{a,b}.csv",
    "support_ticket/raw/a.csv",
    "support_ticket/raw//double slash.csv",
    "support_ticket/raw/./dot.csv",
    "support_ticket/raw/sub/../parent.csv",
    "support_ticket/raw/with space+plus.csv",
]


def rows_csv(prefix: str, n: int = 3, order: tuple[str, ...] = ("subject", "customer_email")) -> str:
    header = ",".join(("ticket_id", "created_at", *order))
    lines = []
    for i in range(1, n + 1):
        values = {"subject": f"{prefix} subject {i}", "customer_email": f"{prefix.lower()}{i}@example.com"}
        lines.append(",".join((f"{prefix}-{i}", f"2024-05-0{i}T10:00:00Z", *(values[c] for c in order))))
    return header + "\n" + "\n".join(lines) + "\n"


def published(rt: LocalRuntime) -> dict[str, dict[str, tuple[str, str]]]:
    """source key -> {ticket_id: (subject, customer_email)} of the published table."""
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for row in published_table(rt).to_pylist():
        out.setdefault(row["_source_key"], {})[row["ticket_id"]] = (row["subject"], row["customer_email"])
    return out


def manifest(rt: LocalRuntime, key: str) -> dict:
    return json.loads(rt.storage.read_bytes(layout.manifest_key(key)))


def run_report(rt: LocalRuntime, name: str) -> dict:
    return json.loads(rt.storage.read_bytes(layout.reports_prefix(name) + layout.RUN_REPORT))


def test_keys_that_look_like_patterns_or_paths_publish_only_their_own_rows(tmp_path, spark):
    clock = VirtualClock(scale=0.0, poll_interval=0.05)
    with LocalRuntime(home=tmp_path / "home", clock=clock, max_concurrent_runs=len(TRICKY_KEYS)) as rt:
        started = {}
        for i, key in enumerate(TRICKY_KEYS):  # every object exists before any job reads
            source = tmp_path / f"f{i}.csv"
            source.write_text(rows_csv(f"K{i}"))
            upload = rt.upload(source, key)
            assert len(upload.started) == 1, (key, upload)
            started[key] = upload.started[0]
        for key, name in started.items():
            assert rt.wait(name, timeout=600)["status"] == "SUCCEEDED", (key, rt.summary(name))
        table = published(rt)
        for i, key in enumerate(TRICKY_KEYS):
            assert table[key] == {f"K{i}-{n}": (f"K{i} subject {n}", f"k{i}{n}@example.com") for n in (1, 2, 3)}
            report = run_report(rt, started[key])
            # The job read the landing copy, named from the execution alone.
            assert report["source"] == rt.storage.uri(layout.landing_key(started[key], key))
            assert report["source_key"] == key and report["rows_read"] == 3
            assert manifest(rt, key)["version_id"] == rt.storage.head(key).version_id != ""
        assert sum(len(rows) for rows in table.values()) == 3 * len(TRICKY_KEYS)
        # Nothing escaped the bucket directory.
        assert not (rt.home / "parent.csv").exists() and not (rt.storage.base.parent / "parent.csv").exists()


def test_two_quick_uploads_of_one_key_each_read_their_own_version(tmp_path, spark):
    key = "support_ticket/raw/quick.csv"
    first, second = tmp_path / "v1.csv", tmp_path / "v2.csv"
    first.write_text(rows_csv("ONE"))
    # The second version moves the columns: a run applying version 1's header mapping to it would land
    # subjects in customer_email.
    second.write_text(rows_csv("TWO", order=("customer_email", "subject")))
    clock = VirtualClock(scale=0.0, poll_interval=0.05)
    with LocalRuntime(home=tmp_path / "home", clock=clock, max_concurrent_runs=4) as rt:
        v1 = rt.storage.put_file(key, first)
        v2 = rt.storage.put_file(key, second)  # before the first event is even delivered
        assert v1.version_id != v2.version_id
        e1 = rt.deliver(rt.s3_event(key, "0000000001", v1.version_id)).started
        e2 = rt.deliver(rt.s3_event(key, "0000000002", v2.version_id)).started
        for name in (*e1, *e2):
            assert rt.wait(name, timeout=600)["status"] == "SUCCEEDED", rt.summary(name)
        # Each run read its own version (its landing copy holds exactly those bytes)...
        assert rt.storage.read_bytes(layout.landing_key(e1[0], key)) == first.read_bytes()
        assert rt.storage.read_bytes(layout.landing_key(e2[0], key)) == second.read_bytes()
        # ...and the newer version is what stays published, with its version and ETag in the manifest.
        assert published(rt)[key] == {f"TWO-{n}": (f"TWO subject {n}", f"two{n}@example.com") for n in (1, 2, 3)}
        assert (manifest(rt, key)["version_id"], manifest(rt, key)["etag"]) == (v2.version_id, v2.etag)

        # A late event for the older version (a redelivery, a slow first run): it reads version 1, and its
        # publish is refused as superseded: the older never lands over the newer.
        late = rt.deliver(rt.s3_event(key, "0000000001", v1.version_id))
        assert late.started == [] and late.duplicates == e1  # the same event names the same execution
        v3_source = tmp_path / "v3.csv"
        v3_source.write_text(rows_csv("OLD"))
        v0 = rt.storage.put_file(key, v3_source)
        old = rt.deliver(rt.s3_event(key, "0000000000", v0.version_id)).started  # an older sequencer
        assert rt.wait(old[0], timeout=600)["status"] == "SUCCEEDED"
        output = json.loads(rt.describe(old[0])["output"])
        assert output["publish"]["publication"]["outcome"] == "superseded"
        assert rt.storage.read_bytes(layout.landing_key(old[0], key)) == v3_source.read_bytes()
        assert published(rt)[key] == {f"TWO-{n}": (f"TWO subject {n}", f"two{n}@example.com") for n in (1, 2, 3)}


def test_an_event_for_a_version_that_is_gone_fails_at_inspect(runtime, tmp_path):
    key = "support_ticket/raw/gone.csv"
    source = tmp_path / "gone.csv"
    source.write_text(rows_csv("G"))
    version = runtime.storage.put_file(key, source)
    event = runtime.s3_event(key, "00A1", "0-no-such-version")
    name = runtime.deliver(event).started[0]
    desc = runtime.wait(name, timeout=120)
    summary = runtime.summary(name)
    assert (desc["status"], summary["failed_state"], summary["error"]) == ("FAILED", "InspectSource",
                                                                         "ObjectMissingError")
    assert "0-no-such-version" in summary["cause"]
    assert len(outbox(runtime)) == 1
    assert not runtime.storage.list(layout.LANDING_PREFIX)  # nothing landed, the real version untouched
    assert runtime.storage.head(key) == version
