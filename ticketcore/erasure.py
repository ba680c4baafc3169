"""The retract step: a deleted upload takes its derived data with it.

When an object under raw/ is deleted (S3 ObjectRemoved: a delete marker, or a version deleted for good), the
pipeline runs an execution that removes what was made from that key: the published Parquet files its manifest
lists, its quarantined rows, and the per-run copies and reports that hold its values (landing copy, staging,
run and validation reports). The manifest is replaced by a tombstone that records the erasure, so a slower
execution of an older upload of the key can never publish after it (its sequencer is older), while a newer
upload publishes as usual.

Not an erasure: an S3 lifecycle expiration (LifecycleExpiration events are not subscribed to), and the upload's
earlier versions, which stay under raw/ until the lifecycle rule expires them (no role may delete object
versions: see README, "Security and data protection").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ticketcore import layout
from ticketcore.publish import newer_sequencer, publish_lock
from ticketcore.storage import Storage
from ticketcore.trigger import execution_stem

# The S3 event names that ask for an erasure (trigger -> execution input `removal`).
DELETE_MARKER = "ObjectRemoved:DeleteMarkerCreated"
VERSION_DELETED = "ObjectRemoved:Delete"


# Where each run of a key leaves files: under `<prefix><run>/`, the run being the execution's name.
RUN_PREFIXES = (layout.LANDING_PREFIX, layout.STAGING_PREFIX, layout.REPORTS_PREFIX, layout.VALIDATION_PREFIX)


def _source_key_of(storage: Storage, run: str) -> str | None:
    """The key a run read, from whichever of its records is left: the inspection (landing/), the run, publish
    or validation report. None when none is."""
    records = (layout.inspection_key(run), layout.reports_prefix(run) + layout.RUN_REPORT,
               layout.reports_prefix(run) + layout.PUBLISH_REPORT, layout.validation_report_key(run))
    for key in records:
        if storage.exists(key):
            found = json.loads(storage.read_bytes(key)).get("source_key")
            if found:
                return str(found)
    return None


def runs_of(storage: Storage, source_key: str, current_run: str | None) -> list[str]:
    """Every run made from `source_key` whose files remain: the published one, and each run found under the
    execution-name prefix of the key's uploads (`trigger.execution_stem`) or in its quarantine folder, whose
    own records name this key (two keys can share a name prefix or a quarantine folder; never another key's
    run). Published or failed alike."""
    stem = execution_stem(source_key)
    candidates = {current_run} if current_run else set()
    for prefix in RUN_PREFIXES:
        candidates |= {o.key[len(prefix):].split("/", 1)[0] for o in storage.list(f"{prefix}{stem}-")}
    quarantine = f"{layout.QUARANTINE_PREFIX}{layout.source_name(source_key)}/"
    in_quarantine = {o.key[len(quarantine):].split("/", 1)[0] for o in storage.list(quarantine)}
    candidates |= in_quarantine
    return sorted(run for run in candidates if run == current_run or _source_key_of(storage, run) == source_key)


def run_objects(storage: Storage, source_key: str, run: str) -> list[str]:
    """Every object one run wrote or copied that holds the upload's values."""
    prefixes = [layout.quarantine_prefix(source_key, run), *(f"{prefix}{run}/" for prefix in RUN_PREFIXES)]
    return [o.key for p in prefixes for o in storage.list(p)]


def retract(storage: Storage, source_key: str, run_id: str, sequencer: str = "", version_id: str = "",
            removal: str = DELETE_MARKER, now: datetime | None = None) -> dict[str, Any]:
    """Remove what was derived from `source_key` after its deletion (`removal`, the S3 event name; `version_id`
    the version the event names: the delete marker's, or the version deleted for good). Idempotent: a retry
    or a redrive finds less to delete and ends the same. Holds the key's publish lock (PublishBusy while
    another execution publishes it, which the definition retries).

    Returns {"outcome", "source_key", "files_retracted", "rows_retracted", "runs", "objects_deleted"};
    outcome is `retracted`, `superseded` (a newer upload of the key is published: nothing removed) or
    `version_not_published` (a version deleted for good that is not the published one: nothing removed)."""
    now = now or datetime.now(UTC)
    manifest_key = layout.manifest_key(source_key)
    with publish_lock(storage, source_key, run_id, now):
        manifest = json.loads(storage.read_bytes(manifest_key)) if storage.exists(manifest_key) else {}
        base = {"source_key": source_key, "run_id": run_id, "files_retracted": 0, "rows_retracted": 0,
                "runs": [], "objects_deleted": 0}
        if manifest.get("retracted_by") == run_id:
            return {**base, **manifest.get("retraction", {}), "outcome": "retracted"}  # a retry after the end
        if sequencer and manifest.get("sequencer") and newer_sequencer(manifest["sequencer"], sequencer):
            return {**base, "outcome": "superseded", "current_run_id": manifest.get("run_id")}
        if removal == VERSION_DELETED and version_id and manifest.get("version_id") not in ("", None, version_id):
            return {**base, "outcome": "version_not_published"}
        # What to remove is recorded in the manifest before anything goes: a retry after a crash half-way
        # finds the same runs even once the records that attributed them to this key are deleted.
        pending = manifest.get("retracting") if (manifest.get("retracting") or {}).get("by") == run_id else None
        if pending is None:
            files = [f["key"] for f in manifest.get("files", [])]
            pending = {"by": run_id, "files": files,
                       "rows": sum(int(f.get("rows") or 0) for f in manifest.get("files", [])),
                       "runs": runs_of(storage, source_key, manifest.get("run_id") or None)}
            storage.write_bytes(manifest_key, json.dumps({**manifest, "retracting": pending}, indent=2).encode())
        # A run's own records (which say whose it is) go last, its quarantined rows and copies first.
        derived = [key for run in pending["runs"] for key in sorted(
            run_objects(storage, source_key, run), key=lambda k: k.endswith((".json",)))]
        for key in [*pending["files"], *derived]:
            storage.delete(key)
        retraction = {"files_retracted": len(pending["files"]), "rows_retracted": pending["rows"],
                      "runs": pending["runs"], "objects_deleted": len(pending["files"]) + len(derived)}
        # The tombstone: no files, and the removal's sequencer, so no older execution publishes over it.
        storage.write_bytes(manifest_key, json.dumps({
            "source_key": source_key, "run_id": manifest.get("run_id", ""), "sequencer": sequencer,
            "version_id": version_id, "rows": 0, "files": [], "retracted_by": run_id,
            "retracted_at": now.isoformat(), "removal": removal, "retraction": retraction,
        }, indent=2).encode())
        return {**base, **retraction, "outcome": "retracted"}
