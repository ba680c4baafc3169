"""The embedded default: the deployed pipeline's definition and code, on one machine.

A directory is the bucket (`<home>/bucket/`), an upload is a file landing under `support_ticket/raw/` plus
the S3-shaped event the trigger handler receives, the state machine is `statemachine/pipeline.asl.json`
run by moto's interpreter, the Task states call the real handlers and the real Glue script, failures reach
the real notify handler as the EventBridge event AWS would send, and SNS lands in `<home>/outbox.jsonl`.
"""

from __future__ import annotations

import json
import logging
import os
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

LOCAL_BUCKET = "ticketflow-local"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
TRIGGER_ATTEMPTS = 3  # an asynchronous Lambda invocation: the first try and two retries


def default_home() -> Path:
    return Path(os.environ.get("TICKETFLOW_HOME", ".ticketflow"))


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
        _default_events().register("before-call.sfn.GetExecutionHistory", self._redriven_history,
                                   unique_id=self._history_hook)
        return self

    def _redriven_history(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        """GetExecutionHistory of a redriven execution, as AWS answers it under the execution's own ARN: the
        earlier attempt's events (recorded by an earlier process, which moto's memory no longer has),
        ExecutionRedriven, then the redrive's. The notify Lambda reads it to build the alert."""
        from botocore.awsrequest import AWSResponse

        body = params.get("body") or b"{}"
        arn = json.loads(body.decode() if isinstance(body, bytes) else body).get("executionArn", "")
        name = arn.rsplit(":", 1)[-1]
        if name not in self._redriven or arn != self.execution_arn(name):
            return None  # not ours: the call goes on to moto
        return AWSResponse("", 200, {}, None), {"events": self.history(name), "ResponseMetadata": {}}

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
        self.storage.put_file(key, path)
        return key, f"{time.time_ns():020X}"

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

    def upload(self, path: Path, key: str | None = None) -> Upload:
        key, sequencer = self.put_raw(path, key)
        return self.deliver(self.s3_event(key, sequencer))

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

    def wait(self, name: str, timeout: float = 3600, on_event: Callable[[dict[str, Any]], None] | None = None
             ) -> dict[str, Any]:
        """Wait for an execution to end, then record it and raise its alert. Never waits forever."""
        deadline = time.monotonic() + timeout
        seen = len(self._redriven[name]["history"]) if name in self._redriven else 0  # a redrive: new events
        while True:
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

    def _stop_orphan_jobs(self, name: str, desc: dict[str, Any]) -> None:
        """moto never calls BatchStopJobRun when an execution times out or is stopped: do it here."""
        if desc["status"] in ("TIMED_OUT", "ABORTED"):
            for job in self.backend.running_jobs():
                if job.arguments.get("--run_id") == name:
                    self.backend.stop_job_run("ticketflow-transform", job.id)

    def _record_path(self, name: str) -> Path:
        return self.home / "executions" / f"{name}.json"

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
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1, default=str))
        os.replace(tmp, path)
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
                on_event: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """RedriveExecution, emulated (moto has none) with AWS's semantics: resume at the state that did not
        succeed, with the input that state had; states that succeeded are not re-run; retry counters and
        timeouts start afresh; same execution name (so the same run id and staging); redrive count + 1.

        The interpreter runs a copy of the same definition whose StartAt is that state."""
        from ticketflow.local.history import summarize_history

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
        failed = next((r for r in reversed(runs) if r.status != "SUCCEEDED"), None)
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
        return self.wait(name, timeout=timeout, on_event=on_event)

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
        }

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
