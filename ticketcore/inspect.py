"""The inspect step: look at the head of an upload and fail fast, before any Glue cost."""

from __future__ import annotations

from typing import Any

from ticketcore import layout
from ticketcore.contract import Contract, SchemaError, map_headers
from ticketcore.dialect import HEAD_BYTES, csv_reader, decode_head, detect_dialect, scan
from ticketcore.source import text_head
from ticketcore.storage import Storage

SAMPLE_ROWS = 50


def inspect_source(
    storage: Storage, key: str, run_id: str, contract: Contract, version_id: str = ""
) -> dict[str, Any]:
    """Check the head of exactly the upload an event names (`version_id`; the latest when empty, e.g. an
    unversioned bucket), then copy that version, ETag-checked, to `layout.landing_key(run_id, key)`: the
    Glue job, validation and publish read only that copy. Returns the state the definition passes on
    (`source_uri` is the landing copy; `source` holds key, version_id, etag and bytes for the manifest).

    Raises SchemaError (a file the contract cannot read: empty, not CSV, headers) and
    storage.ObjectMissingError (that version no longer exists: deleted before the run)."""
    head_info = storage.head(key, version_id)
    size = head_info.size
    if size == 0:
        raise SchemaError(f"empty file: {key} has 0 bytes")
    # A .csv.gz or a zip of one CSV is read decompressed (by its magic number, whatever the key's name).
    source = text_head(storage.read_bytes(key, HEAD_BYTES, version_id), size <= HEAD_BYTES, HEAD_BYTES)
    head = source.data
    dialect = detect_dialect(head)
    mapping = map_headers(dialect.headers, contract)
    text, _, _ = decode_head(head)
    if source.complete:
        # The whole file is in the head: a quote that is still open at its end would make the CSV readers take
        # the rest of the file as one value (published whole if it is the last column). Refuse, naming the line.
        opened = scan(text, dialect.delimiter).open_quote_line
        if opened is not None:
            last = text.count("\n") + (0 if text.endswith("\n") else 1)
            raise SchemaError(
                f"unterminated quote: the quoted value that opens on line {opened} of {key} is never closed, so "
                f"lines {opened}-{last} would be read as one value; close or escape the quote (\"\") and upload again"
            )
    reader = csv_reader(text, dialect.delimiter)
    next(reader, None)
    widths: dict[int, int] = {}
    for i, row in enumerate(reader):
        if i >= SAMPLE_ROWS:
            break
        widths[len(row)] = widths.get(len(row), 0) + 1
    staging = layout.staging_prefix(run_id)
    landing = layout.landing_key(run_id, key)
    storage.copy(key, landing, head_info.version_id, head_info.etag)
    return {
        "source_uri": storage.uri(landing),
        "source": {"key": key, "version_id": head_info.version_id, "etag": head_info.etag, "bytes": size},
        "staging_uri": storage.uri(staging),
        "quarantine_uri": storage.uri(layout.quarantine_prefix(key, run_id)),
        "reports_uri": storage.uri(layout.reports_prefix(run_id)),
        "bytes": size,
        "compression": source.compression,
        "dialect": dialect.to_dict(),
        "profile": mapping.profile,
        "mapping": mapping.canonical,
        # Columns the contract does not name (published in the `extra` map): key in `extra` -> header. The
        # per-position mapping with its rules (HeaderMapping.to_dict) stays out of this state: a wide file's
        # would take a large share of Step Functions' 256 KiB payload; the run report carries it.
        "unknown_columns": {c.name: c.header for c in mapping.unmapped},
        "columns_not_preferred": [n.to_dict() for n in mapping.not_preferred],
        "sample_field_counts": {str(k): v for k, v in sorted(widths.items())},
    }
