"""Fixtures for running the whole pipeline on the local runtime."""

from __future__ import annotations

import pytest

from tests.e2e.support import Faults
from ticketflow.local.moto_patches import VirtualClock
from ticketflow.local.runtime import LocalRuntime


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def clock() -> VirtualClock:
    # Retry waits pass in virtual time (recorded for assertions); .sync polls every 0.05 s of real time.
    return VirtualClock(scale=0.0, poll_interval=0.05)


@pytest.fixture
def runtime(tmp_path, spark, faults, clock):
    with LocalRuntime(home=tmp_path / "home", faults=faults, clock=clock) as rt:
        yield rt
