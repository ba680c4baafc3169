"""`ticketflow query`: DuckDB in-process over the published Parquet of a local home.

Two relations, as in Athena: `tickets` (every published row; the year/month partitions as strings, as the
Glue table declares them) and `tickets_latest`, whose SQL is read from ticketcore/sql/tickets_latest.sql,
the one text the Athena view is created from too.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from ticketcore.layout import TICKETS_PREFIX
from ticketflow.ops.render import cut, table_lines

CELL_WIDTH = 60  # in the text table; --json and --csv give values whole


class NothingPublished(Exception):
    """No Parquet file under processed/tickets/ yet."""


class QueryError(Exception):
    """DuckDB refused or failed the query."""


def tickets_latest_sql() -> str:
    text = resources.files("ticketcore").joinpath("sql/tickets_latest.sql").read_text(encoding="utf-8")
    return text.strip().rstrip(";")


def tickets_dir(home: Path) -> Path:
    return Path(home) / "bucket" / TICKETS_PREFIX


def _published(directory: Path) -> bool:
    return directory.is_dir() and any(
        not p.name.startswith((".", "_")) for p in directory.rglob("*.parquet") if p.is_file()
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(home: Path) -> Any:
    """An in-memory DuckDB connection with the `tickets` and `tickets_latest` views."""
    import duckdb

    directory = tickets_dir(home).resolve()
    if not _published(directory):
        raise NothingPublished(f"nothing published yet under {directory}/ (run the pipeline on a file first)")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    pattern = _literal(f"{directory}/**/*.parquet")
    con.execute(
        f"CREATE VIEW tickets AS SELECT * FROM read_parquet({pattern}, hive_partitioning = true, "
        "union_by_name = true, hive_types_autocast = false)"
    )
    con.execute(f"CREATE VIEW tickets_latest AS\n{tickets_latest_sql()}\n")
    return con


def run_query(home: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of `sql` over the published tickets of `home`."""
    import duckdb

    con = connect(home)
    try:
        cursor = con.execute(sql)
        if cursor.description is None:
            return [], []
        columns = [d[0] for d in cursor.description]
        return columns, cursor.fetchall()
    except duckdb.Error as err:
        raise QueryError(str(err)) from err
    finally:
        con.close()


def run_read_only(home: Path, sql: str, max_rows: int = 1000, timeout: float = 30.0
                  ) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """(columns, at most `max_rows` rows, whether more were cut) of one SELECT over the published tickets,
    for the console's query page: anything but a single SELECT (or WITH ... SELECT) statement raises
    QueryError, and once the views exist DuckDB's file system access is switched off and the setting locked,
    so no function can read or write a file outside what `tickets` reads. A query still running after
    `timeout` seconds is interrupted (QueryError)."""
    import threading

    import duckdb

    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as err:
        raise QueryError(str(err)) from err
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(s.type.name for s in statements) or "nothing"
        raise QueryError(f"only one SELECT statement is run here (read-only); found: {kinds}")
    con = connect(home)
    directory = str(tickets_dir(home).resolve())
    con.execute(f"SET allowed_directories = [{_literal(directory + '/')}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    timer = threading.Timer(timeout, con.interrupt)
    timer.start()
    try:
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchmany(max_rows + 1) if columns else []
        return columns, rows[:max_rows], len(rows) > max_rows
    except duckdb.InterruptException as err:
        raise QueryError(f"the query ran longer than {timeout:.0f} s and was interrupted") from err
    except duckdb.Error as err:
        raise QueryError(str(err)) from err
    finally:
        timer.cancel()
        con.close()


# ---------------------------------------------------------------- output formats
def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def cell_text(value: Any) -> str:
    """One cell as text: ISO dates, JSON for lists and structs."""
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        return json.dumps(_jsonable(value), ensure_ascii=False)
    return str(value)


def format_json(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    return json.dumps([dict(zip(columns, map(_jsonable, row), strict=True)) for row in rows], indent=2,
                      ensure_ascii=False)


def format_csv(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([cell_text(v) for v in row] for row in rows)
    return buffer.getvalue()


def format_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    if not columns:
        return "(no result)"
    cells = [[cut(" ".join(cell_text(v).split()), CELL_WIDTH) for v in row] for row in rows]
    numeric = [
        i for i in range(len(columns))
        if rows and all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in rows)
        and any(r[i] is not None for r in rows)
    ]
    lines = table_lines(columns, cells, right=numeric, width=None)
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
