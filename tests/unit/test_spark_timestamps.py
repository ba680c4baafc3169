"""The Spark timestamp expressions against their pure-Python twin (`timeformats.parse_value`), value by value,
and the plausible-range rule through the Glue job (year 1 never fails a write)."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from pyspark.sql import functions as F

from glue.ticket_etl_job import JobArgs, configure, run
from ticketcore import spark_transform as tx
from ticketcore.contract import load_contract, map_headers
from ticketcore.timeformats import (
    TimestampSettings,
    choose_format,
    evidence_of,
    parse_value,
    read_micros,
    read_value,
    to_micros,
)

pytestmark = pytest.mark.spark
FIELD_CASES = Path(__file__).resolve().parents[3] / "shared" / "data" / "field-cases"

# Every shape, with edge cases of each rule: zones, 12 AM/PM, two-digit years either side of the pivot,
# fractions beyond microseconds, impossible dates and times, epochs in and out of range, ISO-looking text
# that Spark's cast would refuse, and values in no shape.
EXAMPLES = [
    "2024-01-03", "2024-1-3 2:15", "2024-01-03T14:15:00Z", "2024-01-03 14:15:00 UTC", "2024-01-03T14:15:00.1234567Z",
    "2024-01-03T14:15:00.5+05:30", "2024-01-03T14:15:00-0800", "2024-01-03T14:15:00+18:00", "2024-01-03T14:15:00+18:01",
    "2024-01-03T14:15:00+10:60", "2024-01-03T24:00:00", "2024-01-03T23:60", "2024-02-30", "2024-02-29 10:00",
    "2023-02-29", "0001-01-01 00:00:00", "0000-01-01", "9999-12-31 23:59:59", "2024-01-03T14:15Z", "2024-01-03T14:15z",
    "2024/01/03 14:15", "2024.01.03", "2024-01-03 02:15:00 PM", "2024-01-03 12:00 AM", "2024-01-03 12:00 p.m.",
    "2024-01-03 00:15 AM", "2024-01-03 13:15 PM", "2024-01-03 14:15 GMT", "2024-01-03 14:15 +05",
    "1/3/2024 2:15 PM", "01/03/2024 14:15:09", "13/01/2024", "1/13/2024 11:59:59 PM", "10.01.2024 14:00",
    "03-01-24", "03-01-69", "03-01-70", "31/12/99 23:59", "12/31/1999", "1/3/2024, 2:15 PM", "1/3/2024 2:15:00.250 PM",
    "08/Mar/24 2:15 PM", "08-Mar-2024", "8 March 2024 14:15", "Fri, 08 Mar 2024 14:15:00 GMT", "8th Mar 2024",
    "Mar 8, 2024", "March 8, 2024 2:15 PM", "SEPT 3, 2024", "sep 3 2024 9:05am", "Friday, March 8, 2024",
    "31 Feb 2024", "8 Mars 2024", "Mar 8, 24 12:30 AM",
    # the plain numeric shape (Spark's date pattern, not parts): impossible dates and clocks, every separator
    "31/02/2024", "29/02/2023", "1/3/2024 24:00", "1/3/2024 23:60", "1/3/2024 2:15:60", "1-3-2024T02:15",
    "1.3.2024 2:15:09", "0/3/2024", "1/0/2024", "12/31/0001", "1/3/2024 2:5", "1/3/2024 123:15",
    "1704291300", "1704291300000", "0", "631152000", "4102444800", "4102444799999", "99999999999", "99999999999999",
    "yesterday", "2024-13-01", "1/3", "", "   ", None, " 2024-01-03 ", "2024-01-03\n",
]


@pytest.fixture(scope="module")
def configured(spark):
    configure(spark)
    return spark


def choices(settings: TimestampSettings) -> list:
    """Readings that accept every shape: once per date order, and one of ISO and epochs only (the path
    without a shape column)."""
    every = choose_format("c", evidence_of([v for v in EXAMPLES if v and v.strip()]), settings)
    assert set(every.shapes) == {"iso", "ymd", "numeric", "named", "epoch"}
    return [
        replace(every, date_order="month_first"),
        replace(every, date_order="day_first"),
        choose_format("c", evidence_of(["2024-01-03", "1704291300"]), settings),
    ]


def spark_read(spark, values: list[str | None], choice) -> list[tuple[int | None, int | None]]:
    """(micros as read, micros after the range) per value, through the job's own typing steps."""
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    v = F.trim(F.col("v"))
    df = df.select("i", F.when(v != "", v).alias("v"))
    shape = None
    if tx.needs_shape_column(choice):
        df = tx.add_timestamp_shapes(df, {"v": (F.col("v"), choice)})
        shape = tx.shape_column(df, "v")
    read = tx.read_timestamp(F.col("v"), choice, shape)
    df = df.select("i", read.alias("read")).select(
        "i", F.unix_micros("read").alias("read"),
        F.unix_micros(F.when(tx.in_plausible_range(F.col("read"), choice), F.col("read"))).alias("bounded"),
    )
    rows = {r["i"]: (r["read"], r["bounded"]) for r in df.collect()}
    return [rows[i] for i in range(len(values))]


