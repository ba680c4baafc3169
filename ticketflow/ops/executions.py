"""Where executions live, behind one interface: the local runtime's records or the Step Functions API.

Both stores answer in the API's own shapes: DescribeExecution dicts and GetExecutionHistory events, with
dates as timezone-aware datetimes (as boto3 returns them), so rendering and `summarize_history` never
need to know which one they read.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from ticketcore.layout import RAW_PREFIX

# What DescribeExecution/ListExecutions can report (PENDING_REDRIVE: on AWS, between RedriveExecution and
# the redriven run starting).
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")

Executions = list[dict[str, Any]]  # a module-level alias: inside the classes `list` is a method's name
Events = list[dict[str, Any]]
Names = list[str]

_DATE_KEYS = ("startDate", "stopDate", "redriveDate", "timestamp")
_MAX_PAGES = 1000  # a guard: a history holds at most 25,000 events, 1,000 a page


class ExecutionNotFound(LookupError):
    """No execution has that name, ARN or prefix."""


class AmbiguousExecution(LookupError):
    """A prefix matches more than one execution."""


@dataclass(frozen=True)
class ExecutionFilter:
    """What `executions` narrows the list to: status, start time in [since, until) (timezone-aware), and a
    source key (the execution input's `key`) that starts with `source` (`raw/` may be left out)."""

    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: str | None = None

    def started_in(self, desc: dict[str, Any]) -> bool:
        start = desc.get("startDate")
        if not isinstance(start, datetime):
            return self.since is None and self.until is None
        return (self.since is None or start >= self.since) and (self.until is None or start < self.until)

    def from_source(self, desc: dict[str, Any]) -> bool:
        from ticketflow.ops.render import source_key

        if not self.source:
            return True
        key = source_key(desc) or ""
        wanted = self.source
        return key.startswith(wanted) or key.startswith(RAW_PREFIX + wanted.removeprefix("/"))

    def matches(self, desc: dict[str, Any]) -> bool:
        return ((self.status is None or desc.get("status") == self.status) and self.started_in(desc)
                and self.from_source(desc))


class ExecutionStore(Protocol):
    where: str  # said in messages: "no execution named X in <where>"

    def list(self, status: str | None = None, limit: int = 20, where: ExecutionFilter | None = None
             ) -> Executions:
        """DescribeExecution-shaped dicts, newest first (by startDate); `where` narrows them."""
        ...

    def names(self) -> Names:
        """Every execution name, newest first: cheap (no DescribeExecution per execution)."""
        ...

    def describe(self, name_or_arn: str) -> dict[str, Any]:
        """DescribeExecution; raises ExecutionNotFound."""
        ...

    def history(self, name_or_arn: str) -> Events:
        """The whole GetExecutionHistory, oldest event first; raises ExecutionNotFound."""
        ...


def name_of(name_or_arn: str) -> str:
    """`arn:aws:states:<region>:<account>:execution:<machine>:<name>` -> `<name>`; a name stays as it is."""
    return name_or_arn.rsplit(":", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


def resolve(store: ExecutionStore, name_or_prefix: str) -> dict[str, Any]:
    """DescribeExecution of the execution given by its full name, its ARN or a unique prefix of its name."""
    wanted = name_or_prefix.strip()
    if not wanted:
        raise ExecutionNotFound("give an execution name, ARN or name prefix")
    try:
        return store.describe(wanted)
    except ExecutionNotFound:
        if wanted.startswith("arn:"):
            raise
    matches = [name for name in store.names() if name.startswith(wanted)]
    if len(matches) == 1:
        return store.describe(matches[0])
    if not matches:
        raise ExecutionNotFound(f"no execution named {wanted!r} (nor starting with it) in {store.where}")
    shown = "\n".join(f"  {name}" for name in matches[:20])
    more = f"\n  ... and {len(matches) - 20} more" if len(matches) > 20 else ""
    raise AmbiguousExecution(
        f"{wanted!r} matches {len(matches)} executions in {store.where}; give more of the name:\n"
        f"{shown}{more}"
    )


def revive_dates(value: Any) -> Any:
    """Recorded JSON (ISO-8601 strings) -> the API's shapes (datetimes), recursively."""
    if isinstance(value, dict):
        return {
            key: _parse_date(item) if key in _DATE_KEYS and isinstance(item, str) else revive_dates(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [revive_dates(item) for item in value]
    return value


def _parse_date(text: str) -> datetime | str:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _newest_first(executions: Executions) -> Executions:
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(executions, key=lambda e: e.get("startDate") or oldest, reverse=True)


class LocalExecutionStore:
    """The records the local runtime writes: `<home>/executions/<name>.json` once an execution has ended,
    and `<name>.running.json` while a process (`run`, `watch`, `redrive`) runs it, kept current by that
    process (status taken from whichever is newer). Every process on one home reads the same records."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.directory = self.home / "executions"
        self.where = str(self.directory)

    def _records(self) -> dict[str, tuple[float, Path]]:
        """name -> (mtime, the file to read for it): the newer of the final and the running record."""
        if not self.directory.is_dir():
            return {}
        chosen: dict[str, tuple[float, Path]] = {}
        for path in self.directory.glob("*.json"):
            if path.name.startswith("."):  # a record being written
                continue
            name = path.name.removesuffix(".json").removesuffix(".running")
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:  # replaced or removed while we looked
                continue
            if name not in chosen or mtime > chosen[name][0]:
                chosen[name] = (mtime, path)
        return chosen

    def _load(self, path: Path) -> dict[str, Any] | None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a record being rewritten, or not ours
            return None
        return doc if isinstance(doc, dict) and isinstance(doc.get("execution"), dict) else None

    def _load_current(self, path: Path) -> dict[str, Any] | None:
        """The record at `path`; a RUNNING one whose runtime was killed as the next runtime will record it."""
        from ticketflow.local.interrupts import record_as_lost

        doc = self._load(path)
        pid = self._lost_pid(doc) if doc else None
        return record_as_lost(doc, pid, str(doc.get("recorded_at") or "")) if doc and pid is not None else doc

    def _record(self, name_or_arn: str) -> dict[str, Any]:
        name = name_of(name_or_arn)
        found = self._records().get(name)
        doc = self._load_current(found[1]) if found else None
        if doc is None:
            raise ExecutionNotFound(f"no execution named {name!r} in {self.where}")
        return doc

    @staticmethod
    def _lost_pid(doc: dict[str, Any]) -> int | None:
        """The process id of a RUNNING record's runtime when that process is gone (killed), else None."""
        from ticketflow.local.interrupts import process_alive

        owner = doc.get("owner") or {}
        if doc["execution"].get("status") != "RUNNING" or not owner or owner.get("host") != socket.gethostname():
            return None
        pid = int(owner.get("pid") or 0)
        return None if process_alive(pid) else pid

    @staticmethod
    def _describe(doc: dict[str, Any]) -> dict[str, Any]:
        desc = revive_dates(doc["execution"])
        desc.setdefault("redriveCount", doc.get("redrive_count", 0))
        return desc

    def list(self, status: str | None = None, limit: int = 20, where: ExecutionFilter | None = None
             ) -> Executions:
        where = where or ExecutionFilter(status=status)
        found = []
        for _, path in self._records().values():
            doc = self._load_current(path)
            if doc is None:
                continue
            desc = self._describe(doc)
            if where.matches(desc):
                found.append(desc)
        return _newest_first(found)[:limit]

    def names(self) -> Names:
        records = self._records()
        return sorted(records, key=lambda name: records[name][0], reverse=True)

    def describe(self, name_or_arn: str) -> dict[str, Any]:
        return self._describe(self._record(name_or_arn))

    def history(self, name_or_arn: str) -> Events:
        events = revive_dates(self._record(name_or_arn).get("history") or [])
        return sorted(events, key=lambda e: e.get("id", 0))


class AwsExecutionStore:
    """A deployed state machine's executions, through ListExecutions / DescribeExecution /
    GetExecutionHistory. Paging is followed by token only (moto ignores maxResults and nextToken, and
    never returns a token), and ordering is done here rather than trusted to the service."""

    def __init__(self, sfn_client: Any, state_machine_arn: str) -> None:
        self.sfn = sfn_client
        self.state_machine_arn = state_machine_arn
        self.where = f"state machine {state_machine_arn}"

    def execution_arn(self, name_or_arn: str) -> str:
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        # arn:aws:states:<region>:<account>:stateMachine:<machine> -> ...:execution:<machine>:<name>
        return self.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name_or_arn

    def _list_items(self, status: str | None, limit: int) -> Executions:
        items: Executions = []
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            kwargs: dict[str, Any] = {"stateMachineArn": self.state_machine_arn, "maxResults": 1000}
            if status:
                kwargs["statusFilter"] = status
            if token:
                kwargs["nextToken"] = token
            page = self.sfn.list_executions(**kwargs)
            items += [e for e in page.get("executions", []) if status is None or e.get("status") == status]
            token = page.get("nextToken")
            if not token or token in seen_tokens or len(items) >= limit or len(seen_tokens) > _MAX_PAGES:
                break
            seen_tokens.add(token)
        return _newest_first(items)[:limit]

    def list(self, status: str | None = None, limit: int = 20, where: ExecutionFilter | None = None
             ) -> Executions:
        where = where or ExecutionFilter(status=status)
        # ListExecutions filters by status only, and its items lack input/error/cause: dates are checked on
        # the items, the source on each DescribeExecution, until `limit` match.
        wide = 1_000_000 if where.source or where.since or where.until else limit
        described = []
        for item in self._list_items(where.status, wide):
            if not where.started_in(item):
                continue
            desc = self.describe(item["executionArn"])
            desc.setdefault("redriveCount", item.get("redriveCount", 0))
            if where.from_source(desc):
                described.append(desc)
            if len(described) >= limit:
                break
        return described

    def names(self) -> Names:
        return [e["name"] for e in self._list_items(None, 1_000_000)]

    def _call(self, operation: str, name_or_arn: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = getattr(self.sfn, operation)(executionArn=self.execution_arn(name_or_arn), **kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("ExecutionDoesNotExist", "InvalidArn"):
                name = name_of(name_or_arn)
                raise ExecutionNotFound(f"no execution named {name!r} in {self.where}") from err
            raise
        return {k: v for k, v in response.items() if k != "ResponseMetadata"}

    def describe(self, name_or_arn: str) -> dict[str, Any]:
        desc = self._call("describe_execution", name_or_arn)
        desc.setdefault("redriveCount", 0)
        return desc

    def history(self, name_or_arn: str) -> Events:
        events: Events = []
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            kwargs: dict[str, Any] = {"maxResults": 1000}
            if token:
                kwargs["nextToken"] = token
            page = self._call("get_execution_history", name_or_arn, **kwargs)
            events += page.get("events", [])
            token = page.get("nextToken")
            if not token or token in seen_tokens or len(seen_tokens) > _MAX_PAGES:
                break
            seen_tokens.add(token)
        unique = {e["id"]: e for e in events}  # a service that ignores nextToken repeats its one page
        return [unique[i] for i in sorted(unique)]


def run_name(desc: Mapping[str, Any]) -> str:
    """The run id of an execution: its name (the ARN's last part when the description has no name)."""
    return str(desc.get("name") or name_of(str(desc.get("executionArn", ""))))


def run_file_keys(desc: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, bucket key) of the files one execution's run writes: its run report, validation report,
    quarantined rows and publish report (`ticketcore.layout`; the run id is the execution name)."""
    from ticketcore import layout
    from ticketflow.ops.render import source_key

    name = run_name(desc)
    source = source_key(desc)
    keys = [("Report", run_report_key(desc)), ("Validation", layout.validation_report_key(name))]
    if source:
        keys.append(("Quarantine", layout.quarantine_prefix(source, name) + layout.QUARANTINE_FILE))
    keys.append(("Published", layout.reports_prefix(name) + layout.PUBLISH_REPORT))
    return keys


def run_report_key(desc: Mapping[str, Any]) -> str:
    """The bucket key of the Glue job's run report for one execution (`ticketcore.layout`)."""
    from ticketcore import layout

    return layout.reports_prefix(run_name(desc)) + layout.RUN_REPORT


def local_run_report(home: Path, desc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run report from the local bucket under `home`, or None when the job wrote none (yet)."""
    from ticketcore.storage import LocalStorage
    from ticketflow.local.runtime import LOCAL_BUCKET

    storage = LocalStorage(Path(home).resolve(), LOCAL_BUCKET)
    key = run_report_key(desc)
    return json.loads(storage.read_bytes(key)) if storage.exists(key) else None


def aws_run_report(s3: Any, bucket: str, desc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run report from the stack's bucket, or None when there is none (NoSuchKey) or it cannot be read
    (AccessDenied: the reports prefix is encrypted with the stack's key)."""
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=run_report_key(desc))["Body"].read())
    except ClientError:
        return None
