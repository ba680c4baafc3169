"""How long the validate step takes on a 1M-row staged output, import of great-expectations included.

`python -m bench.validation_bench [--rows 1000000]` writes a staged output the way the Glue job lays it out
(`<staging>/tickets/year=YYYY/month=MM/part-*.snappy.parquet`, TIMESTAMP_MICROS UTC, every contract column
plus an unknown source column, resolution_hours and the lineage columns) and its run report into a
temporary local bucket, then validates it with each approach, each run in a fresh Python process (so the
imports count), median of 3, approaches taken in turn. `run_bench(rows)` returns the markdown table
(bench/run.py includes it).

The GX SQL approach needs sqlalchemy and duckdb-engine, which the project does not install (with
sqlalchemy importable, every `import great_expectations` also imports it, ~0.4 s): install them into a
directory of their own and pass it:
    pip install --target /tmp/gxsql "sqlalchemy<2.1" duckdb-engine==0.17.0 --no-deps
    python -m bench.validation_bench --sql-site /tmp/gxsql
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ticketcore.storage import Storage, for_bucket

REPEATS = 3
BUCKET = "bench-bucket"
RUN_ID = "bench-run"
STAGING_PREFIX = f"support_ticket/staging/{RUN_ID}/"
REPORTS_PREFIX = f"support_ticket/reports/{RUN_ID}/"
REPO = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------ the staged output

_STATUS = (("new", 6), ("open", 10), ("pending", 8), ("in_progress", 10), ("on_hold", 3), ("escalated", 3),
           ("resolved", 30), ("closed", 25), ("cancelled", 5))
_PRIORITY = (("low", 25), ("medium", 42), ("high", 25), ("urgent", 8))
_CHANNEL = (("email", 36), ("chat", 22), ("phone", 15), ("web", 18), ("social_media", 6), ("api", 3))
_UNKNOWN_CHANNELS = ("whatsapp", "sms", "in_person", "fax")
_CATEGORIES = ("billing", "login", "bug", "feature request", "account", "shipping", "refund", "performance",
               "integration", "security", "onboarding", "other")
_FIRST = ("Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo")
_LAST = ("Smith", "Okafor", "Lee", "Novak", "Garcia", "Rossi", "Kim", "Berg")
_AGENTS = tuple(f"{first} {last}" for first in _FIRST for last in _LAST)
_TAGS = ("vip", "refund", "bug", "sla_breach", "mobile", "web", "api", "reopened", "billing", "urgent")
_WORDS = ("cannot", "login", "after", "update", "invoice", "missing", "charged", "twice", "the", "app",
          "crashes", "when", "I", "open", "settings", "export", "fails", "with", "error", "please", "help",
          "order", "delayed", "password", "reset", "link", "expired", "integration", "webhook", "timeout")
START = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
SPAN = 730 * 86_400 * 1_000_000
HOUR = 3_600 * 1_000_000


def _pick(rng: np.random.Generator, values: tuple[str, ...], n: int) -> np.ndarray:
    return np.array(values, dtype=object)[rng.integers(0, len(values), n)]


def _weighted(rng: np.random.Generator, pairs: tuple[tuple[str, int], ...], n: int) -> np.ndarray:
    values = np.array([v for v, _ in pairs], dtype=object)
    weights = np.array([w for _, w in pairs], dtype=float)
    return values[rng.choice(len(values), size=n, p=weights / weights.sum())]


def _texts(rng: np.random.Generator, n: int, words: int, pool: int = 4_000) -> np.ndarray:
    """Sentence-like text from a pool (as repetitive as real tickets), suffixed to stay mostly distinct."""
    vocab = np.array(_WORDS, dtype=object)
    sentences = [" ".join(vocab[rng.integers(0, len(vocab), words)]) for _ in range(pool)]
    picks = np.array(sentences, dtype=object)[rng.integers(0, pool, n)]
    return np.array([f"{s} (ref {i % 9973})" for i, s in enumerate(picks)], dtype=object)


def build_staged(storage: Storage, rows: int, seed: int = 20240601) -> dict[str, Any]:
    """Write `rows` valid rows as the Glue job does (one file per year/month) and the run report; return it.

    About 1% of rows carry problems the contract tolerates, so the run passes with one warning: 0.6% unknown
    channels (warning severity), 0.5% resolved_at before created_at (2% tolerated).
    """
    rng = np.random.default_rng(seed)
    n = rows
    ts = pa.timestamp("us", tz="UTC")
    created = START + rng.integers(0, SPAN, n)
    status = _weighted(rng, _STATUS, n)
    skewed = rng.random(n) < 0.005
    has_resolution = np.isin(status, ["resolved", "closed"]) | skewed
    resolution = (rng.exponential(30.0, n) * HOUR).astype(np.int64) + 60_000_000
    resolution[skewed] = -(rng.integers(1, 48, skewed.sum()) * HOUR)
    resolved = created + resolution
    first_response = created + (rng.exponential(4.0, n) * HOUR).astype(np.int64)
    updated = np.maximum(np.where(has_resolution, resolved, first_response), created) + 60_000_000
    channel = _weighted(rng, _CHANNEL, n)
    unknown = rng.random(n) < 0.006
    channel[unknown] = _pick(rng, _UNKNOWN_CHANNELS, int(unknown.sum()))
    score = rng.choice(np.arange(1, 6, dtype=np.int32), size=n, p=[0.07, 0.08, 0.15, 0.3, 0.4])
    customers = rng.integers(1, 60_000, n)
    tag_count = rng.integers(0, 4, n)
    offsets = np.concatenate([[0], np.cumsum(tag_count)]).astype(np.int32)
    tag_values = pa.array(_pick(rng, _TAGS, int(offsets[-1])), pa.string())
    tags = pa.ListArray.from_arrays(pa.array(offsets), tag_values, mask=pa.array(tag_count == 0))
    ids = [f"TKT-{i:08d}" for i in rng.permutation(n) + 100_000]
    table = pa.table({
        "ticket_id": pa.array(ids, pa.string()),
        "created_at": pa.array(created, ts),
        "updated_at": pa.array(updated, ts),
        "resolved_at": pa.array(resolved, ts, mask=~has_resolution),
        "first_response_at": pa.array(first_response, ts),
        "status": pa.array(status, pa.string()),
        "priority": pa.array(_weighted(rng, _PRIORITY, n), pa.string()),
        "channel": pa.array(channel, pa.string()),
        "category": pa.array(_pick(rng, _CATEGORIES, n), pa.string()),
        "subject": pa.array(_texts(rng, n, 6), pa.string()),
        "description": pa.array(_texts(rng, n, 40), pa.string()),
        "customer_id": pa.array([f"CUST-{c:06d}" for c in customers], pa.string()),
        "customer_email": pa.array([f"customer{c}@example.com" for c in customers], pa.string()),
        "agent": pa.array(_pick(rng, _AGENTS, n), pa.string()),
        "satisfaction_score": pa.array(score, pa.int32(), mask=rng.random(n) < 0.45),
        "tags": tags,
        "region": pa.array(_pick(rng, ("emea", "amer", "apac"), n), pa.string()),
        "resolution_hours": pa.array(np.round(resolution / HOUR, 4), pa.float64(), mask=~has_resolution),
        "_source_key": pa.array(["support_ticket/raw/bench.csv"] * n, pa.string()),
        "_source_line": pa.array(np.arange(2, n + 2, dtype=np.int64) + np.cumsum(rng.random(n) < 0.02)),
        "_run_id": pa.array([RUN_ID] * n, pa.string()),
        "_ingested_at": pa.array(np.full(n, START + SPAN, dtype=np.int64), ts),
    })
    tickets = STAGING_PREFIX + "tickets/"
    months = created.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    files = []
    for month_index in np.unique(months):
        year, month = 1970 + int(month_index) // 12, int(month_index) % 12 + 1
        key = f"{tickets}year={year}/month={month:02d}/part-00000-{seed:08x}.c000.snappy.parquet"
        chunk = table.filter(pa.array(months == month_index))
        sink = pa.BufferOutputStream()
        pq.write_table(chunk, sink, compression="snappy")
        data = sink.getvalue().to_pybytes()
        storage.write_bytes(key, data)
        files.append({"uri": storage.uri(key), "bytes": len(data), "rows": chunk.num_rows})
    quarantined = round(rows * 0.012)
    report = {
        "run_id": RUN_ID, "rows_read": rows + quarantined, "rows_valid": rows,
        "rows_quarantined": quarantined,
        "quarantined_by_reason": {"duplicate_superseded": quarantined // 2,
                                  "missing_required:ticket_id": quarantined - quarantined // 2},
        "outputs": {"staging": storage.uri(tickets), "files": files}, "reconciled": True,
    }
    storage.write_bytes(REPORTS_PREFIX + "run_report.json", json.dumps(report, indent=2).encode())
    return report


# ------------------------------------------------------------------ the approaches (a fresh process per run)


@dataclass(frozen=True)
class Approach:
    key: str
    label: str
    needs: tuple[str, ...] = ()  # modules the child must import; missing -> a "not installed" row


APPROACHES = (
    Approach("gx-pandas", "**chosen**: GX pandas engine on the 7 suite columns (pyarrow read, enums as "
                          "categoricals) while GX imports in a thread (GC paused, then frozen); GX batch "
                          "fingerprint skipped"),
    Approach("gx-pandas-no-overlap", "the same, GX imported before the read (no overlap)"),
    Approach("gx-pandas-fingerprint", "the same, GX batch fingerprint kept (GX's default)"),
    Approach("gx-pandas-gc-untouched", "the same, GC left alone during and after the import"),
    Approach("gx-pandas-straightforward", "GX pandas engine, plain import, every column read, GX "
                                          "fingerprint kept"),
    Approach("gx-sql-duckdb", "GX SQL engine on in-memory DuckDB (duckdb-engine, buffered cursor); the 7 "
                              "columns loaded into DuckDB while GX imports",
             needs=("sqlalchemy", "duckdb_engine")),
    Approach("duckdb-sql-only", "reference, not GX: the same checks as one DuckDB query"),
)


def child(approach: str, root: str) -> dict[str, Any]:
    """What the validate Lambda does, minus the Lambda: list, (materialise), validate."""
    os.environ["TICKETFLOW_LOCAL_ROOT"] = root
    from ticketcore.contract import load_contract

    storage = for_bucket(BUCKET)
    run_report = json.loads(storage.read_bytes(REPORTS_PREFIX + "run_report.json"))
    contract = load_contract()
    staging_uri = storage.uri(STAGING_PREFIX)
    if approach == "duckdb-sql-only":
        return _duckdb_sql_only(storage, staging_uri, contract)
    if approach == "gx-pandas-straightforward":
        result = _gx_pandas_straightforward(storage, staging_uri, run_report, contract)
    elif approach == "gx-sql-duckdb":
        result = _gx_sql_duckdb(storage, staging_uri, run_report, contract)
    else:
        from ticketcore import validation

        if approach == "gx-pandas-no-overlap":
            validation._gx()
        if approach == "gx-pandas-fingerprint":
            validation._skip_batch_fingerprint = lambda: None
        if approach == "gx-pandas-gc-untouched":
            validation._import_gx_quietly = _plain_import
        result = validation.validate_run(storage, staging_uri, run_report, contract)
    return {"success": result.success, "row_count": result.row_count, "failed_errors": result.failed_errors,
            "failed_warnings": result.failed_warnings, "timings": result.timings}


def _plain_import() -> None:
    import great_expectations.expectations  # noqa: F401


def _peak_rss_mb() -> float:
    """This process's own high-water mark (VmHWM is per address space, so it starts afresh at exec; the
    parent's wait4 ru_maxrss would also count the parent's pages the child had before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _gx_pandas_straightforward(storage: Storage, staging_uri: str, run_report: dict[str, Any],
                               contract: Any) -> Any:
    start = time.perf_counter()
    import great_expectations as gx
    import pyarrow.dataset as pads
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from ticketcore import validation

    imported = time.perf_counter()
    with validation.local_staged(storage, staging_uri) as paths:
        frame = pads.dataset(paths, format="parquet").to_table().to_pandas()
    read = time.perf_counter()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (context.data_sources.add_pandas(name="staged").add_dataframe_asset(name="tickets")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame}))
    timings = {"gx_import": round(imported - start, 3), "read_all_columns": round(read - imported, 3),
               "get_batch": round(time.perf_counter() - read, 3)}
    return validation.evaluate(batch, validation.build_suite(contract), run_report, contract, timings)


