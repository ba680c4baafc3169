"""The support-ticket transform as pure DataFrame -> DataFrame functions.

No I/O here: `glue/ticket_etl_job.py` reads the CSV, calls these, and writes the outputs. Every source value
stays in its raw column (`_raw_<name>`) until the end, so a quarantined row can be written back exactly as it
arrived; the typed columns are computed beside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ticketcore.contract import ENUM_PREFIX, Column, Contract, HeaderMapping
from ticketcore.timeformats import (
    DAY_NAME_REGEX,
    DMY_MDY_REGEX,
    EPOCH_MILLIS_FROM,
    EPOCH_REGEX,
    ISO_REGEX,
    MAX_ZONE_SECONDS,
    MICROS,
    MONTHS,
    NAME_DAY_REGEX,
    PARTS_LAYOUT,
    YMD_REGEX,
    ColumnEvidence,
    FormatChoice,
    java,
)

RAW = "_raw_"
CORRUPT = "_corrupt_record"
RECORD = "_record_index"
REASON = "_error_reason"
LINE = "_source_line"
SPAN = "_span"  # physical lines a record covers
SPLIT_START = "_split_start"  # byte offset of the block a row was read from (a reading split by lines)
SPLITS = "__splits"  # the evidence's (partition, block start) pairs
TRAILING = "_trailing_field"  # the field after a trailing delimiter, read and then folded away
DUPLICATE_SUPERSEDED = "duplicate_superseded"
WRONG_FIELD_COUNT = "wrong_field_count"
UNTERMINATED_QUOTE = "unterminated_quote"

LINEAGE = ["_source_key", LINE, "_run_id", "_ingested_at"]
# One map column each, so the table's schema never changes file by file: the columns the contract does not name
# (key: the column's name in the mapping, its normalised header), and the original text of every value that
# failed typing (key: the canonical column). Both null on a row with no entry.
EXTRA = "extra"
UNPARSED = "_unparsed"
STRING_MAP = T.MapType(T.StringType(), T.StringType())
SPARK_TYPES = {
    "string": T.StringType(),
    "enum": T.StringType(),
    "timestamp": T.TimestampType(),
    "integer": T.IntegerType(),
    "array": T.ArrayType(T.StringType()),
}


def raw(name: str) -> str:
    return f"{RAW}{name}"


def value(name: str) -> str:
    """The trimmed source value with missing-value tokens as null."""
    return f"_v_{name}"


def trailing_names(count: int) -> list[str]:
    """Names of the fields read after the named columns: `_trailing_field`, `_trailing_field_2`, ..."""
    return [TRAILING if i == 0 else f"{TRAILING}_{i + 1}" for i in range(count)]


def source_schema(mapping: HeaderMapping, trailing_delimiter: bool | int = False) -> T.StructType:
    """Every source column as a string (typing happens after), plus Spark's corrupt-record column. A file whose
    lines end with the delimiter has more fields per record than headers (one per trailing delimiter; Excel's
    used range can leave several): read them too (else every record is too wide), and fold them away with
    `drop_trailing_field`. `trailing_delimiter`: how many such fields (True is one)."""
    fields = [T.StructField(raw(n), T.StringType()) for n in mapping.output_names]
    extra = [T.StructField(n, T.StringType()) for n in trailing_names(int(trailing_delimiter))]
    return T.StructType([*fields, *extra, T.StructField(CORRUPT, T.StringType())])


def strip_record_cr(df: DataFrame) -> DataFrame:
    """Mixed line endings are read with lineSep="\n", so a "\r\n"-ended record keeps its "\r" at the end of its
    last field (when unquoted: the reader drops it after a closing quote) and of its corrupt-record text: remove
    one, right after the read. A field left empty is null, as Spark reads an empty field. A "\r\n" inside a
    quoted value is data and stays ("\n" alone is counted for line numbers, so they hold). The one case this
    cannot tell apart: a quoted last value ending in "\r" on a "\n"-ended record loses that "\r"."""

    def strip(c: str) -> SparkColumn:
        v = F.col(c)
        return F.when(v == "\r", None).when(v.endswith("\r"), v.substr(F.lit(1), F.length(v) - 1)).otherwise(v)

    last = [c for c in df.columns if c != CORRUPT][-1]
    return df.withColumns({last: strip(last), CORRUPT: strip(CORRUPT)})


def csv_field(v: SparkColumn, delimiter: str) -> SparkColumn:
    """A value as a CSV writer would put it in a record: quoted (quotes doubled) when it needs quotes."""
    needs = v.contains('"') | v.contains(delimiter) | v.contains("\n") | v.contains("\r")
    return F.when(needs, F.concat(F.lit('"'), F.replace(v, F.lit('"'), F.lit('""')), F.lit('"'))).otherwise(
        F.coalesce(v, F.lit(""))
    )


def drop_trailing_field(df: DataFrame, delimiter: str) -> DataFrame:
    """Remove the field after a trailing delimiter, right after the read. Empty (or spaces only) is the normal
    case. A value there sits in a column without a header, one field more than the header names: often a value
    shifted by an unquoted delimiter, so the record is quarantined as wrong_field_count rather than published
    with the value dropped. Spark keeps the text of only the records it could not split, so the corrupt-record
    text of such a record is its fields joined again (quoted where needed; its newlines, so its span, kept)."""
    extras = [c for c in df.columns if c.startswith(TRAILING)]
    fields = [csv_field(F.col(c), delimiter) for c in df.columns if c.startswith((RAW, TRAILING))]
    has_value = F.lit(False)
    for c in extras:
        has_value = has_value | F.coalesce(F.trim(F.col(c)) != "", F.lit(False))
    too_wide = F.col(CORRUPT).isNull() & has_value
    return df.withColumn(CORRUPT, F.when(too_wide, F.concat_ws(delimiter, *fields)).otherwise(F.col(CORRUPT))).drop(
        *extras
    )


def balanced_sum(cols: list[SparkColumn]) -> SparkColumn:
    """`a + b + c + ...` as a balanced tree: a left-deep sum of a wide file's 900 columns is 900 levels deep,
    and Spark's recursive analysis and code generation overflow the JVM stack on it (from about 750 columns)."""
    if not cols:
        return F.lit(0)
    while len(cols) > 1:
        cols = [cols[i] + cols[i + 1] if i + 1 < len(cols) else cols[i] for i in range(0, len(cols), 2)]
    return cols[0]


