"""`ticketflow watch`: the local bucket's event source.

S3 emits ObjectCreated when an upload completes; a directory has no such moment, so a file counts as
uploaded once its size and modification time have stayed the same for `settle` seconds (files moved in
atomically, as `ticketflow upload` does, qualify on the next scan). Each object version produces one event,
once, whichever process sends it: a file `ticketflow run` or `upload` put is already a version whose event
was sent (`LocalRuntime.claim_upload`), and the watch's ledger (size, mtime -> version) spares it from
looking at an unchanged file again.
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
from ticketflow.local.runtime import LocalRuntime, write_json


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
        should_abort: Callable[[], bool] | None = None,
        by: str = "watch",
    ) -> None:
        self.runtime = runtime
        self.by = by  # who sent an upload's event, in its claim (`watch`, `console`)
        self.poll, self.settle, self.say = poll, settle, say
        self.should_abort = should_abort  # polled by each follow-up: once true, its execution is stopped
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

    def _already_sent(self, key: str, signature: tuple[int, int]) -> bool:
        entry = self.ledger.get(key)
        return bool(entry and tuple(entry.get("signature") or ()) == signature)

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
            if self._already_sent(key, signature):
                self.candidates.pop(key, None)
                continue
            seen = self.candidates.get(key)
            if seen is None or seen.signature != signature:
                self.candidates[key] = Candidate(signature, now)  # new, or still being written
                continue
            if now - seen.since < self.settle:
                continue
            del self.candidates[key]
            if self._send(key, signature):
                sent.append(key)
        return sent

    def _send(self, key: str, signature: tuple[int, int]) -> bool:
        """Send the event of the file's version; False when another process sent it before."""
        # A file put straight into the directory becomes an object version here, as a PUT would make one; a
        # file `run` or `upload` put is that version already.
        version = self.runtime.storage.snapshot(key)
        upload = self.runtime.send_upload(key, version.version_id, by=self.by)
        names = upload.started + upload.duplicates
        entry = {"signature": list(signature), "version_id": version.version_id, "executions": names,
                 "sent_at": time.time()}
        if upload.sent_before is not None:
            self._record(key, entry)
            return False
        outcome = ("dead-lettered" if upload.dead_lettered else
                   f"skipped ({upload.skipped[0]['reason']})" if upload.skipped else f"execution {names}")
        self.say(f"{key}: {outcome}")
        self._record(key, entry)
        self._follow_all(upload.started)
        return True

    def _send_removal(self, key: str) -> None:
        upload = self.runtime.delete(key)
        names = upload.started + upload.duplicates
        self.say(f"{key}: deleted, {'dead-lettered' if upload.dead_lettered else f'erasure {names}'}")
        self._record(key, {"deleted": True, "executions": names, "sent_at": time.time()})
        self._follow_all(upload.started)

    def _record(self, key: str, entry: dict[str, Any]) -> None:
        with self._lock:
            self.ledger[key] = entry
            write_json(self.ledger_path, self.ledger)

    def _follow_all(self, names: list[str], redrive: bool = False) -> None:
        for name in names:
            waiter = threading.Thread(target=self._follow, args=(name, redrive), name=f"follow-{name}",
                                      daemon=True)
            self.waiters[name] = waiter
            waiter.start()

    def resume_interrupted(self) -> list[str]:
        """Redrive the executions an interrupt or a killed runtime left ABORTED (`LocalRuntime.interrupted`):
        they resume at the state that was running, as a redrive does."""
        names = self.runtime.interrupted()
        if names:
            self.say(f"resuming {len(names)} execution(s) interrupted earlier, by redrive: {', '.join(names)}")
            self._follow_all(names, redrive=True)
        return names

    def _follow(self, name: str, redrive: bool = False) -> None:
        try:
            if redrive:
                desc = self.runtime.redrive(name, should_abort=self.should_abort)
            else:
                desc = self.runtime.wait(name, should_abort=self.should_abort)
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


def watch_forever(runtime: LocalRuntime, home: Path, say: Callable[[str], None] = print) -> int:
    """The command's loop (main thread): Ctrl-C once drains (no new files; running executions finish),
    twice (or SIGTERM) stops the running executions, each recorded ABORTED, alerted, and resumed by the next
    watch. Returns 0."""
    from ticketflow.local.interrupts import Interrupts

    with Interrupts() as interrupts:
        watcher = Watcher(runtime, say=say, should_abort=interrupts.aborting.is_set)
        say(f"watching {watcher.raw_dir} (Ctrl-C to stop)")
        watcher.resume_interrupted()
        while not interrupts.draining.is_set():
            watcher.scan_once()
            interrupts.draining.wait(watcher.poll)
        running = watcher.in_flight()
        if running:
            say(f"stopping: waiting for {len(running)} running execution(s); Ctrl-C again to stop them")
        # Polled, not joined: the follow-ups see the abort flag and stop their executions themselves.
        while watcher.in_flight():
            time.sleep(0.1)
    results = watcher.results
    aborted = sorted(n for n, s in results.items() if s == "ABORTED")
    if aborted:
        say(f"aborted {len(aborted)}: {', '.join(aborted)}; each is recorded ABORTED and is resumed (redriven) "
            f"when watch starts again")
    failed = [n for n, s in results.items() if s != "SUCCEEDED"]
    say(f"watch stopped: {len(results)} execution(s), {len(failed)} not succeeded; state in {home}")
    return 0
