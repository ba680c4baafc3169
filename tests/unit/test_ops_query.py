"""`ticketflow query`: DuckDB over Parquet written here in the published layout (Hive partitions, one file
per source key), with the `tickets_latest` view from ticketcore/sql/tickets_latest.sql."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ticketcore import layout
from ticketflow.cli import main
from ticketflow.ops.query import NothingPublished, QueryError, run_query, tickets_latest_sql

SCHEMA = pa.schema([
    ("ticket_id", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
    ("updated_at", pa.timestamp("us", tz="UTC")),
    ("resolved_at", pa.timestamp("us", tz="UTC")),
    ("first_response_at", pa.timestamp("us", tz="UTC")),
    ("status", pa.string()),
    ("priority", pa.string()),
    ("channel", pa.string()),
    ("category", pa.string()),
    ("subject", pa.string()),
    ("description", pa.string()),
    ("customer_id", pa.string()),
    ("customer_email", pa.string()),
    ("agent", pa.string()),
    ("satisfaction_score", pa.int32()),
    ("tags", pa.list_(pa.string())),
    ("resolution_hours", pa.float64()),
    ("_source_key", pa.string()),
    ("_source_line", pa.int64()),
    ("_run_id", pa.string()),
    ("_ingested_at", pa.timestamp("us", tz="UTC")),
])
FEB = "support_ticket/raw/tickets_feb.csv"
MARCH = "support_ticket/raw/tickets_march.csv"


def ts(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None


def ticket(ticket_id: str, created: str, updated: str | None, status: str, source: str, line: int,
           ingested: str, **extra: Any) -> dict[str, Any]:
    resolved = ts(updated) if status == "closed" else None
    return {
        "ticket_id": ticket_id, "created_at": ts(created), "updated_at": ts(updated), "resolved_at": resolved,
        "first_response_at": None, "status": status, "priority": "high", "channel": "email",
        "category": "billing", "subject": f"Subject of {ticket_id}", "description": "Card declined, twice",
        "customer_id": f"C-{ticket_id[-1]}", "customer_email": f"c{ticket_id[-1]}@example.com",
        "agent": "ana",
        "satisfaction_score": 4 if status == "closed" else None, "tags": ["billing", "card"],
        "resolution_hours": round((resolved - ts(created)).total_seconds() / 3600, 4) if resolved else None,
        "_source_key": source, "_source_line": line, "_run_id": f"run-{Path(source).stem}",
        "_ingested_at": ts(ingested), **extra,
    }


def write_published(home: Path, source_key: str, rows: list[dict[str, Any]], extra_columns: Any = ()) -> Path:
    """One published file, where publish puts it: processed/tickets/year=YYYY/month=MM/<source id>.parquet."""
    schema = SCHEMA
    for name in extra_columns:
        schema = schema.insert(schema.get_field_index("resolution_hours"), pa.field(name, pa.string()))
    partition = "year=2024/month=03"
    path = home / "bucket" / layout.published_key(source_key, partition, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    # GIVEN two source files; T-1 is in both, updated later in the March export
    write_published(home, FEB, [
        ticket("T-1", "2024-03-01 09:00", "2024-03-01 10:00", "open", FEB, 2, "2024-03-02 00:00"),
        ticket("T-2", "2024-03-01 11:00", "2024-03-03 08:00", "closed", FEB, 3, "2024-03-02 00:00"),
        ticket("T-3", "2024-03-02 12:00", "2024-03-02 13:00", "pending", FEB, 4, "2024-03-02 00:00"),
    ])
    # ... and the March export (with a column the contract does not know, kept as a string) has T-1 closed,
    # T-3 without updated_at (a version with one wins: NULLS LAST), and a new T-4.
    write_published(home, MARCH, [
        ticket("T-1", "2024-03-01 09:00", "2024-03-05 09:30", "closed", MARCH, 2, "2024-03-06 00:00",
               region="EU"),
        ticket("T-3", "2024-03-02 12:00", None, "open", MARCH, 3, "2024-03-06 00:00", region="EU"),
        ticket("T-4", "2024-03-04 07:00", "2024-03-04 07:15", "open", MARCH, 4, "2024-03-06 00:00",
               region=None),
    ], extra_columns=["region"])
    # an in-flight temp file of the local bucket is not data
    partition = home / "bucket" / layout.TICKETS_PREFIX / "year=2024" / "month=03"
    (partition / ".x.parquet.1.2.tmp").write_bytes(b"")
    return home


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tickets_has_every_published_row(home: Path) -> None:
    columns, rows = run_query(home, "SELECT ticket_id, status, _source_key, year, month, region FROM tickets "
                                    "ORDER BY ticket_id, _source_key")
    assert columns == ["ticket_id", "status", "_source_key", "year", "month", "region"]
    # THEN all six rows, partitions as strings (as the Glue table declares them), union by column name
    assert rows == [
        ("T-1", "open", FEB, "2024", "03", None),
        ("T-1", "closed", MARCH, "2024", "03", "EU"),
        ("T-2", "closed", FEB, "2024", "03", None),
        ("T-3", "pending", FEB, "2024", "03", None),
        ("T-3", "open", MARCH, "2024", "03", "EU"),
        ("T-4", "open", MARCH, "2024", "03", None),
    ]


def test_tickets_latest_keeps_the_newest_version_of_each_ticket(home: Path) -> None:
    columns, rows = run_query(home, "SELECT ticket_id, status, updated_at, resolution_hours, _source_key "
                                    "FROM tickets_latest ORDER BY ticket_id")
    assert columns == ["ticket_id", "status", "updated_at", "resolution_hours", "_source_key"]
    assert rows == [
        ("T-1", "closed", ts("2024-03-05 09:30"), 96.5, MARCH),
        ("T-2", "closed", ts("2024-03-03 08:00"), 45.0, FEB),
        ("T-3", "pending", ts("2024-03-02 13:00"), None, FEB),
        ("T-4", "open", ts("2024-03-04 07:15"), None, MARCH),
    ]


def test_the_view_is_the_shared_sql_file() -> None:
    shared = Path(__file__).parents[2] / "ticketcore" / "sql" / "tickets_latest.sql"
    assert tickets_latest_sql() == shared.read_text(encoding="utf-8").strip().rstrip(";")


def test_table_output(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT status, count(*) AS n FROM tickets_latest GROUP BY 1 ORDER BY 1"
    code, out, _ = run(capsys, "query", sql, "--home", str(home))
    assert code == 0
    assert out.splitlines() == [
        "status   n",
        "-------  -",
        "closed   2",
        "open     1",
        "pending  1",
        "(3 rows)",
    ]


def test_csv_and_json_parse_back(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT ticket_id, updated_at, tags, satisfaction_score FROM tickets_latest ORDER BY ticket_id"
    _, out, _ = run(capsys, "query", sql, "--home", str(home), "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["ticket_id"] for r in rows] == ["T-1", "T-2", "T-3", "T-4"]
    assert rows[0] == {"ticket_id": "T-1", "updated_at": "2024-03-05T09:30:00+00:00",
                       "tags": '["billing", "card"]', "satisfaction_score": "4"}
    assert rows[2]["satisfaction_score"] == ""  # NULL

    _, out, _ = run(capsys, "query", sql, "--home", str(home), "--json")
    doc = json.loads(out)
    assert doc[0] == {"ticket_id": "T-1", "updated_at": "2024-03-05T09:30:00+00:00",
                      "tags": ["billing", "card"], "satisfaction_score": 4}
    assert [d["satisfaction_score"] for d in doc] == [4, 4, None, None]


def test_empty_bucket_says_nothing_is_published(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "fresh"
    expected = f"nothing published yet under {(home / 'bucket' / layout.TICKETS_PREFIX).resolve()}/"
    with pytest.raises(NothingPublished, match="nothing published yet"):
        run_query(home, "SELECT 1")
    code, out, err = run(capsys, "query", "SELECT * FROM tickets", "--home", str(home))
    assert code == 1 and out == ""
    assert err.startswith(expected)
    # a processed/ prefix holding only a temp file is still empty
    tickets = home / "bucket" / layout.TICKETS_PREFIX / "year=2024" / "month=03"
    tickets.mkdir(parents=True)
    (tickets / ".a.parquet.1.1.tmp").write_bytes(b"")
    code, _, err = run(capsys, "query", "SELECT * FROM tickets", "--home", str(home))
    assert code == 1 and err.startswith(expected)


def test_bad_sql_is_one_message(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(QueryError):
        run_query(home, "SELECT nope FROM tickets")
    code, out, err = run(capsys, "query", "SELECT nope FROM tickets", "--home", str(home))
    assert code == 1 and out == ""
    assert err.startswith("query failed: Binder Error")
    assert "nope" in err