def _gx_sql_duckdb(storage: Storage, staging_uri: str, run_report: dict[str, Any], contract: Any) -> Any:
    """GX's SqlAlchemyExecutionEngine on DuckDB. GX fetches each result after closing its connection
    (`with engine.connect(): result = execute(...)`, then `fetchall()`); closing rolls the duckdb transaction
    back, which drops the pending result, so every metric fails with IndexError (GX issue #11579). The
    DBAPI cursor below buffers each result when it is executed."""
    import duckdb

    from ticketcore import validation

    validation.prefetch_gx()
    start = time.perf_counter()
    base = duckdb.connect(":memory:")
    with validation.local_staged(storage, staging_uri) as paths:
        files = [str(p) for p in paths]
        base.execute(f"CREATE TABLE tickets AS SELECT {', '.join(validation.suite_columns(contract))} "
                     f"FROM read_parquet({files!r})")
    loaded = time.perf_counter()
    validation._gx()
    imported = time.perf_counter()
    from duckdb_engine import ConnectionWrapper, CursorWrapper

    class BufferedCursor(CursorWrapper):
        def execute(self, statement: str, parameters: Any = None, context: Any = None) -> None:
            super().execute(statement, parameters, context)
            self._description = CursorWrapper.__getattr__(self, "description")
            self._rows = list(CursorWrapper.__getattr__(self, "fetchall")()) if self._description else []

        @property
        def description(self) -> Any:
            return self._description

        def fetchone(self) -> Any:
            return self._rows.pop(0) if self._rows else None

        def fetchmany(self, size: int | None = None) -> list[Any]:
            taken, self._rows = self._rows[: size or 1], self._rows[size or 1:]
            return taken

        def fetchall(self) -> list[Any]:
            taken, self._rows = self._rows, []
            return taken

    class BufferedConnection(ConnectionWrapper):
        def cursor(self) -> BufferedCursor:
            return BufferedCursor(self._ConnectionWrapper__c, self)

    context = validation.gx_context()
    source = context.data_sources.add_sql(name="staged", connection_string="duckdb:///:memory:",
                                          kwargs={"creator": lambda: BufferedConnection(base.cursor())})
    batch = (source.add_table_asset(name="tickets", table_name="tickets")
             .add_batch_definition_whole_table("all").get_batch())
    timings = {"load_into_duckdb": round(loaded - start, 3), "gx_import_wait": round(imported - loaded, 3)}
    return validation.evaluate(batch, validation.build_suite(contract), run_report, contract, timings)