def python_read(value: str | None, choice) -> tuple[int | None, int | None]:
    text = None if value is None else value.strip(" ") or None
    read = read_micros(text, choice) if text else None
    bounded = parse_value(value, choice)
    return read, None if bounded is None else to_micros(bounded)


@pytest.mark.parametrize("pivot", [70, 50])
def test_spark_expression_equals_parse_value_on_every_shape(configured, pivot):
    settings = TimestampSettings(two_digit_year_pivot=pivot)
    for choice in choices(settings):
        got = spark_read(configured, EXAMPLES, choice)
        want = [python_read(v, choice) for v in EXAMPLES]
        mismatches = [(v, g, w) for v, g, w in zip(EXAMPLES, got, want, strict=True) if g != w]
        assert mismatches == [], choice.shapes
        # The table has values of each outcome (read, unreadable, out of range), so the comparison covers all.
        assert any(w[1] is not None for w in want) and any(w[0] is None for w in want)
        assert any(w[0] is not None and w[1] is None for w in want)


def test_known_values_read_as_expected(configured):
    choice = choose_format("c", evidence_of(EXAMPLES), TimestampSettings())
    expected = {
        "08/Mar/24 2:15 PM": datetime(2024, 3, 8, 14, 15, tzinfo=UTC),
        "Mar 8, 2024": datetime(2024, 3, 8, tzinfo=UTC),
        "1704291300000": datetime(2024, 1, 3, 14, 15, tzinfo=UTC),
        "1704291300": datetime(2024, 1, 3, 14, 15, tzinfo=UTC),
        "2024-01-03 12:00 AM": datetime(2024, 1, 3, tzinfo=UTC),
        "2024-01-03T14:15:00.5+05:30": datetime(2024, 1, 3, 8, 45, 0, 500000, tzinfo=UTC),
    }
    got = spark_read(configured, list(expected), choice)
    for (text, want), (_, bounded) in zip(expected.items(), got, strict=True):
        assert bounded == to_micros(want), text
        assert parse_value(text, choice) == want


def test_evidence_aggregation_equals_evidence_of(configured):
    values = [v for v in EXAMPLES if v is not None]
    df = configured.createDataFrame([(v,) for v in values], "v string")
    v = F.trim(F.col("v"))
    df = df.select(F.when(v != "", v).alias("v"))
    row = tx.timestamp_evidence(df, ["v"])
    assert row["__rows"] == len(values)
    assert tx.evidence_from_row(row, "v") == evidence_of(values)


def typed_frame(spark, rows: list[tuple[str, str, str]]):
    contract = load_contract()
    headers = ["ticket_id", "created_at", "resolved_at"]
    mapping = map_headers(headers, contract)
    df = spark.createDataFrame([(*r, None) for r in rows], tx.source_schema(mapping))
    base = tx.blank_missing(tx.with_source_lines(df), contract)
    formats = {
        c.name: choose_format(c.name, evidence_of([r[headers.index(c.name)] for r in rows]), contract.timestamps)
        if c.name in headers else choose_format(c.name, evidence_of([]), contract.timestamps)
        for c in contract.columns_of_type("timestamp")
    }
    typed, info = tx.type_columns(base, contract, mapping, formats)
    return tx.classify(typed, contract, info), info, contract


