"""The support-ticket transform as pure DataFrame -> DataFrame functions.

No I/O here: `glue/ticket_etl_job.py` reads the CSV, calls these, and writes the outputs. Every source value
stays in its raw column (`_raw_<name>`) until the end, so a quarantined row can be written back exactly as it
arrived; the typed columns are computed beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ticketcore.contract import Column, Contract, HeaderMapping
from ticketcore.timeformats import DMY_MDY_REGEX, ISO_REGEX, SPARK_PATTERN, ColumnEvidence, FormatChoice

RAW = "_raw_"
CORRUPT = "_corrupt_record"
RECORD = "_record_index"
REASON = "_error_reason"
LINE = "_source_line"
SPAN = "_span"  # physical lines a record covers
TRAILING = "_trailing_field"  # the field after a trailing delimiter, read and then folded away
DUPLICATE_SUPERSEDED = "duplicate_superseded"
WRONG_FIELD_COUNT = "wrong_field_count"
UNTERMINATED_QUOTE = "unterminated_quote"

LINEAGE = ["_source_key", LINE, "_run_id", "_ingested_at"]
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


def with_record_index(df: DataFrame, skip_records: int = 0) -> DataFrame:
    """Number each record in file order (`_record_index`) and count the physical lines it covers (`_span`).
    The first `skip_records` records (a `sep=` line and the header, read as records) are dropped.

    Spark numbers the records of a file in order because a multi-line CSV file is read by a single task. A
    record spans 1 + (newlines inside its quoted fields) lines; ragged rows have their text in the corrupt
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
    indexed = df.select("*", F.monotonically_increasing_id().alias(RECORD), span.alias(SPAN))
    return indexed.where(F.col(RECORD) >= skip_records) if skip_records else indexed


SPREAD_BYTES = 128 * 2**20  # of CSV per partition after the parse: Spark's own split size for splittable files


