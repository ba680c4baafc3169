"""What the Task states call on one machine: the real Lambda handlers in-process, the real Glue script on
a warm local Spark session, SNS into an outbox file. The state machine itself is moto's interpreter
(ticketflow.local.engine); this module only answers its service calls."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ticketflow.local.engine import ServiceError

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTIONS = ("trigger", "inspect", "validate", "publish", "retract", "notify")
JOB_NAME = "ticketflow-transform"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:ticketflow-alerts"
STATE_MACHINE_NAME = "ticketflow-pipeline"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ticketflow-{name}"


def substitutions() -> dict[str, str]:
    """The local values of the definition's placeholders (CDK supplies the deployed ones)."""
    return {
        "InspectFunctionArn": function_arn("inspect"),
        "TransformJobName": JOB_NAME,
        "ValidateFunctionArn": function_arn("validate"),
        "PublishFunctionArn": function_arn("publish"),
        "RetractFunctionArn": function_arn("retract"),
    }


@dataclass
class LambdaContext:
    """The attributes Powertools reads from a real Lambda context."""

    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self.function_name.removeprefix("ticketflow-"))

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@dataclass
class JobRun:
    id: str
    arguments: dict[str, str]
    state: str = "RUNNING"
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    report: dict[str, Any] | None = None


def _drop_unflushed_metrics(module: Any) -> None:
    """Powertools empties a Metrics object only when it flushes it, and skips the flush when metrics are
    disabled (the quiet local runtime): in one long-lived process (`ticketflow watch`) every invocation's
    values would pile up for good, and the first invocation with metrics on would print them all as its own."""
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    metrics = getattr(module, "metrics", None)
    if metrics is not None and hasattr(metrics, "clear_metrics") and is_metrics_disabled():
        metrics.clear_metrics()


# A fault injector gets (service, operation, details) before the real call and may raise to simulate a
# failure; tests use it, the CLI never sets one.
FaultInjector = Callable[[str, str, dict[str, Any]], None]


