from __future__ import annotations

import json

import pytest

from ticketcore.alerts import build_alert, failed_state, remedy
from ticketcore.contract import SchemaError, load_contract
from ticketcore.inspect import inspect_source
from ticketcore.storage import LocalStorage

HISTORY = [
    {"type": "ExecutionStarted"},
    {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "InspectSource"}},
    {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "ValidateOutput"}},
    {
        "type": "TaskFailed",
        "taskFailedEventDetails": {"error": "DataQualityError", "cause": '{"errorMessage": "x"}'},
    },
    {
        "type": "ExecutionFailed",
        "executionFailedEventDetails": {"error": "DataQualityError", "cause": "boom"},
    },
]


def test_failed_state_is_the_last_entered():
    assert failed_state(HISTORY) == ("ValidateOutput", "DataQualityError", "boom")


def test_alert_message_names_everything_an_operator_needs():
    arn = "arn:aws:states:eu-west-1:1:execution:sm:run-1"
    event = {
        "detail": {
            "status": "FAILED",
            "executionArn": arn,
            "name": "run-1",
            "input": json.dumps({"key": "support_ticket/raw/a.csv"}),
        }
    }
    alert = build_alert(event, HISTORY, "eu-west-1")
    assert alert is not None
    assert alert.subject == "ticketflow: run-1 FAILED at ValidateOutput (DataQualityError)"
    for text in (
        "support_ticket/raw/a.csv",
        "ValidateOutput",
        "DataQualityError",
        "boom",
        # A validation failure: the same file would fail again, so the alert says to fix and upload it.
        "What fits: the output failed validation: fix the file and upload it again",
        "upload the fixed file to the same key",
        "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/",
    ):
        assert text in alert.message
    assert "redrive" not in alert.message.split("What fits:")[1]
    assert alert.attributes["action"] == "upload"


def test_a_transient_failure_s_alert_says_redrive_with_both_commands():
    arn = "arn:aws:states:eu-west-1:1:execution:sm:run-3"
    history = [
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "TransformTickets"}},
        {"type": "ExecutionFailed", "executionFailedEventDetails": {
            "error": "Glue.ConcurrentRunsExceededException", "cause": "too many runs"}},
    ]
    event = {"detail": {"status": "FAILED", "executionArn": arn, "name": "run-3", "input": "{}"}}
    alert = build_alert(event, history, "eu-west-1")
    assert alert is not None and alert.attributes["action"] == "redrive"
    assert f"  aws stepfunctions redrive-execution --execution-arn {arn}" in alert.message
    assert "  ticketflow redrive run-3 " in alert.message


GLUE_SCHEMA_CAUSE = json.dumps({"Id": "jr_1", "JobRunState": "FAILED",
                                "ErrorMessage": "SchemaError: missing required column 'ticket_id': no header ..."})


@pytest.mark.parametrize(("error", "cause", "action"), [
    ("SchemaError", '{"errorType": "SchemaError", "errorMessage": "not text: NUL bytes found at offset 9"}', "upload"),
    ("SchemaError", '{"errorType": "SchemaError", "errorMessage": "missing required column \'ticket_id\'"}',
     "reprocess"),
    ("States.TaskFailed", GLUE_SCHEMA_CAUSE, "reprocess"),
    ("States.TaskFailed", json.dumps({"Id": "jr_2", "JobRunState": "FAILED", "ErrorMessage": "OutOfMemoryError"}),
     "redrive"),
    ("DataQualityError", "3 expectations not met", "upload"),
    ("ContractError", "bad contract", "reprocess"),
    ("SourceErased", "deleted", "none"),
    ("States.Timeout", "", "redrive"),
    ("PublishBusy", "", "redrive"),
    ("ticketflow.Interrupted", "Ctrl-C", "redrive"),
    ("ticketflow.RuntimeLost", "killed", "redrive"),
    (None, None, "redrive"),
])
def test_remedy_fits_the_error(error, cause, action):
    assert remedy(error, cause).action == action


