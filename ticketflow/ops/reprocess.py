"""Reprocessing: run uploads again from the start, after a contract or code change (a redrive would resume the
failed state on the output the old contract staged).

What runs is chosen from the executions, local or on AWS alike: one execution (`EXECUTION`), or, for every
source key under a prefix, the key's newest upload execution (`--prefix`, optionally started `--since`). Each
reprocess starts a new execution from the start with the same input, so the same object version (and its
sequencer, which keeps an older version from replacing a newer one's publication, and an erased key erased).
Its name (`trigger.reprocess_name`) derives from the object version and the transform's revision: repeating a
reprocess is a no-op, a new contract makes a new name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ticketcore.trigger import reprocess_name
from ticketflow.ops.executions import ExecutionFilter, ExecutionStore, resolve

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the local transform's result depends on besides the data: the Glue script and the core package.
_CODE = ("glue/ticket_etl_job.py", "ticketcore")


class ReprocessRefused(Exception):
    """The execution cannot be reprocessed (an erasure, still running, or no upload in its input)."""


@dataclass(frozen=True)
class Reprocess:
    """One upload to run again: `of` is the execution whose input is reused, `name` the new execution's."""

    source_key: str
    of: str
    name: str
    input: dict[str, Any]


@dataclass
class ReprocessPlan:
    runs: list[Reprocess]
    passed_over: list[dict[str, str]]  # {"source_key", "execution", "reason"}: keys left out, and why


def local_revision(contract: Path) -> str:
    """16 hex digits over the contract's bytes and the transform's code: what a local reprocess's name
    depends on."""
    digest = hashlib.sha256(contract.read_bytes())
    for base in sorted((REPO_ROOT / "contracts").glob("*.yaml")):  # what an overlay's `extends` names
        digest.update(base.name.encode() + b"\0" + base.read_bytes())
    for part in _CODE:
        path = REPO_ROOT / part
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


def aws_revision(glue_job: dict[str, Any]) -> str:
    """16 hex digits over the deployed Glue job's script and default arguments (GetJob's `Job`): a deploy
    that changes the contract or the code changes its asset keys, which CDK derives from their content."""
    relevant = {"script": (glue_job.get("Command") or {}).get("ScriptLocation"),
                "arguments": glue_job.get("DefaultArguments") or {}}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def _input_of(desc: dict[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(desc.get("input") or "{}")
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {}


def _reprocess(desc: dict[str, Any], revision: str) -> Reprocess:
    payload = _input_of(desc)
    key = str(payload.get("key") or "")
    if not key or "bucket" not in payload:
        raise ReprocessRefused(f"execution {desc['name']} has no upload in its input (bucket and key)")
    if payload.get("removal"):
        raise ReprocessRefused(f"execution {desc['name']} is an erasure (the upload was deleted): nothing to run "
                               "again")
    if desc.get("status") in ("RUNNING", "PENDING_REDRIVE"):
        raise ReprocessRefused(f"execution {desc['name']} is still {desc['status']}: let it end (or stop it) first")
    name = reprocess_name(key, str(payload.get("version_id") or ""), str(payload.get("sequencer") or ""),
                          revision)
    return Reprocess(key, str(desc["name"]), name, payload)


def refusal(desc: dict[str, Any]) -> str | None:
    """Why this execution's upload cannot be reprocessed (ReprocessRefused's message), or None."""
    try:
        _reprocess(desc, "")
    except ReprocessRefused as refused:
        return str(refused)
    return None


def plan_one(store: ExecutionStore, execution: str, revision: str) -> ReprocessPlan:
    """The reprocess of one execution (name, ARN or unique prefix). Raises ReprocessRefused, or
    ExecutionNotFound / AmbiguousExecution from `resolve`."""
    return ReprocessPlan([_reprocess(resolve(store, execution), revision)], [])


def plan_prefix(store: ExecutionStore, prefix: str, revision: str, since: datetime | None = None) -> ReprocessPlan:
    """For each source key under `prefix` (raw/ may be left out) with an execution started since `since`: its
    newest execution's upload, again; keys whose newest execution is an erasure, or still running, are
    passed over with the reason."""
    executions = store.list(limit=1_000_000, where=ExecutionFilter(source=prefix, since=since))
    newest: dict[str, dict[str, Any]] = {}
    for desc in executions:  # newest first
        key = str(_input_of(desc).get("key") or "")
        if key:
            newest.setdefault(key, desc)
    runs, passed_over = [], []
    for key in sorted(newest):
        try:
            runs.append(_reprocess(newest[key], revision))
        except ReprocessRefused as refused:
            passed_over.append({"source_key": key, "execution": newest[key]["name"], "reason": str(refused)})
    return ReprocessPlan(runs, passed_over)
