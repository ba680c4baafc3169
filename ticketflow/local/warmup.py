"""Warm-up for a long-lived local runtime (`ticketflow watch`).

A Spark session's first runs of the Glue job are slow for reasons that have nothing to do with the data:
Spark generates and compiles its code, and the JVM's JIT compiles the hot paths over the first few runs
(measured on a 10k-row file in one session: 13.7 s, 5.0 s, 3.8 s, 3.0 s). great-expectations takes 2-3 s
to import. Running the real job and the real validation on a small generated file, a few times, before
watching puts that cost at start-up instead of on the first files an operator drops in.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

WARM_UP_ROWS = 5_000
WARM_UP_RUNS = 3


def warm_up(spark: Any, contract_path: Path | None = None, rows: int = WARM_UP_ROWS,
            runs: int = WARM_UP_RUNS) -> float:
    """Run the Glue job `runs` times and the validation once on a generated file; returns the seconds spent.
    Nothing is written outside a temporary directory."""
    from glue.ticket_etl_job import JobArgs, run
    from ticketcore import validation
    from ticketcore.contract import load_contract
    from ticketflow.generate import generate_csv

    started = time.monotonic()
    validation.prefetch_gx()  # imports while Spark works
    contract = load_contract(str(contract_path) if contract_path else None)
    with tempfile.TemporaryDirectory(prefix="ticketflow-warm-up-") as tmp:
        source = Path(tmp) / "warm-up.csv"
        generate_csv(source, rows=rows, seed=1, dirty=0.02)
        report: dict[str, Any] = {}
        for i in range(runs):
            out = Path(tmp) / f"run{i}"
            report = run(spark, JobArgs(source=str(source), staging=str(out / "staging"),
                                        quarantine=str(out / "quarantine"), reports=str(out / "reports"),
                                        run_id=f"warm-up-{i}"), contract)
        staged = sorted((Path(tmp) / f"run{runs - 1}" / "staging").rglob("*.parquet"))
        validation.validate_staged(staged, report, contract)
    return time.monotonic() - started
