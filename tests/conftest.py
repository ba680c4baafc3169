"""Shared fixtures: one local Spark session for the whole run, paths to the shared real exports."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT.parent / "shared" / "data" / "real"

# Powertools reads these at import time; tests never talk to X-Ray or CloudWatch.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "ticketflow")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Ticketflow")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def spark():
    # The same session the local runtime uses, so e2e tests pay the JVM start-up once.
    from ticketflow.local import runtime
    from ticketflow.sparkenv import local_session

    session = runtime._warm_spark() if hasattr(runtime, "_warm_spark") else local_session()
    yield session


@pytest.fixture
def real_file():
    def get(name: str) -> Path:
        path = REAL_DATA / name
        if not path.exists():
            pytest.skip(f"real export {name} not found at {path} (../shared/data/real is absent here)")
        return path

    return get
