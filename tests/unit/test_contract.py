from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketcore.contract import (
    ContractError,
    SchemaError,
    load_contract,
    map_headers,
    normalise_header,
    parse_contract,
)


@pytest.fixture(scope="module")
def contract():
    return load_contract()


def test_default_contract_declares_the_canonical_columns(contract):
    assert contract.required == ["ticket_id", "created_at"]
    assert contract.columns["priority"].synonym_map()["p1"] == "urgent"
    assert contract.columns["priority"].synonym_map()["highest"] == "urgent"
    assert contract.columns["priority"].synonym_map()["p2"] == "high"
    assert contract.columns["priority"].synonym_map()["p4"] == "low"
    assert contract.columns["status"].synonym_map()["pending_customer_response"] == "pending"
    assert contract.columns["status"].synonym_map()["in_progress"] == "in_progress"
    assert contract.columns["satisfaction_score"].type == "integer"
    assert (contract.columns["satisfaction_score"].min, contract.columns["satisfaction_score"].max) == (1, 5)
    assert {e.type for e in contract.expectations} >= {"not_null", "unique", "in_set", "row_count_reconciles"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\ufeffTicket ID ", "ticket_id"),
        ("Ticket_ID", "ticket_id"),
        ("CSAT-Score", "csat_score"),
        ("  Created   Date", "created_date"),
        ("Ünïcode Näme", "ünïcode_näme"),
        ("__x__", "x"),
    ],
)
def test_normalise_header(raw, expected):
    assert normalise_header(raw) == expected


@given(st.text(max_size=40))
def test_normalise_header_is_idempotent_and_clean(raw):
    once = normalise_header(raw)
    assert normalise_header(once) == once
    assert not once.startswith("_") and not once.endswith("_")
    assert "__" not in once
    assert once == once.casefold()


@given(
    st.sampled_from(["Ticket ID", "ticket_id", "TicketID", "TICKET-ID", " ticket id "]),
    st.sampled_from(["Created_Date", "created at", "Creation Date", "Date Created"]),
)
def test_alias_variants_map_to_required_columns(tid, created):
    mapping = map_headers([tid, created, "Priority"], load_contract())
    assert mapping.canonical == {tid: "ticket_id", created: "created_at", "Priority": "priority"}


def test_unknown_columns_are_kept_under_normalised_names(contract):
    mapping = map_headers(["Ticket ID", "Created At", "Product Line", "Year"], contract)
    assert mapping.unknown == {"Product Line": "product_line", "Year": "year_source"}
    assert mapping.output_names == ["ticket_id", "created_at", "product_line", "year_source"]


def test_missing_required_column_names_it_and_the_headers_found(contract):
    with pytest.raises(SchemaError) as err:
        map_headers(["Ticket_ID", "First_Response_Time", "Ticket_Priority"], contract)
    assert "created_at" in str(err.value)
    assert "First_Response_Time" in str(err.value)


def test_two_columns_on_one_canonical_name_is_an_error(contract):
    with pytest.raises(SchemaError, match=r"duplicate mapping.*created_at"):
        map_headers(["Ticket ID", "Created", "Created Date"], contract)


def test_duplicate_headers_are_named(contract):
    with pytest.raises(SchemaError, match=r"duplicate headers \['Notes'\]"):
        map_headers(["Ticket ID", "Created", "Notes", "Notes"], contract)


def test_contract_rejects_clashing_aliases():
    text = """
columns:
  a: {type: string, aliases: [x]}
  b: {type: string, aliases: [X]}
"""
    with pytest.raises(ContractError, match="both 'a' and 'b'"):
        parse_contract(text)


def test_contract_rejects_unknown_types_and_severities():
    with pytest.raises(ContractError, match="unknown type"):
        parse_contract("columns:\n  a: {type: float}\n")
    with pytest.raises(ContractError, match="unknown severity"):
        parse_contract(
            "columns:\n  a: {type: string}\nexpectations:\n  - {type: not_null, column: a, severity: fatal}\n"
        )


def test_contract_must_keep_the_columns_the_pipeline_is_built_on():
    with pytest.raises(ContractError, match=r"column 'ticket_id' \(string\) is missing.*'resolved_at' \(timestamp\)"):
        parse_contract("columns: {}\n")
    default = (Path(__file__).resolve().parents[2] / "contracts" / "support_tickets.yaml").read_text()
    with pytest.raises(ContractError, match="column 'updated_at' must be timestamp, not string"):
        parse_contract(default.replace("  updated_at:\n    type: timestamp", "  updated_at:\n    type: string"))
    with pytest.raises(ContractError, match="column 'created_at' must be required"):
        parse_contract(default.replace("  created_at:\n    type: timestamp\n    required: true",
                                       "  created_at:\n    type: timestamp"))
    assert parse_contract(default).columns["ticket_id"].required
