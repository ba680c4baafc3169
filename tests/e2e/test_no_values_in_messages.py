"""Customer data stays data: files whose failing cells hold an e-mail address and a card-like number fail,
and neither value appears in any execution history, alert, log line or printed output; the examples stay in
the reports in the bucket."""

from __future__ import annotations

import json

import pytest

from tests.e2e.support import outbox
from ticketcore import layout

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

EMAIL = "jane.customer@example.org"
CARD = "4111 1111 1111 1111"


def everything_said(runtime, names: list[str], captured: str) -> str:
    """Histories, alerts, the executions' descriptions and whatever the process printed."""
    parts = [captured, json.dumps(outbox(runtime), default=str)]
    for name in names:
        parts.append(json.dumps(runtime.history(name), default=str))
        parts.append(json.dumps(runtime.describe(name), default=str))
        parts.append(json.dumps(runtime.summary(name), default=str))
    return "\n".join(parts)


def test_failing_cells_never_reach_messages_history_alerts_or_logs(runtime, tmp_path, capfd, caplog):
    # A file without its header row: the first record's cells would be quoted as "headers found".
    headerless = tmp_path / "headerless.csv"
    headerless.write_text(f"T-1,2024-01-02,{EMAIL},{CARD},printer broken\nT-2,2024-01-03,b@example.org,1,x\n")
    # A file whose failing values (priorities outside the contract's set) are the e-mail and the card number.
    failing = tmp_path / "failing.csv"
    rows = [f"T-{i},2024-01-0{i}T10:00:00Z,subject {i},low" for i in range(1, 8)]
    failing.write_text("ticket_id,created_at,subject,priority\n" + "\n".join(rows)
                       + f"\nT-8,2024-01-08T10:00:00Z,mail,{EMAIL}\nT-9,2024-01-09T11:00:00Z,card,{CARD}\n")
    names = []
    for path in (headerless, failing):
        upload = runtime.upload(path)
        names.append(upload.started[0])
        runtime.wait(upload.started[0], timeout=600)
    first, second = (runtime.summary(n) for n in names)
    assert (first["failed_state"], first["error"]) == ("InspectSource", "SchemaError")
    assert "look like values" in first["cause"] and "is the header row missing?" in first["cause"]
    assert (second["failed_state"], second["error"]) == ("ValidateOutput", "DataQualityError")
    assert "examples in the validation report" in second["cause"]
    assert len(outbox(runtime)) == 2

    said = everything_said(runtime, names, capfd.readouterr().out + capfd.readouterr().err + caplog.text)
    for value in (EMAIL, CARD, "4111", "jane"):  # as written, and as the enum normalises them
        assert value not in said, f"{value!r} reached a message, history, alert or log"
    # ...while the validation report, in the (encrypted) bucket, keeps the examples for whoever fixes the file.
    report = json.loads(runtime.storage.read_bytes(layout.validation_report_key(names[1])))
    priority = next(r for r in report["results"] if r["name"] == "in_set(priority)")
    assert sorted(priority["observed"]["partial_unexpected_list"]) == ["4111_1111_1111_1111",
                                                                       "jane_customer_example_org"]
