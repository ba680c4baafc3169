"""S3 event records -> Step Functions executions, idempotently.

The execution name is derived from (bucket, key, version id or sequencer, and whether the object was removed:
a deletion runs the erasure, `ticketcore.erasure`), and the input is a pure
function of the record, so a duplicate delivery of the same event names the same execution: Step Functions
either returns the running one or answers `ExecutionAlreadyExists`, and nothing runs twice. Both answers
count as duplicates: the running one is recognised by its start date, earlier than the call.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ticketcore.layout import RAW_PREFIX, SKIPPED_PREFIX, UPLOAD_SUFFIXES, source_name

MAX_NAME = 80
# How much earlier than the call a returned start date must be to mean "already running": above any clock
# skew between the caller and Step Functions, below the seconds between two deliveries of one S3 event.
ALREADY_RUNNING_MARGIN = timedelta(seconds=1)
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class S3ObjectEvent:
    """One S3 event record: an object created, or (`removal`, the event name `ObjectRemoved:Delete` or
    `ObjectRemoved:DeleteMarkerCreated`) removed, which starts the erasure of what was derived from it."""

    bucket: str
    key: str  # already URL-decoded
    size: int
    version_id: str | None = None
    sequencer: str | None = None
    removal: str | None = None


@dataclass
class TriggerResult:
    started: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    # Objects under raw/ that started nothing: {"key", "reason", "record"} (the key of their skip record).
    skipped: list[dict[str, str]] = field(default_factory=list)
    # Not uploads at all (folder markers, keys outside raw/): {"key", "reason"}, no record, no metric.
    ignored: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"started": self.started, "duplicates": self.duplicates, "skipped": self.skipped,
                "ignored": self.ignored, "failed": self.failed}


def skip_reason(obj: S3ObjectEvent) -> str | None:
    """Why the object starts no execution (None: it is an upload to process). Accepted: a non-empty object
    under raw/ whose key ends in one of UPLOAD_SUFFIXES (case-insensitive)."""
    if obj.key.endswith("/"):
        return "folder marker"
    if not obj.key.startswith(RAW_PREFIX):
        return f"outside {RAW_PREFIX}"
    if obj.removal and not obj.key.lower().endswith(UPLOAD_SUFFIXES):
        return "removed object that was never a CSV upload"
    if obj.removal:
        return None  # a removal has no size; every removed upload is retracted, whatever it held
    if not obj.key.lower().endswith(UPLOAD_SUFFIXES):
        name = obj.key.rsplit("/", 1)[-1]
        kind = f"a {name.rsplit('.', 1)[-1].lower()!r} file" if "." in name.strip(".") else "a key without extension"
        return f"not a CSV upload ({kind}): upload .csv, .csv.gz or a .zip holding one CSV"
    if obj.size == 0:
        return "zero-byte object"
    return None


def is_upload(obj: S3ObjectEvent) -> bool:
    """An object someone put under raw/ (not a folder marker): skipping it is recorded and counted. A removal
    that starts nothing (not a CSV key) is ignored: nothing was ever derived from it."""
    return obj.key.startswith(RAW_PREFIX) and not obj.key.endswith("/") and not obj.removal


def skip_record_key(obj: S3ObjectEvent) -> str:
    """Where the trigger records a skipped upload: one key per (bucket, key, version), so a redelivered event
    rewrites its own record."""
    return f"{SKIPPED_PREFIX}{execution_name(obj)}.json"


def skip_record(obj: S3ObjectEvent, reason: str, skipped_at: datetime) -> dict[str, Any]:
    """The JSON record of a skipped upload (`ticketflow alerts` and `ticketflow run` read it)."""
    return {
        "bucket": obj.bucket,
        "key": obj.key,
        "size": obj.size,
        "version_id": obj.version_id or "",
        "sequencer": obj.sequencer or "",
        "reason": reason,
        "skipped_at": skipped_at.astimezone(UTC).isoformat(),
    }


DIGEST_CHARS = 20


def execution_stem(key: str, removal: bool = False) -> str:
    """The readable start of the execution names of `key`'s uploads (of its erasures with `removal`): every
    such name is `<stem>-<digest>`, so the runs of a key can be found by this prefix (ticketcore.erasure)."""
    tag = "-erase" if removal else ""
    stem = _NAME_UNSAFE.sub("_", source_name(key)).strip("_")[: MAX_NAME - DIGEST_CHARS - len(tag) - 1]
    return f"{stem or 'upload'}{tag}"


def execution_name(obj: S3ObjectEvent) -> str:
    """<= 80 chars of [A-Za-z0-9_-]: a readable stem plus a digest of exactly what identifies the upload."""
    identity = f"{obj.bucket}/{obj.key}@{obj.version_id or obj.sequencer or ''}"
    if obj.removal:
        identity += f"#{obj.removal}"
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:DIGEST_CHARS]
    return f"{execution_stem(obj.key, bool(obj.removal))}-{digest}"


def reprocess_name(key: str, version_id: str, sequencer: str, revision: str) -> str:
    """The name of a reprocess of one upload (`<stem>-re-<digest>`) under one revision of the transform (its
    contract and code): the same request repeated is the same name, so StartExecution refuses it
    (ExecutionAlreadyExists) instead of running the upload twice; a changed revision makes a new name. The
    stem is the upload's, so the erasure of the key finds these runs too."""
    stem = execution_stem(key)[: MAX_NAME - DIGEST_CHARS - len("-re-")]
    identity = f"{key}@{version_id or sequencer}#reprocess:{revision}"
    return f"{stem}-re-{hashlib.sha256(identity.encode('utf-8')).hexdigest()[:DIGEST_CHARS]}"


