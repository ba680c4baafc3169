"""`ticketflow inspect`: the onboarding report of an export, and the contract overlay it writes."""

from __future__ import annotations

import gzip
import json

import boto3
import pytest
from moto import mock_aws

from ticketcore.contract import load_contract, map_headers
from ticketflow import cli
from ticketflow.ops.onboard import InspectInputError, contract_overlay, inspect_export, read_target

CONTRACT = load_contract()
EXPORT = (
    "sep=;\r\n"
    "Case Number;Date/Time Opened;Subject;Priority;Status;Story Points\r\n"
    "00001001;03/14/2024 2:15 PM;Printer jam;High;New;3\r\n"
    "00001002;03/15/2024 9:05 AM;VPN down;Low;Closed;5\r\n"
)


def test_report_names_dialect_mapping_rules_unmapped_headers_and_readings(tmp_path):
    path = tmp_path / "cases.csv"
    path.write_bytes(EXPORT.encode())
    doc = inspect_export(str(path), CONTRACT, with_preview=False)
    assert doc["problems"] == []
    assert (doc["dialect"]["delimiter"], doc["dialect"]["preamble_lines"]) == (";", 1)
    fields = {c["header"]: c["field"] for c in doc["columns"]}
    assert fields["Case Number"] == "ticket_id" and fields["Date/Time Opened"] == "created_at"
    assert fields["Story Points"] is None
    assert all(c["rule"] for c in doc["columns"] if c["field"])
    created = doc["timestamps"]["created_at"]
    assert created["examples"][0] == ["03/14/2024 2:15 PM", "2024-03-14T14:15:00+00:00"]
    assert "month-first" in created["reason"] or "MM/DD" in created["label"]
    assert doc["sample"] == {"records": 2, "whole_file": True}


def test_a_compressed_export_is_read_through_its_compression(tmp_path):
    path = tmp_path / "cases.csv.gz"
    path.write_bytes(gzip.compress(EXPORT.encode()))
    doc = inspect_export(str(path), CONTRACT, with_preview=False)
    assert (doc["compression"], doc["problems"], doc["sample"]["records"]) == ("gzip", [], 2)


def test_a_file_the_inspect_step_refuses_lists_every_problem(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"Subject,Body\nx,y\n")
    doc = inspect_export(str(path), CONTRACT, with_preview=False)
    assert len(doc["problems"]) >= 2 and any("ticket_id" in p for p in doc["problems"])
    assert any("created_at" in p for p in doc["problems"])
    assert "x" not in json.dumps(doc["problems"]).replace("exist", "")  # headers, never cell values


def test_targets_that_cannot_be_read(tmp_path):
    with pytest.raises(InspectInputError, match="is a directory"):
        read_target(str(tmp_path))
    with pytest.raises(InspectInputError, match="no such file"):
        read_target(str(tmp_path / "missing.csv"))


@mock_aws
def test_an_s3_object_is_read_by_a_ranged_get():
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="exports")
    s3.put_object(Bucket="exports", Key="in/cases.csv", Body=EXPORT.encode())
    upload = read_target("s3://exports/in/cases.csv", limit=40, s3_client=s3)
    assert (upload.name, upload.raw, upload.complete) == ("cases.csv", EXPORT.encode()[:40], False)
    assert read_target("s3://exports/in/cases.csv", s3_client=s3).complete is True


def test_overlay_maps_a_header_once_the_user_assigns_it(tmp_path):
    path = tmp_path / "cases.csv"
    path.write_bytes(EXPORT.encode())
    doc = inspect_export(str(path), CONTRACT, with_preview=False)
    overlay = contract_overlay(doc, str(CONTRACT.source_path), CONTRACT)
    assert '  - "Story Points"' in overlay
    # GIVEN the user moves the header into a field's aliases
    edited = overlay.replace("  satisfaction_score: {aliases: []}", '  satisfaction_score: {aliases: ["Story Points"]}')
    (tmp_path / "overlay.yaml").write_text(edited, encoding="utf-8")
    contract = load_contract(tmp_path / "overlay.yaml")
    # THEN the overlay's alias maps it, and everything the base contract had is still there
    mapping = map_headers(["Ticket ID", "Created", "Story Points"], contract)
    assert mapping.canonical == {"Ticket ID": "ticket_id", "Created": "created_at",
                                 "Story Points": "satisfaction_score"}
    assert contract.columns["satisfaction_score"].aliases[0] == "Story Points"
    assert set(contract.columns) == set(CONTRACT.columns)
    assert len(contract.expectations) == len(CONTRACT.expectations)


