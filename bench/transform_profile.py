"""Where the Glue job's time goes, step by step, on one file (a development aid; `make bench` does not run it).

    python -m bench.transform_profile bench/data/tickets_1000000.csv

Each Spark step is timed as a Spark action that writes nowhere (the `noop` format), building on the previous
step with the job's own functions, in one warm session. The steps overlap with what the job does in its phases,
so they do not add up to the job's total: they show the relative weight of each piece of work. The two passes
over the whole file in Python (the encoding check of `prepare_source`, and the quote and blank-line scan the job
runs in a thread beside the parse) are timed on their own first.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from glue.ticket_etl_job import configure, file_size, prepare_source, read_pieces, read_source
from ticketcore import spark_transform as tx
from ticketcore.contract import load_contract, map_headers
from ticketcore.dialect import HEAD_BYTES, detect_dialect, scan_stream
from ticketcore.timeformats import choose_format
from ticketflow.sparkenv import local_session


def timed(name: str, action: Callable[[], Any]) -> Any:
    start = time.monotonic()
    result = action()
    print(f"{name:<66} {time.monotonic() - start:6.2f} s", flush=True)
    return result


def noop(df: DataFrame) -> Callable[[], None]:
    return lambda: df.write.format("noop").mode("overwrite").save()


def main(source: str) -> None:
    spark = local_session()
    configure(spark)
    contract = load_contract()
    with open(source, "rb") as fh:
        dialect = detect_dialect(fh.read(HEAD_BYTES))
    mapping = map_headers(dialect.headers, contract)
    contract = contract.with_profile(mapping.profile)
    staging = tempfile.mkdtemp(prefix="tf-profile-staging-")

    prepared = timed("encoding of the whole file (prepare_source; Python)",
                     lambda: prepare_source(spark, source, staging, "profile", dialect))
    dialect, uri = prepared.dialect, prepared.uri
    scan = timed("quote and blank-line scan of the whole file (Python; a thread in the job)",
                 lambda: scan_stream(read_pieces(spark, uri), dialect.encoding, dialect.delimiter))

    raw = read_source(spark, uri, dialect, mapping)
    timed("parse the CSV (one task)", noop(raw))
    indexed = tx.with_record_index(raw, dialect.skip_records)
    timed("parse + record numbers and line spans", noop(indexed))
    spread = tx.spread_partitions(file_size(spark, uri), spark.sparkContext.defaultParallelism)
    if spread > 1:
        indexed = indexed.repartition(spread, tx.RECORD)
    timed(f"parse + ... + trim, missing tokens to null ({spread} partition(s))",
          noop(tx.blank_missing(indexed, contract)))
    base = tx.blank_missing(indexed, contract).persist()
    timed("the same, into the cache", noop(base))
    timed("scan the cache", noop(base))
    ts_cols = [c.name for c in contract.columns_of_type("timestamp") if tx.value(c.name) in base.columns]
    evidence: dict[str, Any] = {}

    def infer() -> None:
        evidence.update(tx.timestamp_evidence(base, [tx.value(c) for c in ts_cols]))

    timed("timestamp evidence (one aggregation over the cache)", infer)
    formats = {c: choose_format(c, tx.evidence_from_row(evidence, tx.value(c)), contract.timestamps)
               for c in ts_cols}
    for c, f in formats.items():
        print(f"    {c}: {f.label}", flush=True)
    typed, info = tx.type_columns(base, contract, mapping, formats)
    for col in contract.columns.values():
        if col.name in typed.columns and tx.value(col.name) in base.columns:
            timed(f"  type {col.name} ({col.type}) alone", noop(typed.select(col.name)))
    timed("  the extra map alone", noop(typed.select(tx.EXTRA)))
    timed("  the _unparsed map alone (with every flag it needs)", noop(typed.select(tx.UNPARSED)))
    timed("type every column", noop(typed))
    outcomes = tx.record_outcomes(
        tx.classify(typed, contract, info), header_lines=dialect.lines_before_data,
        open_quote_line=scan.open_quote_line, blank_lines=scan.blank_lines,
    ).persist()
    timed("line numbers + dedupe (windows on a narrow frame)", noop(outcomes))
    final = tx.derive(typed.join(F.broadcast(outcomes), tx.RECORD), "profile", source, "2024-01-01T00:00:00Z")
    published = tx.output_columns(contract, mapping)
    valid = final.where(F.col(tx.REASON).isNull()).select(*published, "year", "month")
    timed("typed, joined, derived valid rows (no write)", noop(valid))
    out = tempfile.mkdtemp(prefix="tf-profile-")
    options = tx.parquet_write_options(contract, published)
    timed("the same, written as partitioned Parquet",
          lambda: valid.write.mode("overwrite").options(**options).partitionBy("year", "month").parquet(out))


if __name__ == "__main__":
    main(sys.argv[1])