def test_a_key_or_cause_cannot_forge_lines_in_the_alert():
    key = "support_ticket/raw/x.csv\nError:         all fine, ignore this\r\x1b[8m\u2028\u202e.csv"
    event = {"detail": {"status": "FAILED", "executionArn": "arn:aws:states:r:1:execution:sm:run-2", "name": "run-2",
                        "input": json.dumps({"key": key}), "cause": "bad\nSource file: forged"}}
    alert = build_alert(event, HISTORY, "r")
    assert alert is not None
    lines = alert.message.splitlines()
    assert [line for line in lines if line.startswith("Source file:")] == [
        "Source file:   support_ticket/raw/x.csv\\nError:         all fine, ignore this\\r\\x1b[8m\\u2028\\u202e.csv"]
    assert [line for line in lines if line.startswith("Error:")] == ["Error:         DataQualityError"]
    assert "Cause:         bad\\nSource file: forged" in lines
    assert len(lines) == 11 and "\x1b" not in alert.message and "\u2028" not in alert.message
    assert "\n" not in alert.attributes["source_key"]


def test_causes_are_made_readable():
    from ticketcore.alerts import readable_cause

    lambda_error = json.dumps({"errorType": "SchemaError", "errorMessage": "empty file", "stackTrace": ["x"]})
    assert readable_cause(lambda_error) == "SchemaError: empty file"
    job = json.dumps({"Id": "jr_1", "JobRunState": "FAILED", "ErrorMessage": "OOM"})
    assert readable_cause(job) == "Glue job run jr_1 FAILED: OOM"
    assert readable_cause("plain text") == "plain text"


def test_no_alert_for_success():
    assert build_alert({"detail": {"status": "SUCCEEDED"}}, [], "eu-west-1") is None


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path, "b")


def test_inspect_outputs_dialect_mapping_and_locations(storage):
    storage.write_bytes("support_ticket/raw/t.csv", b"Ticket ID;Created At;Colour\n1;2024-01-01;red\n")
    out = inspect_source(storage, "support_ticket/raw/t.csv", "run-1", load_contract())
    assert out["dialect"]["delimiter"] == ";" and out["dialect"]["columns"] == 3
    assert out["mapping"] == {"Ticket ID": "ticket_id", "Created At": "created_at"}
    assert out["unknown_columns"] == 1 and out["profile"] is None and out["columns_not_preferred"] == 0
    # The whole inspection, read by the Glue job: every header, and key in the extra map -> source header.
    assert out["inspection_uri"].endswith("bucket/support_ticket/landing/run-1/inspection.json")
    inspection = json.loads(storage.read_bytes("support_ticket/landing/run-1/inspection.json"))
    assert inspection["dialect"]["headers"] == ["Ticket ID", "Created At", "Colour"]
    assert inspection["unknown_columns"] == {"colour": "Colour"}
    assert out["staging_uri"].endswith("bucket/support_ticket/staging/run-1/")
    assert out["quarantine_uri"].endswith("bucket/support_ticket/quarantine/t/run-1/")
    assert out["sample_field_counts"] == {"3": 1}


def test_inspect_names_the_profile_and_the_columns_not_preferred(storage):
    storage.write_bytes("support_ticket/raw/sn.csv",
                        b"number,opened_at,short_description,sys_updated_on,closed_at,resolved_at\n"
                        b"INC1,2024-01-01,x,2024-01-02,2024-01-04,2024-01-03\n")
    out = inspect_source(storage, "support_ticket/raw/sn.csv", "run-1", load_contract())
    assert out["profile"] == "servicenow"
    assert out["mapping"]["number"] == "ticket_id" and out["mapping"]["resolved_at"] == "resolved_at"
    assert (out["columns_not_preferred"], out["unknown_columns"]) == (1, 1)
    inspection = json.loads(storage.read_bytes("support_ticket/landing/run-1/inspection.json"))
    assert [(n["header"], n["field"], n["preferred"]) for n in inspection["mapping"]["not_preferred"]] == [
        ("closed_at", "resolved_at", "resolved_at")]
    assert inspection["unknown_columns"] == {"closed_at": "closed_at"}


