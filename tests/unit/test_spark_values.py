"""Values in the Spark transform: enum labels with a rank prefix, decimal commas, the `_unparsed` and `extra` maps,
repeated list headers merged, and what a query sees of the maps."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from tests.unit.test_spark_transform import typed_rows
from ticketcore import spark_transform as tx
from ticketcore.contract import load_contract, map_headers
from ticketflow.ops.query import run_query, tickets_dir

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def contract():
    return load_contract()


def by_id(df, *columns):
    return {r["ticket_id"]: tuple(r[c] for c in columns) for r in df.select("ticket_id", *columns).collect()}


def test_enum_labels_with_a_numeric_prefix_match_after_the_prefix(spark, contract):
    rows = [("T1", "2024-01-01", "1 - Critical"), ("T2", "2024-01-01", "3 - Moderate"), ("T3", "2024-01-01", "P2"),
            ("T4", "2024-01-01", "P1 - Urgent"), ("T5", "2024-01-01", "2 normal"), ("T6", "2024-01-01", "7 - Unheard"),
            ("T7", "2024-01-01", "5 - Planning")]
    typed, _, _ = typed_rows(spark, contract, ["Ticket ID", "Created At", "Priority"], rows)
    got = {k: v[0] for k, v in by_id(typed, "priority").items()}
    assert got == {"T1": "urgent", "T2": "medium", "T3": "high", "T4": "urgent", "T5": "medium",
                   "T6": "7_unheard", "T7": "5_planning"}
    # The Python rule agrees label by label.
    assert {r[0]: contract.columns["priority"].enum_value(r[2]) for r in rows} == got
    # ServiceNow's vocabulary (its profile) knows `Planning`.
    profiled = contract.with_profile("servicenow")
    typed, _, _ = typed_rows(spark, profiled, ["Ticket ID", "Created At", "Priority"], rows[-1:])
    assert typed.first()["priority"] == "low"


def test_decimal_comma_and_unreadable_scores_keep_their_text(spark, contract):
    rows = [("T1", "2024-01-01", "4,0"), ("T2", "2024-01-01", "2,5"), ("T3", "2024-01-01", "good"),
            ("T4", "2024-01-01", "4.0"), ("T5", "2024-01-01", "1,000"), ("T6", "2024-01-01", None),
            ("T7", "2024-01-01", " 9 "), ("T8", "2024-01-01", "3,00")]
    typed, info, _ = typed_rows(spark, contract, ["Ticket ID", "Created At", "CSAT"], rows)
    got = by_id(typed, "satisfaction_score", tx.UNPARSED, info.coerced_flags["satisfaction_score"])
    assert got == {
        "T1": (4, None, False),
        "T2": (None, {"satisfaction_score": "2,5"}, True),  # not an integer
        "T3": (None, {"satisfaction_score": "good"}, True),  # Zendesk's good/bad: not silently gone
        "T4": (4, None, False),
        "T5": (None, {"satisfaction_score": "1,000"}, True),  # thousands or decimal: not guessed
        "T6": (None, None, False),
        "T7": (None, {"satisfaction_score": " 9 "}, True),  # out of 1..5: the original text, spaces and all
        "T8": (3, None, False),
    }


def test_unreadable_timestamps_keep_their_text_too(spark, contract):
    rows = [("T1", "2024-01-01", "2024-01-02"), ("T2", "2024-01-01", "next tuesday")]
    typed, _, _ = typed_rows(spark, contract, ["Ticket ID", "Created At", "Updated At"], rows)
    got = by_id(typed, tx.UNPARSED)
    assert got == {"T1": (None,), "T2": ({"updated_at": "next tuesday"},)}


def test_unknown_columns_go_into_one_extra_map(spark, contract):
    headers = ["Ticket ID", "Created At", "Product Line", "Year", "", "Product-Line"]
    rows = [("T1", "2024-01-01", "Retail", "2023", "x", "dup"), ("T2", "2024-01-01", " N/A ", None, None, None)]
    typed, _, _ = typed_rows(spark, contract, headers, rows)
    got = by_id(typed, tx.EXTRA)
    # Keys: the mapping's names (a repeat of `product_line` is `product_line_2`, the empty header `column_5`);
    # values trimmed, missing-value tokens left out, no map on a row with none.
    assert got == {"T1": ({"product_line": "Retail", "year": "2023", "column_5": "x", "product_line_2": "dup"},),
                   "T2": (None,)}
    assert "product_line" not in typed.columns  # no column per unknown header


def test_a_file_without_unknown_columns_still_has_the_maps(spark, contract):
    typed, _, _ = typed_rows(spark, contract, ["Ticket ID", "Created At"], [("T1", "2024-01-01")])
    row = typed.first()
    assert (row[tx.EXTRA], row[tx.UNPARSED]) == (None, None)
    assert typed.schema[tx.EXTRA].dataType == tx.STRING_MAP == typed.schema[tx.UNPARSED].dataType


def test_repeated_list_headers_are_merged(spark, contract):
    headers = ["Ticket ID", "Created At", "Labels", "Labels", "Labels"]
    rows = [("T1", "2024-01-01", "billing", "VIP", None), ("T2", "2024-01-01", None, None, None),
            ("T3", "2024-01-01", None, "a;b", "c")]
    typed, _, _ = typed_rows(spark, contract, headers, rows)
    assert by_id(typed, "tags", tx.EXTRA) == {"T1": (["billing", "vip"], None), "T2": (None, None),
                                              "T3": (["a", "b", "c"], None)}


def test_zendesk_tags_split_on_spaces_with_its_profile(spark, contract):
    headers = ["Id", "Requester", "Requester id", "Via", "Created at", "Solved at", "Tags", "Priority", "Status"]
    mapping = map_headers(headers, contract)
    assert mapping.profile == "zendesk"
    rows = [("5000", "R", "900", "web", "2024-05-01T09:00:00Z", "2024-05-02T09:00:00Z", "billing vip", "normal",
             "solved")]
    typed, _, _ = typed_rows(spark, contract.with_profile("zendesk"), headers, rows)
    row = typed.first()
    assert (row["tags"], row["priority"], row["status"]) == (["billing", "vip"], "medium", "resolved")
    assert row[tx.EXTRA] == {"requester": "R"}  # lost to `Requester id` for customer_id, kept


def test_a_wide_file_keeps_its_custom_fields_in_one_map(spark, contract):
    custom = [f"Custom field (Field {i})" for i in range(1, 901)]
    headers = ["Issue key", "Issue id", "Summary", "Created", *custom]
    mapping = map_headers(headers, contract)
    assert mapping.profile == "jira" and len(mapping.unmapped) == 901  # `Issue id` too
    row = ("SUP-1", "10001", "Subject", "2024-01-01", *[f"v{i}" if i % 300 == 0 else None for i in range(1, 901)])
    typed, _, _ = typed_rows(spark, contract.with_profile("jira"), headers, [row])
    got = typed.select("ticket_id", tx.EXTRA).first()
    assert got["ticket_id"] == "SUP-1"
    assert got[tx.EXTRA] == {"issue_id": "10001", "custom_field_field_300": "v300", "custom_field_field_600": "v600",
                             "custom_field_field_900": "v900"}


def test_quarantine_keeps_the_original_headers_and_repeats_are_told_apart(spark, contract):
    headers = ["Ticket ID", "Created At", "Labels", "labels", "Notes"]
    mapping = map_headers(headers, contract)
    cols = tx.quarantine_columns(mapping)
    schema = ", ".join([*[f"{tx.raw(n)} string" for n in mapping.output_names], f"{tx.REASON} string",
                        f"{tx.LINE} int", f"{tx.CORRUPT} string"])
    df = spark.createDataFrame([("T1", "x", "a", "b", "n", "r", 2, None)], schema)
    out = df.select(*cols)
    assert out.columns == ["Ticket ID", "Created At", "Labels", "labels (4)", "Notes", "_error_reason",
                           "_source_line", "_raw_record", "_neutralised_columns"]
    assert tuple(out.first())[:5] == ("T1", "x", "a", "b", "n") and out.first()["_neutralised_columns"] == ""


# OWASP CSV injection: what a spreadsheet would run as a formula, and what it would not.
FORMULAS = ["=HYPERLINK(\"http://x.test\",\"click\")", "@SUM(A1:A9)", "+cmd|' /C calc'!A0", "-2+3+cmd", "\t=1",
            "\r=1", "-", "=", "-x"]
NOT_FORMULAS = ["-4", "-1.5", "-1,5", "plain", "a=b", " =1", "", "4-2", "T-1"]


def test_quarantine_cells_that_would_run_as_formulas_are_neutralised(spark, contract):
    headers = ["Ticket ID", "Created At", "=HYPERLINK(\"h\")", "Notes"]
    mapping = map_headers(headers, contract)
    schema = ", ".join([*[f"{tx.raw(n)} string" for n in mapping.output_names], f"{tx.REASON} string",
                        f"{tx.LINE} int", f"{tx.CORRUPT} string"])
    rows = [(f"T{i}", "2024-01-01", v, "n", "wrong_field_count", i + 2, v if i % 2 else None)
            for i, v in enumerate(FORMULAS + NOT_FORMULAS)]
    out = spark.createDataFrame(rows, schema).select(*tx.quarantine_columns(mapping)).collect()
    assert list(out[0].asDict()) == ["Ticket ID", "Created At", "'=HYPERLINK(\"h\")", "Notes", "_error_reason",
                                     "_source_line", "_raw_record", "_neutralised_columns"]
    for i, row in enumerate(out):
        original = (FORMULAS + NOT_FORMULAS)[i]
        cell, flagged = row[2], row["_neutralised_columns"].split(",") if row["_neutralised_columns"] else []
        if original in FORMULAS:
            assert cell == "'" + original and '=HYPERLINK("h")' in flagged, original
            # The original text is the cell without its first character, in the columns the row names.
            assert cell[1:] == original
            assert (row["_raw_record"] == "'" + original) == (i % 2 == 1) and ("_raw_record" in flagged) == (i % 2 == 1)
        else:
            assert cell == original and flagged == [], original


def test_the_published_columns_are_the_tables(contract):
    from infra.constructs.catalog import table_columns

    published = tx.output_columns(contract, map_headers(["Ticket ID", "Created At", "Colour"], contract))
    assert [name for name, _ in table_columns(contract)] == published
    assert dict(table_columns(contract))["extra"] == "map<string,string>"


def test_extra_and_unparsed_are_queryable_with_ticketflow_query(spark, contract, tmp_path):
    headers = ["Ticket ID", "Created At", "Product Line", "CSAT"]
    typed, _, _ = typed_rows(spark, contract, headers, [("T1", "2024-01-01", "Retail", "good"),
                                                        ("T2", "2024-01-01", None, "5")])
    published = typed.withColumn("resolution_hours", F.lit(None).cast("double"))
    for name in ("_source_key", "_run_id"):
        published = published.withColumn(name, F.lit("k"))
    published = published.withColumn("_ingested_at", F.current_timestamp())
    target = tickets_dir(tmp_path) / "year=2024" / "month=01"
    published.select(*tx.output_columns(contract, map_headers(headers, contract))).write.parquet(str(target))
    _, rows = run_query(tmp_path, "select ticket_id, extra['product_line'], _unparsed['satisfaction_score'], "
                                  "satisfaction_score from tickets order by ticket_id")
    assert rows == [("T1", "Retail", "good", None), ("T2", None, None, 5)]
