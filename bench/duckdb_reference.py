"""The Glue job's rules in DuckDB SQL, for the benchmark only (never used by the pipeline).

Same inputs, same outcomes as `glue/ticket_etl_job.run`: the contract's header mapping
(`ticketcore.contract.map_headers`), missing-value tokens, ISO and slash/dash timestamps with one date order
per column chosen by `ticketcore.timeformats.choose_format` from the same evidence, enum synonyms, integers
in range, tag arrays, required-field quarantine, ragged rows, the dedupe (latest `updated_at`, else the last
line), snappy Parquet partitioned `year=/month=` and a quarantine CSV. It returns the counts per outcome
that `bench.transform_bench` compares with the Spark run report.

Ragged rows. Spark (PERMISSIVE, fixed schema) marks a record corrupt when its token count differs from the
header's. DuckDB's parallel reader silently accepts surplus *empty* trailing fields (`a,b,` for two columns),
so it would under-count them. Here the file is read with K spare columns, `null_padding` and a null string
that never occurs: a real field is then never NULL (an empty one is ''), a padded one always is, and the
number of non-NULL columns is the record's field count. DuckDB only allows `null_padding` with quoted
newlines on its single-threaded reader (`parallel=false`); that is the price of counting like Spark, and
the read phase is timed on its own so it shows. A record with more than N+K fields stops the run (loudly).

Not reproduced, because it does not change any count: Spark keeps a ragged record's exact text in
`_raw_record`; here it is rebuilt from its fields (same text unless a field was quoted without need).
Exotic number spellings that Java's `Double.parseDouble` accepts and DuckDB does not ("4d") are ignored.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb

from ticketcore.contract import Column, Contract, load_contract, map_headers
from ticketcore.dialect import HEAD_BYTES, detect_dialect
from ticketcore.timeformats import ColumnEvidence, choose_format

SPARE_COLUMNS = 8  # fields beyond the header that a ragged record may have before the read fails
NULL_SENTINEL = "\x01\x02never-in-data"
DUPLICATE_SUPERSEDED = "duplicate_superseded"
WRONG_FIELD_COUNT = "wrong_field_count"
DUCKDB_ENCODING = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16", "cp1252": "latin-1"}

# The Java regexes of ticketcore.timeformats, written for RE2 with capture groups. Java's `\s` is
# [ \t\n\x0B\f\r]; RE2's `\s` lacks \x0B, hence the explicit class.
WS = r"[ \t\n\x0B\f\r]"
ISO_PARTS = (
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    + WS
    + r"*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)
SLASH_PARTS = r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?)?$"


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _valid_timestamp(y: str, mo: str, d: str, h: str, mi: str, s: str, frac: str) -> str:
    """A TIMESTAMP from text parts ('' when absent); NULL when they are no real instant (Feb 30, hour 24)."""
    text = (
        f"{y} || '-' || lpad({mo}, 2, '0') || '-' || lpad({d}, 2, '0') || ' ' || "
        f"lpad(coalesce(nullif({h}, ''), '0'), 2, '0') || ':' || coalesce(nullif({mi}, ''), '00') || ':' || "
        f"coalesce(nullif({s}, ''), '00') || '.' || rpad(left({frac}, 6), 6, '0')"
    )
    return f"CASE WHEN coalesce(nullif({h}, ''), '0')::INT < 24 THEN try_cast({text} AS TIMESTAMP) END"


def timestamp_parts_sql(v: str, name: str) -> list[str]:
    """First layer: the capture groups of both formats as structs (all '' when the format does not match)."""
    return [
        f"regexp_extract({v}, {q(ISO_PARTS)}, ['y','mo','d','h','mi','s','f','tz']) AS {ident('iso_' + name)}",
        f"regexp_extract({v}, {q(SLASH_PARTS)}, ['a','b','y','h','mi','s']) AS {ident('sl_' + name)}",
    ]


def parse_timestamp_sql(name: str, date_order: str | None) -> str:
    """Second layer: ISO values as Spark's cast reads them (offset applied, so UTC); slash/dash dates in the
    column's chosen order; anything else NULL."""
    iso, sl = ident("iso_" + name), ident("sl_" + name)
    tz = f"{iso}.tz"
    hhmm = f"replace({tz}, ':', '')"
    offset_minutes = (
        f"CASE WHEN {tz} IN ('', 'Z', 'z', 'UTC') THEN 0 ELSE "
        f"(CASE WHEN left({tz}, 1) = '-' THEN -1 ELSE 1 END) * "
        f"(substr({tz}, 2, 2)::INT * 60 + coalesce(try_cast(nullif(substr({hhmm}, 4, 2), '') AS INT), 0)) END"
    )
    iso_ts = _valid_timestamp(f"{iso}.y", f"{iso}.mo", f"{iso}.d", f"{iso}.h", f"{iso}.mi", f"{iso}.s", f"{iso}.f")
    expr = f"CASE WHEN {iso}.y <> '' THEN {iso_ts} - to_minutes(({offset_minutes})::BIGINT)"
    if date_order:
        month, day = (f"{sl}.a", f"{sl}.b") if date_order == "month_first" else (f"{sl}.b", f"{sl}.a")
        expr += f" WHEN {sl}.y <> '' THEN " + _valid_timestamp(
            f"{sl}.y", month, day, f"{sl}.h", f"{sl}.mi", f"{sl}.s", "''"
        )
    return expr + " END"


