"""Ctrl-C and `kill` for the long-running local commands (`run`, `watch`): interrupts that lose nothing.

The first SIGINT asks to drain: take no new files, let running executions finish. The second (or a SIGTERM,
which usually comes shortly before a SIGKILL) asks to abort: stop each running execution as StopExecution
does, so it is recorded ABORTED, alerted and redrivable. The handler only sets flags that the commands' loops
poll: no KeyboardInterrupt lands inside a `Thread.join()` or a Spark call. It replaces PySpark's own SIGINT
handler, which cancels every Spark job in the process (the JVM itself ignores SIGINT: PySpark starts it so).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

# The error of an execution stopped by an interrupt, and of one whose runtime was killed (found on the next
# start): both are ABORTED and redrivable; `ticketflow watch` redrives them when it starts again.
INTERRUPTED = "ticketflow.Interrupted"
RUNTIME_LOST = "ticketflow.RuntimeLost"
INTERRUPT_ERRORS = (INTERRUPTED, RUNTIME_LOST)


def process_alive(pid: int) -> bool:
    """Whether a process of that id exists on this machine (the owner of a `.running.json` record)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def lost_cause(pid: int) -> str:
    return (f"the local runtime running this execution (process {pid}) ended without finishing it (killed, or "
            f"its machine stopped); redrive it to resume")


def record_as_lost(doc: dict[str, Any], pid: int, at: str) -> dict[str, Any]:
    """A `.running.json` record whose runtime (process `pid`) is gone, as the execution's record: ABORTED at `at`
    (ISO 8601) with `RUNTIME_LOST`, its history ended by ExecutionAborted. What the next runtime on the home
    records (`LocalRuntime.recover_lost`), and what readers show until then."""
    cause = lost_cause(pid)
    history = list(doc.get("history") or [])
    last = history[-1]["id"] if history else 0
    history.append({"id": last + 1, "previousEventId": last, "type": "ExecutionAborted", "timestamp": at,
                    "executionAbortedEventDetails": {"error": RUNTIME_LOST, "cause": cause}})
    execution = {**doc["execution"], "status": "ABORTED", "stopDate": at, "error": RUNTIME_LOST, "cause": cause}
    return {**doc, "execution": execution, "history": history, "recorded_at": at}


def _write_line(line: str) -> None:
    """One unbuffered write: a print from a signal handler can land inside another print (a RuntimeError)."""
    with contextlib.suppress(OSError, ValueError):  # no usable stdout: nothing to say it on
        os.write(sys.stdout.fileno(), (line + "\n").encode())


class Interrupts:
    """SIGINT/SIGTERM handling for one command, as a context manager (main thread only, as Python requires).

    `draining` is set by the first SIGINT, `aborting` by the second SIGINT or any SIGTERM."""

    def __init__(self, say: Callable[[str], None] = _write_line, drain_message: str = "",
                 abort_message: str = "") -> None:
        self.say = say
        self.draining = threading.Event()
        self.aborting = threading.Event()
        self.drain_message = drain_message or (
            "interrupted: taking no new files; running executions go on (Ctrl-C again to stop them)"
        )
        self.abort_message = abort_message or (
            "interrupted again: stopping the running executions (each is recorded ABORTED and can be redriven)"
        )
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may take signals: a command run from a thread is not interrupted
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT and not self.draining.is_set():
            self.draining.set()
            self.say(self.drain_message)
            return
        if not self.aborting.is_set():
            self.draining.set()
            self.aborting.set()
            self.say(self.abort_message if signum == signal.SIGINT else
                     "terminated (SIGTERM): stopping the running executions (each is recorded ABORTED and can be "
                     "redriven)")
