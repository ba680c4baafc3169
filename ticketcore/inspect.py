"""The inspect step: look at the head of an upload and fail fast, before any Glue cost."""

from __future__ import annotations

import csv
import io
from typing import Any

from ticketcore import layout
from ticketcore.contract import Contract, SchemaError, map_headers
from ticketcore.dialect import HEAD_BYTES, decode_head, detect_dialect
from ticketcore.storage import Storage

SAMPLE_ROWS = 50


def inspect_source(storage: Storage, key: str, run_id: str, contract: Contract) -> dict[str, Any]:
    size = storage.size(key)
    if size == 0:
        raise SchemaError(f"empty file: {key} has 0 bytes")
    head = storage.read_bytes(key, HEAD_BYTES)
    dialect = detect_dialect(head)
    mapping = map_headers(dialect.headers, contract)
    text, _, _ = decode_head(head)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter)
    next(reader, None)
    widths: dict[int, int] = {}
    for i, row in enumerate(reader):
        if i >= SAMPLE_ROWS:
            break
        widths[len(row)] = widths.get(len(row), 0) + 1
    staging = layout.staging_prefix(run_id)
    return {
        "source_uri": storage.uri(key),
        "staging_uri": storage.uri(staging),
        "quarantine_uri": storage.uri(layout.quarantine_prefix(key, run_id)),
        "reports_uri": storage.uri(layout.reports_prefix(run_id)),
        "bytes": size,
        "dialect": dialect.to_dict(),
        "mapping": mapping.canonical,
        "unknown_columns": mapping.unknown,
        "sample_field_counts": {str(k): v for k, v in sorted(widths.items())},
    }