def _duckdb_sql_only(storage: Storage, staging_uri: str, contract: Any) -> dict[str, Any]:
    """The reference the performance notes quote: the suite's checks as one DuckDB aggregate."""
    import duckdb

    from ticketcore import validation

    def in_list(column: str) -> str:
        return ", ".join(f"'{v}'" for v in contract.columns[column].values)

    start = time.perf_counter()
    with validation.local_staged(storage, staging_uri) as paths:
        files = [str(p) for p in paths]
        row = duckdb.connect(":memory:").execute(
            f"""SELECT count(*), count(*) - count(ticket_id), count(*) - count(created_at),
                   count(ticket_id) - count(DISTINCT ticket_id),
                   count(*) FILTER (WHERE status NOT IN ({in_list('status')})),
                   count(*) FILTER (WHERE priority NOT IN ({in_list('priority')})),
                   count(*) FILTER (WHERE channel NOT IN ({in_list('channel')})),
                   count(*) FILTER (WHERE satisfaction_score NOT BETWEEN 1 AND 5),
                   count(*) FILTER (WHERE resolved_at < created_at)
               FROM read_parquet({files!r})"""
        ).fetchall()[0]
    return {"success": None, "row_count": row[0], "counts": list(row[1:]),
            "timings": {"query": round(time.perf_counter() - start, 3)}}


