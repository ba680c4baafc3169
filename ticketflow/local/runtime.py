"""The embedded default: the deployed pipeline's definition and code, on one machine.

A directory is the bucket (`<home>/bucket/`), an upload is a file landing under `support_ticket/raw/` plus
the S3-shaped event the trigger handler receives, the state machine is `statemachine/pipeline.asl.json`
run by moto's interpreter, the Task states call the real handlers and the real Glue script, failures reach
the real notify handler as the EventBridge event AWS would send, and SNS lands in `<home>/outbox.jsonl`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ticketcore import layout
from ticketcore.alerts import ALERT_STATUSES
from ticketcore.erasure import DELETE_MARKER as DELETE_MARKER_CREATED
from ticketcore.storage import LOCAL_ROOT_ENV, LocalStorage
from ticketflow.local import asl
from ticketflow.local.backend import (
    ACCOUNT,
    REGION,
    STATE_MACHINE_NAME,
    TOPIC_ARN,
    FaultInjector,
    LocalBackend,
    substitutions,
)
from ticketflow.local.engine import LocalStepFunctions
from ticketflow.local.interrupts import INTERRUPT_ERRORS, INTERRUPTED, process_alive, record_as_lost

LOCAL_BUCKET = "ticketflow-local"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
TRIGGER_ATTEMPTS = 3  # an asynchronous Lambda invocation: the first try and two retries
TRACK_INTERVAL = 0.5  # seconds between updates of the running executions' records


def default_home() -> Path:
    return Path(os.environ.get("TICKETFLOW_HOME", ".ticketflow"))


def sequencer_of(version_id: str) -> str:
    """The S3 event sequencer of a local object version (its creation time, as 20 hex digits): one per
    version, increasing per key, so every event source names an upload the same way."""
    return f"{int(version_id.split('.', 1)[0], 16):020X}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


class RedriveRefused(Exception):
    """The execution cannot be redriven (unknown, or it did not fail)."""


def write_json(path: Path, doc: dict[str, Any]) -> None:
    """Whole or not at all: readers in other processes never see half a record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _default_events() -> Any:
    """The event hooks of boto3's default session, which the handlers' `boto3.client(...)` calls use."""
    import boto3

    return boto3._get_default_session().events


@dataclass
class Upload:
    key: str
    sequencer: str
    started: list[str]
    duplicates: list[str]
    skipped: list[dict[str, str]]
    dead_lettered: bool = False
    # Set when this object version's event was sent before (by this or another process on the same home):
    # {"by", "at", "executions", ...}; nothing was sent again.
    sent_before: dict[str, Any] | None = None


