"""Each transform function on small DataFrames built here; values asserted, not only counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pyspark.sql import functions as F

from ticketcore import spark_transform as tx
from ticketcore.contract import DEFAULT_CONTRACT_PATH as CONTRACT_FILE
from ticketcore.contract import ContractError, load_contract, map_headers, parse_contract
from ticketcore.timeformats import choose_format, evidence_of

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def contract():
    return load_contract()


def frame(spark, headers, rows, contract):
    """A DataFrame shaped like the job's read: raw string columns, corrupt column, lines."""
    mapping = map_headers(headers, contract)
    data = [(*r, None) for r in rows]
    df = spark.createDataFrame(data, tx.source_schema(mapping))
    return tx.blank_missing(tx.with_source_lines(df), contract), mapping


def typed_rows(spark, contract, headers, rows):
    base, mapping = frame(spark, headers, rows, contract)
    formats = {
        c.name: choose_format(
            c.name,
            evidence_of(
                [r[headers.index(h)] for r in rows for h in headers if mapping.canonical.get(h) == c.name]
            ),
            contract.ambiguous_date_order,
        )
        for c in contract.columns_of_type("timestamp")
    }
    typed, info = tx.type_columns(base, contract, mapping, formats)
    return typed, info, formats


def test_missing_tokens_and_padding_become_null(spark, contract):
    base, _ = frame(
        spark,
        ["Ticket ID", "Created At", "Agent"],
        [
            (" T1 ", "2024-01-01", " NULL "),
            ("T2", "2024-01-01", "n/a"),
            ("T3", "2024-01-01", " - "),
            ("T4", "2024-01-01", " Ann  Lee "),
        ],
        contract,
    )
    got = {r["_v_ticket_id"]: r["_v_agent"] for r in base.collect()}
    assert got == {"T1": None, "T2": None, "T3": None, "T4": "Ann  Lee"}


def test_source_lines_count_quoted_newlines(spark, contract):
    base, _ = frame(
        spark,
        ["Ticket ID", "Created At", "Description"],
        [("T1", "2024-01-01", "one\ntwo\nthree"), ("T2", "2024-01-01", "x"), ("T3", "2024-01-01", None)],
        contract,
    )
    lines = {r["_v_ticket_id"]: r[tx.LINE] for r in base.collect()}
    assert lines == {"T1": 2, "T2": 5, "T3": 6}


def test_timestamps_iso_variants_are_utc(spark, contract):
    typed, info, _ = typed_rows(
        spark,
        contract,
        ["Ticket ID", "Created At"],
        [
            ("A", "2024-03-05T14:03:11Z"),
            ("B", "2024-03-05 14:03:11.250+02:00"),
            ("C", "2024-03-05"),
            ("D", "2023-06-01 7:29"),
            ("E", "not a date"),
        ],
    )
    got = {r["ticket_id"]: r["created_at"] for r in typed.collect()}
    utc = lambda *a: datetime(*a, tzinfo=UTC).replace(tzinfo=None)  # noqa: E731 - Spark returns naive local=UTC
    assert got["A"] == utc(2024, 3, 5, 14, 3, 11)
    assert got["B"] == utc(2024, 3, 5, 12, 3, 11, 250000)
    assert got["C"] == utc(2024, 3, 5)
    assert got["D"] == utc(2023, 6, 1, 7, 29)
    assert got["E"] is None
    flags = {r["ticket_id"]: r[info.coerced_flags["created_at"]] for r in typed.collect()}
    assert flags == {"A": False, "B": False, "C": False, "D": False, "E": True}


def test_day_first_column_is_read_day_first_everywhere(spark, contract):
    typed, _, formats = typed_rows(
        spark,
        contract,
        ["Ticket ID", "Created At"],
        [("A", "03/04/2024"), ("B", "25-12-2024 9:05"), ("C", "2024-01-02T00:00:00Z")],
    )
    assert formats["created_at"].date_order == "day_first"
    got = {r["ticket_id"]: r["created_at"] for r in typed.collect()}
    assert got["A"] == datetime(2024, 4, 3)
    assert got["B"] == datetime(2024, 12, 25, 9, 5)
    assert got["C"] == datetime(2024, 1, 2)


def test_ambiguous_column_uses_month_first_default(spark, contract):
    typed, _, formats = typed_rows(spark, contract, ["Ticket ID", "Created At"], [("A", "03/04/2024 7:00")])
    assert formats["created_at"].date_order == "month_first"
    assert typed.first()["created_at"] == datetime(2024, 3, 4, 7, 0)


