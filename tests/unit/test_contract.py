from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticketcore.contract import (
    ContractError,
    SchemaError,
    header_keys,
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


@settings(deadline=None)
@given(st.text(max_size=40))
def test_normalise_header_is_idempotent_and_clean(raw):
    once = normalise_header(raw)
    assert normalise_header(once) == once
    assert not once.startswith("_") and not once.endswith("_")
    assert "__" not in once
    assert once == once.casefold()


WORDS = st.lists(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=8), min_size=1, max_size=4)


@settings(deadline=None)
@given(WORDS, st.lists(st.sampled_from([" ", "_", "-", ".", "/", "  ", " - ", "\t", "#", "(", ")"]), min_size=4,
                       max_size=4))
def test_normalise_header_ignores_separators_and_case(words, seps):
    joined = "".join(w + seps[i % len(seps)] for i, w in enumerate(words))
    assert normalise_header(joined) == normalise_header(" ".join(words))
    assert normalise_header(joined.upper()) == normalise_header(joined.casefold().upper())
    assert normalise_header(joined.casefold()) == normalise_header(joined)


@settings(deadline=None)
@given(st.text(max_size=30))
def test_normalise_header_is_never_empty_for_a_header_with_a_letter_or_digit(raw):
    if any(ch.isalnum() for ch in raw):
        assert normalise_header(raw) != ""
    # (NFKC can also turn a symbol into letters: `₨` -> `rs`.)


@settings(deadline=None)
@given(st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=12))
def test_header_keys_put_the_header_as_written_first(word):
    keys = header_keys(f"ticket.{word}")
    assert keys[0] == (normalise_header(f"ticket.{word}"), "as-is")
    assert (normalise_header(word), "prefix-stripped") in keys or normalise_header(word) == keys[0][0]


@settings(deadline=None)
@given(
    st.sampled_from(["Ticket ID", "ticket_id", "TicketID", "TICKET-ID", " ticket id "]),
    st.sampled_from(["Created_Date", "created at", "Creation Date", "Date Created"]),
)
def test_alias_variants_map_to_required_columns(tid, created):
    mapping = map_headers([tid, created, "Priority"], load_contract())
    assert mapping.canonical == {tid: "ticket_id", created: "created_at", "Priority": "priority"}


def test_unknown_columns_are_kept_under_normalised_names(contract):
    mapping = map_headers(["Ticket ID", "Created At", "Product Line", "Year"], contract)
    # Unknown columns live in the `extra` map, so a name the job derives (year) needs no renaming.
    assert mapping.unknown == {"Product Line": "product_line", "Year": "year"}
    assert mapping.output_names == ["ticket_id", "created_at", "product_line", "year"]
    assert [c.field for c in mapping.columns] == ["ticket_id", "created_at", None, None]


def test_schema_error_lists_every_missing_field_with_the_closest_headers(contract):
    with pytest.raises(SchemaError) as err:
        map_headers(["Tiket_ID", "Creatd", "Ticket_Priority"], contract)
    problems = err.value.problems
    assert len(problems) == 2
    assert "missing required column 'ticket_id'" in problems[0] and "'Tiket_ID'" in problems[0]
    assert "missing required column 'created_at'" in problems[1] and "'Creatd'" in problems[1]
    assert str(err.value).startswith("2 problem(s)")


def test_missing_required_column_names_it_and_the_headers_found(contract):
    with pytest.raises(SchemaError) as err:
        map_headers(["Ticket_ID", "First_Response_Time", "Ticket_Priority"], contract)
    assert "created_at" in str(err.value)
    assert err.value.problems == [p for p in err.value.problems if "created_at" in p]


def test_the_preferred_column_fills_the_field_and_the_other_is_kept_and_reported(contract):
    mapping = map_headers(["Ticket ID", "Created", "Created Date", "Closed At", "Resolved At"], contract)
    # created_at's aliases list `created` before `created_date`; `resolved_at` is the canonical name itself.
    assert mapping.canonical == {"Ticket ID": "ticket_id", "Created": "created_at", "Resolved At": "resolved_at"}
    assert mapping.unknown == {"Created Date": "created_date", "Closed At": "closed_at"}
    lost = {(n.header, n.field, n.preferred) for n in mapping.not_preferred}
    assert lost == {("Created Date", "created_at", "Created"), ("Closed At", "resolved_at", "Resolved At")}


def test_a_true_tie_is_refused_with_the_other_problems(contract):
    with pytest.raises(SchemaError) as err:
        map_headers(["fields.created", "properties.created", "Subject"], contract)
    # Both reach created_at only by taking a prefix off, at the same rank: the contract prefers neither.
    assert len(err.value.problems) == 2
    assert "['fields.created', 'properties.created'] could each be 'created_at'" in err.value.problems[0]
    assert "missing required column 'ticket_id'" in err.value.problems[1]