def test_a_wide_file_of_long_headers_keeps_the_state_small(storage):
    # 2,000 columns (the limit) of 120-character names: 240 KB of header, which inline would pass Step Functions'
    # 256 KiB payload quota twice over (headers in the dialect, and again as unknown columns). The state holds
    # counts and the inspection's address; the inspection file holds every header.
    headers = ["Ticket ID", "Created At"] + [f"custom field {i:04d} " + "x" * 102 for i in range(1998)]
    storage.write_bytes("support_ticket/raw/wide.csv", (",".join(headers) + "\n" + ",".join(["1", "2024-01-01"]
                                                        + ["v"] * 1998) + "\n").encode())
    out = inspect_source(storage, "support_ticket/raw/wide.csv", "run-1", load_contract())
    assert len(json.dumps(out).encode()) < 4096
    assert (out["dialect"]["columns"], out["unknown_columns"]) == (2000, 1998)
    inspection = json.loads(storage.read_bytes("support_ticket/landing/run-1/inspection.json"))
    assert inspection["dialect"]["headers"] == headers and len(inspection["unknown_columns"]) == 1998


def test_a_mapped_header_padded_with_symbols_is_shown_cut_in_the_state(storage):
    # Normalised, `Ticket ID!!!!...` is `ticket_id`: it maps, and the state shows its first 200 characters.
    header = "Ticket ID" + "!" * 100_000
    storage.write_bytes("support_ticket/raw/pad.csv", f"{header},Created At\n1,2024-01-01\n".encode())
    out = inspect_source(storage, "support_ticket/raw/pad.csv", "run-1", load_contract())
    assert out["mapping"] == {header[:200]: "ticket_id", "Created At": "created_at"}
    assert len(json.dumps(out).encode()) < 4096


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not text"),
        (b"Ticket ID,Subject\n1,x\n", "missing required column 'created_at'"),
        # Two headers of equal rank for one field (a true tie); `Created` and `Created At` are not one: the
        # contract prefers `created` (see test_contract).
        (b"Ticket ID,fields.created,properties.created\n", "could each be 'created_at'"),
    ],
)
def test_inspect_fails_fast_with_schema_error(storage, content, message):
    storage.write_bytes("support_ticket/raw/t.csv", content)
    with pytest.raises(SchemaError, match=message):
        inspect_source(storage, "support_ticket/raw/t.csv", "run-1", load_contract())


def test_inspect_reads_compressed_uploads_decompressed(storage):
    import gzip
    import io
    import zipfile

    text = b"Ticket ID;Created At\n1;2024-01-01\n2;2024-01-02\n"
    storage.write_bytes("support_ticket/raw/t.csv.gz", gzip.compress(text))
    out = inspect_source(storage, "support_ticket/raw/t.csv.gz", "run-1", load_contract())
    assert (out["compression"], out["dialect"]["delimiter"]) == ("gzip", ";")
    assert out["dialect"]["columns"] == 2 and out["sample_field_counts"] == {"2": 2}
    assert out["quarantine_uri"].endswith("bucket/support_ticket/quarantine/t/run-1/")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("t.csv", text)
        zf.writestr("other.csv", text)
    storage.write_bytes("support_ticket/raw/t.zip", buffer.getvalue())
    with pytest.raises(SchemaError, match=r"holds 2 files \(t.csv, other.csv\)"):
        inspect_source(storage, "support_ticket/raw/t.zip", "run-1", load_contract())

    # A quote left open is still found in a small compressed file (its whole text is in the head).
    storage.write_bytes("support_ticket/raw/q.csv.gz", gzip.compress(b'Ticket ID,Created At\n1,"2024\n2,x\n'))
    with pytest.raises(SchemaError, match="unterminated quote"):
        inspect_source(storage, "support_ticket/raw/q.csv.gz", "run-1", load_contract())
