"""The failure alert: one readable message from a Step Functions status-change event."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

ALERT_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


@dataclass(frozen=True)
class Alert:
    subject: str
    message: str
    attributes: dict[str, str]


def failed_state(history: list[dict[str, Any]]) -> tuple[str | None, str | None, str | None]:
    """(state, error, cause) of the last failure in an execution history."""
    state = error = cause = None
    for event in history:
        if event.get("type") in (
            "TaskStateEntered",
            "ChoiceStateEntered",
            "PassStateEntered",
            "ParallelStateEntered",
            "MapStateEntered",
            "FailStateEntered",
        ):
            state = event.get("stateEnteredEventDetails", {}).get("name")
        for key in (
            "taskFailedEventDetails",
            "executionFailedEventDetails",
            "executionTimedOutEventDetails",
            "executionAbortedEventDetails",
        ):
            details = event.get(key)
            if details:
                error = details.get("error", error)
                cause = details.get("cause", cause)
    return state, error, cause


@dataclass(frozen=True)
class Remedy:
    """What fixes a failed execution: `action` is "upload" (fix the file, upload it again), "reprocess" (change
    the contract, then run the upload again from the start), "redrive" (a transient failure or an interrupt:
    resume at the failed state) or "none"; `advice` says it in one sentence."""

    action: str
    advice: str


# Errors a redrive cannot fix: the same object version would fail the same way (the cause names the problem).
_FILE_ERRORS = ("SchemaError", "UnsafeKeyError", "ObjectMissingError")
_CONTRACT_HINTS = ("required column", "headers match", "ambiguous")
_NAMED_IN_CAUSE = re.compile(r"\b(SchemaError|ContractError|DataQualityError|SourceErased|UnsafeKeyError|"
                             r"ObjectMissingError): ")


def remedy(error: str | None, cause: str | None = None) -> Remedy:
    """Which action fits a failure, from its error name (and, for a Glue job's failure, the exception its
    cause names). Rules: the README's operating section, "Which fix fits which error"."""
    error, text = error or "", readable_cause(cause or "")
    named = error
    if error in ("States.TaskFailed", ""):  # a Glue job's failure: the exception its ErrorMessage starts with
        found = _NAMED_IN_CAUSE.search(text)
        named = found.group(1) if found else error
    if named == "SourceErased":
        return Remedy("none", "the file was deleted after this upload and its data erased: nothing to run")
    if named == "ContractError":
        return Remedy("reprocess", "fix the contract, then reprocess this upload with it")
    if named in _FILE_ERRORS:
        if any(hint in text for hint in _CONTRACT_HINTS):
            return Remedy("reprocess", "if the file's columns are right but named differently, add the names to "
                                       "the contract as aliases (`ticketflow inspect FILE --write-contract "
                                       "OVERLAY.yaml`, fill it in) and reprocess with it; otherwise fix the file "
                                       "and upload it again (a redrive reads the same file: unless the contract "
                                       "changed, it fails the same way)")
        return Remedy("upload", "fix the file as the cause says and upload it again (a redrive reads the same "
                                "file: unless the contract changed, it fails the same way)")
    if named == "DataQualityError":
        return Remedy("upload", "the output failed validation: fix the file and upload it again; if the contract's "
                                "expectations are wrong for this data, change the contract and reprocess")
    return Remedy("redrive", "a transient failure or an interruption: redrive it, which resumes at the failed "
                             "state (earlier states are not re-run)")


def readable_cause(cause: str) -> str:
    """Causes are often JSON: a Lambda error (errorType/errorMessage/stackTrace) or a Glue JobRun. An
    operator needs the message, not the stack trace."""
    try:
        doc = json.loads(cause)
    except (TypeError, ValueError):
        return cause
    if isinstance(doc, dict) and "errorMessage" in doc:
        return f"{doc.get('errorType', 'Error')}: {doc['errorMessage']}"
    if isinstance(doc, dict) and "JobRunState" in doc:
        return (
            f"Glue job run {doc.get('Id', '?')} {doc['JobRunState']}: {doc.get('ErrorMessage', '')}".rstrip(
                ": "
            )
        )
    return cause


# Control characters, and the Unicode ones that break or reorder lines (line/paragraph separators, bidi controls).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """`text` as one printable line: every control character escaped (`\\n`, `\\x1b`, `\\u2028`), so an object
    key or a cause can never forge lines or hide text in an alert (S3 keys may hold any of them)."""
    def escape(m: re.Match[str]) -> str:
        c = m.group()
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c) or (
            f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")

    return _UNPRINTABLE.sub(escape, text)


def _commands(action: str, name: str, arn: str) -> list[str]:
    if action == "redrive":
        return [f"  aws stepfunctions redrive-execution --execution-arn {arn}",
                f"  ticketflow redrive {name}          (local runtime; add --target aws for a deployed stack)"]
    if action == "reprocess":
        return [f"  ticketflow reprocess {name} --contract OVERLAY.yaml   (local runtime)",
                f"  ticketflow reprocess {name} --target aws   (a deployed stack, after `cdk deploy` of the contract)"]
    if action == "upload":
        return ["  upload the fixed file to the same key: a new version, which runs on its own"]
    return []


def build_alert(event: dict[str, Any], history: list[dict[str, Any]], region: str) -> Alert | None:
    detail = event.get("detail", {})
    status = detail.get("status")
    if status not in ALERT_STATUSES:
        return None
    arn = detail.get("executionArn", "")
    name = detail.get("name") or arn.rsplit(":", 1)[-1]
    try:
        source_key = json.loads(detail.get("input") or "{}").get("key", "?")
    except json.JSONDecodeError:
        source_key = "?"
    source_key = one_line(str(source_key))
    state, error, cause = failed_state(history)
    error = one_line(str(detail.get("error") or error or status))
    cause = one_line(readable_cause(detail.get("cause") or cause or ""))
    console = (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{arn}"
    )
    subject = f"ticketflow: {name[:40]} {status} at {state or '?'} ({error})"[:100]
    fix = remedy(error, detail.get("cause") or cause)
    lines = [
        f"Execution {name} ended {status}.",
        f"Source file:   {source_key}",
        f"Failed state:  {state or 'unknown'}",
        f"Error:         {error}",
        f"Cause:         {cause[:2000]}",
        "",
        f"Execution:     {arn}",
        f"Console:       {console}",
        "",
        f"What fits: {fix.advice}.",
        *_commands(fix.action, name, arn),
    ]
    return Alert(
        subject=subject,
        message="\n".join(lines),
        attributes={
            "status": status,
            "state": state or "",
            "error": error,
            "source_key": source_key,
            "execution_arn": arn,
            "action": fix.action,  # a subscription's filter policy can route by it
        },
    )
