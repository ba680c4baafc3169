"""Spark's own floor on this machine: the minimal pass of `bench.duckdb_minimal` (read the CSV, type the three
timestamps, keep the latest row per ticket, write snappy Parquet partitioned `year=/month=`) written for local
Spark with the job's session settings, and none of the job's rules. For the benchmark only: it splits the
job's distance from the DuckDB floor into what Spark itself costs here and what the rules cost.

    python -m bench.spark_minimal FILE OUT_DIR [single_line]
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.duckdb_minimal import TIMESTAMPS


def run_minimal_spark(spark: Any, source: str, out_dir: str, multi_line: bool = True) -> dict[str, Any]:
    """Returns {"rows_written", "seconds"} (the session is the caller's, so its start is not timed). The file is
    read whole (`multiLine`, one task) as the job reads a file with quoted line breaks, or split by lines.
    Ragged records are dropped (`DROPMALFORMED`), as DuckDB's `ignore_errors` does."""
    from pyspark.sql import Observation, Window
    from pyspark.sql import functions as F

    from glue.ticket_etl_job import configure

    configure(spark)  # the job's settings: UTC, snappy, codegen limits, Parquet timestamps
    t0 = time.monotonic()
    df = spark.read.csv(source, header=True, multiLine=multi_line, escape='"', quote='"', mode="DROPMALFORMED")
    for c in TIMESTAMPS:
        v = F.col(f"`{c}`")
        df = df.withColumn(c, F.coalesce(F.to_timestamp(v), F.try_to_timestamp(v, F.lit("M/d/yyyy H:mm"))))
    latest = Window.partitionBy("`Ticket ID`").orderBy(F.col("`Updated At`").desc_nulls_last())
    out = (
        df.withColumn("_rn", F.row_number().over(latest)).where("_rn = 1").drop("_rn")
        .withColumn("year", F.year("`Created At`")).withColumn("month", F.month("`Created At`"))
    )
    written = Observation(f"spark_minimal_{uuid.uuid4().hex}")
    (out.observe(written, F.count(F.lit(1)).alias("rows")).write.mode("overwrite")
     .partitionBy("year", "month").parquet(str(Path(out_dir) / "tickets")))
    return {"rows_written": int(written.get["rows"]), "seconds": time.monotonic() - t0}


if __name__ == "__main__":
    from ticketflow.sparkenv import local_session

    print(json.dumps(run_minimal_spark(local_session(), sys.argv[1], sys.argv[2],
                                       multi_line=sys.argv[3:] != ["single_line"])))
