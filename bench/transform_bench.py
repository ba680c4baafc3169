"""The Glue job on local Spark, as it is now and as it was before issue 11, against a DuckDB reference of the
same rules, side by side in one run.

Each run is a fresh process; peak memory is the process tree's (the Spark JVM is a child of Python).
Spark is timed twice: the whole process (JVM start included) and `run()` alone, which is what a warm
session (the local runtime, or a Glue worker) pays per file.

Two copies of the code are measured, each from a tree of its own, so that neither changes during the run:
the baseline is commit `BASELINE` (the last commit before the work of issue 11) as `git archive` gives it, run
with its own `python -m bench.transform_bench --spark-child`; the current code is the working tree's tracked
and untracked files as they are when the bench starts (uncommitted changes outside bench/ are named in the
results). A child imports the code of its tree: `python -m` puts its working directory first on sys.path,
ahead of the editable install's finder (checked before measuring). The runs are interleaved (baseline,
current, DuckDB, baseline, ...) so that machine noise hits all three alike.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.pipeline_bench import DATA, PY, ROOT, measure_process

OUTCOME_KEYS = ("rows_read", "rows_valid", "rows_quarantined", "quarantined_by_reason", "duplicates_superseded")
# What else the current job and the DuckDB reference must agree on (the baseline's child reports none of it).
DETAIL_KEYS = ("nulls_coerced", "out_of_range", "unparsed_counts", "unknown_enum_counts", "rows_per_partition",
               "timestamp_readings")
BASELINE = "b8919a4"  # bench notes: say when the profile table was measured (2026-11-26), before issue 11
TARGET = 1.10  # issue 11: the 1M-row transform stays within 10% of its time before the issue
ENGINES = ("baseline", "current", "duckdb", "minimal", "spark_minimal")
LABELS = {
    "baseline": f"Spark 3.5 `run()`, before issue 11 ({BASELINE})",
    "current": "Spark 3.5 `run()`, now",
    "current_whole": "Spark 3.5 `run()`, now, read whole (`--csv_parse multi_line`)",
    "duckdb": "DuckDB reference of the same rules (now)",
    "minimal": "DuckDB minimal pass (read, type, dedupe, write partitioned Parquet: the floor)",
    "spark_minimal": "Spark minimal pass (the same minimal work on local Spark: Spark's own floor)",
    "spark_minimal_split": "Spark minimal pass, read split by lines",
}
FLOORS = ("minimal", "spark_minimal", "spark_minimal_split")
# Issue 16 at 1M rows: the transform against the floor and against the same rules in DuckDB.
FLOOR_TARGET, SAME_RULES_TARGET = 10.0, 3.0


def ensure_file(rows: int, single_line: bool = False) -> Path:
    """The generated bench file of `rows` rows: descriptions over several lines (read whole), or with
    `single_line` every record one line (read split by lines)."""
    from ticketflow.generate import generate_csv

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"tickets_{rows}{'_single_line' if single_line else ''}.csv"
    stats_path = path.with_suffix(".stats.json")
    if not path.exists() or not stats_path.exists():
        stats = generate_csv(path, rows=rows, seed=2024, dirty=0.01, single_line=single_line)
        stats_path.write_text(json.dumps({"expected_valid": stats.expected_valid,
                                          "expected_quarantined": stats.expected_quarantined}))
    return path


# ---------------------------------------------------------------- the children (one run each)


def _spark_child(source: str, csv_parse: str = "auto", cores: str = "*") -> None:
    import time

    t0 = time.monotonic()
    from glue.ticket_etl_job import JobArgs, run
    from ticketflow.sparkenv import local_session

    spark = local_session(cores)
    session_s = time.monotonic() - t0
    out = Path(tempfile.mkdtemp(prefix="tf-bench-spark-"))
    t1 = time.monotonic()
    options = {"csv_parse": csv_parse} if csv_parse != "auto" else {}  # the baseline's JobArgs has no such field
    report = run(spark, JobArgs(source=source, staging=str(out / "staging"), quarantine=str(out / "q"),
                                reports=str(out / "r"), run_id="bench", **options))
    partitions: Counter[str] = Counter()
    for f in report["outputs"]["files"]:
        partitions["/".join(p for p in f["uri"].split("/") if p.startswith(("year=", "month=")))] += f["rows"]
    details = {
        "nulls_coerced": report["nulls_coerced"],
        "out_of_range": report["out_of_range"],
        "unparsed_counts": {k: v["count"] for k, v in report["unparsed_values"].items()},
        "unknown_enum_counts": {k: v["count"] for k, v in report["unknown_enum_values"].items()},
        "rows_per_partition": dict(sorted(partitions.items())),
        "timestamp_readings": {c: [f["label"], f["date_order"]] for c, f in report["timestamp_formats"].items()},
    }
    print(json.dumps({"session_s": session_s, "run_s": time.monotonic() - t1,
                      **{k: report[k] for k in OUTCOME_KEYS}, **details, "timings": report["timings_seconds"],
                      "csv_parse": report.get("csv_parse")}))


def _minimal_child(source: str) -> None:
    from bench.duckdb_minimal import run_minimal

    done = run_minimal(source, tempfile.mkdtemp(prefix="tf-bench-minimal-"))
    print(json.dumps({"run_s": done["seconds"], "rows_written": done["rows_written"],
                      "timings": {"total": round(done["seconds"], 3)}}))


def _spark_minimal_child(source: str, reading: str = "multi_line") -> None:
    import time

    from bench.spark_minimal import run_minimal_spark
    from ticketflow.sparkenv import local_session

    t0 = time.monotonic()
    spark = local_session()
    session_s = time.monotonic() - t0
    done = run_minimal_spark(spark, source, tempfile.mkdtemp(prefix="tf-bench-spark-minimal-"),
                             multi_line=reading != "single_line")
    print(json.dumps({"session_s": session_s, "run_s": done["seconds"], "rows_written": done["rows_written"],
                      "timings": {"total": round(done["seconds"], 3)}}))


def _duckdb_child(source: str) -> None:
    import time

    from bench.duckdb_reference import run_reference

    t0 = time.monotonic()
    counts = run_reference(source, tempfile.mkdtemp(prefix="tf-bench-duckdb-"))
    run_s = time.monotonic() - t0
    counts["timestamp_readings"] = {c: [f["label"], f["date_order"]] for c, f in counts["timestamp_formats"].items()}
    print(json.dumps({"run_s": run_s, **{k: counts[k] for k in (*OUTCOME_KEYS, *DETAIL_KEYS)},
                      "timings": counts["timings_seconds"]}))


# ---------------------------------------------------------------- the trees measured


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def baseline_tree(dest: Path) -> None:
    """Commit BASELINE as `git archive` gives it."""
    archive = subprocess.run(["git", "archive", BASELINE], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def current_tree(dest: Path) -> str:
    """The working tree's tracked and untracked (not ignored) files, copied as they are now: another change
    made while the bench runs does not reach it. Returns what it holds, for the results."""
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in listed:
        path = ROOT / name
        if name and path.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest / name)
    head = git("rev-parse", "--short", "HEAD").strip()
    changed = sorted({line[3:] for line in git("status", "--porcelain").splitlines()
                      if line[3:] and not line[3:].startswith("bench/")})
    if not changed:
        return f"{head} (no uncommitted change outside bench/)"
    return f"{head} plus uncommitted changes in {', '.join(changed)}"


def check_imports(tree: Path) -> None:
    """A child started in `tree` must import that tree's job, transform and bench (not the editable install's)."""
    code = ("import json, glue.ticket_etl_job as j, ticketcore.spark_transform as t, ticketcore.contract as c, "
            "bench.transform_bench as b; print(json.dumps([j.__file__, t.__file__, c.__file__, b.__file__]))")
    out = subprocess.run([PY, "-c", code], cwd=tree, capture_output=True, text=True, check=True).stdout
    files = json.loads(out.strip().splitlines()[-1])
    wrong = [f for f in files if not Path(f).resolve().is_relative_to(tree.resolve())]
    if wrong:
        raise SystemExit(f"a child started in {tree} imports {wrong}: the comparison would measure the wrong code")


# ---------------------------------------------------------------- measuring


CHILD = {"duckdb": ["--duckdb-child"], "minimal": ["--minimal-child"], "current_whole": ["--spark-child"],
         "spark_minimal": ["--spark-minimal-child"], "spark_minimal_split": ["--spark-minimal-child"]}
CHILD_ARGS = {"current_whole": ["multi_line"], "spark_minimal_split": ["single_line"]}


def run_once(engine: str, source: Path, trees: dict[str, Path], cores: str | None = None) -> dict[str, Any]:
    """One run of `engine` on `source` in a process of its own; `cores`: Spark's `local[N]` (default all)."""
    child = CHILD.get(engine, ["--spark-child"])
    extra = CHILD_ARGS.get(engine, ["auto"] if cores else [])
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tf-bench-run-") as tmp:  # the child's outputs, removed after
        cmd = [PY, "-m", "bench.transform_bench", *child, str(source), *extra, *([cores] if cores else [])]
        m = measure_process(cmd, env={"TMPDIR": tmp}, cwd=trees[engine])
    doc = json.loads(m.stdout.strip().splitlines()[-1])
    return {**doc, "wall_s": m.wall_s, "peak_memory": m.peak_memory, "cpu_s": m.cpu_s, "load": load}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    median_run = sorted(runs, key=lambda r: r["run_s"])[len(runs) // 2]  # its phase timings are shown
    return {**median_run, "run_s": statistics.median(r["run_s"] for r in runs),
            "wall_s": statistics.median(r["wall_s"] for r in runs), "peak_memory": max(r["peak_memory"] for r in runs),
            "cpu_s": statistics.median(r["cpu_s"] for r in runs),
            "each_run_s": [r["run_s"] for r in runs], "repeats": len(runs)}


def reason_moves(before: dict[str, int], after: dict[str, int]) -> str:
    keys = sorted(set(before) | set(after))
    return ", ".join(f"{k}: {before.get(k, 0)} -> {after.get(k, 0)}" for k in keys if before.get(k) != after.get(k))


def run_bench(sizes: tuple[int, ...] = (100_000, 1_000_000), repeats: int = 3) -> str:
    lines = ["## Transform: the Glue job on local Spark, now and before issue 11, vs a DuckDB reference of the "
             "same rules", ""]
    phases: list[str] = []
    checks: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tf-bench-trees-") as tmp:
        trees = {"baseline": Path(tmp) / "baseline", "current": Path(tmp) / "current"}
        for tree in trees.values():
            tree.mkdir()
        baseline_tree(trees["baseline"])
        current = current_tree(trees["current"])
        trees["duckdb"] = trees["minimal"] = trees["spark_minimal"] = trees["current"]
        for tree in (trees["baseline"], trees["current"]):
            check_imports(tree)
        lines += [
            f"Baseline: commit {BASELINE}, the last before issue 11. Now: {current}. Each from a copy of its own "
            "tree (checked: a child imports that tree's code). Runs interleaved (baseline, now, DuckDB, baseline, "
            "...); median of the runs shown.",
            "",
            "| rows | MB | engine | run s (median) | each run s | process s | process CPU s | MB/s | rows/s | "
            "peak memory (PSS) | / same rules | / minimal |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for rows in sizes:
            source = ensure_file(rows)
            expected = json.loads(source.with_suffix(".stats.json").read_text())
            mb = source.stat().st_size / 1e6
            runs: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
            for i in range(repeats):
                for engine in ENGINES:
                    runs[engine].append(run_once(engine, source, trees))
                    print(f"transform bench: {rows:,} rows, run {i + 1}/{repeats}, {engine}: "
                          f"run {runs[engine][-1]['run_s']:.1f} s (load {runs[engine][-1]['load']:.1f})",
                          file=sys.stderr, flush=True)
            r = {e: summarise(runs[e]) for e in ENGINES}
            now, duck, base = r["current"], r["duckdb"], r["baseline"]
            for key in (*OUTCOME_KEYS, *DETAIL_KEYS):
                if now[key] != duck[key]:
                    raise SystemExit(f"outcomes differ at {rows} rows on {key}: spark {now[key]} duckdb {duck[key]}")
            if (now["rows_valid"], now["rows_quarantined"]) != (expected["expected_valid"],
                                                               expected["expected_quarantined"]):
                raise SystemExit(f"spark counts differ from the generator's expectation at {rows} rows: {expected}")
            lines += table_rows(rows, mb, r, ENGINES)
            same_as_baseline = all(base[k] == now[k] for k in OUTCOME_KEYS)
            moved = reason_moves(base["quarantined_by_reason"], now["quarantined_by_reason"])
            lines.append(
                f"| | | outcomes | valid {now['rows_valid']:,}, quarantined {now['rows_quarantined']:,} "
                f"{now['quarantined_by_reason']} (identical now in Spark and DuckDB, with the same coerced, "
                f"out-of-range, unparsed and unknown-enum counts, rows per partition and timestamp readings; as the "
                f"generator injected; "
                + ("identical to the baseline's" if same_as_baseline else f"NOT identical to the baseline's: {moved}")
                + ") | | | | | | | |"
            )
            ratio = now["run_s"] / base["run_s"]
            target = f" (target at most {TARGET:.2f} at 1M rows: {'met' if ratio <= TARGET else 'NOT met'})"
            loads = " / ".join(f"{run['load']:.1f}" for i in range(repeats) for run in (runs[e][i] for e in ENGINES))
            checks.append(
                f"- {rows:,} rows: now / baseline `run()` = {now['run_s']:.2f} / {base['run_s']:.2f} s = {ratio:.3f}"
                + (target if rows >= 1_000_000 else " (no target)")
                + f"; process wall {now['wall_s'] / base['wall_s']:.3f}, process CPU "
                f"{now['cpu_s'] / base['cpu_s']:.3f}; outcome counts "
                + ("equal to the baseline's" if same_as_baseline else "differ from the baseline's")
                + f"; load average (1 min) at each run's start: {loads}"
            )
            checks.append(speed_targets(rows, r))
            for engine in ENGINES:
                x = r[engine]
                session = f"; session start {x['session_s']:.1f} s" if "session_s" in x else ""
                phases.append(f"- {rows:,} rows, {LABELS[engine]} (median run) phases (s): {x['timings']}{session}")
    return "\n".join([*lines, "", "Now against the baseline (issue 11):", "", *checks, "", "Where the time goes:", "",
                      *phases, ""])


def table_rows(rows: int, mb: float, r: dict[str, dict[str, Any]], engines: tuple[str, ...]) -> list[str]:
    """One table row per engine: medians, each run, process figures, and the ratios to the two DuckDB runs."""
    out = []
    for engine in engines:
        x = r[engine]
        vs_duck = f"{x['run_s'] / r['duckdb']['run_s']:.1f}x" if engine not in ("duckdb", *FLOORS) else ""
        vs_min = f"{x['run_s'] / r['minimal']['run_s']:.1f}x" if engine != "minimal" else ""
        out.append(
            f"| {rows:,} | {mb:.0f} | {LABELS[engine]} | {x['run_s']:.2f} | "
            f"{' / '.join(f'{s:.1f}' for s in x['each_run_s'])} | {x['wall_s']:.2f} | {x['cpu_s']:.1f} | "
            f"{mb / x['run_s']:.1f} | {rows / x['run_s']:,.0f} | {x['peak_memory'] / 1e9:.2f} GB | {vs_duck} | "
            f"{vs_min} |"
        )
    return out


def speed_targets(rows: int, r: dict[str, dict[str, Any]], engine: str = "current") -> str:
    """Issue 16's two ratios for `engine`'s median run (targets at 1M rows only)."""
    now = r[engine]["run_s"]
    floor, same = now / r["minimal"]["run_s"], now / r["duckdb"]["run_s"]
    verdict = (lambda ok: "met" if ok else "NOT met") if rows >= 1_000_000 else (lambda ok: "no target here")
    return (f"- {rows:,} rows, {LABELS[engine]}: {floor:.1f}x the minimal DuckDB pass (target at most "
            f"{FLOOR_TARGET:.0f}x at 1M rows: {verdict(floor <= FLOOR_TARGET)}), {same:.1f}x the same rules in "
            f"DuckDB (target at most {SAME_RULES_TARGET:.0f}x: {verdict(same <= SAME_RULES_TARGET)}); read "
            f"{'whole' if (r[engine].get('csv_parse') or {}).get('multi_line', True) else 'split by lines'}"
            + spark_floor(r, engine))


def spark_floor(r: dict[str, dict[str, Any]], engine: str) -> str:
    """How the distance from the DuckDB floor divides: Spark's own minimal pass against the DuckDB one, and the
    job against Spark's minimal pass (what the rules cost on Spark)."""
    key = next((k for k in ("spark_minimal", "spark_minimal_split") if k in r), None)
    if key is None:
        return ""
    floor = r[key]["run_s"]
    how = "read split by lines" if key == "spark_minimal_split" else "read whole"
    job = r[engine]["run_s"]
    return (f". Spark's own floor (the minimal pass on local Spark, {how}): {floor:.1f} s = "
            f"{floor / r['minimal']['run_s']:.1f}x the DuckDB floor; the job is {job / floor:.1f}x Spark's floor "
            f"(the rules: {job - floor:.1f} s)")


def run_split_bench(rows: int = 1_000_000, repeats: int = 2) -> str:
    """The same generated tickets with every record on one line, which the job reads split by lines: the job as
    it chooses (split), the job made to read it whole, the same-rules reference and the floor, interleaved."""
    engines = ("current", "current_whole", "duckdb", "minimal", "spark_minimal_split")
    source = ensure_file(rows, single_line=True)
    expected = json.loads(source.with_suffix(".stats.json").read_text())
    mb = source.stat().st_size / 1e6
    trees = {e: ROOT for e in engines}
    runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
    for i in range(repeats):
        for engine in engines:
            runs[engine].append(run_once(engine, source, trees))
            print(f"split bench: {rows:,} rows, run {i + 1}/{repeats}, {engine}: {runs[engine][-1]['run_s']:.1f} s",
                  file=sys.stderr, flush=True)
    r = {e: summarise(runs[e]) for e in engines}
    for key in (*OUTCOME_KEYS, *DETAIL_KEYS):
        if not r["current"][key] == r["current_whole"][key] == r["duckdb"][key]:
            raise SystemExit(f"single-line file, {key} differs: split {r['current'][key]}, whole "
                             f"{r['current_whole'][key]}, duckdb {r['duckdb'][key]}")
    if (r["current"]["rows_valid"], r["current"]["rows_quarantined"]) != (expected["expected_valid"],
                                                                           expected["expected_quarantined"]):
        raise SystemExit(f"spark counts differ from the generator's expectation on the single-line file: {expected}")
    split = r["current"]["csv_parse"]
    return "\n".join([
        f"## Transform of a single-line file ({rows:,} rows, every record one line): read split by lines, and "
        "whole", "",
        f"The job's choice: {'split by lines' if not split['multi_line'] else 'whole'} ({split['reason']}; "
        f"{split['parse_tasks']} parse tasks). Outcomes identical in the three (every count of the report, rows per "
        "partition, timestamp readings) and as the generator injected. Runs interleaved; median shown.", "",
        "| rows | MB | engine | run s (median) | each run s | process s | process CPU s | MB/s | rows/s | "
        "peak memory (PSS) | / same rules | / minimal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *table_rows(rows, mb, r, engines), "",
        speed_targets(rows, r), speed_targets(rows, r, "current_whole"),
        f"- split / whole: {r['current']['run_s'] / r['current_whole']['run_s']:.2f}", "",
        *[f"- {LABELS[e]} (median run) phases (s): {r[e]['timings']}" for e in ("current", "current_whole")], "",
    ])


def run_scale_envelope(rows: int = 1_000_000, cores: tuple[int, ...] = (1, 2, 4)) -> str:
    """The job at `local[N]` for each N, on the single-line file (split) and the multi-line one (whole): the
    slope of run time against cores, measured, for the model of Glue workers against file size."""
    files = {"single-line, split by lines": ensure_file(rows, single_line=True),
             "multi-line, read whole": ensure_file(rows)}
    measured: dict[tuple[str, int], dict[str, Any]] = {}
    for n in cores:
        for label, source in files.items():
            measured[(label, n)] = run_once("current", source, {"current": ROOT}, cores=str(n))
            print(f"scale envelope: {label}, local[{n}]: {measured[(label, n)]['run_s']:.1f} s", file=sys.stderr,
                  flush=True)
    lines = [f"## Scale envelope: the job at local[N] on {rows:,} rows (one run each; this machine has "
             f"{os.cpu_count()} cores, so N above that shares them)", "",
             "| file | " + " | ".join(f"local[{n}] run s" for n in cores) + " | "
             + " | ".join(f"speed-up at {n}" for n in cores[1:]) + " | parse (read_and_infer) s at each N |",
             "|---|" + "---|" * (2 * len(cores)) + "---|"]
    for label in files:
        runs = [measured[(label, n)] for n in cores]
        speedups = [runs[0]["run_s"] / x["run_s"] for x in runs[1:]]
        parse = " / ".join(f"{x['timings'].get('read_and_infer', 0):.1f}" for x in runs)
        lines.append(f"| {label} | " + " | ".join(f"{x['run_s']:.1f}" for x in runs) + " | "
                     + " | ".join(f"{s:.2f}x" for s in speedups) + f" | {parse} |")
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--spark-child":
        _spark_child(*sys.argv[2:5])
    elif len(sys.argv) == 3 and sys.argv[1] == "--minimal-child":
        _minimal_child(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == "--spark-minimal-child":
        _spark_minimal_child(*sys.argv[2:4])
    elif len(sys.argv) == 3 and sys.argv[1] == "--duckdb-child":
        _duckdb_child(sys.argv[2])
    else:
        print(run_bench())
