"""Compressed uploads, encodings decided from the whole file, and objects that are not uploads, through the
local runtime (the trigger, the real definition, inspect, the Glue script, validate, publish)."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import pytest

from tests.e2e.support import published_table, run_file
from ticketcore import layout

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

FIELD_CASES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "field-cases"
needs_field_cases = pytest.mark.skipif(not FIELD_CASES.is_dir(), reason=f"{FIELD_CASES} is absent here")

CSV = (
    "ticket_id,created_at,subject,priority\r\n"
    "Z-1,2024-07-01T08:00:00Z,Zoë\u2019s printer,low\r\n"
    "Z-2,2024-07-02T08:00:00Z,東京 VPN,high\r\n"
)


def subjects(runtime, key: str) -> dict[str, str]:
    table = published_table(runtime).to_pandas()
    rows = table[table._source_key == key]
    return dict(zip(rows.ticket_id, rows.subject, strict=True))


def report_of(runtime, name: str) -> dict:
    return json.loads(runtime.storage.read_bytes(layout.reports_prefix(name) + layout.RUN_REPORT))


def test_gzip_and_zip_uploads_are_published(runtime, tmp_path):
    gz = tmp_path / "export.csv.gz"
    gz.write_bytes(gzip.compress(CSV.encode()))
    name, desc = run_file(runtime, gz)
    assert desc["status"] == "SUCCEEDED"
    assert subjects(runtime, layout.RAW_PREFIX + gz.name) == {"Z-1": "Zoë\u2019s printer", "Z-2": "東京 VPN"}
    assert report_of(runtime, name)["source_text"]["compression"] == "gzip"
    # Neither the decompressed copy nor the staged files outlive the run.
    assert runtime.storage.list(layout.staging_prefix(name)) == []

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Tickets July.csv", CSV.replace("Z-", "ZIP-"))
    archive = tmp_path / "july.zip"
    archive.write_bytes(buffer.getvalue())
    name, desc = run_file(runtime, archive)
    assert desc["status"] == "SUCCEEDED"
    assert subjects(runtime, layout.RAW_PREFIX + archive.name) == {"ZIP-1": "Zoë\u2019s printer", "ZIP-2": "東京 VPN"}
    assert report_of(runtime, name)["source_text"]["zip_member"] == "Tickets July.csv"
    # Published under a name without the archive's suffix.
    assert any("/july-" in o.key for o in runtime.storage.list(layout.TICKETS_PREFIX))


def test_a_zip_of_two_files_fails_at_inspect_naming_them(runtime, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.csv", CSV)
        zf.writestr("b.csv", CSV)
    archive = tmp_path / "two.zip"
    archive.write_bytes(buffer.getvalue())
    name, desc = run_file(runtime, archive)
    assert desc["status"] == "FAILED"
    summary = runtime.summary(name)
    assert summary["failed_state"] == "InspectSource" and "holds 2 files (a.csv, b.csv)" in summary["cause"]


def test_other_objects_under_raw_are_skipped_recorded_and_shown(runtime, tmp_path, capsys):
    from ticketflow.ops.alerts import local_alerts, render_local_alerts

    sheet = tmp_path / "Q3.xlsx"
    sheet.write_bytes(b"PK\x03\x04 not really a workbook")
    upload = runtime.upload(sheet)
    assert upload.started == []
    [skipped] = upload.skipped
    assert skipped["reason"].startswith("not a CSV upload (a 'xlsx' file)")
    event = runtime.s3_event(upload.key, "00F")
    event["Records"][0]["s3"]["object"].update(key=layout.RAW_PREFIX + "empty-folder/", size=0)
    folder = runtime.deliver(event)  # the console's "Create folder": a key ending in /
    assert folder.skipped == [] and runtime.storage.list(layout.SKIPPED_PREFIX) == [
        runtime.storage.list(skipped["record"])[0]
    ]
    text = render_local_alerts(local_alerts(runtime.home, 20))
    assert f"{layout.RAW_PREFIX}Q3.xlsx ({sheet.stat().st_size} bytes): not a CSV upload (a 'xlsx' file)" in text


@needs_field_cases
@pytest.mark.parametrize(
    ("case", "expected", "fallback_lines"),
    [
        ("08_gzip_upload.csv.gz", {"GZ-006": "Synthetic subject 6"}, []),
        ("09_cp1252_after_head.csv", {"CP-0291": "Café order lost"}, []),
        (
            "10_utf8_one_cp1252_byte.csv",
            {"MX-001": "Müller & Søn invoice", "MX-002": "東京 office VPN", "MX-003": "Café refund",
             "MX-004": "Straße address change"},
            [4],
        ),
    ],
)
def test_field_cases_of_compression_and_encoding(runtime, case, expected, fallback_lines):
    name, desc = run_file(runtime, FIELD_CASES / case)
    assert desc["status"] == "SUCCEEDED"
    published = subjects(runtime, layout.RAW_PREFIX + case)
    assert {k: published[k] for k in expected} == expected
    assert not any("\ufffd" in s or "Ã" in s for s in published.values())
    encoding = report_of(runtime, name)["source_text"]["encoding"]
    assert encoding["fallback_line_numbers"] == fallback_lines
