"""The inspect step: look at the head of an upload and fail fast, before any Glue cost."""

from __future__ import annotations

import json
from typing import Any

from ticketcore import layout
from ticketcore.contract import Contract, SchemaError, map_headers
from ticketcore.dialect import HEAD_BYTES, csv_reader, decode_head, detect_dialect, scan
from ticketcore.publish import newer_sequencer
from ticketcore.source import text_head
from ticketcore.storage import Storage

SAMPLE_ROWS = 50
# A mapped header as the state shows it (the whole one is in the inspection file): a header matches a contract
# name once normalised, so one padded with thousands of characters still maps, and must not fill the state.
MAPPED_HEADER_SHOWN = 200


class SourceErased(Exception):
    """The upload was deleted (an erasure ran) after the event this execution is for: nothing of it may be read
    again, by a late execution or by a redrive. The class name is the Step Functions error; not retried."""


def check_not_erased(storage: Storage, key: str, sequencer: str) -> None:
    """Raise SourceErased when the key's manifest is an erasure's tombstone newer than this event (S3
    sequencers of one key order its events)."""
    manifest_key = layout.manifest_key(key)
    if not sequencer or not storage.exists(manifest_key):
        return
    manifest = json.loads(storage.read_bytes(manifest_key))
    if manifest.get("retracted_by") and manifest.get("sequencer") and newer_sequencer(manifest["sequencer"],
                                                                                       sequencer):
        raise SourceErased(f"{key} was deleted after this upload (erasure {manifest['retracted_by']}): "
                           "nothing of it is read again; upload the file again to process it")


def inspect_source(
    storage: Storage, key: str, run_id: str, contract: Contract, version_id: str = "", sequencer: str = ""
) -> dict[str, Any]:
    """Check the head of exactly the upload an event names (`version_id`; the latest when empty, e.g. an
    unversioned bucket), then copy that version, ETag-checked, to `layout.landing_key(run_id, key)`: the
    Glue job, validation and publish read only that copy. Writes the whole inspection (dialect with every
    header, the per-position mapping, unknown columns) to `layout.inspection_key(run_id)`, which the Glue job
    reads. Returns the state the definition passes on, a few KiB whatever the width of the file
    (`source_uri` is the landing copy, `inspection_uri` the inspection; `source` holds key, version_id, etag
    and bytes for the manifest; `unknown_columns` and `columns_not_preferred` are counts).

    Raises SchemaError (a file the contract cannot read: empty, not CSV, headers),
    storage.ObjectMissingError (that version no longer exists: deleted before the run) and SourceErased (the
    key was erased after this upload's event: `sequencer`)."""
    check_not_erased(storage, key, sequencer)
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
    # The whole result (every header, every unknown column) goes to S3 beside the landing copy; the state gets
    # its address and what an operator reads at a glance. A 2,000-column header of long names would otherwise
    # pass Step Functions' 256 KiB payload limit (States.DataLimitExceeded, which no Retry catches).
    inspection = layout.inspection_key(run_id)
    storage.write_bytes(inspection, json.dumps({
        "source_key": key,  # which upload this run is of (the erasure of a key finds its runs by it)
        "dialect": dialect.to_dict(),
        "mapping": mapping.to_dict(),  # profile, per position {header, name, field, rule}, not_preferred
        "unknown_columns": {c.name: c.header for c in mapping.unmapped},
    }).encode())
    state_dialect = {k: v for k, v in dialect.to_dict().items() if k != "headers"}
    return {
        "source_uri": storage.uri(landing),
        "inspection_uri": storage.uri(inspection),
        "source": {"key": key, "version_id": head_info.version_id, "etag": head_info.etag, "bytes": size},
        "staging_uri": storage.uri(staging),
        "quarantine_uri": storage.uri(layout.quarantine_prefix(key, run_id)),
        "reports_uri": storage.uri(layout.reports_prefix(run_id)),
        "bytes": size,
        "compression": source.compression,
        "dialect": {**state_dialect, "columns": len(dialect.headers)},
        "profile": mapping.profile,
        # Source header -> contract field: at most one header per field, each a name the contract matched.
        "mapping": {header[:MAPPED_HEADER_SHOWN]: name for header, name in mapping.canonical.items()},
        "unknown_columns": len(mapping.unmapped),  # kept in `extra`; their names are in the inspection file
        "columns_not_preferred": len(mapping.not_preferred),
        "sample_field_counts": {str(k): v for k, v in sorted(widths.items())},
    }