def normalise_text_sql(v: str, steps: tuple[str, ...]) -> str:
    for step in steps:
        if step == "lower":
            v = f"lower({v})"
        elif step == "collapse_whitespace":
            v = f"regexp_replace({v}, {q(WS + '+')}, ' ', 'g')"
    return v


def enum_token_sql(v: str, name: str) -> str:
    """First layer: the same rule as contract.normalise_token (non-letters/digits -> "_", edges stripped)."""
    token = f"regexp_replace(regexp_replace(lower({v}), '[^\\p{{L}}\\p{{N}}]+', '_', 'g'), '^_+|_+$', '', 'g')"
    return f"{token} AS {ident('tok_' + name)}"


def enum_sql(col: Column) -> str:
    """Second layer: synonyms -> canonical value; other tokens are kept."""
    tok = ident("tok_" + col.name)
    by_canonical: dict[str, list[str]] = {}
    for synonym, canonical in sorted(col.synonym_map().items()):
        by_canonical.setdefault(canonical, []).append(synonym)
    whens = " ".join(
        f"WHEN {tok} IN ({', '.join(q(s) for s in syns)}) THEN {q(canon)}" for canon, syns in by_canonical.items()
    )
    return f"CASE {whens} ELSE {tok} END"


def integer_sql(v: str, col: Column) -> str:
    n = f"try_cast({v} AS DOUBLE)"
    ok = [f"{n} = floor({n})"]
    if col.min is not None:
        ok.append(f"{n} >= {col.min}")
    if col.max is not None:
        ok.append(f"{n} <= {col.max}")
    return f"CASE WHEN {' AND '.join(ok)} THEN {n}::INTEGER END"


def array_sql(v: str, col: Column) -> str:
    pattern = "[" + "".join("\\" + s for s in col.separators) + "]"
    item = normalise_text_sql("trim(x_)", col.normalise)
    items = f"[y_ FOR y_ IN [{item} FOR x_ IN string_split_regex({v}, {q(pattern)})] IF y_ <> '']"
    return f"CASE WHEN len({items}) > 0 THEN {items} END"