def test_enums_integers_arrays_and_text(spark, contract):
    headers = [
        "Ticket ID",
        "Created At",
        "Status",
        "Priority",
        "CSAT Score",
        "Tags",
        "Customer Email",
        "Channel",
    ]
    typed, info, _ = typed_rows(
        spark,
        contract,
        headers,
        [
            (
                "A",
                "2024-01-01",
                "In Progress",
                "P1",
                "4.0",
                "Billing; URGENT ;",
                " Ann@Example.COM ",
                "Web Portal",
            ),
            ("B", "2024-01-01", "Pending Customer Response", "highest", "9", "a, b", None, "carrier pigeon"),
            ("C", "2024-01-01", "  awaiting-parts ", "lowest", "excellent", None, None, None),
        ],
    )
    rows = {r["ticket_id"]: r for r in typed.collect()}
    assert [rows[k]["status"] for k in "ABC"] == ["in_progress", "pending", "awaiting_parts"]
    assert [rows[k]["priority"] for k in "ABC"] == ["urgent", "urgent", "low"]
    assert [rows[k]["satisfaction_score"] for k in "ABC"] == [4, None, None]
    assert [rows[k][info.coerced_flags["satisfaction_score"]] for k in "ABC"] == [False, True, True]
    assert rows["A"]["tags"] == ["billing", "urgent"] and rows["B"]["tags"] == ["a", "b"]
    assert rows["C"]["tags"] is None
    assert rows["A"]["customer_email"] == "ann@example.com"
    assert rows["A"]["channel"] == "web" and rows["B"]["channel"] == "carrier_pigeon"


def test_classify_and_duplicates(spark, contract):
    headers = ["Ticket ID", "Created At", "Updated At"]
    typed, info, _ = typed_rows(
        spark,
        contract,
        headers,
        [
            ("T1", "2024-01-01", "2024-01-05"),  # line 2: superseded by the later update on line 4
            ("", "2024-01-01", None),  # line 3: missing id
            ("T1", "2024-01-01", "2024-01-09"),  # line 4: wins
            ("T2", "garbage", None),  # line 5: unparseable created_at
            ("T3", "2024-02-01", None),  # line 6: superseded (no updated_at: the last line wins)
            ("T3", "2024-02-01", None),  # line 7: wins
        ],
    )
    classified = tx.classify(typed, contract, info)
    valid = tx.supersede_duplicates(classified.where(F.col(tx.REASON).isNull()))
    final = classified.where(F.col(tx.REASON).isNotNull()).unionByName(valid)
    got = {r[tx.LINE]: r[tx.REASON] for r in final.collect()}
    assert got == {
        2: "duplicate_superseded",
        3: "missing_required:ticket_id",
        4: None,
        5: "unparseable_required:created_at",
        6: "duplicate_superseded",
        7: None,
    }


def test_values_longer_than_their_columns_limit_quarantine_the_row(spark, contract):
    # ticket_id's own max_length (255, in the contract file), the contract-wide max_field_length for the other
    # columns, named or not (lowered here so the test stays small). Lengths are characters, not bytes: "é" * 12
    # is 24 bytes and fits a limit of 12.
    small = replace(contract, max_field_length=12)
    assert (contract.field_limit("ticket_id"), small.field_limit("subject"), small.field_limit(None)) == (255, 12, 12)
    headers = ["Ticket ID", "Created At", "Subject", "Shoe Size"]
    typed, info, _ = typed_rows(spark, small, headers, [
        ("A" * 255, "2024-01-01", "é" * 12, "42"),        # line 2: every value at its limit
        ("B" * 256, "2024-01-01", "ok", "42"),             # line 3: the id is one character too long
        ("C", "2024-01-01", "x" * 13, "42"),               # line 4: the subject
        ("D", "2024-01-01", "ok", "9" * 13),               # line 5: a column the contract does not name
        ("E" * 300, "2024-01-01", "y" * 50, "9" * 13),     # line 6: the first too-long column is the reason
    ])
    got = {r[tx.LINE]: r[tx.REASON] for r in tx.classify(typed, small, info).collect()}
    assert got == {2: None, 3: "field_too_long:ticket_id", 4: "field_too_long:subject", 5: "field_too_long:extra",
                   6: "field_too_long:ticket_id"}


def test_a_contract_refuses_a_length_limit_that_is_not_a_positive_whole_number(tmp_path):
    text = (CONTRACT_FILE.read_text(encoding="utf-8")
            .replace("max_length: 255", "max_length: 0"))
    with pytest.raises(ContractError, match=r"column 'ticket_id' max_length must be a positive whole number.*0"):
        parse_contract(text, "c.yaml")
    text = CONTRACT_FILE.read_text(encoding="utf-8").replace("max_field_length: 1048576", "max_field_length: 1e6")
    with pytest.raises(ContractError, match="max_field_length must be a positive whole number"):
        parse_contract(text, "c.yaml")


def test_derive_resolution_hours_and_partitions(spark, contract):
    typed, _, _ = typed_rows(
        spark,
        contract,
        ["Ticket ID", "Created At", "Resolved At"],
        [("A", "2024-03-05T10:00:00Z", "2024-03-06T12:30:00Z")],
    )
    row = tx.derive(typed, "run-1", "support_ticket/raw/x.csv", "2026-01-01T00:00:00Z").first()
    assert row["resolution_hours"] == 26.5
    assert (row["year"], row["month"], row["_run_id"], row["_source_key"]) == (
        "2024",
        "03",
        "run-1",
        "support_ticket/raw/x.csv",
    )


