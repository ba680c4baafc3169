"""The console's local runtime: the event source for uploads (the same `Watcher` as `ticketflow watch`), and
the Redrive and Reprocess buttons' actions, each run in the background while the pages read the records.

One `LocalRuntime` per console process, as per `watch` process: executions it starts are recorded under
`<home>/executions/` like any other, so `ticketflow executions`, `show` and a `watch` beside it see them, and
each upload version's event is sent once per home, whichever process sends it first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ticketflow.local.runtime import LocalRuntime, RedriveRefused


class ActionRefused(Exception):
    """A button's action cannot run (the message says why, for the page)."""


class ConsoleWorker:
    """Start with `start()`; `drain()` lets running executions end, `abort()` stops them (ABORTED,
    redrivable, as an interrupted `watch` leaves them).

    event_source: send uploads' events (a file under raw/ starts its execution); False leaves that to a
    `ticketflow watch` beside the console, and the Spark session starts only for a button's action.
    """

    def __init__(self, home: Path, contract: Path | None = None, max_concurrent_runs: int = 2,
                 event_source: bool = True, say: Callable[[str], None] = print, poll: float = 0.2) -> None:
        self.home, self.contract = home, contract
        self.max_concurrent_runs = max_concurrent_runs
        self.event_source = event_source
        self.say, self.poll = say, poll
        self.ready = threading.Event()
        self.draining = threading.Event()
        self.aborting = threading.Event()
        self.failed_to_start: str | None = None
        self.runtime: LocalRuntime | None = None
        self._busy: set[str] = set()  # executions a button's action is running now
        self._actions: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="console-runtime", daemon=True)
        self.watcher: Any = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        from ticketflow.local.runtime import _warm_spark
        from ticketflow.local.watch import Watcher

        try:
            with LocalRuntime(home=self.home, contract=self.contract,
                              max_concurrent_runs=self.max_concurrent_runs) as runtime:
                self.runtime = runtime
                if self.event_source:
                    _warm_spark()  # the JVM now, so the first upload does not wait for it
                    self.watcher = Watcher(runtime, poll=self.poll, say=self.say, should_abort=self.aborting.is_set,
                                           by="console")
                self.ready.set()
                while not self.draining.is_set():
                    if self.watcher is not None:
                        self.watcher.scan_once()
                    self.draining.wait(self.poll)
                while self.in_flight():  # the follow-ups see the abort flag and stop their executions
                    time.sleep(0.1)
        except Exception as err:  # shown on every page instead of a hanging button
            self.failed_to_start = f"{type(err).__name__}: {err}"
            self.say(f"the console's runtime stopped: {self.failed_to_start}")
            self.ready.set()

    def in_flight(self) -> list[str]:
        running = [t.name for t in self._actions if t.is_alive()]
        return running + (self.watcher.in_flight() if self.watcher is not None else [])

    def drain(self) -> None:
        self.draining.set()

    def abort(self) -> None:
        self.aborting.set()
        self.draining.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _runtime(self) -> LocalRuntime:
        if not self.ready.wait(120) or self.runtime is None:
            raise ActionRefused(f"the console's runtime is not running ({self.failed_to_start or 'still starting'})")
        if self.draining.is_set():
            raise ActionRefused("the console is stopping: nothing new is started")
        return self.runtime

    def busy(self, name: str) -> bool:
        with self._lock:
            return name in self._busy

    def _in_background(self, name: str, action: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                action()
            except Exception as err:  # the execution's record says how it ended; this says why it did not start
                self.say(f"{name}: {type(err).__name__}: {err}")
            finally:
                with self._lock:
                    self._busy.discard(name)

        with self._lock:
            if name in self._busy:
                raise ActionRefused(f"execution {name} is already being redriven or reprocessed from this console")
            self._busy.add(name)
        thread = threading.Thread(target=run, name=f"action-{name}", daemon=True)
        self._actions.append(thread)
        thread.start()

    # ---------------------------------------------------------------- the buttons
    def redrive(self, name: str) -> None:
        """RedriveExecution of `name` (FAILED, TIMED_OUT or ABORTED), run in the background. Raises
        ActionRefused when it cannot start."""
        runtime = self._runtime()  # the page checked what AWS checks (`views.redrive_refusal`)

        def run() -> None:
            try:
                desc = runtime.redrive(name, should_abort=self.aborting.is_set)
                self.say(f"{name}: redrive {desc['status']}")
            except RedriveRefused as refused:
                self.say(f"{name}: cannot redrive: {refused}")

        self._in_background(name, run)

    def reprocess(self, name: str) -> tuple[str, bool]:
        """Start the reprocess of `name`'s upload (`ticketflow reprocess NAME`); returns (the new execution's
        name, started: False when that execution exists already, with this contract and code). Raises
        ActionRefused (with ReprocessRefused's or the store's message)."""
        from ticketcore.contract import DEFAULT_CONTRACT_PATH
        from ticketflow.ops.executions import LocalExecutionStore
        from ticketflow.ops.reprocess import ReprocessRefused, local_revision, plan_one

        runtime = self._runtime()
        try:
            run = plan_one(LocalExecutionStore(runtime.home), name,
                           local_revision(self.contract or DEFAULT_CONTRACT_PATH)).runs[0]
        except (ReprocessRefused, LookupError) as refused:
            raise ActionRefused(str(refused).strip("'\"")) from refused
        if not runtime.start_named(run.name, run.input):
            return run.name, False

        def follow() -> None:
            desc = runtime.wait(run.name, should_abort=self.aborting.is_set)
            self.say(f"{run.name}: reprocess of {name} {desc['status']}")

        self._in_background(run.name, follow)
        return run.name, True