class LocalBackend:
    def __init__(
        self,
        home: Path,
        spark_provider: Callable[[], Any],
        max_concurrent_runs: int = 2,
        faults: FaultInjector | None = None,
    ) -> None:
        self.home = home
        self.outbox = home / "outbox.jsonl"
        self.spark_provider = spark_provider
        self.max_concurrent_runs = max_concurrent_runs
        self.faults = faults
        self.jobs: dict[str, JobRun] = {}
        self.calls: list[tuple[str, str]] = []  # (service.operation, detail), for tests and progress
        self._lock = threading.Lock()
        self._serial: dict[str, Any] = {"validate": threading.Lock()}

    def _fault(self, service: str, operation: str, details: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append((f"{service}.{operation}", details.get("name", "")))
        if self.faults:
            self.faults(service, operation, details)

    # ---------------------------------------------------------------- Lambda
    def invoke_lambda(self, function_name: str, payload: Any) -> Any:
        name = function_name.rsplit(":", 1)[-1].removeprefix("ticketflow-")
        if name not in FUNCTIONS:
            raise ServiceError("ResourceNotFoundException", f"Function not found: {function_name}", 404)
        self._fault("lambda", "Invoke", {"name": name, "payload": payload})
        module = importlib.import_module(f"lambdas.{name}.handler")
        event = json.loads(json.dumps(payload))  # Lambda hands the function a fresh JSON document
        # On AWS each concurrent invocation has its own execution environment; in one process they share
        # module state, and great-expectations' is not thread-safe, so validate runs one at a time here.
        try:
            with self._serial.get(name, contextlib.nullcontext()):
                result = module.handler(event, LambdaContext(function_name=f"ticketflow-{name}"))
        finally:
            _drop_unflushed_metrics(module)
        return json.loads(json.dumps(result, default=str))

    # ---------------------------------------------------------------- Glue
    def start_job_run(self, job_name: str, arguments: dict[str, str]) -> str:
        if job_name != JOB_NAME:
            raise ServiceError("EntityNotFoundException", f"Job {job_name} not found")
        self._fault("glue", "StartJobRun", {"name": job_name, "arguments": arguments})
        with self._lock:
            running = sum(1 for j in self.jobs.values() if j.state == "RUNNING")
            if running >= self.max_concurrent_runs:
                # What Glue answers above the job's MaxConcurrentRuns; the definition retries it.
                raise ServiceError(
                    "ConcurrentRunsExceededException",
                    f"Concurrent runs exceeded for {job_name}: {running} running, limit {self.max_concurrent_runs}",
                )
            run = JobRun(id=f"jr_{uuid.uuid4().hex}", arguments=dict(arguments))
            self.jobs[run.id] = run
        threading.Thread(target=self._run_job, args=(run,), name=f"glue-{run.id}", daemon=True).start()
        return run.id

    def _run_job(self, run: JobRun) -> None:
        from glue.ticket_etl_job import JobArgs
        from glue.ticket_etl_job import run as run_job

        try:
            self._fault("glue", "JobRun", {"name": JOB_NAME, "arguments": run.arguments})
            values: dict[str, Any] = {
                k.removeprefix("--"): v for k, v in run.arguments.items() if k.startswith("--")
            }
            # On Glue the contract is a default argument of the job; locally it follows the runtime's choice.
            values.setdefault("contract", os.environ.get("TICKETFLOW_CONTRACT") or None)
            args = JobArgs(**values)
            spark = self.spark_provider()
            spark.sparkContext.setJobGroup(run.id, f"ticketflow {args.run_id}", interruptOnCancel=True)
            run.report = run_job(spark, args)
            run.state = "STOPPED" if run.state == "STOPPING" else "SUCCEEDED"
        except Exception as err:  # the job's failure becomes the JobRun's ErrorMessage, as on Glue
            run.error = f"{type(err).__name__}: {err}"
            run.state = "STOPPED" if run.state == "STOPPING" else "FAILED"
            (self.home / "logs").mkdir(parents=True, exist_ok=True)
            with (self.home / "logs" / "glue.log").open("a") as log:
                log.write(f"{datetime.now(UTC).isoformat()} {run.id}\n{traceback.format_exc()}\n")
        finally:
            run.ended = time.time()

    def get_job_run(self, job_name: str, run_id: str) -> dict[str, Any]:
        run = self.jobs.get(run_id)
        if run is None:
            raise ServiceError("EntityNotFoundException", f"Job run {run_id} not found")
        state = "RUNNING" if run.state == "STOPPING" else run.state
        result: dict[str, Any] = {
            "Id": run.id,
            "JobName": job_name,
            "JobRunState": state,
            "Arguments": run.arguments,
            "StartedOn": datetime.fromtimestamp(run.started, UTC).isoformat(),
            "ExecutionTime": int((run.ended or time.time()) - run.started),
            "GlueVersion": "5.0",
        }
        if run.error:
            result["ErrorMessage"] = run.error
        return result

    def stop_job_run(self, job_name: str, run_id: str) -> None:
        run = self.jobs.get(run_id)
        if run and run.state == "RUNNING":
            run.state = "STOPPING"
            self.spark_provider().sparkContext.cancelJobGroup(run_id)

    def running_jobs(self) -> list[JobRun]:
        return [j for j in self.jobs.values() if j.state in ("RUNNING", "STOPPING")]

    # ---------------------------------------------------------------- SNS
    def publish(self, topic_arn: str, message: str, subject: str | None) -> str:
        self._fault("sns", "Publish", {"name": topic_arn})
        message_id = str(uuid.uuid4())
        record = {"message_id": message_id, "topic_arn": topic_arn, "subject": subject, "message": message,
                  "sent_at": datetime.now(UTC).isoformat()}
        with self._lock:
            self.outbox.parent.mkdir(parents=True, exist_ok=True)
            with self.outbox.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        return message_id