def test_trailing_field_is_dropped_and_a_value_there_makes_the_record_too_wide(spark, contract):
    mapping = map_headers(["Ticket ID", "Created At", "Subject"], contract)
    schema = tx.source_schema(mapping, trailing_delimiter=True)
    assert schema.names == ["_raw_ticket_id", "_raw_created_at", "_raw_subject", tx.TRAILING, tx.CORRUPT]
    rows = [
        ("T1", "2024-01-01", "plain", None, None),  # `T1,2024-01-01,plain,`: the usual empty trailing field
        ("T2", "2024-01-01", "padded", "  ", None),  # spaces only: nothing there
        ("T3", "2024-01-01", 'say "hi", twice\nagain', "extra", None),  # a value without a header: too wide
        ("T4", None, None, None, "T4,x,,,,"),  # already too wide for Spark: its own text is kept
    ]
    out = tx.drop_trailing_field(spark.createDataFrame(rows, schema), ",")
    assert out.columns == ["_raw_ticket_id", "_raw_created_at", "_raw_subject", tx.CORRUPT]
    got = {r["_raw_ticket_id"]: r[tx.CORRUPT] for r in out.collect()}
    assert got == {"T1": None, "T2": None, "T3": 'T3,2024-01-01,"say ""hi"", twice\nagain",extra', "T4": "T4,x,,,,"}
    # The rebuilt text keeps the value's newline, so the record still spans two lines.
    spans = {r["_raw_ticket_id"]: r[tx.SPAN] for r in tx.with_record_index(out).collect()}
    assert spans == {"T1": 1, "T2": 1, "T3": 2, "T4": 1}


def test_strip_record_cr_takes_one_cr_off_the_last_field_and_the_corrupt_text(spark, contract):
    mapping = map_headers(["Ticket ID", "Created At", "Tags"], contract)
    rows = [
        ("T1", "a\rb", "vip\r", None),  # "\r\n"-ended: its "\r" is left on the last field
        ("T2", "x", "\r", None),  # an empty last field on a "\r\n"-ended line
        ("T3", "x", "two\r\nlines", None),  # a "\r\n" inside a quoted value is data
        ("T4", "x", "vip\r\r", None),  # only one "\r" belongs to the line ending
        ("T5", None, None, "T5,x,y,z\r"),  # too wide: its raw text has the "\r" too
        ("T6", "x", None, None),
    ]
    out = tx.strip_record_cr(spark.createDataFrame(rows, tx.source_schema(mapping)))
    got = {r["_raw_ticket_id"]: (r["_raw_created_at"], r["_raw_tags"], r[tx.CORRUPT]) for r in out.collect()}
    assert got == {
        "T1": ("a\rb", "vip", None),
        "T2": ("x", None, None),
        "T3": ("x", "two\r\nlines", None),
        "T4": ("x", "vip\r", None),
        "T5": (None, None, "T5,x,y,z"),
        "T6": ("x", None, None),
    }
    # With a trailing delimiter the "\r" is on the extra field, the last one read.
    trailing = tx.source_schema(mapping, trailing_delimiter=True)
    out = tx.strip_record_cr(spark.createDataFrame([("T1", "x", "vip", "\r", None)], trailing))
    assert tuple(out.first()) == ("T1", "x", "vip", None, None)


def test_record_outcomes_quarantine_the_record_holding_an_open_quote(spark, contract):
    headers = ["Ticket ID", "Created At", "Updated At", "Description"]
    rows = [
        ("T1", "2024-01-01", "2024-01-02", "x"),  # line 2: would be superseded by line 4's later update
        ("T2", "2024-01-01", None, "one\ntwo"),  # lines 3-4
        ("T1", "2024-01-01", "2024-01-09", "open\nand the rest\nof the file"),  # lines 5-7: its quote never closed
    ]
    typed, info, _ = typed_rows(spark, contract, headers, rows)
    classified = tx.classify(typed, contract, info)

    def outcomes(open_quote_line):
        got = tx.record_outcomes(classified, open_quote_line=open_quote_line).collect()
        return {r[tx.LINE]: r[tx.REASON] for r in got}

    assert outcomes(None) == {2: "duplicate_superseded", 3: None, 5: None}
    # The quote may open on any line of the record (here its second): the record covering that line goes.
    # It takes no part in the dedupe, so line 2 is published.
    for line in (5, 6):
        assert outcomes(line) == {2: None, 3: None, 5: "unterminated_quote"}


def test_no_parquet_dictionary_for_distinct_valued_columns(contract):
    published = tx.output_columns(contract, map_headers(["Ticket ID", "Created At", "Priority", "Tags"], contract))
    options = tx.parquet_write_options(contract, published)
    assert set(options) == {f"parquet.enable.dictionary#{c}" for c in (
        "ticket_id", "subject", "description", "customer_email", "created_at", "updated_at", "resolved_at",
        "first_response_at", "resolution_hours", "_source_line")}
    assert set(options.values()) == {"false"}
    # Enumerations and other repeating values keep their dictionaries.
    assert not {"parquet.enable.dictionary#priority", "parquet.enable.dictionary#tags"} & set(options)