def test_repeated_headers_merge_for_lists_and_get_distinct_names_otherwise(contract):
    mapping = map_headers(["Ticket ID", "Created", "Labels", "Notes", "Labels", "Notes", "Labels"], contract)
    assert mapping.output_names == ["ticket_id", "created_at", "tags", "notes", "tags_2", "notes_2", "tags_3"]
    assert mapping.sources("tags") == ["tags", "tags_2", "tags_3"]
    assert [c.field for c in mapping.columns] == ["ticket_id", "created_at", "tags", None, "tags", None, "tags"]
    # A repeated header of a single-valued field: the first fills it, the repeat is kept.
    mapping = map_headers(["Ticket ID", "Created", "Subject", "Subject"], contract)
    assert mapping.output_names == ["ticket_id", "created_at", "subject", "subject_2"]
    assert mapping.sources("subject") == ["subject"]
    assert [(n.position, n.name, n.preferred) for n in mapping.not_preferred] == [(4, "subject_2", "Subject")]


def test_empty_header_cells_are_named_by_position(contract):
    mapping = map_headers(["Ticket ID", "", "Created", " ", "%%"], contract)
    assert mapping.output_names == ["ticket_id", "column_2", "created_at", "column_4", "column_5"]
    with pytest.raises(SchemaError, match="empty header"):
        map_headers(["", " "], contract)


@pytest.mark.parametrize(
    ("header", "field", "rule"),
    [
        ("createdAt", "created_at", "camelCase+exact"),
        ("LastModifiedDate", "updated_at", "camelCase+alias"),
        ("ticket.created_at", "created_at", "prefix-stripped+exact"),
        ("fields:updated", "updated_at", "prefix-stripped+alias"),
        ("Ticket Status", "status", "alias"),  # `ticket_status` is an alias as written
        ("Case Priority", "priority", "prefix-stripped+exact"),
        ("ticket.customerEmail", "customer_email", "camelCase+prefix-stripped+exact"),
        ("CRÉÉ LE", None, None),  # unknown, but its name survives (Unicode letters kept)
    ],
)
def test_headers_with_prefixes_and_camel_case_are_matched(contract, header, field, rule):
    mapping = map_headers(["Ticket ID", "Created", header], contract)
    column = mapping.columns[2]
    if field == "created_at":  # it competes with `Created` (alias as written wins)
        assert column.field is None and mapping.not_preferred[0].rule == rule
        assert map_headers(["Ticket ID", header], contract).columns[1].rule == rule
    else:
        assert (column.field, column.rule) == (field, rule)
    if field is None:
        assert column.name == "créé_le"


def test_header_mapping_to_dict_gives_every_position(contract):
    mapping = map_headers(["Ticket ID", "Created", "Colour", "Colour"], contract)
    out = mapping.to_dict()
    assert out["profile"] is None
    assert out["columns"][2] == {"position": 3, "header": "Colour", "name": "colour", "field": None, "rule": None,
                                 "matched": None}
    assert out["columns"][3]["name"] == "colour_2"
    assert out["columns"][0]["rule"] == "exact" and out["columns"][1]["rule"] == "alias"


# ---------------------------------------------------------------- source profiles


def test_the_contract_declares_the_profiles_of_common_help_desk_tools(contract):
    assert set(contract.profiles) >= {"jira", "servicenow", "zendesk", "freshdesk", "hubspot", "salesforce",
                                      "zammad", "osticket", "helpscout", "intercom"}


@pytest.mark.parametrize(
    ("headers", "profile"),
    [
        (["Summary", "Issue key", "Issue id", "Status", "Created", "Labels", "Labels"], "jira"),
        (["number", "opened_at", "short_description", "priority", "sys_updated_on", "resolved_at", "closed_at"],
         "servicenow"),
        (["Id", "Requester", "Requester id", "Subject", "Tags", "Via", "Created at", "Solved at"], "zendesk"),
        (["Ticket ID", "Subject", "Status", "Created time", "Resolved time", "Last update time", "Survey results"],
         "freshdesk"),
        (["Ticket ID", "Ticket name", "Pipeline", "Ticket status", "Create date", "Priority"], "hubspot"),
        (["Case Number", "Subject", "Status", "Date/Time Opened", "Case Origin"], "salesforce"),
        (["Number", "Title", "State", "Priority", "Group", "Owner", "Customer", "Created at"], "zammad"),
        (["Ticket Number", "Date Created", "Subject", "From", "From Email", "Help Topic"], "osticket"),
        (["Conversation Number", "Mailbox", "Customer Email", "Created At", "Status"], "helpscout"),
        (["Conversation ID", "Conversation started at", "Conversation rating", "State"], "intercom"),
        (["Ticket ID", "Created At", "Subject", "Status"], None),
    ],
)
def test_the_profile_is_detected_from_the_headers(contract, headers, profile):
    mapping = map_headers(headers, contract)
    assert mapping.profile == profile
    assert "ticket_id" in mapping.canonical.values() and "created_at" in mapping.canonical.values()