def with_record_index(df: DataFrame, skip_records: int = 0, split: bool = False) -> DataFrame:
    """Number each record in file order (`_record_index`) and count the physical lines it covers (`_span`).
    The first `skip_records` records (a `sep=` line and the header, read as records) are dropped.

    `monotonically_increasing_id` is the task's partition index times 2^33 plus the row's position in it, so it
    follows file order when the partitions hold the file's blocks in order: always for a multi-line reading
    (one task). For a reading split by lines (`split`), Spark packs a single file's blocks into partitions in
    file order too (they are sorted by size, stably, and all but the last have the same size); `_split_start`
    (the byte where each row's block starts) lets `splits_in_file_order` check it on every run.
    A record spans 1 + (newlines inside its quoted fields) lines; ragged rows have their text in the corrupt
    column, so their newlines are counted there. Only values that contain a newline are measured (a byte
    search; a regex per value cost more than reading the file).
    """
    def newlines_in(c: str) -> SparkColumn:
        v = F.col(c)
        return F.coalesce(F.when(v.contains("\n"), F.octet_length(v) - F.octet_length(F.replace(v, F.lit("\n")))),
                          F.lit(0))

    data_cols = [c for c in df.columns if c.startswith(RAW)]
    newlines = balanced_sum([newlines_in(c) for c in data_cols])
    span = F.when(F.col(CORRUPT).isNotNull(), newlines_in(CORRUPT)).otherwise(newlines) + F.lit(1)
    split_start = [F.input_file_block_start().alias(SPLIT_START)] if split else []
    indexed = df.select("*", F.monotonically_increasing_id().alias(RECORD), span.alias(SPAN), *split_start)
    return indexed.where(F.col(RECORD) >= skip_records) if skip_records else indexed


def split_pairs() -> SparkColumn:
    """The distinct (partition, block start) pairs of a split reading, as JSON (a handful: one per block)."""
    partition = F.shiftright(F.col(RECORD), 33)
    return F.to_json(F.collect_set(F.array(partition, F.col(SPLIT_START)))).alias(SPLITS)


def splits_in_file_order(pairs: Iterable[Iterable[int]]) -> bool:
    """True when each partition of a split reading held one block and the partitions follow the blocks' order
    in the file, so `_record_index` is file order (see `with_record_index`). `pairs`: `split_pairs`."""
    pairs = sorted(tuple(p) for p in pairs)
    partitions = [p for p, _ in pairs]
    starts = [b for _, b in pairs]
    return len(set(partitions)) == len(partitions) and starts == sorted(starts)


SPREAD_BYTES = 128 * 2**20  # of CSV per partition after the parse: Spark's own split size for splittable files