def test_out_of_range_is_null_for_optional_and_quarantined_for_required(configured):
    rows = [
        ("T1", "2024-09-01 08:00:00", "0001-01-01 00:00:00"),
        ("T2", "0001-01-01 00:00:00", "2024-09-01 18:00:00"),
        ("T3", "2024-09-01 08:00:00", "not a date"),
        ("T4", "1704291300", "2024-09-01 18:00:00"),
    ]
    classified, info, _ = typed_frame(configured, rows)
    flags = [*info.out_of_range_flags.values(), *info.coerced_flags.values()]
    # Only these columns: the read values (`_tread_*`) hold year 1, which Python's datetime cannot.
    got = {r["ticket_id"]: r for r in classified.select("ticket_id", "resolved_at", tx.REASON, *flags).collect()}
    assert got["T1"][tx.REASON] is None and got["T1"]["resolved_at"] is None
    assert got["T1"][info.out_of_range_flags["resolved_at"]] and not got["T1"][info.coerced_flags["resolved_at"]]
    assert got["T2"][tx.REASON] == "out_of_range_required:created_at"
    assert got["T3"][tx.REASON] is None and got["T3"][info.coerced_flags["resolved_at"]]
    assert not got["T3"][info.out_of_range_flags["resolved_at"]]
    assert got["T4"][tx.REASON] is None


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_year_one_never_fails_the_write(configured, tmp_path):
    rows = [["ticket_id", "created_at", "updated_at", "resolved_at"]]
    rows += [[f"T{i}", f"2024-09-{i:02d} 08:00:00", "", f"2024-09-{i:02d} 18:00:00"] for i in range(1, 9)]
    rows += [["Y1", "2024-09-10 08:00:00", "1500-06-01 00:00:00", "0001-01-01 00:00:00"],
             ["Y2", "0001-01-01 00:00:00", "", ""]]
    source = write_csv(tmp_path / "year_one.csv", rows)
    report = run(configured, JobArgs(source=str(source), staging=str(tmp_path / "s"), quarantine=str(tmp_path / "q"),
                                     reports=str(tmp_path / "r"), run_id="t"))
    assert report["rows_valid"] == 9 and report["quarantined_by_reason"] == {"out_of_range_required:created_at": 1}
    assert report["out_of_range"]["resolved_at"] == 1 and report["out_of_range"]["updated_at"] == 1
    table = ds.dataset(tmp_path / "s" / "tickets", format="parquet", partitioning="hive").to_table().to_pylist()
    y1 = next(r for r in table if r["ticket_id"] == "Y1")
    assert y1["resolved_at"] is None and y1["updated_at"] is None


def test_field_case_datetime_minvalue(configured, tmp_path):
    source = FIELD_CASES / "11_datetime_minvalue.csv"
    if not source.exists():
        pytest.skip(f"field case not found at {source} (../shared is absent here)")
    report = run(configured, JobArgs(source=str(source), staging=str(tmp_path / "s"), quarantine=str(tmp_path / "q"),
                                     reports=str(tmp_path / "r"), run_id="t"))
    assert report["rows_read"] == 60 and report["rows_valid"] == 60
    assert report["out_of_range"]["resolved_at"] == 1


def test_field_case_epoch_mix(configured, tmp_path):
    source = FIELD_CASES / "14_epoch_timestamps.csv"
    if not source.exists():
        pytest.skip(f"field case not found at {source} (../shared is absent here)")
    report = run(configured, JobArgs(source=str(source), staging=str(tmp_path / "s"), quarantine=str(tmp_path / "q"),
                                     reports=str(tmp_path / "r"), run_id="t"))
    assert report["rows_valid"] == 3
    assert "epoch" in report["timestamp_formats"]["created_at"]["shapes"]
    table = ds.dataset(tmp_path / "s" / "tickets", format="parquet", partitioning="hive").to_table().to_pylist()
    created = {r["ticket_id"]: r["created_at"].replace(tzinfo=UTC) for r in table}
    assert set(created.values()) == {datetime(2024, 1, 3, 14, 15, tzinfo=UTC)}
    assert read_value("1704377700000", choose_format("u", evidence_of(["1704377700000"]), "month_first")).status == "ok"