def test_jira_issue_key_is_the_ticket_id_and_labels_merge(contract):
    headers = ["Summary", "Issue key", "Issue id", "Created", "Labels", "Labels", "Sprint", "Sprint"]
    mapping = map_headers(headers, contract)
    assert mapping.profile == "jira"
    assert mapping.canonical["Issue key"] == "ticket_id"
    assert mapping.columns[1].rule == "profile:jira"
    assert [(n.header, n.field, n.preferred) for n in mapping.not_preferred] == [("Issue id", "ticket_id",
                                                                                    "Issue key")]
    assert mapping.sources("tags") == ["tags", "tags_2"]
    assert mapping.output_names[2] == "issue_id" and mapping.output_names[6:] == ["sprint", "sprint_2"]


def test_servicenow_prefers_resolved_at_and_reads_its_vocabulary(contract):
    headers = ["number", "opened_at", "priority", "state", "sys_updated_on", "closed_at", "resolved_at"]
    mapping = map_headers(headers, contract)
    assert mapping.profile == "servicenow"
    assert mapping.canonical == {"number": "ticket_id", "opened_at": "created_at", "priority": "priority",
                                 "state": "status", "sys_updated_on": "updated_at", "resolved_at": "resolved_at"}
    assert [(n.header, n.preferred) for n in mapping.not_preferred] == [("closed_at", "resolved_at")]
    profiled = contract.with_profile("servicenow")
    priority = profiled.columns["priority"]
    got = {label: priority.enum_value(label)
           for label in ["1 - Critical", "2 - High", "3 - Moderate", "4 - Low", "5 - Planning"]}
    assert got == {"1 - Critical": "urgent", "2 - High": "high", "3 - Moderate": "medium", "4 - Low": "low",
                   "5 - Planning": "low"}
    assert profiled.columns["status"].enum_value("On Hold") == "on_hold"
    # Without the profile, `planning` is no priority: the label's token is kept (and reported as unknown).
    assert contract.columns["priority"].enum_value("5 - Planning") == "5_planning"


def test_zendesk_vocabulary_and_space_separated_tags(contract):
    profiled = contract.with_profile("zendesk")
    assert profiled.columns["priority"].enum_value("normal") == "medium"
    assert profiled.columns["status"].enum_value("solved") == "resolved"
    assert profiled.columns["status"].enum_value("hold") == "on_hold"
    assert " " in profiled.columns["tags"].separators
    assert contract.columns["tags"].separators == (";", ",")  # the base contract is unchanged
    assert profiled.profile == "zendesk" and contract.profile is None


def test_a_profile_alias_wins_over_a_base_alias_of_another_column(contract):
    # `source` is the base contract's channel alias; HubSpot's too. `Ticket owner` is HubSpot's agent.
    mapping = map_headers(["Ticket ID", "Ticket name", "Pipeline", "Ticket status", "Create date", "Ticket owner"],
                          contract)
    assert mapping.profile == "hubspot"
    assert mapping.canonical["Ticket name"] == "subject"
    assert mapping.canonical["Ticket owner"] == "agent"
    assert mapping.canonical["Create date"] == "created_at"


@pytest.mark.parametrize(
    ("label", "expected"),
    [("P1 - Urgent", "urgent"), ("2 normal", "medium"), ("P2", "high"), ("(3) Low", "low"), ("Critical", "urgent"),
     ("7 - Unheard", "7_unheard"), ("", None)],
)
def test_enum_labels_with_a_numeric_prefix(contract, label, expected):
    assert contract.columns["priority"].enum_value(label) == expected


MINIMAL = """
columns:
  ticket_id: {type: string, required: true}
  created_at: {type: timestamp, required: true}
  updated_at: {type: timestamp}
  resolved_at: {type: timestamp}
  status: {type: enum, values: {open: [open]}}
"""


def test_profiles_must_name_real_columns_of_the_right_type():
    with pytest.raises(ContractError, match="profile 'x' aliases names unknown column 'nope'"):
        parse_contract(MINIMAL + "profiles:\n  x: {signature: [a], aliases: {nope: [b]}}\n")
    with pytest.raises(ContractError, match="values needs an enum column, 'ticket_id' is not"):
        parse_contract(MINIMAL + "profiles:\n  x: {signature: [a], values: {ticket_id: {a: [b]}}}\n")
    with pytest.raises(ContractError, match="declares no signature"):
        parse_contract(MINIMAL + "profiles:\n  x: {aliases: {status: [b]}}\n")
    # A profile alias that is another column's canonical name would make a header fill two fields.
    with pytest.raises(ContractError, match=r"profile 'x'.*both"):
        parse_contract(MINIMAL + "profiles:\n  x: {signature: [a], aliases: {status: [ticket_id]}}\n")
    ok = parse_contract(MINIMAL + "profiles:\n  x: {signature: [a, b], aliases: {status: [State]}}\n")
    assert ok.profiles["x"].signature == ("a", "b") and ok.profiles["x"].min_matches == 2
    assert map_headers(["ticket_id", "created_at", "a", "b", "State"], ok).canonical["State"] == "status"
    assert map_headers(["ticket_id", "created_at", "a", "State"], ok).profile is None  # one signature header


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
