"""The interrupt flags: real signals sent to this process (the handler only sets flags)."""

from __future__ import annotations

import os
import signal
import threading
import time

from ticketflow.local.interrupts import Interrupts


def deliver(sig: int) -> None:
    os.kill(os.getpid(), sig)
    time.sleep(0.05)  # the handler runs in the main thread at its next bytecode


def test_first_sigint_drains_the_second_aborts_and_handlers_are_restored():
    said: list[str] = []
    before = signal.getsignal(signal.SIGINT)
    with Interrupts(say=said.append) as interrupts:
        deliver(signal.SIGINT)
        assert interrupts.draining.is_set() and not interrupts.aborting.is_set()
        deliver(signal.SIGINT)
        assert interrupts.aborting.is_set()
        deliver(signal.SIGINT)  # a third changes nothing and says nothing more
    assert said == [
        "interrupted: taking no new files; running executions go on (Ctrl-C again to stop them)",
        "interrupted again: stopping the running executions (each is recorded ABORTED and can be redriven)",
    ]
    assert signal.getsignal(signal.SIGINT) is before


def test_sigterm_aborts_at_once():
    said: list[str] = []
    with Interrupts(say=said.append) as interrupts:
        deliver(signal.SIGTERM)
        assert interrupts.draining.is_set() and interrupts.aborting.is_set()
    assert said == ["terminated (SIGTERM): stopping the running executions (each is recorded ABORTED and can be "
                    "redriven)"]


def test_outside_the_main_thread_nothing_is_installed():
    seen = {}

    def body() -> None:
        with Interrupts(say=lambda _: None) as interrupts:
            seen["installed"] = bool(interrupts._previous)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == {"installed": False}
