"""The Glue job on the file shapes spreadsheet and help-desk exports produce around the data: an Excel `sep=`
line, blank lines between records, header cells with line breaks, several empty trailing columns, very wide
headers. `_source_line` must be the physical line of the file where the record starts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from glue.ticket_etl_job import JobArgs, run
from ticketcore.dialect import detect_dialect

pytestmark = pytest.mark.spark


def run_job(spark, tmp_path: Path, data: bytes, with_inspect_dialect: bool = True) -> dict:
    source = tmp_path / "source.csv"
    source.write_bytes(data)
    dialect = json.dumps(detect_dialect(data).to_dict()) if with_inspect_dialect else None
    args = JobArgs(source=str(source), staging=str(tmp_path / "staging"), quarantine=str(tmp_path / "q"),
                   reports=str(tmp_path / "reports"), run_id="shapes", source_key="source.csv", dialect=dialect)
    return run(spark, args)


def lines_by_id(tmp_path: Path) -> dict[str, int]:
    table = ds.dataset(tmp_path / "staging" / "tickets", format="parquet", partitioning="hive").to_table()
    return dict(zip(table["ticket_id"].to_pylist(), table["_source_line"].to_pylist(), strict=True))


def quarantined(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "q" / "rows.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("with_inspect_dialect", [True, False])
def test_sep_line_blank_lines_and_a_two_line_header_keep_physical_line_numbers(spark, tmp_path, with_inspect_dialect):
    data = (
        b"sep=;\r\n"  # line 1
        b"\r\n"  # line 2
        b'Ticket ID;"Created\r\nAt";Description\r\n'  # lines 3-4
        b"T1;2024-01-02;one\r\n"  # line 5
        b"\r\n"  # line 6
        b'T2;2024-01-03;"two\r\n\r\nblank inside"\r\n'  # lines 7-9: the blank line 8 is data
        b"\r\n\r\n"  # lines 10-11
        b"T3;;no creation date\r\n"  # line 12: quarantined
        b"T4;2024-01-05;four\r\n"  # line 13
    )
    report = run_job(spark, tmp_path, data, with_inspect_dialect)
    assert (report["rows_read"], report["rows_valid"], report["rows_quarantined"]) == (4, 3, 1)
    assert lines_by_id(tmp_path) == {"T1": 5, "T2": 7, "T4": 13}
    [row] = quarantined(tmp_path)
    assert (row["Ticket ID"], row["_source_line"], row["_error_reason"]) == ("T3", "12", "missing_required:created_at")


def test_two_empty_trailing_columns_are_read_and_dropped(spark, tmp_path):
    data = (
        b"Ticket ID,Created,Subject,,\n"
        b"T1,2024-03-01,one,,\n"
        b"T2,2024-03-02,two,, \n"  # spaces only: nothing there
        b"T3,2024-03-03,three,,stray\n"  # a value in a column without a header: too wide
    )
    report = run_job(spark, tmp_path, data)
    assert report["dialect"]["trailing_fields"] == 2
    assert lines_by_id(tmp_path) == {"T1": 2, "T2": 3}
    [row] = quarantined(tmp_path)
    assert (row["Ticket ID"], row["_error_reason"], row["_raw_record"]) == ("T3", "wrong_field_count",
                                                                            "T3,2024-03-03,three,,stray")


def test_a_wide_export_of_1200_columns_runs(spark, tmp_path):
    # The job overflowed the JVM stack from about 750 columns (a left-deep sum over every column).
    extra = [f"Custom field (cf_{i})" for i in range(1200 - 3)]
    header = ["Ticket ID", "Created", "Description", *extra]
    rows = [[f"W-{n}", f"2024-02-0{n}T10:00:00Z", f"line one\nline two {n}", *([""] * len(extra))] for n in (1, 2)]
    rows[1][5] = "a value"
    path = tmp_path / "wide.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])
    report = run_job(spark, tmp_path, path.read_bytes())
    assert (report["rows_read"], report["rows_valid"]) == (2, 2)
    assert lines_by_id(tmp_path) == {"W-1": 2, "W-2": 4}  # each record spans two lines