# ------------------------------------------------------------------ the driver


@dataclass
class Run:
    result_s: float  # spawn -> result printed: what the Lambda sees (its process does not exit after)
    process_s: float  # spawn -> exit: adds the interpreter's teardown
    cpu_s: float
    peak_rss_mb: float
    info: dict[str, Any]


def _measure(approach: Approach, root: Path, sql_site: str | None, nice: int = 0) -> Run:
    """One fresh process: wall until its result and until its exit, CPU from wait4, peak RSS as the child
    reports it (it starts no processes of its own)."""
    env = dict(os.environ)
    if sql_site and approach.needs:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (sql_site, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.validation_bench", "--child", approach.key, "--root", str(root)],
            stdout=subprocess.PIPE, stderr=errors, env=env, cwd=REPO,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        assert proc.stdout is not None
        payload, result_s = None, None
        for line in proc.stdout:  # the child prints one JSON line once it has its result
            if line.startswith(b"{"):
                payload, result_s = json.loads(line), time.perf_counter() - start
        _, status, usage = os.wait4(proc.pid, 0)
        process_s = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or payload is None or result_s is None:
            errors.seek(0)
            raise RuntimeError(f"{approach.key} failed ({proc.returncode}): {errors.read().decode()[-3000:]}")
    return Run(result_s=result_s, process_s=process_s, cpu_s=usage.ru_utime + usage.ru_stime,
               peak_rss_mb=payload.pop("peak_rss_mb"), info=payload)


def _row(approach: Approach, runs: list[Run]) -> str:
    mid = sorted(runs, key=lambda r: r.result_s)[len(runs) // 2]
    info = mid.info
    success = info.get("success")
    outcome = "-" if success is None else "passed" if success else "failed"
    if info.get("failed_warnings"):
        outcome += f", warns {', '.join(info['failed_warnings'])}"
    inside = ", ".join(f"{k} {v:.2f}" for k, v in (info.get("timings") or {}).items())
    each = " / ".join(f"{r.result_s:.2f}" for r in runs)
    return (f"| {approach.label} | {statistics.median(r.result_s for r in runs):.2f} "
            f"| {min(r.result_s for r in runs):.2f} "
            f"| {statistics.median(r.process_s for r in runs):.2f} | {each} "
            f"| {statistics.median(r.cpu_s for r in runs):.2f} | {max(r.peak_rss_mb for r in runs):.0f} MB "
            f"| {outcome} | {inside} |")


def run_bench(rows: int = 1_000_000, repeats: int = REPEATS, sql_site: str | None = None,
              nice: int = 0) -> str:
    """Build the staged output, run every approach `repeats` times, return a markdown table."""
    sql_site = sql_site or os.environ.get("TICKETFLOW_BENCH_SQL_SITE")
    previous_root = os.environ.get("TICKETFLOW_LOCAL_ROOT")
    with tempfile.TemporaryDirectory(prefix="ticketflow-validation-bench-") as tmp:
        os.environ["TICKETFLOW_LOCAL_ROOT"] = tmp
        try:
            started = time.perf_counter()
            report = build_staged(for_bucket(BUCKET), rows)
            build_s = time.perf_counter() - started
        finally:
            if previous_root is None:
                os.environ.pop("TICKETFLOW_LOCAL_ROOT", None)
            else:
                os.environ["TICKETFLOW_LOCAL_ROOT"] = previous_root
        load_before = os.getloadavg()[0]
        runnable = [a for a in APPROACHES if all(_importable(m, sql_site) for m in a.needs)]
        runs: dict[str, list[Run]] = {a.key: [] for a in runnable}
        for _ in range(repeats):  # round robin, so a burst of load elsewhere hits every approach alike
            for approach in runnable:
                runs[approach.key].append(_measure(approach, Path(tmp), sql_site, nice))
        load_after = os.getloadavg()[0]
        lines = [
            _row(a, runs[a.key]) if a.key in runs else
            f"| {a.label} | - | - | - | - | - | - | not installed: {', '.join(a.needs)} (see --sql-site) | |"
            for a in APPROACHES
        ]
    size_mb = sum(f["bytes"] for f in report["outputs"]["files"]) / 1e6
    head = [
        f"Validating {rows:,} staged rows ({len(report['outputs']['files'])} Parquet files, "
        f"{size_mb:.0f} MB, built in {build_s:.1f} s). Each run is a fresh `python` process (imports "
        f"included); {repeats} runs, median. {os.cpu_count()} CPUs; load average {load_before:.1f} "
        f"before, {load_after:.1f} after" + (f"; runs at nice {nice}." if nice else "."),
        "`result s`: spawn until the result is printed (the Lambda's view: its process stays up); `best`: "
        "the fastest run (the least disturbed on a shared machine). `process s`: until the process has "
        "exited (adds interpreter teardown). CPU: user + sys, median. Peak RSS: the highest run.",
        "",
        "| approach | result s | best | process s | result s, each run | CPU s | peak RSS | outcome | inside, s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + lines) + "\n"


def _importable(module: str, extra_site: str | None) -> bool:
    import importlib.util

    if importlib.util.find_spec(module) is not None:
        return True
    return bool(extra_site) and (Path(str(extra_site)) / module).exists()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--sql-site", help="directory holding sqlalchemy and duckdb-engine, put on "
                                           "PYTHONPATH for the GX SQL approach only")
    parser.add_argument("--nice", type=int, default=0, help="run the measured processes at this niceness "
                                                             "(e.g. -20 as root on a shared, busy machine)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        payload = child(args.child, args.root)
        payload["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(payload, default=str), flush=True)
        return 0
    print(run_bench(args.rows, args.repeats, args.sql_site, args.nice))
    return 0


if __name__ == "__main__":
    sys.exit(main())
