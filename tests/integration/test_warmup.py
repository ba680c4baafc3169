"""`ticketflow watch` warms up on a generated file: the real job and validation run, and nothing is left."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from ticketflow.local.warmup import warm_up

pytestmark = pytest.mark.spark


def test_warm_up_runs_job_and_validation_and_leaves_nothing(spark, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its scratch directory goes
    seconds = warm_up(spark, rows=300, runs=2)
    assert seconds > 0
    assert "great_expectations.expectations" in sys.modules  # the validation ran, so GX is imported
    assert list(Path(tmp_path).iterdir()) == []  # the generated file and both runs' outputs are gone

