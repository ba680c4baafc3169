"""The Glue job's rules in DuckDB SQL, for the benchmark only (never used by the pipeline).

Same inputs, same outcomes as `glue/ticket_etl_job.run`: the contract's positional header mapping
(`ticketcore.contract.map_headers`, with the source profile the headers point to applied), missing-value
tokens, one timestamp reading per column chosen by `ticketcore.timeformats.choose_format` from the same
evidence and read by the same rules, the contract's plausible range (a value outside it is null in an optional
column and quarantines the row as `out_of_range_required:<column>` in a required one), enum synonyms and
labels with a numeric rank prefix (`Column.enum_value`), integers in range with a decimal comma, tag arrays
(a repeated header's lists merged), required-field quarantine, ragged rows, the dedupe (latest `updated_at`,
else the last line), snappy Parquet partitioned `year=/month=` with the job's published columns (the `extra`
map of unmapped columns and the `_unparsed` map of the original text of values that failed typing or were out
of range), and a quarantine CSV with the original headers. It returns the counts per outcome that
`bench.transform_bench` compares with the Spark run report.

Timestamps. Every shape of `ticketcore.timeformats` is read here, from the same regexes (rewritten for RE2 by
`re2`): ISO 8601, other year-first dates, numeric day/month dates in the column's order, month names, 12-hour
clocks, zones, two-digit years by the contract's pivot, and Unix epochs (unit by the plausible range, else by
magnitude). The instant is computed from the parts with integer arithmetic, the rules of
`timeformats.micros_of_parts` (which the Spark expressions match value by value in the project's tests). Spark
reads ISO values with its own cast; the instants are the same. The generated bench files hold only ISO and
US numeric dates: the month-name, epoch and two-digit-year paths are checked against `timeformats.parse_value`
(`python -m bench.duckdb_reference --check-timestamps`), not timed.

Ragged rows. Spark (PERMISSIVE, fixed schema) marks a record corrupt when its token count differs from the
header's. DuckDB's parallel reader silently accepts surplus *empty* trailing fields (`a,b,` for two columns),
so it would under-count them. Here the file is read with K spare columns, `null_padding` and a null string
that never occurs: a real field is then never NULL (an empty one is ''), a padded one always is, and the
number of non-NULL columns is the record's field count. DuckDB only allows `null_padding` with quoted
newlines on its single-threaded reader (`parallel=false`); that is the price of counting like Spark, and
the read phase is timed on its own so it shows. A record with more than N+K fields stops the run (loudly).

Not reproduced, because the bench files have none of it (a dialect that needs it is refused, loudly): a
`sep=` line or blank lines before the header, trailing delimiters, mixed line endings. Nor the job's
whole-file passes: the encoding decided from every byte (here: the head's, as the inspect step guesses it),
blank lines between records (counted in the job's `_source_line`), a quote left open at the end of the file
(`unterminated_quote`), compressed uploads. Nor, because it does not change any count: Spark keeps a ragged
record's exact text in `_raw_record`; here it is rebuilt from its fields (same text unless a field was quoted
without need). Exotic number spellings that Java's `Double.parseDouble` accepts and DuckDB does not ("4d") are
ignored.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import duckdb

from ticketcore import timeformats as tf
from ticketcore.contract import ENUM_PREFIX, Column, Contract, HeaderMapping, load_contract, map_headers
from ticketcore.dialect import HEAD_BYTES, Dialect, detect_dialect
from ticketcore.timeformats import ColumnEvidence, FormatChoice, choose_format

SPARE_COLUMNS = 8  # fields beyond the header that a ragged record may have before the read fails
NULL_SENTINEL = "\x01\x02never-in-data"
# The job's names (ticketcore.spark_transform; not imported: it imports pyspark).
DUPLICATE_SUPERSEDED = "duplicate_superseded"
WRONG_FIELD_COUNT = "wrong_field_count"
EXTRA = "extra"
UNPARSED = "_unparsed"
# spark_transform.DECIMAL_COMMA: `4,0` and `2,5` read with a point; `1,000` (a thousands separator?) is not.
DECIMAL_COMMA = r"^[+-]?[0-9]+,([0-9]{1,2}|[0-9]{4,})$"
DUCKDB_ENCODING = {"utf-8": "utf-8", "utf-8-sig": "utf-8", "utf-16": "utf-16", "cp1252": "latin-1"}

# Java's `\s` (no UNICODE_CHARACTER_CLASS) is [ \t\n\x0B\f\r]; RE2's `\s` lacks \x0B, hence the explicit class.
WS = r"[ \t\n\x0B\f\r]"
# Canonical parts of a timestamp (timeformats.micros_of_parts): year, month, day, hour, minute, second,
# fraction, AM/PM letter, zone.
PARTS = ("y", "mo", "d", "h", "mi", "s", "f", "ap", "z")
SHAPE_CODES = {"iso": 1, "ymd": 2, "numeric": 3, "named": 4, "epoch": 5}  # spark_transform.timestamp_shape_code


def re2(regex: str) -> str:
    """A `timeformats` regex (Python `re.ASCII`, Java UNIX_LINES) as RE2 reads it alike: `\\s` spelled out, and
    the final `$` also matching before one trailing newline, as Python's and Java's `$` do."""
    assert regex.startswith("^") and regex.endswith("$"), regex
    return regex[:-1].replace(r"\s", WS) + r"\n?$"


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------- timestamps


def shape_code_sql(v: str) -> str:
    """The shape a value is read in, as `timeformats.shape_of` decides (1 iso .. 5 epoch, 0 none, NULL for
    NULL): the first regex that matches, in the same order."""
    tests = [
        ("iso", tf.ISO_REGEX), ("ymd", tf.YMD_REGEX), ("numeric", tf.DMY_MDY_REGEX),
        ("named", tf.DAY_NAME_REGEX), ("named", tf.NAME_DAY_REGEX), ("epoch", tf.EPOCH_REGEX),
    ]  # fmt: skip
    whens = " ".join(f"WHEN regexp_matches({v}, {q(re2(rx))}) THEN {SHAPE_CODES[s]}" for s, rx in tests)
    return f"CASE WHEN {v} IS NULL THEN NULL {whens} ELSE 0 END"


def evidence_aggs(code: str, v: str) -> list[str]:
    """The `ColumnEvidence` fields, in order, of one column (`code`: its shape_code_sql column)."""
    first_second = [
        f"max(try_cast(regexp_extract({v}, {q(re2(tf.DMY_MDY_REGEX))}, {g}) AS INT)) FILTER (WHERE {code} = 3)"
        for g in (1, 2)
    ]
    return [
        f"count({v})",
        f"count(*) FILTER (WHERE {code} = 1)",
        f"count(*) FILTER (WHERE {code} = 3)",
        *first_second,
        f"count(*) FILTER (WHERE {code} = 2)",
        f"count(*) FILTER (WHERE {code} = 4)",
        f"count(*) FILTER (WHERE {code} = 5)",
    ]


def parts_extract_sql(v: str, regex: str, layout: tuple[int, ...]) -> str:
    """regexp_extract into the canonical parts: each capture group named by the part it fills in `layout`
    (`timeformats.PARTS_LAYOUT`); a part no group fills is ''. All '' when the regex does not match."""
    groups = max(layout)
    names = [PARTS[layout.index(g)] for g in range(1, groups + 1)]
    extracted = f"regexp_extract({v}, {q(re2(regex))}, [{', '.join(q(n) for n in names)}])"
    if len(names) == len(PARTS):
        return extracted
    # ISO has no AM/PM group: a struct of the same shape as the others.
    return f"struct_pack({', '.join(f'{p} := ' + (f'{extracted}.{p}' if p in names else q('')) for p in PARTS)})"


def other_regexes(choice: FormatChoice) -> list[tuple[str, tuple[int, ...]]]:
    """The part-based shapes after ISO that the column's reading accepts, in reading order
    (`timeformats.read_micros`; `spark_transform._parts_regexes`)."""
    out = []
    if "ymd" in choice.shapes:
        out.append((tf.YMD_REGEX, tf.PARTS_LAYOUT["ymd"]))
    if "numeric" in choice.shapes and choice.date_order:
        out.append((tf.DMY_MDY_REGEX, tf.PARTS_LAYOUT[choice.date_order]))
    if "named" in choice.shapes:
        out += [(tf.DAY_NAME_REGEX, tf.PARTS_LAYOUT["day_name"]), (tf.NAME_DAY_REGEX, tf.PARTS_LAYOUT["name_day"])]
    return out


def timestamp_layers(v: str, name: str, choice: FormatChoice) -> list[list[str]]:
    """The select items that read one timestamp column, one list per projection layer (each layer sees the
    previous ones' columns, so every regex runs once per value):

    1. `tiso_<n>`: the ISO regex's parts (every value; most are ISO);
    2. `tpt_<n>`: the parts of the value in the first shape it matches (ISO, then the others the reading
       accepts, each tried only on values no earlier shape matched); `tep_<n>`: an epoch value's number;
    3. `tnum_<n>`: the parts as numbers (year by the pivot, month by name or number, 24-hour clock, fraction
       in microseconds, zone offset in seconds; NULL where `micros_of_parts` refuses);
    4. `tread_<n>`: microseconds since the epoch of the value as read, before the plausible range."""
    iso, pt, ep, num = (ident(f"{k}_{name}") for k in ("tiso", "tpt", "tep", "tnum"))
    layer1 = [f"{parts_extract_sql(v, tf.ISO_REGEX, tf.PARTS_LAYOUT['iso'])} AS {iso}"]

    others = [parts_extract_sql(v, rx, layout) for rx, layout in other_regexes(choice)]
    if not others:
        other = "NULL"
    elif len(others) == 1:
        other = others[0]  # all '' when it does not match: no instant (layer 3)
    else:
        other = f"list_filter([{', '.join(others)}], lambda x_: x_.y <> '')[1]"
    layer2 = [f"CASE WHEN {iso}.y <> '' THEN {iso} WHEN {v} IS NOT NULL THEN {other} END AS {pt}"]
    if "epoch" in choice.shapes:  # no other shape matches digits only: tested on non-ISO values alone
        layer2.append(
            f"CASE WHEN {iso}.y = '' AND regexp_matches({v}, {q(re2(tf.EPOCH_REGEX))}) "
            f"THEN {v}::BIGINT END AS {ep}"
        )

    y = f"{pt}.y::INT"
    year = f"CASE WHEN length({pt}.y) = 2 THEN {y} + CASE WHEN {y} < {choice.two_digit_year_pivot} " \
        f"THEN 2000 ELSE 1900 END ELSE {y} END"
    month = "CASE lower(" + pt + ".mo) " + " ".join(f"WHEN {q(k)} THEN {m}" for k, m in tf.MONTHS.items()) + " END"
    h = f"coalesce(try_cast(nullif({pt}.h, '') AS INT), 0)"
    hour = f"CASE WHEN {pt}.ap = '' THEN {h} WHEN {h} BETWEEN 1 AND 12 " \
        f"THEN {h} % 12 + CASE WHEN {pt}.ap IN ('P', 'p') THEN 12 ELSE 0 END END"
    minute, second = (f"coalesce(try_cast(nullif({pt}.{p}, '') AS INT), 0)" for p in ("mi", "s"))
    frac = f"CASE WHEN {pt}.f = '' THEN 0 ELSE rpad(left({pt}.f, 6), 6, '0')::INT END"
    digits = f"replace(substr({pt}.z, 2), ':', '')"
    zh, zm = f"left({digits}, 2)::INT", f"coalesce(try_cast(nullif(substr({digits}, 3, 2), '') AS INT), 0)"
    east = f"({zh} * 3600 + {zm} * 60)"
    offset = (
        f"CASE WHEN {pt}.z IN ('', 'Z', 'z', 'UTC', 'GMT') THEN 0 "
        f"WHEN {zm} <= 59 AND {east} <= {tf.MAX_ZONE_SECONDS} "
        f"THEN CASE WHEN left({pt}.z, 1) = '-' THEN -{east} ELSE {east} END END"
    )
    numbers = {"year": year, "month": month, "day": f"{pt}.d::INT", "hour": hour, "minute": minute,
               "second": second, "frac": frac, "off": offset}
    layer3 = [
        f"CASE WHEN {pt}.y <> '' THEN struct_pack({', '.join(f'{k} := ({x})' for k, x in numbers.items())}) "
        f"END AS {num}"
    ]

    n = {k: f"{num}.{k}" for k in numbers}
    ok = (
        f"{n['month']} IS NOT NULL AND {n['day']} BETWEEN 1 AND {month_days_sql(n['year'], n['month'])} "
        f"AND {n['hour']} <= 23 AND {n['minute']} <= 59 AND {n['second']} <= 59 AND {n['off']} IS NOT NULL"
    )
    local = (
        f"(({days_from_civil_sql(n['year'], n['month'], n['day'])} * 24 + {n['hour']}) * 60 + {n['minute']}) * 60 "
        f"+ {n['second']}"
    )
    read = f"CASE WHEN {ok} THEN ({local} - {n['off']}) * {tf.MICROS} + {n['frac']}"
    if "epoch" in choice.shapes:
        read += f" WHEN {ep} IS NOT NULL THEN {epoch_micros_sql(ep, choice)}"
    layer4 = [f"{read} END AS {ident('tread_' + name)}"]
    return [layer1, layer2, layer3, layer4]


def month_days_sql(y: str, m: str) -> str:
    leap = f"(({y}) % 4 = 0 AND ({y}) % 100 <> 0) OR ({y}) % 400 = 0"
    return f"(CASE WHEN {m} = 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END WHEN {m} IN (4, 6, 9, 11) THEN 30 " \
        "ELSE 31 END)"


def days_from_civil_sql(y: str, m: str, d: str) -> str:
    """`timeformats.days_from_civil` (Howard Hinnant's algorithm) in BIGINT arithmetic; floor division where an
    operand can be negative (year 0, January)."""
    yy = f"(({y})::BIGINT - CASE WHEN {m} <= 2 THEN 1 ELSE 0 END)"
    era = f"floor({yy} / 400)::BIGINT"
    yoe = f"({yy} - {era} * 400)"
    doy = f"((153 * ({m} + CASE WHEN {m} > 2 THEN -3 ELSE 9 END) + 2) // 5 + {d} - 1)"
    doe = f"({yoe} * 365 + {yoe} // 4 - {yoe} // 100 + {doy})"
    return f"({era} * 146097 + {doe} - 719468)"


def epoch_micros_sql(n: str, choice: FormatChoice) -> str:
    """`timeformats.epoch_micros`: the unit that puts the number in the plausible range (seconds first), else by
    magnitude; bounds compared on the number (as `spark_transform.epoch_timestamp`), so nothing overflows."""
    lo, hi = choice.min_micros, choice.max_micros

    def within(unit: int) -> str:
        return f"{n} >= {-(-lo // unit)} AND {n} < {-(-hi // unit)}"

    return (
        f"CASE WHEN {within(tf.MICROS)} THEN {n} * {tf.MICROS} WHEN {within(1000)} THEN {n} * 1000 "
        f"WHEN {n} < {tf.EPOCH_MILLIS_FROM} THEN {n} * {tf.MICROS} ELSE {n} * 1000 END"
    )


# ---------------------------------------------------------------- other types


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
    """Second layer, `Column.enum_value` as `spark_transform.normalise_enum` does it: synonyms -> canonical
    value; else the token without a leading rank or code (`1 - Critical`, `P1 - Urgent`) if that is a synonym;
    other tokens are kept."""
    tok = ident("tok_" + col.name)
    by_canonical: dict[str, list[str]] = {}
    for synonym, canonical in sorted(col.synonym_map().items()):
        by_canonical.setdefault(canonical, []).append(synonym)

    def lookup(token: str) -> str:
        return " ".join(
            f"WHEN {token} IN ({', '.join(q(s) for s in syns)}) THEN {q(canon)}" for canon, syns in by_canonical.items()
        )

    stripped = f"regexp_extract({tok}, {q(ENUM_PREFIX.pattern)}, 1)"
    return f"coalesce(CASE {lookup(tok)} END, CASE {lookup(stripped)} END, {tok})"


def integer_sql(v: str, col: Column) -> str:
    text = f"CASE WHEN contains({v}, ',') AND regexp_matches({v}, {q(DECIMAL_COMMA)}) THEN replace({v}, ',', '.') " \
        f"ELSE {v} END"
    n = f"try_cast({text} AS DOUBLE)"
    ok = [f"{n} = floor({n})"]
    if col.min is not None:
        ok.append(f"{n} >= {col.min}")
    if col.max is not None:
        ok.append(f"{n} <= {col.max}")
    return f"CASE WHEN {' AND '.join(ok)} THEN {n}::INTEGER END"


def array_sql(v: str, col: Column) -> str:
    """`spark_transform.parse_array`: split on the separators, items trimmed and normalised, empty ones dropped;
    NULL when none is left."""
    separators = "".join("\\" + s for s in col.separators)
    if set(col.normalise) <= {"trim", "lower"}:
        whole = f"lower({v})" if "lower" in col.normalise else v
        items = f"list_filter(string_split_regex({whole}, {q(f' *[{separators}] *')}), lambda x_: x_ <> '')"
    else:
        item = normalise_text_sql("trim(x_)", col.normalise)
        items = f"[y_ FOR y_ IN [{item} FOR x_ IN string_split_regex({v}, {q(f'[{separators}]')})] IF y_ <> '']"
    return f"CASE WHEN len({items}) > 0 THEN {items} END"


def merged_array_sql(parsed: list[str]) -> str:
    """`spark_transform.merge_arrays`: a repeated header's lists as one, in column order; NULL when empty."""
    if len(parsed) == 1:
        return parsed[0]
    merged = f"flatten([{', '.join(f'coalesce({p}, []::VARCHAR[])' for p in parsed)}])"
    return f"CASE WHEN len({merged}) > 0 THEN {merged} END"


def string_map_sql(entries: list[tuple[str, str]]) -> str:
    """`spark_transform.string_map`: map<varchar,varchar> of the entries whose value is not NULL; NULL when
    none is."""
    if not entries:
        return "NULL::MAP(VARCHAR, VARCHAR)"
    pairs = ", ".join(f"{{'k': {q(k)}, 'v': {v}}}" for k, v in entries)
    kept = f"list_filter([{pairs}], lambda e_: e_.v IS NOT NULL)"
    return f"CASE WHEN len({kept}) > 0 THEN map_from_entries({kept}) END"


def quarantine_headers(mapping: HeaderMapping) -> list[str]:
    """`spark_transform.quarantine_columns`: original headers; a repeated one (compared case-insensitively, as
    Spark does) gets its position, `Labels (13)`."""
    taken = {"_error_reason", "_source_line", "_raw_record"}
    out = []
    for c in mapping.columns:
        header = c.header if c.header.casefold() not in taken else f"{c.header} ({c.position})"
        taken.add(header.casefold())
        out.append(header)
    return out


def refuse_unsupported(dialect: Dialect) -> None:
    problems = []
    if dialect.encoding not in DUCKDB_ENCODING:
        problems.append(f"encoding {dialect.encoding} (reads {sorted(DUCKDB_ENCODING)})")
    if dialect.skip_records != 1 or dialect.preamble_lines:
        problems.append("lines before the header")
    if dialect.extra_fields:
        problems.append("trailing delimiters")
    if dialect.line_terminator == "mixed":
        problems.append("mixed line endings")
    if problems:
        raise ValueError(f"the DuckDB reference does not reproduce the job's handling of: {'; '.join(problems)}")


# ---------------------------------------------------------------- the transform


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
    refuse_unsupported(dialect)
    mapping = map_headers(dialect.headers, contract)
    contract = contract.with_profile(mapping.profile)  # as the job does: the tool's aliases, values, separators
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
    first_line = dialect.lines_before_data + 1
    con.execute(f"""
        CREATE TABLE base AS
        SELECT {values}, {raws},
               ({fields}) <> {n} AS wrong_fields,
               CASE WHEN ({fields}) <> {n} THEN {rebuilt} END AS raw_record,
               ({first_line} + coalesce(sum(1 + {newlines}) OVER (ORDER BY rowid ROWS BETWEEN UNBOUNDED PRECEDING
                                                      AND 1 PRECEDING), 0))::BIGINT AS source_line
        FROM src
    """)
    con.execute("DROP TABLE src")
    ts_cols = [c.name for c in contract.columns_of_type("timestamp") if c.name in names]
    formats: dict[str, FormatChoice] = {}
    if ts_cols:
        codes = ", ".join(f"{shape_code_sql(ident('v_' + c))} AS {ident('k_' + c)}" for c in ts_cols)
        aggs = [a for c in ts_cols for a in evidence_aggs(ident("k_" + c), ident("v_" + c))]
        vs = ", ".join(ident("v_" + c) for c in ts_cols)
        row = con.execute(f"SELECT {', '.join(aggs)} FROM (SELECT {vs}, {codes} FROM base)").fetchone()
        assert row is not None
        per = len(aggs) // len(ts_cols)
        for i, c in enumerate(ts_cols):
            ev = ColumnEvidence(*[int(x or 0) for x in row[i * per : (i + 1) * per]])
            formats[c] = choose_format(c, ev, contract.timestamps)
    lap("lines_and_infer")

    # ------------------------------------------------------------------ typing, classification, dedupe
    # Projection layers over `base`: each sees the columns of those before it, so a regex runs once per value.
    layers: list[list[str]] = [[], [], [], []]
    typed: list[str] = []
    coerced: dict[str, str] = {}  # column -> SQL of "present but unreadable", in contract order
    out_of_range: dict[str, str] = {}  # timestamp column -> SQL of "read, but outside the plausible range"
    for col in contract.columns.values():
        if col.name not in names:
            cast = {"timestamp": "TIMESTAMP", "integer": "INTEGER", "array": "VARCHAR[]"}.get(col.type, "VARCHAR")
            typed.append(f"NULL::{cast} AS {ident(col.name)}")
            continue
        v = ident("v_" + col.name)
        if col.type == "timestamp":
            choice = formats[col.name]
            for layer, items in zip(layers, timestamp_layers(v, col.name, choice), strict=True):
                layer += items
            read = ident("tread_" + col.name)
            in_range = f"({read} >= {choice.min_micros} AND {read} < {choice.max_micros})"
            expr = f"CASE WHEN {in_range} THEN make_timestamp({read}) END"
            coerced[col.name] = f"({read} IS NULL AND {v} IS NOT NULL)"
            out_of_range[col.name] = f"({read} IS NOT NULL AND NOT {in_range})"
        elif col.type == "enum":
            layers[0].append(enum_token_sql(v, col.name))
            expr = enum_sql(col)
        elif col.type == "integer":
            expr = integer_sql(v, col)
            coerced[col.name] = f"({ident(col.name)} IS NULL AND {v} IS NOT NULL)"
        elif col.type == "array":
            expr = merged_array_sql([array_sql(ident("v_" + s), col) for s in mapping.sources(col.name)])
        else:
            expr = normalise_text_sql(v, col.normalise)
        typed.append(f"{expr} AS {ident(col.name)}")
    typed.append(f"{string_map_sql([(c.name, ident('v_' + c.name)) for c in mapping.unmapped])} AS {EXTRA}")
    reason = f"CASE WHEN wrong_fields THEN {q(WRONG_FIELD_COUNT)}"
    for name in contract.required:
        if name in out_of_range:
            reason += f" WHEN {out_of_range[name]} THEN {q('out_of_range_required:' + name)}"
        if name in coerced:
            reason += f" WHEN {coerced[name]} THEN {q('unparseable_required:' + name)}"
        reason += f" WHEN {ident(name)} IS NULL THEN {q('missing_required:' + name)}"
    reason += " END"
    flags = [f"{sql} AS {ident('coerced_' + name)}" for name, sql in coerced.items()]
    flags += [f"{sql} AS {ident('oor_' + name)}" for name, sql in out_of_range.items()]
    failed = [(name, f"CASE WHEN {ident('coerced_' + name)}"
                     + (f" OR {ident('oor_' + name)}" if name in out_of_range else "")
                     + f" THEN {ident('r_' + name)} END") for name in coerced]
    keep = [
        *(ident("r_" + name) for name in names),
        "raw_record",
        "source_line",
        *(ident(c) for c in contract.columns),
        EXTRA,
        *(ident("coerced_" + name) for name in coerced),
        *(ident("oor_" + name) for name in out_of_range),
    ]
    ctes = ["l0 AS (SELECT * FROM base)"]
    for i, items in enumerate(layers):
        ctes.append(f"l{i + 1} AS (SELECT *{''.join(', ' + x for x in items)} FROM l{i})")
    ctes.append(f"t AS (SELECT *, {', '.join(typed)} FROM l{len(layers)})")
    ctes.append(f"f AS (SELECT *{''.join(', ' + x for x in flags)} FROM t)")
    con.execute(f"""
        CREATE TABLE classified AS
        WITH {", ".join(ctes)}
        SELECT {", ".join(keep)}, {string_map_sql(failed)} AS {UNPARSED}, {reason} AS reason FROM f
    """)
    con.execute("DROP TABLE base")
    con.execute(f"""
        CREATE TABLE final AS
        SELECT * REPLACE (CASE WHEN reason IS NULL AND row_number() OVER (PARTITION BY ticket_id, reason IS NULL
                               ORDER BY updated_at DESC NULLS LAST, source_line DESC) > 1
                               THEN {q(DUPLICATE_SUPERSEDED)} ELSE reason END AS reason),
               round(((epoch_us(resolved_at) - epoch_us(created_at)) / 3600000000.0)::VARCHAR::DECIMAL(38, 20), 4)
                   ::DOUBLE AS resolution_hours,
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
    published = [  # spark_transform.output_columns, in its order
        *[f"{ident(c)}::TIMESTAMPTZ AS {ident(c)}" if c in tz else ident(c) for c in contract.columns],
        EXTRA,
        UNPARSED,
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
        f"{ident('r_' + name)} AS {ident(h)}" for h, name in zip(quarantine_headers(mapping), names, strict=True)
    )
    con.execute(f"""
        COPY (SELECT {originals}, reason AS _error_reason, source_line AS _source_line, raw_record AS _raw_record
              FROM final WHERE reason IS NOT NULL ORDER BY source_line)
        TO {q(str(quarantine))} (FORMAT csv, HEADER)
    """)
    lap("write_quarantine")

    # ------------------------------------------------------------------ the counts the bench compares
    enum_cols = [c for c in contract.columns_of_type("enum") if c.name in names]
    valid_and = "count(*) FILTER (WHERE reason IS NULL AND "
    counted = {
        **{f"unknown__{c.name}": f"{valid_and}{ident(c.name)} IS NOT NULL AND "
           f"{ident(c.name)} NOT IN ({', '.join(q(v) for v in c.values)}))" for c in enum_cols},
        **{f"coerced__{name}": f"{valid_and}{ident('coerced_' + name)})" for name in coerced},
        **{f"out_of_range__{name}": f"{valid_and}{ident('oor_' + name)})" for name in out_of_range},
        **{f"unparsed__{name}": f"{valid_and}{UNPARSED}[{q(name)}] IS NOT NULL)" for name in coerced},
    }
    extra = "".join(f", {sql}" for sql in counted.values())
    totals = con.execute(f"SELECT count(*), count(*) FILTER (WHERE reason IS NULL){extra} FROM final").fetchone()
    assert totals is not None
    got = dict(zip(counted, (int(x) for x in totals[2:]), strict=True))
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
        "unknown_enum_counts": {c.name: got[f"unknown__{c.name}"] for c in enum_cols},
        "nulls_coerced": {name: got[f"coerced__{name}"] for name in coerced},
        "out_of_range": {name: got[f"out_of_range__{name}"] for name in out_of_range},
        "unparsed_counts": {name: got[f"unparsed__{name}"] for name in coerced},
        "rows_per_partition": dict(sorted(partitions.items())),
        "timestamp_formats": {c: f.to_dict() for c, f in formats.items()},
        "timings_seconds": {**timings, "total": round(time.monotonic() - t0, 3)},
    }


# ---------------------------------------------------------------- a check of the timestamp SQL


def check_timestamps() -> int:
    """Every shape, pivot, clock, zone and epoch case read by the SQL above and by `timeformats.parse_value`
    (the Python twin of the Spark expressions): the instants must be equal. Prints the differences."""
    from datetime import datetime

    values = [
        "2024-01-03", "2024-1-3 4:05", "2024-01-03T14:15:00.123456789+05:30", "2024-01-03 14:15:00 UTC",
        "2024-01-03T14:15:00-0800", "2024-02-30", "2024-01-03T24:00:00", "2024-13-01", "0000-00-00",
        "1989-12-31T23:59:59Z", "2100-01-01", "0001-01-01", "2024-01-03T14:15:00+19:00",
        "2024/01/03", "2024-01-03 02:15:00 PM", "2024-01-03T14:15Z", "2024.01.03 12:00 a.m.", "2024-01-03 13:00 PM",
        "1/3/2024 2:15 PM", "13/1/2024", "10.01.2024 14:00", "03-01-24", "03-01-70", "3/1/69 0:00 AM",
        "12/31/1999 23:59:59.5", "2/29/2023", "2/29/2024 11:59:60",
        "08/Mar/24 2:15 PM", "Mar 8, 2024", "8 March 2024 14:15", "Fri, 08 Mar 2024 14:15:00 GMT", "March 8th, 2024",
        "8-Sept-2024", "31 Apr 2024", "8 Foo 2024",
        "1704290100", "1704290100123", "0", "99999999999999", "946684800", "4102444800",
        "not a date", "TBD", "2024-01-03\n", "1/3/2024\n",
    ]  # fmt: skip
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    failures = 0
    for order in ("month_first", "day_first"):
        ev = tf.evidence_of(list(values))
        choice = choose_format("t", ev, tf.TimestampSettings(ambiguous_date_order=order))
        choice = FormatChoice(**{**choice.to_dict(), "date_order": order,  # type: ignore[arg-type]
                                 "shapes": tuple(tf.SHAPES)})
        layers = timestamp_layers('"v"', "t", choice)
        sql = "SELECT * FROM (SELECT unnest(?::VARCHAR[]) AS v)"
        for items in layers:
            sql = f"SELECT *, {', '.join(items)} FROM ({sql})"
        rows = con.execute(f"SELECT v, tread_t FROM ({sql})", [values]).fetchall()
        for text, micros in rows:
            reading = tf.read_value(text, choice)
            want = tf.read_micros(text.strip(" "), choice) if reading.status != "empty" else None
            if want != micros:
                failures += 1
                got = tf.from_micros(micros) if micros is not None else None
                print(f"{order}: {text!r}: SQL {got} ({micros}), Python {reading.status} {want}")
    print(f"{len(values) * 2} readings compared, {failures} differ; at {datetime.now():%H:%M:%S}")
    return 1 if failures else 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run the DuckDB reference transform on one CSV.")
    parser.add_argument("source", nargs="?")
    parser.add_argument("--out", default="/tmp/ticketflow-duckdb-reference")
    parser.add_argument("--check-timestamps", action="store_true", help="compare the timestamp SQL with Python")
    args = parser.parse_args()
    if args.check_timestamps:
        sys.exit(check_timestamps())
    if not args.source:
        parser.error("a source CSV is needed")
    print(json.dumps(run_reference(args.source, args.out), indent=2, default=str))