def spread_partitions(source_bytes: int, cores: int) -> int:
    """How many partitions the parsed rows go to: one per 128 MiB of CSV, at most one per core; 1 means the
    rows stay in the parse's single partition."""
    return max(1, min(cores, -(-source_bytes // SPREAD_BYTES)))


SMALL_FILE_BYTES = 4 * 2**20  # Spark's spark.sql.files.openCostInBytes: a file this small is one block anyway


def split_block_bytes(source_bytes: int, cores: int) -> int | None:
    """The block size (`spark.sql.files.maxPartitionBytes`) for a reading split by lines: a whole number of
    blocks per core, each at most 128 MiB, so every wave of tasks keeps every core busy. Spark's own choice
    (128 MiB blocks) gives a 317 MB file three blocks on two cores, and the third ran alone in every stage
    after the parse. None for a file Spark reads as one block anyway."""
    if source_bytes <= SMALL_FILE_BYTES or cores < 1:
        return None
    blocks = cores * -(-source_bytes // (cores * SPREAD_BYTES))
    return -(-source_bytes // blocks)


def source_lines(df: DataFrame, header_lines: int = 1) -> SparkColumn:
    """The line each record starts on, counting the lines before the data (`header_lines`: preamble and header)
    and the spans of all records before it, but not blank lines between records (see `add_blank_lines`).
    A window over the whole file: apply it to a narrow frame (Spark moves every row into one partition)."""
    running = Window.orderBy(RECORD).rowsBetween(Window.unboundedPreceding, -1)
    return F.coalesce(F.sum(SPAN).over(running), F.lit(0)) + F.lit(header_lines + 1)


def add_blank_lines(lined: DataFrame, blank_lines: list[int] | tuple[int, ...], after: int) -> DataFrame:
    """Turn `_source_line` (which counts no blank line) into the physical line: add the blank lines (outside
    quoted values, from the job's scan of the whole file; those after line `after`, the header's end) that lie
    before each record. Blank line i (0-based, in file order) lies before every record whose blank-free line
    is at least `blank_lines[i] - i`; the count per record is a running count over both, sorted together."""
    blanks = sorted(b for b in blank_lines if b > after)
    if not blanks:
        return lined
    spark = lined.sparkSession
    marks = spark.createDataFrame([(b - i,) for i, b in enumerate(blanks)], f"{LINE} long").select(
        F.col(LINE), F.lit(0).alias("_is_record"), F.lit(None).cast("long").alias(RECORD)
    )
    records = lined.select(F.col(LINE).cast("long"), F.lit(1).alias("_is_record"), RECORD)
    # At equal lines the blank comes first: it lies before that record.
    running = Window.orderBy(LINE, "_is_record").rowsBetween(Window.unboundedPreceding, 0)
    before = (
        marks.unionByName(records)
        .select("*", F.sum(1 - F.col("_is_record")).over(running).alias("_blanks_before"))
        .where("_is_record = 1")
        .select(RECORD, "_blanks_before")
    )
    return lined.join(before, RECORD).withColumn(LINE, F.col(LINE) + F.col("_blanks_before")).drop("_blanks_before")


def with_source_lines(df: DataFrame, header_lines: int = 1) -> DataFrame:
    """`with_record_index` plus `_source_line` on every row (only the narrow index/span frame is windowed)."""
    indexed = with_record_index(df)
    starts = indexed.select(RECORD, source_lines(indexed, header_lines).alias(LINE))
    return indexed.join(starts, RECORD)


def blank_missing(df: DataFrame, contract: Contract) -> DataFrame:
    """Trimmed values that are tokens for "no value" (NULL, N/A, -) become null (`_v_<name>` columns)."""
    tokens = list(contract.missing_values)
    # Lower-casing never shortens a string, so only values as short as the longest token can be one: the
    # length test spares lower() and the comparisons for almost every value.
    longest = max((len(t) for t in tokens), default=0)
    cleaned = []
    for c in [c for c in df.columns if c.startswith(RAW)]:
        trimmed = F.trim(F.col(c))
        is_token = (F.length(trimmed) <= longest) & F.lower(trimmed).isin(tokens)
        cleaned.append(F.when(is_token, None).otherwise(trimmed).alias(value(c[len(RAW):])))
    return df.select("*", *cleaned)


TS_SHAPE = "_tshape_"  # per timestamp column that needs it: the `timestamp_parts` of a value tagged "P"
TS_READ = "_tread_"  # per timestamp column: the value as read, before the plausible range
TS_TAG = "_ttag_"  # per timestamp column that needs it: how each value is read (I, S, P, E)
TS_PARTS = "_tparts_"  # per timestamp column that needs it: the canonical parts (text) of a value tagged "P"

# The commonest numeric shape (a 4-digit year last, a 24-hour clock, no fraction, AM/PM or zone: `1/3/2024 2:15`)
# is read by one Spark date pattern instead of canonical parts: the same instants (the Spark tests compare both
# value by value), at a fraction of the cost. Separators become "/" and "T" a space first (`translate`).
PLAIN_NUMERIC_REGEX = r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$"
PLAIN_NUMERIC_PATTERN = {"month_first": "M/d/yyyy[ H:mm[:ss]]", "day_first": "d/M/yyyy[ H:mm[:ss]]"}


def _java_case(v: SparkColumn, regexes: list[tuple[str, SparkColumn]]) -> SparkColumn:
    """CASE over regexes in order (Spark evaluates the conditions lazily: a value pays only up to its match)."""
    expr = F.when(v.rlike(java(regexes[0][0])), regexes[0][1])
    for rx, out in regexes[1:]:
        expr = expr.when(v.rlike(java(rx)), out)
    return expr


def timestamp_shape_code(v: SparkColumn) -> SparkColumn:
    """The shape a value is read in as an index into `timeformats.SHAPES` plus one (1 iso ... 5 epoch), 0 for
    none, null for null: the same order and regexes as `timeformats.shape_of`."""
    return _java_case(v, [(ISO_REGEX, F.lit(1)), (YMD_REGEX, F.lit(2)), (DMY_MDY_REGEX, F.lit(3)),
                          (DAY_NAME_REGEX, F.lit(4)), (NAME_DAY_REGEX, F.lit(4)), (EPOCH_REGEX, F.lit(5))]
                     ).when(v.isNotNull(), F.lit(0))


def timestamp_evidence(df: DataFrame, columns: list[str], split_order: bool = False) -> dict[str, Any]:
    """The row count (`__rows`), with `split_order` the JSON of `split_pairs` (`__splits`), and the evidence for
    every timestamp column of `df`, in one pass:
    `<column>__<field>` for each field of `ColumnEvidence`. The shape of each value is found once, in a
    projection before the aggregation (referenced by six aggregates, it would otherwise be evaluated per
    aggregate); the leading numbers of a numeric date are cut at its separators, not matched again."""
    projected = []
    for i, c in enumerate(columns):
        v = F.col(c)
        code = timestamp_shape_code(v)
        projected += [v.alias(f"_tv{i}"), code.alias(f"_tc{i}")]
    # A split reading's (partition, block start) pairs come along in the same pass (`splits_in_file_order`).
    shaped = df.select(*projected, *([RECORD, SPLIT_START] if split_order else []))
    aggs = [F.count(F.lit(1)).alias("__rows"), *([split_pairs()] if split_order else [])]
    for i, c in enumerate(columns):
        v, code = F.col(f"_tv{i}"), F.col(f"_tc{i}")
        slashed = F.translate(v, ".-", "//")  # a numeric date's separators: one of / . -

        def count(k: int, name: str, code: SparkColumn = code, c: str = c) -> SparkColumn:
            return F.count(F.when(code == k, F.lit(1))).alias(f"{c}__{name}")

        def leading(n: int, v: SparkColumn = slashed, code: SparkColumn = code) -> SparkColumn:
            field = F.substring_index(v, "/", n) if n == 1 else F.substring_index(F.substring_index(v, "/", n), "/", -1)
            return F.when(code == 3, field.cast("int"))

        aggs += [
            F.count(v).alias(f"{c}__non_null"),
            count(1, "iso"),
            count(3, "slashed"),
            F.max(leading(1)).alias(f"{c}__max_first"),
            F.max(leading(2)).alias(f"{c}__max_second"),
            count(2, "ymd"),
            count(4, "named"),
            count(5, "epoch"),
        ]
    row = shaped.agg(*aggs).first()
    return row.asDict() if row else {}


def evidence_from_row(row: dict[str, object], column: str) -> ColumnEvidence:
    def get(suffix: str) -> int:
        value = row.get(f"{column}__{suffix}")
        return int(value) if value is not None else 0  # type: ignore[call-overload]

    return ColumnEvidence(**{f.name: get(f.name) for f in fields(ColumnEvidence)})


def _parts_regexes(choice: FormatChoice) -> list[tuple[str, tuple[int, ...]]]:
    """The regexes (after ISO) whose values go through canonical parts, with their group layouts."""
    out = []
    if "ymd" in choice.shapes:
        out.append((YMD_REGEX, PARTS_LAYOUT["ymd"]))
    if "numeric" in choice.shapes and choice.date_order:
        out.append((DMY_MDY_REGEX, PARTS_LAYOUT[choice.date_order]))
    if "named" in choice.shapes:
        out += [(DAY_NAME_REGEX, PARTS_LAYOUT["day_name"]), (NAME_DAY_REGEX, PARTS_LAYOUT["name_day"])]
    return out


def needs_shape_column(choice: FormatChoice) -> bool:
    return bool(_parts_regexes(choice))


def timestamp_shape_tag(v: SparkColumn, choice: FormatChoice) -> SparkColumn:
    """How a value of a column read in part-based shapes is read: "I" ISO, "S" a plain numeric date
    (`PLAIN_NUMERIC_REGEX`, one Spark date pattern), "P" canonical parts, "E" epoch; null for none. A plain
    string: most values (ISO, plain numeric) need nothing more, so nothing more is built for them."""
    cases: list[tuple[str, SparkColumn]] = [(ISO_REGEX, F.lit("I"))]
    if "numeric" in choice.shapes and choice.date_order:
        cases.append((PLAIN_NUMERIC_REGEX, F.lit("S")))
    cases += [(rx, F.lit("P")) for rx, _ in _parts_regexes(choice)]
    if "epoch" in choice.shapes:
        cases.append((EPOCH_REGEX, F.lit("E")))
    return _java_case(v, cases)


def timestamp_shape_column(v: SparkColumn, choice: FormatChoice) -> SparkColumn:
    """For a value tagged "P": its canonical parts (year, month, day, hour, minute, second, fraction, AM/PM,
    zone, "") as text, from the first parts regex it matches; apply it only to such values (the regexes run
    again, on those few values alone)."""
    cases = []
    for rx, layout in _parts_regexes(choice):
        template = "|".join(f"${g}" if g else "" for g in layout) + "|"  # what follows a final "\n" goes last
        cases.append((rx, F.split(F.regexp_replace(v, java(rx), template), r"\|")))
    return _java_case(v, cases)


def _months() -> SparkColumn:
    """Month token (lower case) -> number, as `timeformats.MONTHS` (built per call: a literal needs a session)."""
    return F.create_map(*[x for k, m in sorted(MONTHS.items()) for x in (F.lit(k), F.lit(m))])


def timestamp_parts(p: SparkColumn, pivot: int) -> SparkColumn:
    """A `timestamp_shape_column` (canonical parts) as a struct of the numbers of the instant, by the rules of
    `timeformats.micros_of_parts`: year (two-digit years by the pivot), month, day, 24-hour `hour` (null when
    the clock is impossible), minute, second, `adjust` (the fraction's microseconds less the zone offset; null
    for an impossible zone) and `ok`. Its own projection, so the timestamp is built from numbers computed once
    (not re-derived in each branch that reads them)."""
    y, mo, d, h, mi, s, frac, ampm, zone = (p.getItem(i) for i in range(9))
    yi = y.cast("int")
    year = F.when(F.length(y) == 2, yi + F.when(yi < pivot, 2000).otherwise(1900)).otherwise(yi)
    hi = F.coalesce(h.cast("int"), F.lit(0))
    hour = F.when(ampm == "", hi).when(
        (hi >= 1) & (hi <= 12), hi % 12 + F.when(F.upper(ampm) == "P", 12).otherwise(0)
    )
    minute, second = F.coalesce(mi.cast("int"), F.lit(0)), F.coalesce(s.cast("int"), F.lit(0))
    micros = F.when(frac == "", F.lit(0)).otherwise(F.rpad(F.substring(frac, 1, 6), 6, "0").cast("int"))
    digits = F.replace(zone, F.lit(":"), F.lit(""))
    zh, zm = F.substring(digits, 2, 2).cast("int"), F.coalesce(F.substring(digits, 4, 2).cast("int"), F.lit(0))
    east = zh * 3600 + zm * 60
    offset = F.when(zone.isin("", "Z", "z", "UTC", "GMT"), F.lit(0)).when(
        (zm <= 59) & (east <= MAX_ZONE_SECONDS), F.when(zone.startswith("-"), -east).otherwise(east)
    )
    # make_timestamp rolls a 60th second into the next minute: such values are refused before it.
    ok = (hour <= 23) & (minute <= 59) & (second <= 59)
    numbers = {"year": year, "month": _months()[F.lower(mo)], "day": d.cast("int"), "hour": hour, "minute": minute,
               "second": second, "adjust": micros - offset.cast("long") * MICROS, "ok": ok}
    return F.struct(*[x.alias(k) for k, x in numbers.items()])


def timestamp_of_parts(parts: SparkColumn) -> SparkColumn:
    """The instant of a `timestamp_parts` struct (null when it names none)."""
    local = F.make_timestamp(parts["year"], parts["month"], parts["day"], parts["hour"], parts["minute"],
                             parts["second"])
    return F.when(parts["ok"], F.timestamp_micros(F.unix_micros(local) + parts["adjust"]))


def epoch_timestamp(v: SparkColumn, choice: FormatChoice) -> SparkColumn:
    """Digits read as epoch seconds or milliseconds: the unit that is in range (seconds first), else by
    magnitude (`timeformats.epoch_micros`). Bounds compared on the number, so nothing overflows."""
    n = v.cast("long")
    lo, hi = choice.min_micros, choice.max_micros

    def within(unit: int) -> SparkColumn:
        return (n >= -(-lo // unit)) & (n < -(-hi // unit))  # n * unit in [lo, hi)

    seconds, millis = F.timestamp_seconds(n), F.timestamp_millis(n)
    return F.when(within(MICROS), seconds).when(within(1000), millis).when(n < EPOCH_MILLIS_FROM, seconds).otherwise(
        millis
    )


@dataclass(frozen=True)
class TimestampShape:
    """The two shape columns of a timestamp column read in part-based shapes: `tag` (`timestamp_shape_tag`)
    and `parts` (`timestamp_parts`, null unless the tag is "P")."""

    tag: SparkColumn
    parts: SparkColumn


def read_timestamp(v: SparkColumn, choice: FormatChoice, shape: TimestampShape | None = None) -> SparkColumn:
    """The value as the column's reading reads it, before the plausible range (null when unreadable). ISO goes
    through Spark's cast; `shape` is the column's tag and parts (`shape_column`, see `add_timestamp_shapes`)
    when `needs_shape_column`."""
    iso = F.to_timestamp(v)  # Spark's cast: ISO 8601 with optional time, fraction and zone
    if shape is None:
        parsed = F.when(v.rlike(java(ISO_REGEX)), iso)
        if "epoch" in choice.shapes:
            parsed = parsed.when(v.rlike(java(EPOCH_REGEX)), epoch_timestamp(v, choice))
        return parsed
    tag = shape.tag
    parsed = F.when(tag == "I", iso).when(tag == "P", timestamp_of_parts(shape.parts))
    if choice.date_order:
        plain = F.try_to_timestamp(F.translate(v, ".-T", "// "), F.lit(PLAIN_NUMERIC_PATTERN[choice.date_order]))
        parsed = parsed.when(tag == "S", plain)
    return parsed.when(tag == "E", epoch_timestamp(v, choice)) if "epoch" in choice.shapes else parsed


def in_plausible_range(ts: SparkColumn, choice: FormatChoice) -> SparkColumn:
    micros = F.unix_micros(ts)
    return (micros >= choice.min_micros) & (micros < choice.max_micros)


def parse_timestamp(v: SparkColumn, choice: FormatChoice, shape: TimestampShape | None = None) -> SparkColumn:
    """The typed value: read, then null outside the plausible range (see `type_columns` for the flags)."""
    read = read_timestamp(v, choice, shape)
    return F.when(in_plausible_range(read, choice), read)


def with_timestamp_shapes(df: DataFrame, contract: Contract, formats: dict[str, FormatChoice],
                          skip: Iterable[str] = ()) -> DataFrame:
    """`df` plus the shape column (`_tshape_<name>`) of each timestamp column whose reading needs one (none for
    a column of ISO values and epochs: those stay on the cheap path), except the columns in `skip`."""
    return add_timestamp_shapes(df, {
        c.name: (F.col(value(c.name)), formats[c.name])
        for c in contract.columns_of_type("timestamp")
        if value(c.name) in df.columns and needs_shape_column(formats[c.name]) and c.name not in skip
    })


def add_timestamp_shapes(df: DataFrame, columns: dict[str, tuple[SparkColumn, FormatChoice]]) -> DataFrame:
    """`df` plus, for each (value, reading) given, `_ttag_<name>` (`timestamp_shape_tag`) and `_tshape_<name>`
    (the `timestamp_parts` of a "P" value, else null), in three projections: the tag's regexes once per value,
    then the canonical parts (`_tparts_<name>`) of the few values that need them, then their numbers. The parts
    have a projection of their own because the numbers read them about thirty times: inlined, the regex ran
    that often per value (and the plan held it that many times)."""
    if not columns:
        return df
    tagged = df.select("*", *[timestamp_shape_tag(v, c).alias(TS_TAG + n) for n, (v, c) in columns.items()])
    split = tagged.select("*", *[
        F.when(F.col(TS_TAG + n) == "P", timestamp_shape_column(v, c)).alias(TS_PARTS + n)
        for n, (v, c) in columns.items()
    ])
    return split.select("*", *[
        F.when(F.col(TS_PARTS + n).isNotNull(), timestamp_parts(F.col(TS_PARTS + n), c.two_digit_year_pivot))
        .alias(TS_SHAPE + n)
        for n, (_, c) in columns.items()
    ])


def shape_column(df: DataFrame, name: str) -> TimestampShape | None:
    if TS_SHAPE + name not in df.columns:
        return None
    return TimestampShape(F.col(TS_TAG + name), F.col(TS_SHAPE + name))


def register_timestamp_flags(name: str, info: TypedColumns) -> None:
    """Name a timestamp column's two flags in `info`: `_coerced_<name>` and `_out_of_range_<name>`."""
    info.coerced_flags[name] = f"_coerced_{name}"
    info.out_of_range_flags[name] = f"_out_of_range_{name}"


def timestamp_flag_columns(name: str, choice: FormatChoice, info: TypedColumns) -> list[SparkColumn]:
    """From the read value (`_tread_<name>`): the typed column, null outside the plausible range, and the
    flags `_coerced_<name>` (present but unreadable) and `_out_of_range_<name>` (read, but out of range).
    Registers both flags in `info`."""
    read = F.col(TS_READ + name)
    ok = in_plausible_range(read, choice)
    register_timestamp_flags(name, info)
    return [
        F.when(ok, read).alias(name),
        (read.isNull() & F.col(value(name)).isNotNull()).alias(info.coerced_flags[name]),
        (read.isNotNull() & ~ok).alias(info.out_of_range_flags[name]),
    ]


# Java's `\s` (no UNICODE_CHARACTER_CLASS): what `\s+` in collapse_whitespace matches.
_JAVA_SPACES = (" ", "\t", "\n", "\u000b", "\f", "\r")


def normalise_text(v: SparkColumn, steps: tuple[str, ...]) -> SparkColumn:
    for step in steps:
        if step == "lower":
            v = F.lower(v)
        elif step == "collapse_whitespace":
            # Only values with a run of spaces or another whitespace character change; byte searches find
            # them far cheaper than running the regex on every value.
            needs = v.contains("  ")
            for ch in _JAVA_SPACES[1:]:
                needs = needs | v.contains(ch)
            v = F.when(needs, F.regexp_replace(v, r"\s+", " ")).otherwise(v)
        # "trim" already happened in blank_missing
    return v


def normalise_enum(v: SparkColumn, col: Column) -> SparkColumn:
    """The rule of `Column.enum_value`: the label's token (contract.normalise_token: runs of non-letters/digits
    -> "_", edges stripped) -> its canonical value; else the token without a leading rank or code (`1 - Critical`,
    `2 normal`, `P1 - Urgent`); else the token itself (an unknown value, kept and reported)."""
    token = F.regexp_replace(F.regexp_replace(F.lower(v), r"[^\p{L}\p{N}]+", "_"), r"^_+|_+$", "")
    pairs = [x for k, canon in sorted(col.synonym_map().items()) for x in (F.lit(k), F.lit(canon))]
    synonyms = F.create_map(*pairs)
    # Coalesce stops at the first non-null. A label that is a synonym once lower-cased (`Low`, `email`) is its own
    # token (a synonym is a token already), so the regexes run only for the others.
    return F.coalesce(synonyms[F.lower(v)], synonyms[token], synonyms[F.regexp_extract(token, ENUM_PREFIX.pattern, 1)],
                      token)


# A decimal comma (`4,0`, `2,5`, `3,25`) is read as a point. A comma before exactly three digits (`1,000`) is
# a thousands separator in English exports and a decimal comma in others: not read (kept in `_unparsed`).
DECIMAL_COMMA = r"^[+-]?[0-9]+,([0-9]{1,2}|[0-9]{4,})$"


def parse_integer(v: SparkColumn, col: Column) -> SparkColumn:
    """An integer column: `4`, `4.0` and `4,0` -> 4; a fraction (`2,5`), text or a value outside [min, max] ->
    null (the caller flags it and keeps its text)."""
    v = F.when(v.contains(",") & v.rlike(DECIMAL_COMMA), F.replace(v, F.lit(","), F.lit("."))).otherwise(v)
    number = v.cast("double")  # "4.0" -> 4.0; text -> null
    ok = number.isNotNull() & (number == F.floor(number))
    if col.min is not None:
        ok = ok & (number >= col.min)
    if col.max is not None:
        ok = ok & (number <= col.max)
    return F.when(ok, number.cast("int"))


def parse_array(v: SparkColumn, col: Column) -> SparkColumn:
    """Split on the separators, trim and normalise each item, drop empty items; null when none is left."""
    separators = "".join("\\" + s for s in col.separators)
    if set(col.normalise) <= {"trim", "lower"}:
        # The same result without per-item lambdas (interpreted, slow): lower-case the whole value, and let
        # the split eat the spaces around separators (the value's own ends are already trimmed).
        whole = F.lower(v) if "lower" in col.normalise else v
        cleaned = F.array_remove(F.split(whole, f" *[{separators}] *"), "")
    else:
        items = F.transform(F.split(v, f"[{separators}]"), lambda x: normalise_text(F.trim(x), col.normalise))
        cleaned = F.filter(items, lambda x: x != "")
    return F.when(F.size(cleaned) > 0, cleaned)


def merge_arrays(parsed: list[SparkColumn]) -> SparkColumn:
    """The items of several parsed array values (a repeated header, e.g. Jira's one `Labels` column per label)
    as one list, in column order; null when none has an item."""
    if len(parsed) == 1:
        return parsed[0]
    merged = F.concat(*[F.coalesce(p, F.array().cast(SPARK_TYPES["array"])) for p in parsed])
    return F.when(F.size(merged) > 0, merged)


def string_map(entries: list[tuple[str, SparkColumn]]) -> SparkColumn:
    """A map<string,string> of the entries whose value is not null (null when none): one expression however
    many entries (a 900-column export's custom fields), two flat arrays zipped, no per-entry column. Built from
    one-item arrays flattened, not by `array_compact` or `filter`: those take a lambda, which Spark does not
    compile into the generated code of the projection around them."""
    if not entries:
        return F.lit(None).cast(STRING_MAP)
    none = F.array().cast(T.ArrayType(T.StringType()))

    def present(v: SparkColumn, item: SparkColumn) -> SparkColumn:
        return F.when(v.isNotNull(), F.array(item)).otherwise(none)

    keys = F.flatten(F.array(*[present(v, F.lit(k)) for k, v in entries]))
    values = F.flatten(F.array(*[present(v, v) for _, v in entries]))
    # Most rows have no entry: a coalesce (flat, however many entries) spares them building the arrays.
    return F.when(F.coalesce(*[v for _, v in entries]).isNotNull(), F.map_from_arrays(keys, values))


@dataclass
class TypedColumns:
    """Which typed columns were derived, and the null-coercion flags to count."""

    coerced_flags: dict[str, str] = field(default_factory=dict)  # canonical column -> flag column
    # Timestamp column -> flag column: a value read, but outside the contract's plausible range (nulled).
    out_of_range_flags: dict[str, str] = field(default_factory=dict)


TOO_LONG = "_too_long"


def too_long_reason(contract: Contract, mapping: HeaderMapping) -> SparkColumn:
    """The first of the row's source values longer than its column's limit (`Contract.field_limit`, in
    characters) as `field_too_long:<column>` (`extra` for an unknown column), else null. The byte length is
    known without reading the value and is never below the character count, so only a value with that many
    bytes has its characters counted."""
    checks = []
    for c in mapping.columns:
        limit, reason = contract.field_limit(c.field), f"field_too_long:{c.field or EXTRA}"
        v = F.col(raw(c.name))
        checks.append(F.when((F.octet_length(v) > limit) & (F.length(v) > limit), F.lit(reason)))
    return F.coalesce(*checks) if checks else F.lit(None).cast("string")


def with_too_long(df: DataFrame, contract: Contract, mapping: HeaderMapping) -> DataFrame:
    """`df` plus `_too_long` (`too_long_reason`). Applied before the columnar cache, where the parse has every
    raw value in hand: later, only the outcome pass would read the raw columns, every one of them, for it."""
    return df.select("*", too_long_reason(contract, mapping).alias(TOO_LONG))


def type_columns(
    df: DataFrame, contract: Contract, mapping: HeaderMapping, formats: dict[str, FormatChoice],
    carried: Iterable[str] = (),
) -> tuple[DataFrame, TypedColumns]:
    """Cast each canonical column to its contract type; flag present values that could not be read.

    Adds `extra` (map<string,string>: the unmapped columns' trimmed values by their mapping name) and
    `_unparsed` (map<string,string>: canonical column -> original text, for each value that failed typing:
    unreadable or out of range). A repeated header of an array column fills it with all its columns' items.

    `carried`: timestamp columns `df` already holds typed, with their two flags (`carried_columns` of an
    earlier typing, brought back by a join): registered, not read again."""
    info = TypedColumns()
    typed_cols: list[SparkColumn] = []
    carried = set(carried)
    df, bounded = with_timestamp_shapes(df, contract, formats, skip=carried), []
    for col in contract.columns.values():
        if value(col.name) not in df.columns:
            typed_cols.append(F.lit(None).cast(SPARK_TYPES[col.type]).alias(col.name))
            continue
        v = F.col(value(col.name))
        if col.name in carried:  # typed, with its flags, by the earlier typing
            register_timestamp_flags(col.name, info)
            continue
        if col.type == "timestamp":
            # Read here, bounded by the plausible range in the second projection (flags need both).
            read = read_timestamp(v, formats[col.name], shape_column(df, col.name))
            typed_cols.append(read.alias(TS_READ + col.name))
            bounded.append(timestamp_flag_columns(col.name, formats[col.name], info))
            continue
        if col.type == "enum":
            typed = normalise_enum(v, col)
        elif col.type == "integer":
            typed = parse_integer(v, col)
        elif col.type == "array":  # a repeated header's columns are merged
            typed = merge_arrays([parse_array(F.col(value(s)), col) for s in mapping.sources(col.name)])
        else:
            typed = normalise_text(v, col.normalise)
        typed_cols.append(typed.alias(col.name))
        if col.type == "integer":
            info.coerced_flags[col.name] = f"_coerced_{col.name}"
    # Unknown columns, however many, in one map (trimmed values, missing-value tokens left out).
    typed_cols.append(string_map([(c.name, F.col(value(c.name))) for c in mapping.unmapped]).alias(EXTRA))
    if TOO_LONG not in df.columns:  # else computed before the cache (`with_too_long`)
        typed_cols.append(too_long_reason(contract, mapping).alias(TOO_LONG))
    out = df.select("*", *typed_cols)
    # A second projection, so the (costly) parse is referenced, not re-evaluated.
    flags = [
        (F.col(name).isNull() & F.col(value(name)).isNotNull()).alias(flag)
        for name, flag in info.coerced_flags.items()
        if name not in info.out_of_range_flags
    ]
    flagged = out.select("*", *[c for cols in bounded for c in cols], *flags)
    # A value that failed typing is never lost: its original text stays on the row, in one map (a third
    # projection, over the flags).
    failed = []
    for name, flag in info.coerced_flags.items():
        bad = F.col(flag)
        if name in info.out_of_range_flags:
            bad = bad | F.col(info.out_of_range_flags[name])
        failed.append((name, F.when(bad, F.col(raw(name)))))
    return flagged.select("*", string_map(failed).alias(UNPARSED)), info


def classify(df: DataFrame, contract: Contract, info: TypedColumns) -> DataFrame:
    """Give each row an error reason (null for valid rows). The first applicable reason wins."""
    reason: SparkColumn = F.when(F.col(CORRUPT).isNotNull(), F.lit(WRONG_FIELD_COUNT))
    reason = reason.when(F.col(TOO_LONG).isNotNull(), F.col(TOO_LONG))
    for name in contract.required:
        if name in info.out_of_range_flags:
            reason = reason.when(F.col(info.out_of_range_flags[name]), F.lit(f"out_of_range_required:{name}"))
        flag = info.coerced_flags.get(name)
        if flag:
            reason = reason.when(F.col(flag), F.lit(f"unparseable_required:{name}"))
        reason = reason.when(F.col(name).isNull(), F.lit(f"missing_required:{name}"))
    return df.withColumn(REASON, reason)


def superseded(valid: SparkColumn) -> SparkColumn:
    """True for a valid row that another valid row of the same ticket_id supersedes: within one file the latest
    `updated_at` (else the last line) wins. A window over (ticket_id, validity): apply it to a narrow frame."""
    latest_first = Window.partitionBy("ticket_id", valid).orderBy(
        F.col("updated_at").desc_nulls_last(), F.col(RECORD).desc()  # file order is line order
    )
    return valid & (F.row_number().over(latest_first) > 1)


def supersede_duplicates(valid: DataFrame) -> DataFrame:
    """Mark the superseded rows of `valid` (all rows valid) `duplicate_superseded`. The window runs on the
    narrow (record, ticket_id, updated_at) frame; the few losers come back through a broadcast join."""
    losers = (
        valid.select(RECORD, superseded(F.lit(True)).alias("_superseded"))
        .where("_superseded")
        .select(RECORD, F.lit(DUPLICATE_SUPERSEDED).alias("_dup_reason"))
    )
    return (
        valid.join(F.broadcast(losers), RECORD, "left")
        .withColumn(REASON, F.col("_dup_reason"))
        .drop("_dup_reason")
    )


def carried_columns(contract: Contract, df: DataFrame, info: TypedColumns) -> list[str]:
    """The typed timestamp columns the outcomes read anyway (the required ones, and `updated_at` for the
    dedupe): `record_outcomes` carries them, so the wide typing of the write does not read them again."""
    wanted = [*contract.required, "updated_at"]
    return [
        n for n in dict.fromkeys(wanted)
        if n in info.out_of_range_flags and value(n) in df.columns
    ]


def carried_fields(names: Iterable[str], info: TypedColumns) -> list[str]:
    """Each carried column with its two flags."""
    return [c for n in names for c in (n, info.coerced_flags[n], info.out_of_range_flags[n])]


def record_outcomes(classified: DataFrame, header_lines: int = 1, open_quote_line: int | None = None,
                    blank_lines: list[int] | tuple[int, ...] = (), carry: Iterable[str] = ()) -> DataFrame:
    """(record, source line, final error reason) for every record: the two questions that need the whole
    file (where does a record start, which duplicate wins), answered on five narrow columns.

    `header_lines`: physical lines up to the end of the header record (preamble included); `blank_lines`: the
    file's blank lines outside quoted values (the readers skip them), so `_source_line` is the physical line.

    `open_quote_line`: where a quoted value opens that is still open at the end of the file (the job's scan of
    the whole object). The reader took the rest of the file into that value, so the record covering that line
    is quarantined as unterminated_quote, whatever else it looks like, and takes no part in the dedupe.

    `carry`: more columns of `classified` kept on each outcome (see `carried_columns`)."""
    carry = list(carry)
    needed = [RECORD, SPAN, REASON, "ticket_id", "updated_at"]
    narrow = classified.select(*needed, *[c for c in carry if c not in needed])
    lined = add_blank_lines(narrow.select("*", source_lines(narrow, header_lines).alias(LINE)), blank_lines,
                            header_lines)
    if open_quote_line is not None:
        covers = (F.col(LINE) <= open_quote_line) & (F.col(LINE) + F.col(SPAN) > open_quote_line)
        lined = lined.withColumn(REASON, F.when(covers, F.lit(UNTERMINATED_QUOTE)).otherwise(F.col(REASON)))
    dup = superseded(F.col(REASON).isNull())
    return lined.select(
        RECORD, LINE, F.when(dup, F.lit(DUPLICATE_SUPERSEDED)).otherwise(F.col(REASON)).alias(REASON), *carry
    )


def derive(df: DataFrame, run_id: str, source_key: str, ingested_at: str) -> DataFrame:
    hours = (F.unix_micros(F.col("resolved_at")) - F.unix_micros(F.col("created_at"))) / F.lit(3_600_000_000.0)
    return (
        df.withColumn("resolution_hours", F.round(hours, 4))
        .withColumn("_source_key", F.lit(source_key))
        .withColumn("_run_id", F.lit(run_id))
        .withColumn("_ingested_at", F.lit(ingested_at).cast("timestamp"))
        # The partition values `date_format` gives ("2024", "0500", "03") for years 0-9999, from the date's
        # numbers rather than a datetime formatter per row.
        .withColumn("year", F.lpad(F.year("created_at").cast("string"), 4, "0"))
        .withColumn("month", F.lpad(F.month("created_at").cast("string"), 2, "0"))
    )


def output_columns(contract: Contract, mapping: HeaderMapping) -> list[str]:
    """Canonical columns in contract order, the `extra` and `_unparsed` maps, then derived/lineage: the same
    for every file (`mapping` decides nothing here any more; kept so callers need not change)."""
    del mapping
    return [*contract.columns, EXTRA, UNPARSED, "resolution_hours", *LINEAGE]


def parquet_write_options(contract: Contract, published: list[str]) -> dict[str, str]:
    """No Parquet dictionary for published columns whose values are (nearly) all distinct: the id, free texts,
    timestamps, derived numbers and line numbers. Parquet builds a dictionary per column and drops it when it
    grows too big; for these it always does, and building it cost a fifth of the write."""
    timestamps = [c.name for c in contract.columns_of_type("timestamp")]
    distinct = ["ticket_id", "subject", "description", "customer_email", *timestamps, "resolution_hours", LINE]
    return {f"parquet.enable.dictionary#{c}": "false" for c in distinct if c in published}


# OWASP "CSV Injection": a spreadsheet reads a cell that starts with =, +, -, @, a tab or a carriage return as a
# formula (`=HYPERLINK(...)`, `@SUM(...)`). Such a cell in the quarantine CSV, a file people open in Excel, gets
# a leading apostrophe, which shows the text instead; a negative number (`-4`, `-1.5`) is left alone.
FORMULA_START = r"^(?:[=+@\t\r]|-(?![0-9]+(?:[.,][0-9]+)?$))"
NEUTRALISED = "_neutralised_columns"


def neutralise_header(header: str) -> str:
    """A header cell, with the apostrophe in front when a spreadsheet would take it for a formula."""
    return "'" + header if re.match(FORMULA_START, header) else header


def quarantine_columns(mapping: HeaderMapping) -> list[SparkColumn]:
    """Original headers and values, then why and where. Spark writes no two columns of one name (compared
    case-insensitively): a repeated header gets its position, `Labels (13)`. Cells a spreadsheet would run as a
    formula get a leading apostrophe (`FORMULA_START`); `_neutralised_columns` names those columns in the row
    (comma-separated), so the original text is the cell without its first character there."""
    taken = {"_error_reason", "_source_line", "_raw_record", NEUTRALISED}
    cols, flags = [], []
    for c in mapping.columns:
        header = c.header if c.header.casefold() not in taken else f"{c.header} ({c.position})"
        taken.add(header.casefold())
        value = F.col(raw(c.name))
        formula = value.rlike(java(FORMULA_START))
        cols.append(F.when(formula, F.concat(F.lit("'"), value)).otherwise(value).alias(neutralise_header(header)))
        flags.append(F.when(formula, F.lit(header.replace(",", " "))))
    record = F.col(CORRUPT)
    record_formula = record.rlike(java(FORMULA_START))
    flags.append(F.when(record_formula, F.lit("_raw_record")))
    return [*cols, F.col(REASON).alias("_error_reason"), F.col(LINE).alias("_source_line"),
            F.when(record_formula, F.concat(F.lit("'"), record)).otherwise(record).alias("_raw_record"),
            F.concat_ws(",", *flags).alias(NEUTRALISED)]
