"""`make bench`: every benchmark, side by side in one run, written to bench/RESULTS.md with the machine."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    import duckdb
    import pyspark

    return (f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB RAM; "
            f"load average at start {os.getloadavg()[0]:.1f}\n"
            f"- Python {platform.python_version()}, {java}, PySpark {pyspark.__version__}, DuckDB {duckdb.__version__}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="10k rows only, one run each, no 1M-row runs (a smoke run)")
    args = parser.parse_args()
    from bench import pipeline_bench, transform_bench, validation_bench

    sections = ["# Benchmark results", "", machine(), ""]
    if args.quick:
        sections.append(transform_bench.run_bench((10_000,), repeats=1))
        sections.append(transform_bench.run_split_bench(10_000, repeats=1))
        sections.append(transform_bench.run_scale_envelope(10_000, cores=(1, 2)))
    else:
        sections.append(transform_bench.run_bench((100_000, 1_000_000)))
        sections.append(transform_bench.run_split_bench(1_000_000))
        sections.append(transform_bench.run_scale_envelope(1_000_000))
    sections.append("## Validation (great-expectations) of a staged output\n")
    sections.append(validation_bench.run_bench(10_000 if args.quick else 1_000_000))
    sections.append(pipeline_bench.run_bench(10_000, None if args.quick else 1_000_000))
    text = "\n".join(sections)
    notes = RESULTS.with_name("NOTES.md")
    if notes.exists():
        text += "\n" + notes.read_text()
    RESULTS.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
