"""The publish step: move validated staged files under processed/, idempotently.

Published names derive from the source key (layout.published_key), and a manifest per source key lists
its current files. Publishing copies the staged files over their deterministic names, deletes the files
the previous manifest listed that are no longer part of the set, then writes the new manifest. Each step
can be repeated, so a retry or a redrive after a crash converges to exactly the new file set.

Two executions of the same key (a re-upload while the first is still running) would copy over the same
names at once and leave a mix of both; a lock object per key, created with a conditional write, lets one
publish at a time. The other raises `PublishBusy`, which the definition retries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ticketcore import layout
from ticketcore.storage import Storage


class PublishRefused(Exception):
    """Publishing would put unvalidated data under processed/."""


class PublishBusy(Exception):
    """Another execution is publishing the same source key (the definition retries this error)."""


# A publish runs in a Lambda of at most 15 minutes: a lock older than that belongs to one that crashed.
LOCK_STALE_SECONDS = 15 * 60


@contextmanager
def publish_lock(storage: Storage, source_key: str, run_id: str, now: datetime | None = None) -> Iterator[None]:
    """Hold the source key's publish lock. Taken over when it is this run's own (a crashed attempt, retried or
    redriven) or stale; otherwise `PublishBusy` names the execution that holds it."""
    key = layout.publish_lock_key(source_key)
    now = now or datetime.now(UTC)
    body = json.dumps({"run_id": run_id, "taken_at": now.isoformat()}).encode()
    for _ in range(2):  # a second try when the holder released it between our two calls
        if storage.create_exclusive(key, body):
            break
        try:
            holder = json.loads(storage.read_bytes(key))
        except Exception as err:
            if not storage.exists(key):
                continue  # released between the two calls
            # Being written (locally the file exists a moment before its content): busy, retried.
            raise PublishBusy(f"source key {source_key}: its publish lock {key} is not readable yet ({err})") from err
        age = (now - datetime.fromisoformat(holder["taken_at"])).total_seconds()
        if holder.get("run_id") == run_id or age > LOCK_STALE_SECONDS:
            storage.write_bytes(key, body)
            break
        raise PublishBusy(f"source key {source_key} is being published by execution {holder.get('run_id')} "
                          f"(lock taken {age:.0f} s ago); this execution retries")
    else:
        raise PublishBusy(f"source key {source_key}: its publish lock {key} changed hands twice; retrying")
    try:
        yield
    finally:
        storage.delete(key)


def _read_json(storage: Storage, key: str) -> dict[str, Any] | None:
    return json.loads(storage.read_bytes(key)) if storage.exists(key) else None


def plan(storage: Storage, source_key: str, run_id: str) -> dict[str, str]:
    """staged key -> published key, in a stable order."""
    staged = sorted(o.key for o in storage.list(layout.staged_tickets_prefix(run_id)) if o.key.endswith(".parquet"))
    targets: dict[str, str] = {}
    per_partition: dict[str, int] = {}
    for key in staged:
        partition = layout.partition_of(key)
        index = per_partition.get(partition, 0)
        per_partition[partition] = index + 1
        targets[key] = layout.published_key(source_key, partition, index)
    return targets


def publish(
    storage: Storage, source_key: str, run_id: str, sequencer: str = "", source: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Publish a validated run's staged files for `source_key`; `source` is inspect's record of exactly which
    upload the run read ({"version_id", "etag", ...}), written into the manifest."""
    reports = layout.reports_prefix(run_id)
    validation_key = layout.validation_report_key(run_id)
    validation = _read_json(storage, validation_key)
    if not validation or not validation.get("success"):
        raise PublishRefused(f"run {run_id}: no passing validation report at {validation_key}")
    run_report = _read_json(storage, reports + layout.RUN_REPORT) or {}
    with publish_lock(storage, source_key, run_id):
        return _publish_locked(storage, source_key, run_id, sequencer, run_report, source or {})


def _publish_locked(
    storage: Storage, source_key: str, run_id: str, sequencer: str, run_report: dict[str, Any],
    source: dict[str, Any],
) -> dict[str, Any]:
    reports = layout.reports_prefix(run_id)
    manifest_key = layout.manifest_key(source_key)
    previous = _read_json(storage, manifest_key) or {}
    if previous.get("run_id") == run_id and all(storage.exists(f["key"]) for f in previous.get("files", [])):
        return {**previous, "outcome": "already_published"}
    # A slower, older execution of the same key must not overwrite a newer upload's output.
    if sequencer and previous.get("sequencer") and newer_sequencer(previous["sequencer"], sequencer):
        return {"outcome": "superseded", "run_id": run_id, "current_run_id": previous.get("run_id"),
                "source_key": source_key, "files": previous.get("files", [])}

    targets = plan(storage, source_key, run_id)
    for staged, target in targets.items():
        storage.copy(staged, target)
    current = set(targets.values())
    removed = [f["key"] for f in previous.get("files", []) if f["key"] not in current]
    for key in removed:
        storage.delete(key)
    rows_by_file = {f["uri"]: f["rows"] for f in run_report.get("outputs", {}).get("files", [])}
    files: list[dict[str, Any]] = [
        {"key": target, "bytes": storage.size(target), "rows": _rows_for(storage, staged, rows_by_file)}
        for staged, target in targets.items()
    ]
    manifest = {
        "source_key": source_key,
        "run_id": run_id,
        "sequencer": sequencer,
        "version_id": str(source.get("version_id", "")),
        "etag": str(source.get("etag", "")),
        "published_at": datetime.now(UTC).isoformat(),
        "rows": sum(int(f["rows"] or 0) for f in files),
        "files": files,
        "replaced_files": removed,
    }
    storage.write_bytes(manifest_key, json.dumps(manifest, indent=2).encode())
    storage.write_bytes(reports + layout.PUBLISH_REPORT, json.dumps(manifest, indent=2).encode())
    # Staging is no longer needed once the manifest names the published copies.
    for staged in targets:
        storage.delete(staged)
    return {**manifest, "outcome": "published"}


def _rows_for(storage: Storage, staged_key: str, rows_by_file: dict[str, int]) -> int | None:
    uri = storage.uri(staged_key)
    for candidate, rows in rows_by_file.items():
        if candidate.endswith(uri) or uri.endswith(candidate.removeprefix("file:")):
            return int(rows)
    return None


def newer_sequencer(a: str, b: str) -> bool:
    """S3 sequencers of one key compare as hex strings once padded to the same length."""
    width = max(len(a), len(b))
    return a.rjust(width, "0").upper() > b.rjust(width, "0").upper()
