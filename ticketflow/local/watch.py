"""`ticketflow watch`: the local bucket's event source.

S3 emits ObjectCreated when an upload completes; a directory has no such moment, so a file counts as
uploaded once its size and modification time have stayed the same for `settle` seconds (files moved in
atomically, as `ticketflow upload` does, qualify on the next scan). Each version of a file (size, mtime)
produces one event, once: a ledger under the home directory remembers what was sent, so a restart does
not send it again.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketcore import layout
from ticketflow.local.runtime import LocalRuntime


@dataclass
class Candidate:
    signature: tuple[int, int]  # (size, mtime_ns)
    since: float


class Watcher:
    def __init__(
        self,
        runtime: LocalRuntime,
        poll: float = 0.2,
        settle: float = 0.5,
        say: Callable[[str], None] = print,
    ) -> None:
        self.runtime = runtime
        self.poll, self.settle, self.say = poll, settle, say
        self.raw_dir = runtime.storage.path(layout.RAW_PREFIX.rstrip("/"))
        self.ledger_path = runtime.home / "watch_ledger.json"
        self.ledger: dict[str, dict[str, Any]] = (
            json.loads(self.ledger_path.read_text()) if self.ledger_path.exists() else {}
        )
        self.candidates: dict[str, Candidate] = {}
        self.waiters: dict[str, threading.Thread] = {}
        self.results: dict[str, str] = {}  # execution name -> final status
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- scanning
    def _files(self) -> list[tuple[str, os.stat_result]]:
        found = []
        for path in sorted(self.raw_dir.rglob("*")):
            # Dot-files are uploads in flight (`.name.uploading`) or editor temporaries.
            if path.is_file() and not path.name.startswith("."):
                found.append((self.runtime.storage.key_for_path(path), path.stat()))
        return found

    def _already_sent(self, key: str, signature: tuple[int, int], sequencer: str) -> bool:
        entry = self.ledger.get(key)
        if entry and tuple(entry.get("signature") or ()) == signature:
            return True
        # Published by an earlier `ticketflow run`/watch without a ledger entry: the manifest says so.
        manifest_key = layout.manifest_key(key)
        if self.runtime.storage.exists(manifest_key):
            return bool(json.loads(self.runtime.storage.read_bytes(manifest_key)).get("sequencer") == sequencer)
        return False

    def scan_once(self) -> list[str]:
        """Send the event for every file that has settled and was not sent before, and for every file sent
        before that is gone (S3's ObjectRemoved: its erasure); returns the keys."""
        now = time.monotonic()
        sent = []
        files = self._files()
        present = {key for key, _ in files}
        for key, entry in list(self.ledger.items()):
            if key not in present and not entry.get("deleted"):
                self._send_removal(key)
                sent.append(key)
        for key, st in files:
            signature = (st.st_size, st.st_mtime_ns)
            sequencer = f"{st.st_mtime_ns:020X}"  # one per file version, like S3's per-key sequencer
            if self._already_sent(key, signature, sequencer):
                self.candidates.pop(key, None)
                continue
            seen = self.candidates.get(key)
            if seen is None or seen.signature != signature:
                self.candidates[key] = Candidate(signature, now)  # new, or still being written
                continue
            if now - seen.since < self.settle:
                continue
            del self.candidates[key]
            self._send(key, signature, sequencer)
            sent.append(key)
        return sent

    def _send(self, key: str, signature: tuple[int, int], sequencer: str) -> None:
        # A file put straight into the directory becomes an object version here, as a PUT would make one.
        version = self.runtime.storage.snapshot(key)
        upload = self.runtime.deliver(self.runtime.s3_event(key, sequencer, version.version_id))
        names = upload.started + upload.duplicates
        outcome = ("dead-lettered" if upload.dead_lettered else
                   f"skipped ({upload.skipped[0]['reason']})" if upload.skipped else f"execution {names}")
        self.say(f"{key}: {outcome}")
        self._record(key, {"signature": list(signature), "sequencer": sequencer, "executions": names,
                           "sent_at": time.time()})
        self._follow_all(upload.started)

    def _send_removal(self, key: str) -> None:
        upload = self.runtime.delete(key)
        names = upload.started + upload.duplicates
        self.say(f"{key}: deleted, {'dead-lettered' if upload.dead_lettered else f'erasure {names}'}")
        self._record(key, {"deleted": True, "executions": names, "sent_at": time.time()})
        self._follow_all(upload.started)

    def _record(self, key: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self.ledger[key] = entry
            tmp = self.ledger_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.ledger, indent=1))
            os.replace(tmp, self.ledger_path)

    def _follow_all(self, names: list[str]) -> None:
        for name in names:
            waiter = threading.Thread(target=self._follow, args=(name,), name=f"follow-{name}", daemon=True)
            self.waiters[name] = waiter
            waiter.start()

    def _follow(self, name: str) -> None:
        try:
            desc = self.runtime.wait(name)
            status = desc["status"]
            summary = self.runtime.summary(name)
            if status != "SUCCEEDED":
                detail = f"at {summary['failed_state']}: {summary['error']}"
            elif summary.get("retraction"):
                detail = f"retracted {summary['retraction']['rows_retracted']:,} published rows"
            else:
                detail = f"published {summary['rows_published']:,} rows, quarantined {summary['rows_quarantined']:,}"
            self.say(f"{name}: {status} {detail}")
        except Exception as err:  # a broken follow-up must not take the watcher down
            status = f"UNKNOWN ({type(err).__name__}: {err})"
            self.say(f"{name}: {status}")
        with self._lock:
            self.results[name] = status

    # ---------------------------------------------------------------- running
    def in_flight(self) -> list[str]:
        return [n for n, t in self.waiters.items() if t.is_alive()]

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.scan_once()
            stop.wait(self.poll)

    def drain(self, timeout: float | None = None) -> list[str]:
        """Wait for running executions to end; returns those still running at the timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in list(self.waiters.values()):
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.in_flight()

    def abort_in_flight(self) -> list[str]:
        """Stop what is still running: each ends ABORTED (redrivable), is recorded, and alerts."""
        names = self.in_flight()
        assert self.runtime.engine is not None
        for name in names:
            self.runtime.engine.stop_execution(self.runtime.execution_arn(name), error="WatchStopped",
                                               cause="ticketflow watch was interrupted twice")
        self.drain(timeout=60)
        return names


def watch_forever(runtime: LocalRuntime, home: Path, say: Callable[[str], None] = print) -> int:
    """The command's loop: Ctrl-C once drains, twice aborts."""
    watcher = Watcher(runtime, say=say)
    stop = threading.Event()
    say(f"watching {watcher.raw_dir} (Ctrl-C to stop)")
    try:
        watcher.run(stop)
    except KeyboardInterrupt:
        stop.set()
        running = watcher.in_flight()
        say(f"stopping: waiting for {len(running)} running execution(s); Ctrl-C again to abort them")
        try:
            watcher.drain()
        except KeyboardInterrupt:
            aborted = watcher.abort_in_flight()
            say(f"aborted {aborted}: each is recorded ABORTED and can be redriven")
    failed = [n for n, s in watcher.results.items() if s != "SUCCEEDED"]
    say(f"watch stopped: {len(watcher.results)} execution(s), {len(failed)} not succeeded; state in {home}")
    return 0