def execution_input(obj: S3ObjectEvent) -> dict[str, Any]:
    """The execution's input; `removal` (present only for a deletion) routes it to RetractSource."""
    return {
        "bucket": obj.bucket,
        "key": obj.key,
        "size": obj.size,
        "version_id": obj.version_id or "",
        "sequencer": obj.sequencer or "",
        **({"removal": obj.removal} if obj.removal else {}),
    }


def already_running(started_at: object, requested_at: datetime) -> bool:
    """StartExecution's answer names an execution that started before the call (a running duplicate)."""
    if not isinstance(started_at, datetime):
        return False
    if started_at.tzinfo is None:
        started_at = started_at.replace(tzinfo=UTC)  # botocore's are aware; a bare one is UTC
    return started_at < requested_at - ALREADY_RUNNING_MARGIN


def start_executions(
    sfn: Any,
    state_machine_arn: str,
    objects: list[S3ObjectEvent],
    record: Callable[[str, str, bytes], None] | None = None,
) -> TriggerResult:
    """Start one execution per object; one failure does not stop the others (the caller raises after).
    A skipped upload under raw/ is recorded with `record(bucket, key, body)` (its JSON skip record); a record
    that cannot be written counts as failed, so the event is retried."""
    result = TriggerResult()
    for obj in objects:
        reason = skip_reason(obj)
        if reason and not is_upload(obj):
            result.ignored.append({"key": obj.key, "reason": reason})
            continue
        if reason:
            record_key = skip_record_key(obj)
            try:
                if record is not None:
                    body = json.dumps(skip_record(obj, reason, datetime.now(UTC)), sort_keys=True).encode("utf-8")
                    record(obj.bucket, record_key, body)
                result.skipped.append({"key": obj.key, "reason": reason, "record": record_key})
            except Exception as err:
                code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
                result.failed.append({"key": obj.key, "execution": "", "error": code, "message": str(err)})
            continue
        name = execution_name(obj)
        requested_at = datetime.now(UTC)
        try:
            response = sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=name,
                input=json.dumps(execution_input(obj), sort_keys=True),
            )
            if already_running(response.get("startDate"), requested_at):
                result.duplicates.append(name)  # the running execution, returned as idempotent
            else:
                result.started.append(name)
        except Exception as err:  # boto3 ClientError: look at the code, never at the message
            code = getattr(err, "response", {}).get("Error", {}).get("Code", type(err).__name__)
            if code == "ExecutionAlreadyExists":
                result.duplicates.append(name)
            else:
                result.failed.append({"key": obj.key, "execution": name, "error": code, "message": str(err)})
    return result
