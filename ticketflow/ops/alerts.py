"""The failure alerts: the local outbox and dead-lettered trigger events, or where a stack sends them."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

from ticketcore.layout import SKIPPED_PREFIX
from ticketcore.storage import LocalStorage, Storage
from ticketflow.ops.executions import revive_dates
from ticketflow.ops.render import ExecutionRow, fmt_time, render_failures


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per line; a line being appended (not yet whole) is skipped."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def skipped_uploads(storage: Storage, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(how many, the newest `limit` oldest first) of the trigger's records of uploads under raw/ that started
    no execution (`ticketcore.trigger.skip_record`); a record that is not JSON is left out."""
    records = []
    for info in storage.list(SKIPPED_PREFIX):
        try:
            record = json.loads(storage.read_bytes(info.key))
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append({**record, "record": info.key})
    records.sort(key=lambda r: str(r.get("skipped_at", "")))
    return len(records), records[-limit:] if limit > 0 else []


def local_alerts(home: Path, limit: int) -> dict[str, Any]:
    """The last `limit` SNS messages of the outbox, dead letters and skipped uploads, oldest first."""
    outbox, dead_letters = home / "outbox.jsonl", home / "dead_letters.jsonl"
    messages, letters = read_jsonl(outbox), read_jsonl(dead_letters)
    # The local bucket is <home>/bucket/ whatever its name.
    skipped_total, skipped = skipped_uploads(LocalStorage(home, "local"), limit)
    return {
        "outbox": str(outbox),
        "messages_total": len(messages),
        "messages": messages[-limit:] if limit > 0 else [],
        "dead_letters_file": str(dead_letters),
        "dead_letters_total": len(letters),
        "dead_letters": letters[-limit:] if limit > 0 else [],
        "skipped_total": skipped_total,
        "skipped": skipped,
    }


def dead_letter_key(entry: dict[str, Any]) -> str:
    """The object key of a dead-lettered S3 event (S3 sends keys URL-encoded)."""
    try:
        record = entry["event"]["Records"][0]["s3"]
        return f"{record['bucket']['name']}/{urllib.parse.unquote_plus(record['object']['key'])}"
    except (KeyError, IndexError, TypeError):
        return "(not an S3 event)"


def _when(text: str | None) -> str:
    value = revive_dates({"timestamp": text})["timestamp"] if text else None
    return f"{fmt_time(value)} UTC" if not isinstance(value, str) else value


def render_skipped(doc: dict[str, Any]) -> list[str]:
    """Lines for the skipped uploads of an alerts document (`skipped`, `skipped_total`)."""
    skipped = doc.get("skipped") or []
    if not skipped:
        return ["No skipped uploads: every object under raw/ started an execution."]
    of_total = f" ({len(skipped)} of {doc['skipped_total']})" if len(skipped) < doc["skipped_total"] else ""
    lines = [f"Uploads under raw/ that started no execution, newest last{of_total}:"]
    for record in skipped:
        lines.append(f"  [{_when(record.get('skipped_at'))}] {record.get('key', '?')} ({record.get('size', '?')} "
                     f"bytes): {record.get('reason', '?')}")
    lines.append("  Nothing was read from these: upload them again as .csv, .csv.gz or a .zip holding one CSV.")
    return lines


def render_local_alerts(doc: dict[str, Any]) -> str:
    lines: list[str] = []
    messages = doc["messages"]
    if messages:
        shown = len(messages)
        of_total = f" ({shown} of {doc['messages_total']})" if shown < doc["messages_total"] else ""
        lines.append(f"Failure alerts sent (local SNS outbox {doc['outbox']}), newest last{of_total}:")
        for message in messages:
            lines.append("")
            lines.append(f"[{_when(message.get('sent_at'))}] {message.get('subject') or '(no subject)'}")
            lines += [f"    {line}" for line in str(message.get("message", "")).splitlines()]
    else:
        lines.append(f"No failure alerts: the local SNS outbox {doc['outbox']} is empty.")

    letters = doc["dead_letters"]
    lines.append("")
    if letters:
        attempts = sorted({entry.get("attempts") for entry in letters}, key=str)
        label = f"after {attempts[0]} attempts" if len(attempts) == 1 else "after all their attempts"
        lines.append(f"Events the trigger could not start {label} (dead letters {doc['dead_letters_file']}), "
                     f"newest last"
                     + (f" ({len(letters)} of {doc['dead_letters_total']})"
                        if len(letters) < doc["dead_letters_total"] else "") + ":")
        for entry in letters:
            lines.append(f"  [{_when(entry.get('failed_at'))}] {dead_letter_key(entry)}"
                         + ("" if len(attempts) == 1 else f" ({entry.get('attempts')} attempts)"))
            lines.append(f"      error: {entry.get('error') or '?'}")
        lines.append("  No execution was started for these: upload the files again once the cause is fixed.")
    else:
        lines.append("No dead-lettered trigger events: every upload event started its execution.")
    lines.append("")
    lines += render_skipped(doc)
    return "\n".join(lines)


def render_aws_alerts(doc: dict[str, Any], failures: list[ExecutionRow]) -> str:
    lines = [f"Failure alerts go to the SNS topic {doc['topic_arn']} (stack {doc['stack']})."]
    subscriptions = doc["subscriptions"]
    if subscriptions:
        lines.append(f"Subscriptions ({len(subscriptions)}):")
        for sub in subscriptions:
            pending = sub.get("SubscriptionArn") in ("PendingConfirmation", "Deleted")
            lines.append(f"  {sub.get('Protocol', '?'):<8} {sub.get('Endpoint', '?')}"
                         + (f"  ({sub.get('SubscriptionArn')})" if pending else ""))
    else:
        lines.append("It has no subscriptions: nobody receives the alerts. Subscribe with")
        lines.append(f"  aws sns subscribe --topic-arn {doc['topic_arn']} --protocol email "
                     "--notification-endpoint you@example.com")
    lines.append("")
    if failures:
        lines.append(f"Recent executions that ended FAILED, TIMED_OUT or ABORTED ({len(failures)}, "
                     "newest first):")
        lines.append(render_failures(failures))
    else:
        lines.append("No FAILED, TIMED_OUT or ABORTED executions.")
    lines.append("")
    lines += render_skipped(doc)
    return "\n".join(lines)