def run_reference(
    source: str | Path,
    out_dir: str | Path,
    run_id: str = "bench",
    source_key: str | None = None,
    contract: Contract | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Transform `source` into `<out_dir>/staging/tickets` and `<out_dir>/q/rows.csv`; return the counts."""
    contract = contract or load_contract()
    source, out = Path(source), Path(out_dir)
    timings: dict[str, float] = {}
    t0 = clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = round(now - clock, 3)
        clock = now

    with source.open("rb") as fh:
        dialect = detect_dialect(fh.read(HEAD_BYTES))
    mapping = map_headers(dialect.headers, contract)
    if dialect.encoding not in DUCKDB_ENCODING:
        raise ValueError(f"the reference reads {sorted(DUCKDB_ENCODING)} only, not {dialect.encoding}")
    names = mapping.output_names
    n = len(names)
    width = n + SPARE_COLUMNS
    ingested_at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")

    # ------------------------------------------------------------------ read (positional columns c0..)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    con.execute(f"""
        CREATE TABLE src AS SELECT * FROM read_csv({q(str(source))}, columns = {columns}, header = true,
            delim = {q(dialect.delimiter)}, quote = '"', escape = '"', null_padding = true,
            nullstr = {q(NULL_SENTINEL)}, parallel = false, auto_detect = false,
            encoding = {q(DUCKDB_ENCODING[dialect.encoding])}, strict_mode = false)
    """)
    lap("read")

    # ------------------------------------------------------------------ lines, missing tokens, evidence
    newlines = " + ".join(f"coalesce(length(c{i}) - length(replace(c{i}, chr(10), '')), 0)" for i in range(width))
    fields = " + ".join(f"(c{i} IS NOT NULL)::INT" for i in range(width))
    tokens = ", ".join(q(t) for t in contract.missing_values)
    values = ", ".join(
        f"CASE WHEN lower(trim(c{i})) IN ({tokens}) THEN NULL ELSE trim(c{i}) END AS {ident('v_' + name)}"
        for i, name in enumerate(names)
    )
    raws = ", ".join(f"c{i} AS {ident('r_' + name)}" for i, name in enumerate(names))
    # A ragged record's text, rebuilt from its fields (Spark keeps the original text).
    quoted = [
        f"CASE WHEN regexp_matches(c{i}, '[\"\\n\\r{dialect.delimiter}]') "
        f"THEN '\"' || replace(c{i}, '\"', '\"\"') || '\"' ELSE c{i} END"
        for i in range(width)
    ]
    rebuilt = f"concat_ws({q(dialect.delimiter)}, {', '.join(quoted)})"
    con.execute(f"""
        CREATE TABLE base AS
        SELECT {values}, {raws},
               ({fields}) <> {n} AS wrong_fields,
               CASE WHEN ({fields}) <> {n} THEN {rebuilt} END AS raw_record,
               2 + coalesce(sum(1 + {newlines}) OVER (ORDER BY rowid ROWS BETWEEN UNBOUNDED PRECEDING
                                                      AND 1 PRECEDING), 0) AS source_line
        FROM src
    """)
    con.execute("DROP TABLE src")
    ts_cols = [c.name for c in contract.columns_of_type("timestamp") if c.name in names]
    aggs = []
    for c in ts_cols:
        v = ident("v_" + c)
        slashed = f"regexp_matches({v}, {q(SLASH_PARTS)})"
        aggs += [
            f"count({v})",
            f"count(*) FILTER (WHERE regexp_matches({v}, {q(ISO_PARTS)}))",
            f"count(*) FILTER (WHERE {slashed})",
            f"max(try_cast(regexp_extract({v}, {q(SLASH_PARTS)}, 1) AS INT)) FILTER (WHERE {slashed})",
            f"max(try_cast(regexp_extract({v}, {q(SLASH_PARTS)}, 2) AS INT)) FILTER (WHERE {slashed})",
        ]
    row = con.execute(f"SELECT {', '.join(aggs)} FROM base").fetchone() if aggs else ()
    formats = {}
    for i, c in enumerate(ts_cols):
        ev = ColumnEvidence(*[int(x or 0) for x in row[i * 5 : (i + 1) * 5]])  # type: ignore[index]
        formats[c] = choose_format(c, ev, contract.ambiguous_date_order)
    lap("lines_and_infer")

    # ------------------------------------------------------------------ typing, classification, dedupe
    parts, typed, flags = [], [], {}  # parts: a first layer, so each regex runs once per value
    for col in contract.columns.values():
        if col.name not in names:
            cast = {"timestamp": "TIMESTAMP", "integer": "INTEGER", "array": "VARCHAR[]"}.get(col.type, "VARCHAR")
            typed.append(f"NULL::{cast} AS {ident(col.name)}")
            continue
        v = ident("v_" + col.name)
        if col.type == "timestamp":
            parts += timestamp_parts_sql(v, col.name)
            expr = parse_timestamp_sql(col.name, formats[col.name].date_order)
        elif col.type == "enum":
            parts.append(enum_token_sql(v, col.name))
            expr = enum_sql(col)
        elif col.type == "integer":
            expr = integer_sql(v, col)
        elif col.type == "array":
            expr = array_sql(v, col)
        else:
            expr = normalise_text_sql(v, col.normalise)
        typed.append(f"{expr} AS {ident(col.name)}")
        if col.type in ("timestamp", "integer"):
            flags[col.name] = f"({ident(col.name)} IS NULL AND {v} IS NOT NULL)"
    extras = [mapping.unknown[h] for h in mapping.source_headers if h in mapping.unknown]
    typed += [f"{ident('v_' + name)} AS {ident(name)}" for name in extras]
    reason = f"CASE WHEN wrong_fields THEN {q(WRONG_FIELD_COUNT)}"
    for name in contract.required:
        if name in flags:
            reason += f" WHEN {flags[name]} THEN {q('unparseable_required:' + name)}"
        reason += f" WHEN {ident(name)} IS NULL THEN {q('missing_required:' + name)}"
    reason += " END"
    keep = [
        *(ident("r_" + name) for name in names),
        "raw_record",
        "source_line",
        *(ident(c) for c in contract.columns),
        *(ident(e) for e in extras),
    ]
    coerced = ", ".join(f"{expr} AS {ident('coerced_' + name)}" for name, expr in flags.items())
    con.execute(f"""
        CREATE TABLE classified AS
        WITH p AS (SELECT *{"".join(", " + x for x in parts)} FROM base),
             t AS (SELECT *, {", ".join(typed)} FROM p)
        SELECT {", ".join(keep)}, {reason} AS reason{", " + coerced if coerced else ""} FROM t
    """)
    con.execute("DROP TABLE base")
    con.execute(f"""
        CREATE TABLE final AS
        SELECT * REPLACE (CASE WHEN reason IS NULL AND row_number() OVER (PARTITION BY ticket_id, reason IS NULL
                               ORDER BY updated_at DESC NULLS LAST, source_line DESC) > 1
                               THEN {q(DUPLICATE_SUPERSEDED)} ELSE reason END AS reason),
               round((epoch_us(resolved_at) - epoch_us(created_at)) / 3600000000.0, 4) AS resolution_hours,
               strftime(created_at, '%Y') AS year, strftime(created_at, '%m') AS month
        FROM classified
    """)
    con.execute("DROP TABLE classified")
    lap("transform")

    # ------------------------------------------------------------------ outputs
    tickets = out / "staging" / "tickets"
    shutil.rmtree(tickets, ignore_errors=True)
    tickets.mkdir(parents=True)
    tz = {c.name for c in contract.columns_of_type("timestamp")}
    published = [
        *[f"{ident(c)}::TIMESTAMPTZ AS {ident(c)}" if c in tz else ident(c) for c in contract.columns],
        *[ident(e) for e in extras],
        "resolution_hours",
        f"{q(source_key or str(source))} AS _source_key",
        "source_line AS _source_line",
        f"{q(run_id)} AS _run_id",
        f"{q(ingested_at)}::TIMESTAMPTZ AS _ingested_at",
        "year",
        "month",
    ]
    con.execute(f"""
        COPY (SELECT {", ".join(published)} FROM final WHERE reason IS NULL)
        TO {q(str(tickets))} (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (year, month), OVERWRITE_OR_IGNORE)
    """)
    lap("write_valid")

    quarantine = out / "q" / "rows.csv"
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    originals = ", ".join(
        f"{ident('r_' + name)} AS {ident(h)}" for h, name in zip(mapping.source_headers, names, strict=True)
    )
    con.execute(f"""
        COPY (SELECT {originals}, reason AS _error_reason, source_line AS _source_line, raw_record AS _raw_record
              FROM final WHERE reason IS NOT NULL ORDER BY source_line)
        TO {q(str(quarantine))} (FORMAT csv, HEADER)
    """)
    lap("write_quarantine")

    # ------------------------------------------------------------------ the counts the bench compares
    enum_cols = [c for c in contract.columns_of_type("enum") if c.name in names]
    unknown = [
        f"count(*) FILTER (WHERE reason IS NULL AND {ident(c.name)} IS NOT NULL AND "
        f"{ident(c.name)} NOT IN ({', '.join(q(v) for v in c.values)}))"
        for c in enum_cols
    ]
    coerced_counts = [f"count(*) FILTER (WHERE reason IS NULL AND {ident('coerced_' + name)})" for name in flags]
    extra = "".join(", " + x for x in unknown + coerced_counts)
    totals = con.execute(f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL){extra} FROM final").fetchone()
    assert totals is not None
    reasons = dict(con.execute("SELECT reason, count(*) FROM final WHERE reason IS NOT NULL GROUP BY ALL").fetchall())
    partitions = dict(
        con.execute(
            "SELECT 'year=' || year || '/month=' || month, count(*) FROM final WHERE reason IS NULL GROUP BY ALL"
        ).fetchall()
    )
    con.close()
    lap("count")
    rows_read, rows_valid = int(totals[0]), int(totals[1])
    return {
        "rows_read": rows_read,
        "rows_valid": rows_valid,
        "rows_quarantined": rows_read - rows_valid,
        "quarantined_by_reason": dict(sorted(reasons.items())),
        "duplicates_superseded": int(reasons.get(DUPLICATE_SUPERSEDED, 0)),
        "unknown_enum_counts": {c.name: int(totals[2 + i]) for i, c in enumerate(enum_cols)},
        "nulls_coerced": {name: int(totals[2 + len(enum_cols) + i]) for i, name in enumerate(flags)},
        "rows_per_partition": dict(sorted(partitions.items())),
        "timestamp_formats": {c: f.to_dict() for c, f in formats.items()},
        "timings_seconds": {**timings, "total": round(time.monotonic() - t0, 3)},
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run the DuckDB reference transform on one CSV.")
    parser.add_argument("source")
    parser.add_argument("--out", default="/tmp/ticketflow-duckdb-reference")
    args = parser.parse_args()
    print(json.dumps(run_reference(args.source, args.out), indent=2, default=str))
