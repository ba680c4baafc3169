"""`ticketflow watch` as an event source: each complete file once, several at a time, none again."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.e2e.support import published_table
from ticketcore import layout
from ticketflow.generate import generate_csv
from ticketflow.local.moto_patches import VirtualClock
from ticketflow.local.runtime import LocalRuntime
from ticketflow.local.watch import Watcher

pytestmark = [pytest.mark.e2e, pytest.mark.spark]


def wait_for(predicate, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def test_files_dropped_while_watching_are_processed_once(tmp_path, spark):
    home = tmp_path / "home"
    sources = []
    for i, rows in enumerate((40, 25, 30)):
        sources.append(tmp_path / f"drop{i}.csv")
        generate_csv(sources[-1], rows=rows, seed=20 + i, dirty=0)
    slow = tmp_path / "slow.csv"
    generate_csv(slow, rows=35, seed=30, dirty=0)
    lines: list[str] = []
    # Enough Glue capacity for all four: with retry waits in virtual time, a busy job would exhaust the
    # ConcurrentRunsExceeded retries at once (tests/e2e/test_burst.py covers that path).
    with LocalRuntime(home=home, clock=VirtualClock(0, poll_interval=0.05), max_concurrent_runs=4) as rt:
        raw = rt.storage.path(layout.RAW_PREFIX.rstrip("/"))
        watcher = Watcher(rt, poll=0.1, settle=0.6, say=lines.append)
        stop = threading.Event()
        loop = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
        loop.start()
        # Three files at once, copied by hand.
        for s in sources:
            (raw / s.name).write_bytes(s.read_bytes())
        # One written slowly: half now, the rest after longer than the poll interval.
        data = slow.read_bytes()
        with (raw / slow.name).open("wb") as fh:
            fh.write(data[: len(data) // 2])
            fh.flush()
            time.sleep(0.4)
            assert all("slow" not in line for line in lines)  # not picked up half-way
            fh.write(data[len(data) // 2 :])
        wait_for(lambda: len(watcher.results) == 4)
        stop.set()
        loop.join(5)
        assert sorted(watcher.results.values()) == ["SUCCEEDED"] * 4, lines
        table = published_table(rt).to_pandas()
        counts = table.groupby("_source_key").size().to_dict()
        assert counts == {
            layout.RAW_PREFIX + "drop0.csv": 40,
            layout.RAW_PREFIX + "drop1.csv": 25,
            layout.RAW_PREFIX + "drop2.csv": 30,
            layout.RAW_PREFIX + "slow.csv": 35,
        }
        started = len(rt.client.list_executions(stateMachineArn=rt.state_machine_arn)["executions"])
        assert started == 4

    # A restart sends nothing again: the ledger remembers each file version.
    with LocalRuntime(home=home, clock=VirtualClock(0, poll_interval=0.05)) as rt:
        again = Watcher(rt, poll=0.05, settle=0.1, say=lines.append)
        for _ in range(5):
            assert again.scan_once() == []
            time.sleep(0.06)
        assert rt.client.list_executions(stateMachineArn=rt.state_machine_arn)["executions"] == []


def test_a_file_published_by_run_is_not_reprocessed_by_watch(tmp_path, spark):
    source = tmp_path / "once.csv"
    generate_csv(source, rows=15, seed=31, dirty=0)
    home = tmp_path / "home"
    with LocalRuntime(home=home, clock=VirtualClock(0, poll_interval=0.05)) as rt:
        upload = rt.upload(source, by="run")  # what `ticketflow run` does
        assert rt.wait(upload.started[0])["status"] == "SUCCEEDED"
    # A watch started later on the same home: the file is that upload's object version, already sent.
    with LocalRuntime(home=home, clock=VirtualClock(0, poll_interval=0.05)) as rt:
        watcher = Watcher(rt, poll=0.05, settle=0.05, say=lambda _: None)
        for _ in range(4):
            assert watcher.scan_once() == []
            time.sleep(0.06)
        assert rt.client.list_executions(stateMachineArn=rt.state_machine_arn)["executions"] == []
        assert watcher.ledger[layout.RAW_PREFIX + source.name]["executions"] == upload.started


def test_run_during_watch_processes_the_upload_once_and_a_new_upload_again(tmp_path, spark):
    source = tmp_path / "both.csv"
    generate_csv(source, rows=25, seed=32, dirty=0)
    lines: list[str] = []
    with LocalRuntime(home=tmp_path / "home", clock=VirtualClock(0, poll_interval=0.05)) as rt:
        watcher = Watcher(rt, poll=0.05, settle=0.1, say=lines.append)
        stop = threading.Event()
        loop = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
        loop.start()
        try:
            first = rt.upload(source, by="run")  # `ticketflow run` while the watch scans the same folder
            assert rt.wait(first.started[0])["status"] == "SUCCEEDED"
            time.sleep(0.5)  # several scans after the file settled
            assert watcher.results == {}, lines  # the watch saw the file and sent nothing
            # The same bytes uploaded again are a new object version: it runs, once.
            second = rt.upload(source, by="run")
            assert second.started and second.started != first.started
            assert rt.wait(second.started[0])["status"] == "SUCCEEDED"
            time.sleep(0.5)
        finally:
            stop.set()
            loop.join(5)
        assert watcher.results == {}, lines
        names = {e["name"] for e in rt.client.list_executions(stateMachineArn=rt.state_machine_arn)["executions"]}
        assert names == {first.started[0], second.started[0]}
        claims = [json.loads(p.read_text()) for p in (rt.home / "events").glob("*.json")]
        assert sorted(c["by"] for c in claims) == ["run", "run"]


def test_a_file_removed_while_watching_is_erased(tmp_path, spark):
    source = tmp_path / "gone.csv"
    generate_csv(source, rows=30, seed=41, dirty=0)
    keep = tmp_path / "stays.csv"
    generate_csv(keep, rows=20, seed=42, dirty=0)
    lines: list[str] = []
    with LocalRuntime(home=tmp_path / "home", clock=VirtualClock(0, poll_interval=0.05)) as rt:
        raw = rt.storage.path(layout.RAW_PREFIX.rstrip("/"))
        raw.mkdir(parents=True, exist_ok=True)
        watcher = Watcher(rt, poll=0.1, settle=0.3, say=lines.append)
        for s in (source, keep):
            (raw / s.name).write_bytes(s.read_bytes())
        wait_for(lambda: (watcher.scan_once(), len(watcher.results) == 2)[1])
        (raw / source.name).unlink()
        assert watcher.scan_once() == [layout.RAW_PREFIX + source.name]
        wait_for(lambda: len(watcher.results) == 3)
        erasure = [n for n in watcher.results if "-erase-" in n]
        assert len(erasure) == 1 and watcher.results[erasure[0]] == "SUCCEEDED", lines
        assert any("retracted 30 published rows" in line for line in lines), lines
        table = published_table(rt).to_pandas()
        assert set(table["_source_key"]) == {layout.RAW_PREFIX + keep.name}
        assert watcher.scan_once() == []  # a deletion is sent once
