"""A burst: 20 files land at once while `ticketflow watch` runs, with Glue allowing 3 concurrent runs.

Retry waits run on a scaled clock. With the clock at 0 the definition's ConcurrentRunsExceeded retries would
all pass at once while real jobs still hold Glue; the scale is chosen so that a job lasts about the same in
virtual time on any machine: half a real second per virtual second, more when the machine is slow (the
definition's retry budget, about 6 virtual minutes on average, must outlast the queue of 20 jobs).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.support import outbox
from ticketcore import layout
from ticketflow.generate import generate_csv
from ticketflow.local.moto_patches import VirtualClock
from ticketflow.local.runtime import LocalRuntime
from ticketflow.local.watch import Watcher
from ticketflow.ops.query import run_query

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.slow]

FILES = 20
GLUE_LIMIT = 3


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


@pytest.fixture
def clock_scale(spark, tmp_path) -> float:
    """Run the Glue script twice before the burst, and return the clock scale for this machine.

    A JVM's first jobs (class loading, code generation) take several times longer than the next ones, and
    three of them at once would use up the retries of the other executions. The second run's wall time says
    how fast this machine is now: 0.5 real seconds per virtual second for a job of 2.5 s or less, up to 2.0.
    """
    from glue.ticket_etl_job import JobArgs, run

    seconds = []
    for attempt in range(2):
        out = tmp_path / f"warm{attempt}"
        generate_csv(out / "warm.csv", rows=5, seed=1, dirty=0)
        started = time.monotonic()
        run(spark, JobArgs(source=str(out / "warm.csv"), staging=str(out / "staging"),
                           quarantine=str(out / "quarantine"), reports=str(out / "reports"), run_id="warm-up"))
        seconds.append(time.monotonic() - started)
    return min(2.0, max(0.5, seconds[-1] / 5))


def test_a_burst_of_uploads_while_watching_is_published_exactly_once(tmp_path, clock_scale, record_property):
    record_property("clock_scale", clock_scale)
    # GIVEN 20 small exports of different sizes
    rows = {f"burst_{i:02d}.csv": 6 + (i * 7) % 17 for i in range(FILES)}
    sources = tmp_path / "sources"
    for name, n in rows.items():
        stats = generate_csv(sources / name, rows=n, seed=100 + n, dirty=0)
        assert stats.expected_valid == n
    home, said = tmp_path / "home", []
    with LocalRuntime(home=home, clock=VirtualClock(scale=clock_scale, poll_interval=0.2),
                      max_concurrent_runs=GLUE_LIMIT) as rt:
        watcher = Watcher(rt, poll=0.1, settle=0.3, say=said.append)
        stop = threading.Event()
        loop = threading.Thread(target=watcher.run, args=(stop,), name="watch", daemon=True)
        loop.start()
        try:
            # WHEN they all land in the raw prefix at once (each appearing whole, as an upload does)
            raw = rt.storage.path(layout.RAW_PREFIX.rstrip("/"))
            for name in rows:
                (raw / f".{name}.uploading").write_bytes((sources / name).read_bytes())
            for name in rows:
                os.replace(raw / f".{name}.uploading", raw / name)
            deadline = time.monotonic() + 600
            while len(watcher.results) < FILES and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            stop.set()
            loop.join(10)
        assert len(watcher.results) == FILES, (clock_scale, said)

        # THEN 20 executions, one per file, all SUCCEEDED
        executions = rt.client.list_executions(stateMachineArn=rt.state_machine_arn)["executions"]
        assert len(executions) == FILES
        assert sorted(watcher.results.values()) == ["SUCCEEDED"] * FILES, (clock_scale, said)
        by_key = {layout.RAW_PREFIX + name: watcher.ledger[layout.RAW_PREFIX + name]["executions"] for name in rows}
        assert all(len(names) == 1 for names in by_key.values())
        # Glue was full: starts were refused and retried by the definition, never more than 3 jobs at once.
        refused = [e for x in executions for e in rt.history(x["name"])
                   if e["type"] == "TaskFailed" and e["taskFailedEventDetails"]["error"]
                   == "Glue.ConcurrentRunsExceededException"]
        assert refused, "the burst never hit the Glue limit"
        jobs = list(rt.backend.jobs.values())
        assert len(jobs) == FILES and all(j.state == "SUCCEEDED" for j in jobs)
        assert max_overlap([(j.started, j.ended or j.started) for j in jobs]) <= GLUE_LIMIT
        assert outbox(rt) == [] and not (home / "dead_letters.jsonl").exists()

    # AND every file's rows are published exactly once, by its own execution
    _, published = run_query(home, "SELECT _source_key, count(*), count(DISTINCT ticket_id), min(_run_id), "
                                   "max(_run_id) FROM tickets GROUP BY 1 ORDER BY 1")
    assert published == [(key, rows[Path(key).name], rows[Path(key).name], names[0], names[0])
                         for key, names in sorted(by_key.items())]
