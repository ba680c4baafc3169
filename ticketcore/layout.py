"""Where everything lives in the bucket: the same keys on S3 and in the local bucket directory."""

from __future__ import annotations

import hashlib
import re

ROOT = "support_ticket"
RAW_PREFIX = f"{ROOT}/raw/"
# Inspect copies exactly the version an event names here, under a name of its own; everything after reads it.
LANDING_PREFIX = f"{ROOT}/landing/"
STAGING_PREFIX = f"{ROOT}/staging/"
PROCESSED_PREFIX = f"{ROOT}/processed/"
TICKETS_PREFIX = f"{PROCESSED_PREFIX}tickets/"
MANIFESTS_PREFIX = f"{PROCESSED_PREFIX}_manifests/"
QUARANTINE_PREFIX = f"{ROOT}/quarantine/"
REPORTS_PREFIX = f"{ROOT}/reports/"
LOCKS_PREFIX = f"{ROOT}/locks/"
# The validation report that gates publish: a prefix of its own, which only the validate function may write
# (the Glue job writes reports/, and must not be able to write a passing validation report).
VALIDATION_PREFIX = f"{ROOT}/validation/"
# One JSON record per object under raw/ that started no execution (not a CSV upload, empty), written by the trigger.
SKIPPED_PREFIX = f"{REPORTS_PREFIX}skipped/"
# Key endings of the uploads the pipeline reads: a CSV, a gzip-compressed CSV, a zip archive holding one CSV.
UPLOAD_SUFFIXES = (".csv", ".csv.gz", ".zip")

RUN_REPORT = "run_report.json"
VALIDATION_REPORT = "validation_report.json"
PUBLISH_REPORT = "publish_report.json"
QUARANTINE_FILE = "rows.csv"  # the quarantined rows of one run, under `quarantine_prefix`

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def source_name(source_key: str) -> str:
    """`support_ticket/raw/eu/Tickets 2024.csv` (or `.csv.gz`, `.zip`) -> `eu_Tickets_2024`: readable,
    filesystem- and S3-safe."""
    rel = source_key.removeprefix(RAW_PREFIX)
    suffix = next((s for s in UPLOAD_SUFFIXES if rel.lower().endswith(s)), "")
    stem = rel[: len(rel) - len(suffix)] if suffix else rel
    return _UNSAFE.sub("_", stem).strip("._") or "source"


def source_id(source_key: str) -> str:
    """Readable name plus a short hash of the exact key, so two keys never share published files."""
    digest = hashlib.sha256(source_key.encode("utf-8")).hexdigest()[:10]
    return f"{source_name(source_key)[:60]}-{digest}"


def inspection_key(run_id: str) -> str:
    """`support_ticket/landing/<run>/inspection.json`: the inspect step's whole result (every header, the
    per-position mapping), beside the landing copy the Glue job reads; the state carries only its address."""
    return f"{LANDING_PREFIX}{run_id}/inspection.json"


def landing_key(run_id: str, source_key: str) -> str:
    """`support_ticket/landing/<run>/source.csv` (`.csv.gz`, `.zip` as the upload's key ends): generated from the
    execution name alone, so no reader ever sees the upload's key as a path or a pattern (`*`, `[`, `//`, `..`)."""
    suffix = next((s for s in sorted(UPLOAD_SUFFIXES, key=len, reverse=True) if source_key.lower().endswith(s)),
                  ".csv")
    return f"{LANDING_PREFIX}{run_id}/source{suffix}"


def staging_prefix(run_id: str) -> str:
    return f"{STAGING_PREFIX}{run_id}/"


def staged_tickets_prefix(run_id: str) -> str:
    return f"{staging_prefix(run_id)}tickets/"


def quarantine_prefix(source_key: str, run_id: str) -> str:
    return f"{QUARANTINE_PREFIX}{source_name(source_key)}/{run_id}/"


def reports_prefix(run_id: str) -> str:
    return f"{REPORTS_PREFIX}{run_id}/"


def validation_report_key(run_id: str) -> str:
    return f"{VALIDATION_PREFIX}{run_id}/{VALIDATION_REPORT}"


def manifest_key(source_key: str) -> str:
    return f"{MANIFESTS_PREFIX}{source_id(source_key)}.json"


def publish_lock_key(source_key: str) -> str:
    """Held while one execution publishes the source key (outside processed/: never read as data)."""
    return f"{LOCKS_PREFIX}{source_id(source_key)}.lock"


def partition_of(staged_key: str) -> str:
    """`.../tickets/year=2024/month=03/part-0.parquet` -> `year=2024/month=03`."""
    parts = [p for p in staged_key.split("/") if "=" in p]
    return "/".join(parts)


def published_key(source_key: str, partition: str, index: int) -> str:
    """Deterministic from the source key: a re-upload of the key overwrites exactly its own files."""
    suffix = f"-{index}" if index else ""
    return f"{TICKETS_PREFIX}{partition}/{source_id(source_key)}{suffix}.parquet"
