"""Every field case in ../shared/data/field-cases/ (inputs shaped like real help-desk exports that once failed)
through the local runtime as `ticketflow run --json` runs them: the outcome (the summary `run` prints) and
the exact values of expected.json, queried with DuckDB as `ticketflow query` does.

The files are read from ../shared, never copied here; without it the cases skip with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ticketcore import layout
from ticketflow.local.moto_patches import VirtualClock
from ticketflow.local.runtime import LocalRuntime
from ticketflow.ops.query import connect

FIELD_CASES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "field-cases"
EXPECTED_FILE = FIELD_CASES / "expected.json"
EXPECTED: dict[str, dict[str, Any]] = (
    json.loads(EXPECTED_FILE.read_text(encoding="utf-8")) if EXPECTED_FILE.exists() else {}
)
ABSENT = f"field cases not found at {FIELD_CASES} (../shared/data/field-cases is absent here)"

pytestmark = [pytest.mark.e2e, pytest.mark.spark]


@pytest.fixture(scope="module")
def field_run(tmp_path_factory, spark) -> tuple[Path, dict[str, dict[str, Any]]]:
    if not EXPECTED:
        pytest.skip(ABSENT)
    home = tmp_path_factory.mktemp("field-cases") / "home"
    summaries: dict[str, dict[str, Any]] = {}
    # What `ticketflow run FILE... --json` does (upload each file, wait for each execution, summarise it), on
    # virtual time and with no Glue concurrency limit, so that thirteen files at once wait for no real backoff.
    with LocalRuntime(home=home, clock=VirtualClock(0, poll_interval=0.05), max_concurrent_runs=len(EXPECTED)) as rt:
        names = {}
        for name in EXPECTED:
            upload = rt.upload(FIELD_CASES / name)
            assert len(upload.started) == 1, (name, upload)
            names[name] = upload.started[0]
        for name, execution in names.items():
            rt.wait(execution, timeout=900)
            summaries[name] = rt.summary(execution)
    return home, summaries


def published_values(home: Path, key: str, sql: str) -> Any:
    """The first value of `sql` over the view `t`: the rows published from `key`."""
    con = connect(home)
    try:
        con.execute(f"CREATE VIEW t AS SELECT * FROM tickets WHERE _source_key = '{key.replace(chr(39), '')}'")
        row = con.execute(sql).fetchone()
        return None if row is None else row[0]
    finally:
        con.close()


@pytest.mark.parametrize("name", sorted(EXPECTED) or [pytest.param("-", marks=pytest.mark.skip(reason=ABSENT))])
def test_field_case(field_run, name):
    home, summaries = field_run
    spec, summary = EXPECTED[name], summaries.get(name)
    assert summary is not None, f"{name}: no execution started (skipped or refused)"
    detail = f"{name}: {summary['status']} at {summary['failed_state']}: {str(summary['cause'])[:300]}"
    assert summary["status"] == spec["status"], detail
    published, quarantined = summary["rows_published"] or 0, summary["rows_quarantined"] or 0
    if "rows_published" in spec:
        assert published == spec["rows_published"], detail
    if "rows_quarantined" in spec:
        assert quarantined == spec["rows_quarantined"], detail
    if "rows_accounted" in spec:
        assert published + quarantined == summary["rows_read"] == spec["rows_accounted"], detail
    if "min_rows_published" in spec:
        assert published >= spec["min_rows_published"], detail
    key = layout.RAW_PREFIX + name
    for sql, expected in spec.get("checks", []):
        got = published_values(home, key, sql)
        assert got == expected, f"{name}: {sql} -> {got!r}, expected {expected!r}"
