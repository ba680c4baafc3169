"""The Glue job on local Spark against a DuckDB reference of the same rules, side by side in one run.

Each run is a fresh process; peak memory is the process tree's (the Spark JVM is a child of Python).
Spark is timed twice: the whole process (JVM start included) and `run()` alone, which is what a warm
session (the local runtime, or a Glue worker) pays per file.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.pipeline_bench import DATA, PY, run_measured

OUTCOME_KEYS = ("rows_read", "rows_valid", "rows_quarantined", "quarantined_by_reason", "duplicates_superseded")


def ensure_file(rows: int) -> Path:
    from ticketflow.generate import generate_csv

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"tickets_{rows}.csv"
    stats_path = path.with_suffix(".stats.json")
    if not path.exists() or not stats_path.exists():
        stats = generate_csv(path, rows=rows, seed=2024, dirty=0.01)
        stats_path.write_text(json.dumps({"expected_valid": stats.expected_valid,
                                          "expected_quarantined": stats.expected_quarantined}))
    return path


def _spark_child(source: str) -> None:
    import time

    t0 = time.monotonic()
    from glue.ticket_etl_job import JobArgs, run
    from ticketflow.sparkenv import local_session

    spark = local_session()
    session_s = time.monotonic() - t0
    out = Path(tempfile.mkdtemp(prefix="tf-bench-spark-"))
    t1 = time.monotonic()
    report = run(spark, JobArgs(source=source, staging=str(out / "staging"), quarantine=str(out / "q"),
                                reports=str(out / "r"), run_id="bench"))
    print(json.dumps({"session_s": session_s, "run_s": time.monotonic() - t1,
                      **{k: report[k] for k in OUTCOME_KEYS}, "timings": report["timings_seconds"]}))


def _duckdb_child(source: str) -> None:
    import time

    from bench.duckdb_reference import run_reference

    t0 = time.monotonic()
    counts = run_reference(source, tempfile.mkdtemp(prefix="tf-bench-duckdb-"))
    print(json.dumps({"run_s": time.monotonic() - t0, **{k: counts[k] for k in OUTCOME_KEYS},
                      "timings": counts["timings_seconds"]}))


def measure(engine: str, source: Path, repeats: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeats):
        wall, peak, out = run_measured([PY, "-m", "bench.transform_bench", f"--{engine}-child", str(source)])
        doc = json.loads(out.strip().splitlines()[-1])
        runs.append({**doc, "wall_s": wall, "peak_rss": peak})
    best = sorted(runs, key=lambda r: r["run_s"])[len(runs) // 2]  # the median run, for its phase timings
    return {**best, "run_s": statistics.median(r["run_s"] for r in runs),
            "wall_s": statistics.median(r["wall_s"] for r in runs), "peak_rss": max(r["peak_rss"] for r in runs),
            "repeats": repeats}


def run_bench(sizes: tuple[int, ...] = (100_000, 1_000_000), repeats: int = 3) -> str:
    lines = ["## Transform: the Glue job on local Spark vs a DuckDB reference of the same rules", "",
             "| rows | MB | engine | run s (median) | process s | MB/s | rows/s | peak RSS | Spark / DuckDB |",
             "|---|---|---|---|---|---|---|---|---|"]
    phases = []
    for rows in sizes:
        source = ensure_file(rows)
        expected = json.loads(source.with_suffix(".stats.json").read_text())
        mb = source.stat().st_size / 1e6
        n = repeats if rows <= 100_000 else max(1, repeats - 1)
        spark, duck = measure("spark", source, n), measure("duckdb", source, n)
        for key in OUTCOME_KEYS:
            if spark[key] != duck[key]:
                raise SystemExit(f"outcomes differ at {rows} rows on {key}: spark {spark[key]} duckdb {duck[key]}")
        if (spark["rows_valid"], spark["rows_quarantined"]) != (expected["expected_valid"],
                                                               expected["expected_quarantined"]):
            raise SystemExit(f"spark counts differ from the generator's expectation at {rows} rows: {expected}")
        ratio = spark["run_s"] / duck["run_s"]
        for name, r in (("Spark 3.5 `run()` (warm session)", spark), ("DuckDB reference", duck)):
            lines.append(
                f"| {rows:,} | {mb:.0f} | {name} | {r['run_s']:.2f} | {r['wall_s']:.2f} | {mb / r['run_s']:.1f} | "
                f"{rows / r['run_s']:,.0f} | {r['peak_rss'] / 1e9:.2f} GB | "
                f"{f'{ratio:.1f}x' if r is spark else ''} |"
            )
        phases.append(f"- {rows:,} rows, Spark phases (s): {spark['timings']}; Spark session start "
                      f"{spark['session_s']:.1f} s; DuckDB phases (s): {duck['timings']}")
        lines.append(f"| | | outcomes | valid {spark['rows_valid']:,}, quarantined {spark['rows_quarantined']:,} "
                     f"{spark['quarantined_by_reason']} (identical in both, and as the generator injected) | | | | | |")
    return "\n".join([*lines, "", "Where the time goes:", "", *phases, ""])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--spark-child":
        _spark_child(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "--duckdb-child":
        _duckdb_child(sys.argv[2])
    else:
        print(run_bench())