def spread_partitions(source_bytes: int, cores: int) -> int:
    """How many partitions the parsed rows go to: one per 128 MiB of CSV, at most one per core; 1 means the
    rows stay in the parse's single partition."""
    return max(1, min(cores, -(-source_bytes // SPREAD_BYTES)))


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


def timestamp_evidence_aggs(columns: list[str]) -> list[SparkColumn]:
    """One aggregation pass collects the evidence for every timestamp column at once."""
    aggs = []
    for c in columns:
        v = F.col(c)
        slashed = v.rlike(DMY_MDY_REGEX)
        aggs += [
            F.count(v).alias(f"{c}__non_null"),
            F.sum(v.rlike(ISO_REGEX).cast("int")).alias(f"{c}__iso"),
            F.sum(slashed.cast("int")).alias(f"{c}__slashed"),
            F.max(F.when(slashed, F.regexp_extract(v, DMY_MDY_REGEX, 1).cast("int"))).alias(f"{c}__max_first"),
            F.max(F.when(slashed, F.regexp_extract(v, DMY_MDY_REGEX, 2).cast("int"))).alias(f"{c}__max_second"),
        ]
    return aggs


def evidence_from_row(row: dict[str, object], column: str) -> ColumnEvidence:
    def get(suffix: str) -> int:
        value = row.get(f"{column}__{suffix}")
        return int(value) if value is not None else 0  # type: ignore[call-overload]

    return ColumnEvidence(get("non_null"), get("iso"), get("slashed"), get("max_first"), get("max_second"))


def parse_timestamp(v: SparkColumn, choice: FormatChoice) -> SparkColumn:
    iso_value = F.to_timestamp(v)  # Spark's cast: ISO 8601 with optional time, fraction and zone
    parsed = F.when(v.rlike(ISO_REGEX), iso_value)
    if choice.date_order:
        normalised = F.regexp_replace(F.regexp_replace(v, r"^(\d{1,2})[/.-](\d{1,2})[/.-]", "$1/$2/"), "T", " ")
        slashed = F.try_to_timestamp(normalised, F.lit(SPARK_PATTERN[choice.date_order]))
        parsed = parsed.when(v.rlike(DMY_MDY_REGEX), slashed)
    return parsed


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
    # The same rule as contract.normalise_token: runs of non-letters/digits -> "_", edges stripped.
    token = F.regexp_replace(F.regexp_replace(F.lower(v), r"[^\p{L}\p{N}]+", "_"), r"^_+|_+$", "")
    pairs = [x for k, canon in sorted(col.synonym_map().items()) for x in (F.lit(k), F.lit(canon))]
    return F.coalesce(F.create_map(*pairs)[token], token)


def parse_integer(v: SparkColumn, col: Column) -> SparkColumn:
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


@dataclass
class TypedColumns:
    """Which typed columns were derived, and the null-coercion flags to count."""

    coerced_flags: dict[str, str] = field(default_factory=dict)  # canonical column -> flag column


def type_columns(
    df: DataFrame, contract: Contract, mapping: HeaderMapping, formats: dict[str, FormatChoice]
) -> tuple[DataFrame, TypedColumns]:
    """Cast each canonical column to its contract type; flag present values that could not be read.
    Unknown source columns are kept as trimmed strings under their normalised names."""
    info = TypedColumns()
    typed_cols: list[SparkColumn] = []
    for col in contract.columns.values():
        if value(col.name) not in df.columns:
            typed_cols.append(F.lit(None).cast(SPARK_TYPES[col.type]).alias(col.name))
            continue
        v = F.col(value(col.name))
        if col.type == "timestamp":
            typed = parse_timestamp(v, formats[col.name])
        elif col.type == "enum":
            typed = normalise_enum(v, col)
        elif col.type == "integer":
            typed = parse_integer(v, col)
        elif col.type == "array":
            typed = parse_array(v, col)
        else:
            typed = normalise_text(v, col.normalise)
        typed_cols.append(typed.alias(col.name))
        if col.type in ("timestamp", "integer"):
            info.coerced_flags[col.name] = f"_coerced_{col.name}"
    for name in mapping.unknown.values():
        typed_cols.append(F.col(value(name)).alias(name))
    out = df.select("*", *typed_cols)
    # A second projection, so the (costly) parse is referenced, not re-evaluated.
    flags = [
        (F.col(name).isNull() & F.col(value(name)).isNotNull()).alias(flag)
        for name, flag in info.coerced_flags.items()
    ]
    return out.select("*", *flags), info


def classify(df: DataFrame, contract: Contract, info: TypedColumns) -> DataFrame:
    """Give each row an error reason (null for valid rows). The first applicable reason wins."""
    reason: SparkColumn = F.when(F.col(CORRUPT).isNotNull(), F.lit(WRONG_FIELD_COUNT))
    for name in contract.required:
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


def record_outcomes(classified: DataFrame, header_lines: int = 1, open_quote_line: int | None = None,
                    blank_lines: list[int] | tuple[int, ...] = ()) -> DataFrame:
    """(record, source line, final error reason) for every record: the two questions that need the whole
    file (where does a record start, which duplicate wins), answered on five narrow columns.

    `header_lines`: physical lines up to the end of the header record (preamble included); `blank_lines`: the
    file's blank lines outside quoted values (the readers skip them), so `_source_line` is the physical line.

    `open_quote_line`: where a quoted value opens that is still open at the end of the file (the job's scan of
    the whole object). The reader took the rest of the file into that value, so the record covering that line
    is quarantined as unterminated_quote, whatever else it looks like, and takes no part in the dedupe."""
    narrow = classified.select(RECORD, SPAN, REASON, "ticket_id", "updated_at")
    lined = add_blank_lines(narrow.select("*", source_lines(narrow, header_lines).alias(LINE)), blank_lines,
                            header_lines)
    if open_quote_line is not None:
        covers = (F.col(LINE) <= open_quote_line) & (F.col(LINE) + F.col(SPAN) > open_quote_line)
        lined = lined.withColumn(REASON, F.when(covers, F.lit(UNTERMINATED_QUOTE)).otherwise(F.col(REASON)))
    dup = superseded(F.col(REASON).isNull())
    return lined.select(RECORD, LINE, F.when(dup, F.lit(DUPLICATE_SUPERSEDED)).otherwise(F.col(REASON)).alias(REASON))


def possible_reasons(contract: Contract, info: TypedColumns) -> list[str]:
    """Every error reason `classify` and the dedupe can give, so the counts are one aggregation."""
    reasons = [WRONG_FIELD_COUNT]
    for name in contract.required:
        if name in info.coerced_flags:
            reasons.append(f"unparseable_required:{name}")
        reasons.append(f"missing_required:{name}")
    return [*reasons, UNTERMINATED_QUOTE, DUPLICATE_SUPERSEDED]


def derive(df: DataFrame, run_id: str, source_key: str, ingested_at: str) -> DataFrame:
    hours = (F.unix_micros(F.col("resolved_at")) - F.unix_micros(F.col("created_at"))) / F.lit(3_600_000_000.0)
    return (
        df.withColumn("resolution_hours", F.round(hours, 4))
        .withColumn("_source_key", F.lit(source_key))
        .withColumn("_run_id", F.lit(run_id))
        .withColumn("_ingested_at", F.lit(ingested_at).cast("timestamp"))
        .withColumn("year", F.date_format("created_at", "yyyy"))
        .withColumn("month", F.date_format("created_at", "MM"))
    )


def output_columns(contract: Contract, mapping: HeaderMapping) -> list[str]:
    """Canonical columns in contract order, then unknown source columns (strings), then derived/lineage."""
    extras = [mapping.unknown[h] for h in mapping.source_headers if h in mapping.unknown]
    return [*contract.columns, *extras, "resolution_hours", *LINEAGE]


def parquet_write_options(contract: Contract, published: list[str]) -> dict[str, str]:
    """No Parquet dictionary for published columns whose values are (nearly) all distinct: the id, free texts,
    timestamps, derived numbers and line numbers. Parquet builds a dictionary per column and drops it when it
    grows too big; for these it always does, and building it cost a fifth of the write."""
    timestamps = [c.name for c in contract.columns_of_type("timestamp")]
    distinct = ["ticket_id", "subject", "description", "customer_email", *timestamps, "resolution_hours", LINE]
    return {f"parquet.enable.dictionary#{c}": "false" for c in distinct if c in published}


def quarantine_columns(mapping: HeaderMapping) -> list[SparkColumn]:
    """Original headers and values, then why and where."""
    cols = [F.col(raw(n)).alias(h) for h, n in zip(mapping.source_headers, mapping.output_names, strict=True)]
    return [*cols, F.col(REASON).alias("_error_reason"), F.col(LINE).alias("_source_line"),
            F.col(CORRUPT).alias("_raw_record")]