class LocalRuntime:
    def __init__(
        self,
        home: Path | None = None,
        contract: Path | None = None,
        definition: Path | None = None,
        faults: FaultInjector | None = None,
        clock: Any = None,
        max_concurrent_runs: int = 2,
        spark_provider: Callable[[], Any] | None = None,
        quiet_lambdas: bool = True,
    ) -> None:
        self.home = (home or default_home()).resolve()
        self.contract = contract.resolve() if contract else None
        self.definition_path = definition or asl.DEFAULT_DEFINITION
        self.storage = LocalStorage(self.home, LOCAL_BUCKET)
        self.backend = LocalBackend(
            self.home, spark_provider or _warm_spark, max_concurrent_runs=max_concurrent_runs, faults=faults
        )
        self.clock = clock
        self.quiet_lambdas = quiet_lambdas
        self._saved_env: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self.engine: LocalStepFunctions | None = None
        self.state_machine_arn = ""
        self._definition_text = ""
        self._redrive_arns: dict[str, str] = {}  # execution name -> ARN of the run that redrives it
        self._redriven: dict[str, dict[str, Any]] = {}  # execution name -> its record before the redrive
        self._redrive_machines: dict[str, str] = {}
        # Executions this process started or redrove and has not recorded final: their `.running.json`
        # records are kept current, so other processes list them and a killed runtime's are found again.
        self._live: dict[str, int] = {}  # name -> events already in its running record
        self._offline: dict[str, list[dict[str, Any]]] = {}  # recorded histories moto does not hold
        self._tracker_stop = threading.Event()
        self._tracker: threading.Thread | None = None
        self.owner = {"pid": os.getpid(), "host": socket.gethostname(),
                      "started_at": datetime.now(UTC).isoformat()}

    # ---------------------------------------------------------------- lifecycle
    def environment(self) -> dict[str, str]:
        env = {
            LOCAL_ROOT_ENV: str(self.home),
            "STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE_NAME}",
            "TOPIC_ARN": TOPIC_ARN,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "POWERTOOLS_SERVICE_NAME": "ticketflow",
            "POWERTOOLS_METRICS_NAMESPACE": "Ticketflow",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true" if self.quiet_lambdas else "false",
            "POWERTOOLS_LOG_LEVEL": "ERROR" if self.quiet_lambdas else "INFO",
        }
        if self.contract:
            env["TICKETFLOW_CONTRACT"] = str(self.contract)
        return env

    def __enter__(self) -> LocalRuntime:
        (self.home / "bucket" / layout.RAW_PREFIX).mkdir(parents=True, exist_ok=True)
        self._route_interpreter_log()
        for key, value in self.environment().items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        self.engine = LocalStepFunctions(self.backend, clock=self.clock, region=REGION, account=ACCOUNT)
        self.engine.__enter__()
        self._definition_text = asl.substitute(Path(self.definition_path).read_text(encoding="utf-8"),
                                               substitutions())
        self.state_machine_arn = self.engine.create_state_machine(STATE_MACHINE_NAME, self._definition_text)
        self._history_hook = f"ticketflow-redriven-history-{id(self)}"
        _default_events().register("before-call.sfn.GetExecutionHistory", self._recorded_history,
                                   unique_id=self._history_hook)
        self.recover_lost()
        self._tracker = threading.Thread(target=self._track, name="ticketflow-tracker", daemon=True)
        self._tracker.start()
        return self

    def _recorded_history(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        """GetExecutionHistory of an execution moto's memory does not hold, as AWS answers it under the
        execution's own ARN: a redriven one (the earlier attempt's events, recorded by an earlier process,
        ExecutionRedriven, then the redrive's) or one found ABORTED after its runtime was killed. The notify
        Lambda reads it to build the alert."""
        from botocore.awsrequest import AWSResponse

        body = params.get("body") or b"{}"
        arn = json.loads(body.decode() if isinstance(body, bytes) else body).get("executionArn", "")
        name = arn.rsplit(":", 1)[-1]
        if arn != self.execution_arn(name) or (name not in self._redriven and name not in self._offline):
            return None  # not ours: the call goes on to moto
        events = self.history(name) if name in self._redriven else self._offline[name]
        return AWSResponse("", 200, {}, None), {"events": events, "ResponseMetadata": {}}

    def _route_interpreter_log(self) -> None:
        """moto's interpreter logs every task failure with its whole parse tree at ERROR: that belongs in a
        log file (the execution history already says what failed), not on the user's terminal."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        log = logging.getLogger("moto.stepfunctions.parser")
        log.propagate = False
        for old in [h for h in log.handlers if getattr(h, "ticketflow", False)]:
            log.removeHandler(old)
            old.close()
        handler = logging.FileHandler(self.home / "logs" / "interpreter.log")
        handler.ticketflow = True  # type: ignore[attr-defined]
        log.addHandler(handler)

    def __exit__(self, *exc: object) -> None:
        self._tracker_stop.set()
        if self._tracker is not None:
            self._tracker.join(5)
        _default_events().unregister("before-call.sfn.GetExecutionHistory", unique_id=self._history_hook)
        if self.engine is not None:
            self.engine.__exit__(*exc)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    @property
    def client(self) -> Any:
        assert self.engine is not None, "use LocalRuntime as a context manager"
        return self.engine.client

    def execution_arn(self, name: str) -> str:
        """The ARN an execution has on AWS (a redrive keeps it)."""
        return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STATE_MACHINE_NAME}:{name}"

    def _live_arn(self, name: str) -> str:
        """Where the interpreter runs it now: a redrive runs on a copy of the definition (see redrive)."""
        return self._redrive_arns.get(name, self.execution_arn(name))

    # ---------------------------------------------------------------- uploads and events
    def put_raw(self, path: Path, key: str | None = None) -> tuple[str, str]:
        """Copy a file into the raw prefix as a new object version (never modifying the original; complete or not
        at all, like an S3 PUT); returns (key, sequencer). `s3_event` names the version."""
        key = key or layout.RAW_PREFIX + path.name
        head = self.storage.put_file(key, path)
        return key, sequencer_of(head.version_id)

    def _sent_path(self, key: str, version_id: str) -> Path:
        digest = hashlib.sha256(f"{key}\0{version_id}".encode()).hexdigest()[:32]
        return self.home / "events" / f"{digest}.json"

    def claim_upload(self, key: str, version_id: str, by: str) -> dict[str, Any] | None:
        """Mark an object version's ObjectCreated event as sent, once per home whatever process sends it (`run`,
        `upload`, `watch`): None when this call claimed it, else the earlier claim ({"key", "version_id",
        "by", "pid", "at", "executions"}). S3 sends one event per PUT; this is what keeps two local event
        sources from both sending it."""
        path = self._sent_path(key, version_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        claim = {"key": key, "version_id": version_id, "by": by, "pid": os.getpid(),
                 "at": datetime.now(UTC).isoformat(), "executions": []}
        try:
            with path.open("x", encoding="utf-8") as fh:
                fh.write(json.dumps(claim))
        except FileExistsError:
            for _ in range(50):  # the claimant may be writing it this instant
                try:
                    return dict(json.loads(path.read_text(encoding="utf-8")))
                except ValueError:
                    time.sleep(0.01)
            return {"key": key, "version_id": version_id, "by": "?", "executions": []}
        return None

    def _note_sent(self, key: str, version_id: str, executions: list[str]) -> None:
        path = self._sent_path(key, version_id)
        claim = json.loads(path.read_text(encoding="utf-8"))
        claim["executions"] = executions
        write_json(path, claim)

    def send_upload(self, key: str, version_id: str, by: str) -> Upload:
        """Send the ObjectCreated event of one object version, unless some process on this home sent it
        before (then `Upload.sent_before` says who, and nothing is started)."""
        earlier = self.claim_upload(key, version_id, by)
        if earlier is not None:
            return Upload(key, sequencer_of(version_id), [], list(earlier.get("executions") or []), [],
                          sent_before=earlier)
        upload = self.deliver(self.s3_event(key, sequencer_of(version_id), version_id))
        self._note_sent(key, version_id, upload.started + upload.duplicates)
        return upload

    def s3_event(self, key: str, sequencer: str, version_id: str | None = None,
                 event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
        """The event S3 sends for a PUT (or, with `event_name`, a removal, which has no size): keys URL-encoded
        the way S3 encodes them; `version_id` by default the key's latest version (as S3 names the version the
        PUT created)."""
        if version_id is None:
            version_id = self.storage.head(key).version_id if self.storage.exists(key) else ""
        head = {"versionId": version_id} if version_id else {}
        removed = event_name.startswith("ObjectRemoved")
        size = {} if removed else {"size": self.storage.size(key) if self.storage.exists(key) else 0}
        return {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": REGION,
                    "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "eventName": event_name,
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": LOCAL_BUCKET, "arn": f"arn:aws:s3:::{LOCAL_BUCKET}"},
                        "object": {
                            "key": urllib.parse.quote_plus(key, safe="/"),
                            **size,
                            "sequencer": sequencer,
                            **head,
                        },
                    },
                }
            ]
        }

    def deliver(self, event: dict[str, Any]) -> Upload:
        """Invoke the trigger like S3's asynchronous invocation: retried twice, then dead-lettered."""
        record = event["Records"][0]["s3"]["object"]
        key = urllib.parse.unquote_plus(record["key"])
        last_error = ""
        for _attempt in range(TRIGGER_ATTEMPTS):
            try:
                result = self.backend.invoke_lambda("ticketflow-trigger", event)
                self.track(result["started"])
                return Upload(key, record.get("sequencer", ""), result["started"], result["duplicates"],
                              result["skipped"])
            except Exception as err:
                last_error = f"{type(err).__name__}: {err}"
        self._dead_letter(event, last_error)
        return Upload(key, record.get("sequencer", ""), [], [], [], dead_lettered=True)

    def _dead_letter(self, event: dict[str, Any], error: str) -> None:
        entry = {"failed_at": datetime.now(UTC).isoformat(), "attempts": TRIGGER_ATTEMPTS, "error": error,
                 "event": event}
        with self._lock, (self.home / "dead_letters.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")

    def upload(self, path: Path, key: str | None = None, by: str = "upload") -> Upload:
        """PUT the file as a new object version and send its event (a new upload of a key always runs)."""
        key = key or layout.RAW_PREFIX + path.name
        head = self.storage.put_file(key, path)
        return self.send_upload(key, head.version_id, by)

    def delete(self, key: str, sequencer: str | None = None) -> Upload:
        """Delete the object as a DELETE on the versioned bucket does (a delete marker: the file goes, its
        versions stay) and deliver S3's ObjectRemoved:DeleteMarkerCreated event, which starts the erasure."""
        self.storage.delete(key)
        sequencer = sequencer or f"{time.time_ns():020X}"
        marker = f"{time.time_ns():x}.deletemarker"
        return self.deliver(self.s3_event(key, sequencer, marker, event_name=DELETE_MARKER_CREATED))

    # ---------------------------------------------------------------- executions
    def describe(self, name: str) -> dict[str, Any]:
        desc = dict(self.client.describe_execution(executionArn=self._live_arn(name)))
        if desc["status"] == "ABORTED" and not desc.get("error"):
            # DescribeExecution carries StopExecution's error and cause on AWS; moto's leaves them out.
            details = next((e.get("executionAbortedEventDetails") or {} for e in self.engine.history(desc[
                "executionArn"]) if e["type"] == "ExecutionAborted"), {}) if self.engine else {}
            desc.update({k: v for k, v in details.items() if k in ("error", "cause") and v})
        if name in self._redriven:
            previous = self._redriven[name]["execution"]
            desc.update(executionArn=self.execution_arn(name), stateMachineArn=previous["stateMachineArn"],
                        startDate=datetime.fromisoformat(previous["startDate"]))
        return desc

    def history(self, name: str) -> list[dict[str, Any]]:
        """The whole history; after a redrive, the earlier attempt's events, ExecutionRedriven, then the new."""
        assert self.engine is not None
        events = self.engine.history(self._live_arn(name))
        if name not in self._redriven:
            return events
        record = self._redriven[name]
        earlier = record["history"]
        offset = len(earlier) + 1
        redriven = {"id": offset, "previousEventId": offset - 1, "type": "ExecutionRedriven",
                    "timestamp": events[0]["timestamp"] if events else datetime.now(UTC),
                    "executionRedrivenEventDetails": {"redriveCount": record["redrive_count"] + 1}}
        # The redriven run's own ExecutionStarted is not an event on AWS: ExecutionRedriven takes its place.
        later = [e for e in events if e["type"] != "ExecutionStarted"]
        ids = {e["id"]: offset + 1 + i for i, e in enumerate(later)}
        renumbered = [{**e, "id": ids[e["id"]], "previousEventId": ids.get(e.get("previousEventId", 0), offset)}
                      for e in later]
        return [*earlier, redriven, *renumbered]

    def wait(self, name: str, timeout: float = 3600, on_event: Callable[[dict[str, Any]], None] | None = None,
             should_abort: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Wait for an execution to end, then record it and raise its alert. Never waits forever.

        `should_abort`: polled while waiting; once true, the execution is stopped (`stop`) and waited for."""
        deadline = time.monotonic() + timeout
        seen = len(self._redriven[name]["history"]) if name in self._redriven else 0  # a redrive: new events
        stopped = False
        while True:
            if should_abort is not None and not stopped and should_abort():
                self.stop(name)
                stopped = True
            desc = self.describe(name)
            if on_event:
                events = self.history(name)
                for event in events[seen:]:
                    on_event(event)
                seen = len(events)
            if desc["status"] in TERMINAL:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {name} still {desc['status']} after {timeout:.0f} s")
            time.sleep(0.1)
        self._stop_orphan_jobs(name, desc)
        self.record(name)
        if desc["status"] in ALERT_STATUSES:
            self.alert(desc)
        return desc

    def stop(self, name: str, error: str = INTERRUPTED,
             cause: str = "the local runtime was interrupted (Ctrl-C twice, or SIGTERM) while the execution ran; "
                          "redrive it to resume") -> None:
        """StopExecution (ABORTED, redrivable) of a running execution; one that already ended is left as it is."""
        assert self.engine is not None
        try:
            if self.describe(name)["status"] == "RUNNING":
                self.engine.stop_execution(self._live_arn(name), error=error, cause=cause)
        except Exception as err:  # ended meanwhile: nothing to stop
            logging.getLogger(__name__).info("stop %s: %s", name, type(err).__name__)

    def start_named(self, name: str, payload: dict[str, Any]) -> bool:
        """StartExecution of the pipeline under `name` with `payload` (a reprocess); False, starting nothing,
        when an execution of that name exists on this home (recorded by any process), as AWS answers
        ExecutionAlreadyExists."""
        assert self.engine is not None
        running = self._running_path(name)
        if self._record_path(name).exists():
            return False
        running.parent.mkdir(parents=True, exist_ok=True)
        try:  # claimed whole by one process: the record is filled in by `track` once started
            with running.open("x", encoding="utf-8") as fh:
                fh.write("{}")
        except FileExistsError:
            return False
        try:
            self.engine.start_execution(self.state_machine_arn, name, payload)
        except BaseException:
            running.unlink(missing_ok=True)
            raise
        self.track([name])
        return True

    def _stop_orphan_jobs(self, name: str, desc: dict[str, Any]) -> None:
        """moto never calls BatchStopJobRun when an execution times out or is stopped: do it here."""
        if desc["status"] in ("TIMED_OUT", "ABORTED"):
            for job in self.backend.running_jobs():
                if job.arguments.get("--run_id") == name:
                    self.backend.stop_job_run("ticketflow-transform", job.id)

    def _record_path(self, name: str) -> Path:
        return self.home / "executions" / f"{name}.json"

    def _running_path(self, name: str) -> Path:
        return self.home / "executions" / f"{name}.running.json"

    def track(self, names: list[str]) -> None:
        """Keep a `.running.json` record of each execution current until it is recorded final."""
        with self._lock:
            for name in names:
                self._live.setdefault(name, -1)
        for name in names:
            self._write_running(name)

    def _write_running(self, name: str) -> None:
        try:
            desc, history = self.describe(name), self.history(name)
        except Exception:  # not visible yet, or ended and gone: the next round, or the final record, has it
            return
        with self._lock:
            if name not in self._live or desc["status"] != "RUNNING" or self._live[name] == len(history):
                return
            self._live[name] = len(history)
            count = self._redriven[name]["redrive_count"] + 1 if name in self._redriven else 0
            doc = {"execution": {**_jsonable(desc), "redriveCount": count}, "history": _jsonable(history),
                   "redrive_count": count, "recorded_at": datetime.now(UTC).isoformat(), "owner": self.owner}
            write_json(self._running_path(name), doc)

    def _track(self) -> None:
        while not self._tracker_stop.wait(TRACK_INTERVAL):
            with self._lock:
                names = list(self._live)
            for name in names:
                self._write_running(name)

    def recover_lost(self) -> list[str]:
        """Executions a killed runtime left RUNNING (their `.running.json` names a process that is gone):
        recorded ABORTED with `ticketflow.RuntimeLost`, alerted, and so redrivable. Returns their names."""
        directory = self.home / "executions"
        found = []
        for path in sorted(directory.glob("*.running.json")) if directory.is_dir() else []:
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            owner = doc.get("owner") or {}
            if owner.get("host") != self.owner["host"] or process_alive(int(owner.get("pid") or 0)):
                continue
            claimed = path.with_name(f".{path.name}.{os.getpid()}.lost")
            try:
                os.rename(path, claimed)  # another process recovering it at the same moment gets the error
            except FileNotFoundError:
                continue
            name = path.name.removesuffix(".running.json")
            final = self._record_path(name)
            if final.exists() and final.stat().st_mtime >= claimed.stat().st_mtime:
                claimed.unlink()  # ended and recorded after all
                continue
            self._record_lost(name, doc, int(owner.get("pid") or 0))
            claimed.unlink()
            found.append(name)
        return found

    def _record_lost(self, name: str, doc: dict[str, Any], pid: int) -> None:
        from ticketflow.ops.executions import revive_dates

        lost = record_as_lost(doc, pid, datetime.now(UTC).isoformat())
        write_json(self._record_path(name), lost)
        self._offline[name] = revive_dates(lost["history"])
        self.alert(revive_dates(lost["execution"]))

    def interrupted(self) -> list[str]:
        """Executions recorded ABORTED by an interrupt or a killed runtime (`INTERRUPT_ERRORS`), oldest first:
        what `ticketflow watch` resumes when it starts."""
        from ticketflow.ops.executions import LocalExecutionStore

        aborted = LocalExecutionStore(self.home).list("ABORTED", limit=1_000_000)  # newest first
        return [str(d["name"]) for d in reversed(aborted) if d.get("error") in INTERRUPT_ERRORS]

    def _load_record(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self._record_path(name).read_text()))

    def record(self, name: str) -> Path:
        """Persist DescribeExecution + GetExecutionHistory, so later commands can read them."""
        path = self._record_path(name)
        before = self._redriven.get(name)
        desc = _jsonable(self.describe(name))
        count = before["redrive_count"] + 1 if before else 0
        desc["redriveCount"] = count
        if before:
            desc["redriveDate"] = _jsonable(self.history(name)[len(before["history"])]["timestamp"])
        doc = {
            "execution": desc,
            "history": _jsonable(self.history(name)),
            "redrive_count": count,
            "recorded_at": datetime.now(UTC).isoformat(),
        }
        write_json(path, doc)
        with self._lock:
            self._live.pop(name, None)
        self._running_path(name).unlink(missing_ok=True)
        return path

    def alert(self, desc: dict[str, Any]) -> None:
        """The EventBridge rule's event, delivered to the real notify handler."""
        event = {
            "version": "0",
            "id": f"local-{time.time_ns()}",
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "account": ACCOUNT,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [desc["executionArn"]],
            "detail": {
                "executionArn": desc["executionArn"],
                "stateMachineArn": desc["stateMachineArn"],
                "name": desc["name"],
                "status": desc["status"],
                "startDate": int(desc["startDate"].timestamp() * 1000) if "startDate" in desc else None,
                "stopDate": int(desc["stopDate"].timestamp() * 1000) if desc.get("stopDate") else None,
                "input": desc.get("input"),
                "output": desc.get("output"),
                "error": desc.get("error"),
                "cause": desc.get("cause"),
            },
        }
        self.backend.invoke_lambda("ticketflow-notify", event)

    # ---------------------------------------------------------------- redrive
    def redrive(self, name: str, timeout: float = 3600,
                on_event: Callable[[dict[str, Any]], None] | None = None,
                should_abort: Callable[[], bool] | None = None) -> dict[str, Any]:
        """RedriveExecution, emulated (moto has none) with AWS's semantics: resume at the state that did not
        succeed, with the input that state had; states that succeeded are not re-run; retry counters and
        timeouts start afresh; same execution name (so the same run id and staging); redrive count + 1.

        The interpreter runs a copy of the same definition whose StartAt is that state."""
        from ticketflow.local.history import resume_state, summarize_history

        assert self.engine is not None
        path = self._record_path(name)
        if not path.exists():
            raise RedriveRefused(f"no execution named {name!r} is recorded under {path.parent}")
        record = self._load_record(name)
        status = record["execution"]["status"]
        if status not in ALERT_STATUSES:
            raise RedriveRefused(
                f"execution {name} is {status}: only FAILED, TIMED_OUT or ABORTED executions can be redriven"
            )
        runs = summarize_history(record["history"])
        failed = resume_state(runs)
        if failed is None:
            raise RedriveRefused(f"execution {name} has no failed state to resume from")
        # Names are unique per state machine, and the redrive keeps the name: one copy per redrive.
        copy_name = f"{STATE_MACHINE_NAME}-from-{failed.name}-{record.get('redrive_count', 0) + 1}"
        machine = self._redrive_machines.get(copy_name)
        if machine is None:
            definition = json.loads(self._definition_text)
            definition["StartAt"] = failed.name
            machine = self.engine.create_state_machine(copy_name, json.dumps(definition))
            self._redrive_machines[copy_name] = machine
        self._redriven[name] = record
        state_input = failed.input if isinstance(failed.input, dict) else json.loads(failed.input or "{}")
        self._redrive_arns[name] = self.engine.start_execution(machine, name, state_input)
        self._offline.pop(name, None)
        self.track([name])
        return self.wait(name, timeout=timeout, on_event=on_event, should_abort=should_abort)

    # ---------------------------------------------------------------- results
    def summary(self, name: str) -> dict[str, Any]:
        """The per-execution document `ticketflow run --json` prints."""
        from ticketcore.alerts import failed_state

        desc = self.describe(name)
        history = self.history(name)
        state, error, cause = failed_state(history) if desc["status"] != "SUCCEEDED" else (None, None, None)
        source_key = json.loads(desc.get("input") or "{}").get("key")
        reports = layout.reports_prefix(name)
        run_report = self._json(reports + layout.RUN_REPORT) or {}
        validation = self._json(layout.validation_report_key(name))
        publication = self._json(reports + layout.PUBLISH_REPORT)
        failed_expectations = []
        if validation:
            failed_expectations = [
                f"{r.get('name')} [{r.get('severity')}]" for r in validation.get("results", []) if not r.get("success")
            ]
        return {
            "name": name,
            "status": desc["status"],
            "source_key": source_key,
            "error": desc.get("error") or error,
            "cause": desc.get("cause") or cause,
            "failed_state": state,
            "rows_read": run_report.get("rows_read"),
            "rows_published": publication.get("rows") if publication else 0,
            "rows_quarantined": run_report.get("rows_quarantined"),
            "duplicates_superseded": run_report.get("duplicates_superseded"),
            "report_key": reports + layout.RUN_REPORT if run_report else None,
            "validation": {"success": validation.get("success"), "failed_expectations": failed_expectations}
            if validation else None,
            # An erasure's result (RetractSource): outcome and counts, None for an upload's execution.
            "retraction": (json.loads(desc.get("output") or "{}").get("retract") or {}).get("retraction"),
            "cost": self.cost(desc, history),
        }

    def cost(self, desc: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
        """What the execution would have cost on AWS with the stack's settings (ticketflow.ops.cost), as the
        run report's `cost` object; {"error": why} when a price or setting is unusable."""
        from ticketflow.ops.cost import PriceTable
        from ticketflow.ops.cost_sources import cost_or_reason, local_cost

        try:
            prices = PriceTable.load()
        except ValueError as err:
            return {"error": str(err)}
        cost, why = cost_or_reason(local_cost, self.home, desc, history, prices)
        return cost.as_dict() if cost else {"error": why}

    def _json(self, key: str) -> dict[str, Any] | None:
        return json.loads(self.storage.read_bytes(key)) if self.storage.exists(key) else None


_spark_lock = threading.Lock()
_spark: Any = None


def _warm_spark() -> Any:
    """One Spark session per process: only the first job pays the JVM's start-up."""
    global _spark
    with _spark_lock:
        if _spark is None:
            from ticketflow.sparkenv import local_session

            _spark = local_session()
        return _spark


@contextmanager
def local_runtime(**kwargs: Any) -> Iterator[LocalRuntime]:
    with LocalRuntime(**kwargs) as runtime:
        yield runtime
