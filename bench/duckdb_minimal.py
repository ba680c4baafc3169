"""The practical floor of the transform on this machine: a minimal DuckDB pass over the same file (read the CSV,
type the columns, keep the latest row per ticket, write snappy Parquet partitioned `year=/month=`), none of the
job's rules (no header mapping, no timestamp evidence, no quarantine, no line numbers, no value kept as text).
For the benchmark only: `bench.transform_bench` times it beside the Glue job and the same-rules reference.

    python -m bench.duckdb_minimal FILE OUT_DIR
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from ticketflow.generate import HEADERS

TIMESTAMPS = ("Created At", "Updated At", "Resolved At")  # the generator's headers (ticketflow.generate.HEADERS)


def run_minimal(source: str, out_dir: str) -> dict[str, Any]:
    """Returns {"rows_written", "seconds"}. The generated file's two timestamp shapes (ISO and US numeric) are
    read; ragged records are skipped (DuckDB's `ignore_errors`): what a real pipeline
    could not accept, which is why this is only a floor."""
    t0 = time.monotonic()
    con = duckdb.connect()
    columns = "{" + ", ".join(f"'{h}': 'VARCHAR'" for h in HEADERS) + "}"
    typed = ", ".join(f'coalesce(TRY_CAST("{c}" AS TIMESTAMP), try_strptime("{c}", \'%m/%d/%Y %H:%M\')) AS "{c}"'
                      for c in TIMESTAMPS)
    target = Path(out_dir) / "tickets"
    target.parent.mkdir(parents=True, exist_ok=True)
    written = con.execute(f"""
        COPY (
            SELECT * EXCLUDE (rn), year("Created At") AS year, month("Created At") AS month FROM (
                SELECT *, row_number() OVER (PARTITION BY "Ticket ID" ORDER BY "Updated At" DESC NULLS LAST) AS rn
                FROM (SELECT * REPLACE ({typed}) FROM read_csv(?, header = true, columns = {columns},
                                                    delim = ',', quote = '"', escape = '"', auto_detect = false,
                                                    strict_mode = false, ignore_errors = true))
            ) WHERE rn = 1
        ) TO '{target}' (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (year, month))
    """, [source]).fetchone()  # COPY answers with the number of rows it wrote
    return {"rows_written": int(written[0]) if written else 0, "seconds": time.monotonic() - t0}


if __name__ == "__main__":
    print(json.dumps(run_minimal(sys.argv[1], sys.argv[2])))