def test_cli_exit_codes(tmp_path, capsys):
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(EXPORT.encode())
    bad.write_bytes(b"Subject\nx\n")
    assert cli.main(["inspect", str(good), "--no-preview", "--write-contract", str(tmp_path / "o.yaml")]) == 0
    out = capsys.readouterr().out
    assert "-> ticket_id" in out and "unmapped" in out and (tmp_path / "o.yaml").exists()
    assert cli.main(["inspect", str(bad), "--no-preview"]) == 1
    assert "REFUSED" in capsys.readouterr().out
    assert cli.main(["inspect", str(tmp_path / "nope.csv"), "--no-preview"]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.spark
def test_preview_runs_the_glue_job_on_the_sample(tmp_path, spark):
    path = tmp_path / "cases.csv"
    path.write_bytes((EXPORT + "00001003;;No date;Low;New;1\r\n").encode())
    doc = inspect_export(str(path), CONTRACT)
    preview = doc["preview"]
    assert (preview["rows_read"], preview["rows_valid"], preview["rows_quarantined"]) == (3, 2, 1)
    assert preview["quarantined_by_reason"] == {"missing_required:created_at": 1}


def test_a_refused_export_gets_an_overlay_that_makes_it_map(tmp_path, capsys):
    # GIVEN an export whose headers the contract does not know (a new user's tool), priorities Sev1..Sev4
    path = tmp_path / "legacy.csv"
    path.write_text("Ref,Opened On,Headline,Urgency\nL-1,2024-03-01 10:00,printer,Sev1\n")
    overlay_path = tmp_path / "legacy.yaml"
    # WHEN it is inspected with --write-contract: refused, and the overlay is written all the same
    assert cli.main(["inspect", str(path), "--no-preview", "--write-contract", str(overlay_path)]) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "--write-contract" in out and f"contract overlay written to {overlay_path}" in out
    overlay = overlay_path.read_text()
    assert all(f'  - "{h}"' in overlay for h in ("Ref", "Opened On", "Headline", "Urgency"))
    assert "Required and not found yet: ticket_id, created_at." in overlay
    # THEN assigning the headers (and the priority synonyms) in it makes the file map
    edited = (overlay.replace("  ticket_id: {aliases: []}", '  ticket_id: {aliases: ["Ref"]}')
              .replace("  created_at: {aliases: []}", '  created_at: {aliases: ["Opened On"]}')
              .replace("  priority: {aliases: []}",
                       '  priority: {aliases: ["Urgency"], values: {urgent: [sev1], low: [sev4]}}'))
    overlay_path.write_text(edited)
    contract = load_contract(overlay_path)
    assert map_headers(["Ref", "Opened On", "Headline", "Urgency"], contract).canonical == {
        "Ref": "ticket_id", "Opened On": "created_at", "Urgency": "priority"}  # Headline stays in `extra`
    # an enum's values add synonyms to the base's, they do not replace them
    priority = contract.columns["priority"]
    assert priority.enum_value("Sev1") == "urgent" and priority.enum_value("p4") == "low"
    assert set(priority.values) == set(CONTRACT.columns["priority"].values)
    assert cli.main(["inspect", str(path), "--no-preview", "--contract", str(overlay_path)]) == 0


@pytest.mark.spark
def test_preview_says_when_validation_would_fail_on_enum_values(tmp_path, spark, capsys):
    path = tmp_path / "sev.csv"
    path.write_text("Ticket ID,Created At,Priority,Status\nS-1,2024-03-01,Sev1,open\nS-2,2024-03-02,high,triage\n")
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "priority: 1 values outside the contract's set ['sev1']: validation would FAIL (DataQualityError)" in out
    assert "status: 1 values outside the contract's set ['triage']: kept, reported as a warning" in out
