"""The in-process Step Functions service: moto's ASL interpreter with its Task calls sent to a backend.

The interpreter makes every Task call through a fresh boto3 client. Handlers of botocore's
`before-parameter-build` (the raw API parameters) and `before-call` (returning a response skips HTTP,
like botocore's Stubber) for lambda.Invoke, glue.StartJobRun/GetJobRun/BatchStopJobRun and sns.Publish
send those calls to a `TaskBackend`, shaping results and errors as the real services do, so the error
names the definition's Retry sees are the ones AWS would produce.

AWS behaviour emulated here because moto lacks it (see /work/shared/notes/local-engine.md):
- executions are always named (defect 6); the input is serialised deterministically so that
  StartExecution with the same name and input while running returns the same ARN (moto then already
  matches AWS: a different input or a closed execution raises ExecutionAlreadyExists);
- a Glue run whose task timed out, or whose execution was stopped, timed out or failed, is stopped
  through the backend (AWS calls BatchStopJobRun for `.sync`; moto never does, defect 8);
- an unparsable definition raises InvalidDefinition instead of moto's empty error code (defect 7), a
  definition with `${...}` left in it is refused before moto sees it (defect 12), and a different
  definition under an existing name raises StateMachineAlreadyExists (moto silently returns the old one);
- StopExecution keeps its error and cause (moto's API drops both), and the history of a stopped execution
  ends as AWS's does: moto records a TaskSucceeded (output null) for the task it cut short, after the stop.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.handlers import BUILTIN_HANDLERS
from botocore.response import StreamingBody

from ticketflow.local import moto_patches
from ticketflow.local.asl import PlaceholderError, placeholders
from ticketflow.local.history import StateRun, summarize_history
from ticketflow.local.moto_patches import TaskAbandoned, TaskScope, VirtualClock

__all__ = [
    "FunctionError",
    "InvalidDefinition",
    "JobRunRecord",
    "LocalStepFunctions",
    "ServiceError",
    "StateRun",
    "TaskBackend",
    "current_task",
    "summarize_history",
]

DEFAULT_ACCOUNT = "123456789012"
_SUCCEEDED_TASK_EVENTS = {"TaskSucceeded", "LambdaFunctionSucceeded"}
_TERMINAL_EXECUTION = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
_TERMINAL_JOB_RUN = {"SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "STOPPED"}
# AWS: 1-80 characters, no whitespace, brackets, wildcards, special or control characters.
_EXECUTION_NAME = re.compile(r"^[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]{1,80}$")
# The status code AWS answers these error codes with (others: 400).
_ERROR_STATUS = {
    "ServiceException": 500,
    "InternalServiceException": 500,
    "TooManyRequestsException": 429,
    "ThrottlingException": 400,
    "ResourceNotFoundException": 404,
    "EntityNotFoundException": 400,
}


class ServiceError(Exception):
    """Raise from a backend to fail the call like an AWS API error (Step Functions: `<Service>.<code>`)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class FunctionError(Exception):
    """Raise from `invoke_lambda` to fail with exactly this errorType (other exceptions: their class name)."""

    def __init__(self, error_type: str, message: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type


class InvalidDefinition(ValueError):
    """The definition is not valid JSON/ASL (AWS: InvalidDefinition; moto answers with an empty code)."""


class TaskBackend(Protocol):
    """What executes Task states: the runtime supplies real handlers, tests supply mocks.

    Called from the interpreter's threads, possibly concurrently; `current_task()` tells which execution,
    state and attempt a call is for.
    """

    def invoke_lambda(self, function_name: str, payload: Any) -> Any: ...

    def start_job_run(self, job_name: str, arguments: dict[str, str]) -> str: ...

    def get_job_run(self, job_name: str, run_id: str) -> dict[str, Any]: ...

    def stop_job_run(self, job_name: str, run_id: str) -> None: ...

    def publish(self, topic_arn: str, message: str, subject: str | None) -> str: ...


@dataclass
class JobRunRecord:
    """A Glue run started by a `.sync` task, followed until it reaches a terminal state."""

    execution: str | None
    state: str | None
    job_name: str
    run_id: str
    last_state: str = "STARTING"


def current_task() -> TaskScope | None:
    """The task attempt (execution ARN, state, attempt, deadline) the calling backend thread works for."""
    return moto_patches.current_task()


# -- botocore handlers: installed once in BUILTIN_HANDLERS, inert unless an engine is active ------------
_INTERCEPTED = (
    ("lambda", "Invoke"),
    ("glue", "StartJobRun"),
    ("glue", "GetJobRun"),
    ("glue", "BatchStopJobRun"),
    ("sns", "Publish"),
)
_PARAMS_KEY = "ticketflow_api_params"
_active: LocalStepFunctions | None = None
_active_lock = threading.Lock()


def _capture_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if _active is not None:
        context[_PARAMS_KEY] = dict(params)


def _answer_call(model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
    engine = _active
    if engine is None or _PARAMS_KEY not in context:
        return None
    return engine._dispatch(model.service_model.service_name, model.name, context[_PARAMS_KEY])


_HANDLERS = [
    entry
    for service, operation in _INTERCEPTED
    for entry in (
        (f"before-parameter-build.{service}.{operation}", _capture_params),
        (f"before-call.{service}.{operation}", _answer_call),
    )
]


class LocalStepFunctions:
    """moto's Step Functions, executing state machines with Task calls answered by `backend`.

    Use as a context manager; one at a time per process. `clock` defaults to real time (scale 1).
    """

    def __init__(
        self,
        backend: TaskBackend,
        clock: VirtualClock | None = None,
        region: str = "us-east-1",
        account: str = DEFAULT_ACCOUNT,
    ) -> None:
        self.backend = backend
        # Real time; `.sync` tasks poll the in-process Glue every 0.1 s (a local call, not an API request), where
        # moto's 0.5 s would add a quarter second to every file's latency on average.
        self.clock = clock or VirtualClock(scale=1.0, poll_interval=0.1)
        self.region = region
        self.account = account
        self._client: Any = None
        self._mock: Any = None
        self._exit_stack: contextlib.ExitStack | None = None
        self._runs: dict[str, JobRunRecord] = {}
        self._runs_lock = threading.Lock()
        self._stopped_at: dict[str, float] = {}  # execution ARN -> when StopExecution was called (epoch s)

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> LocalStepFunctions:
        global _active
        from moto import mock_aws

        moto_patches.apply()
        stack = contextlib.ExitStack()
        with _active_lock:
            if _active is not None:
                raise RuntimeError("a LocalStepFunctions is already active in this process")
            _active = self
        stack.callback(self._deactivate)
        try:
            stack.enter_context(moto_patches.use_clock(self.clock))
            self.clock.timeout_listeners.append(self._on_task_timeout)
            stack.callback(self.clock.timeout_listeners.remove, self._on_task_timeout)
            if self.account != DEFAULT_ACCOUNT:
                stack.enter_context(_environ("MOTO_ACCOUNT_ID", self.account))
            for entry in _HANDLERS:
                BUILTIN_HANDLERS.append(entry)
            stack.callback(_remove_handlers)
            self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
            self._mock.start()
            stack.callback(self._mock.stop)
            # Sessions made from now on carry the handlers (moto resets the default session itself,
            # unless nested in another mock_aws: then the outer one's session is put back on exit).
            stack.callback(setattr, boto3, "DEFAULT_SESSION", boto3.DEFAULT_SESSION)
            boto3.DEFAULT_SESSION = None
            self._client = boto3.client("stepfunctions", region_name=self.region)
        except BaseException:
            stack.close()
            raise
        self._exit_stack = stack
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self._stop_running_executions()
        self._client = None
        if self._exit_stack is not None:
            self._exit_stack.close()
            self._exit_stack = None

    def _deactivate(self) -> None:
        global _active
        with _active_lock:
            if _active is self:
                _active = None

    @property
    def client(self) -> Any:
        """A boto3 `stepfunctions` client bound to the mock."""
        if self._client is None:
            raise RuntimeError("LocalStepFunctions is not started: use it as a context manager")
        return self._client

    # -- the Step Functions API, with AWS semantics where moto differs -------------------------------------
    def create_state_machine(self, name: str, definition: str, role_arn: str | None = None) -> str:
        """Create (or, with an identical definition, find) the state machine; returns its ARN."""
        left = placeholders(definition)
        if left:
            raise PlaceholderError("unsubstituted placeholders: " + ", ".join(sorted(left)))
        try:
            json.loads(definition)
        except ValueError as error:
            raise InvalidDefinition(f"definition is not JSON: {error}") from error
        role = role_arn or f"arn:aws:iam::{self.account}:role/ticketflow-local-states"
        existing = f"arn:aws:states:{self.region}:{self.account}:stateMachine:{name}"
        with contextlib.suppress(self.client.exceptions.StateMachineDoesNotExist):
            current = self.client.describe_state_machine(stateMachineArn=existing)
            if current["definition"] != definition or current["roleArn"] != role:
                # AWS refuses a different definition under an existing name; moto returns the old one.
                raise self.client.exceptions.StateMachineAlreadyExists(
                    {
                        "Error": {
                            "Code": "StateMachineAlreadyExists",
                            "Message": f"State Machine Already Exists: '{existing}'",
                        }
                    },
                    "CreateStateMachine",
                )
        try:
            response = self.client.create_state_machine(name=name, definition=definition, roleArn=role)
        except ClientError as error:
            if error.response["Error"].get("Code"):
                raise
            raise InvalidDefinition(error.response["Error"].get("Message") or str(error)) from error
        return str(response["stateMachineArn"])

    def start_execution(self, state_machine_arn: str, name: str, input: dict[str, Any]) -> str:
        """Start a named execution; the same name and input while it runs returns the same ARN.

        Raises the client's ExecutionAlreadyExists for a different input or an execution that ended.
        """
        if not _EXECUTION_NAME.match(name or ""):
            raise ValueError(
                f"invalid execution name {name!r}: 1-80 characters, no whitespace or "
                "special characters (use [0-9A-Za-z_-])"
            )
        response = self.client.start_execution(
            stateMachineArn=state_machine_arn,
            name=name,
            input=json.dumps(input, sort_keys=True, separators=(",", ":")),
        )
        return str(response["executionArn"])

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return dict(self.client.describe_execution(executionArn=execution_arn))

    def wait(self, execution_arn: str, timeout: float = 600) -> dict[str, Any]:
        """describe_execution once the execution has ended; TimeoutError after `timeout` real seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self._running_in_moto(execution_arn) is not True:
                description = self.describe(execution_arn)
                if description["status"] in _TERMINAL_EXECUTION:
                    self.stop_job_runs(execution_arn)  # defect 8: a run left behind is stopped, as AWS does
                    return description
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{execution_arn} still {self.describe(execution_arn)['status']} after {timeout:g} s"
                )
            time.sleep(0.005)

    def _running_in_moto(self, execution_arn: str) -> bool | None:
        """A cheap look at moto's own record (a DescribeExecution costs ~5 ms of the interpreter's GIL)."""
        try:
            from moto.stepfunctions.responses import get_backend

            status = get_backend(self.account, self.region).describe_execution(execution_arn).status
            return bool(status == "RUNNING")
        except Exception:
            return None

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """Every event, oldest first (moto ignores paging, defect 5; the loop is for AWS's sake)."""
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn}
        for _ in range(10_000):
            page = self.client.get_execution_history(**kwargs)
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                break
            kwargs["nextToken"] = token
        stopped_at = self._stopped_at.get(execution_arn)
        if stopped_at is not None:
            # The task cut short by StopExecution did not succeed: AWS records no result for it.
            events = [e for e in events if not (e["type"] in _SUCCEEDED_TASK_EVENTS
                                                and e["timestamp"].timestamp() >= stopped_at)]
        return sorted(events, key=lambda event: event["id"])

    def summary(self, execution_arn: str) -> list[StateRun]:
        return summarize_history(self.history(execution_arn))

    def stop_execution(self, execution_arn: str, error: str | None = None, cause: str | None = None) -> None:
        """StopExecution, then stop the Glue runs it left (AWS does this for `.sync`; moto does not)."""
        from moto.core.utils import utcnow
        from moto.stepfunctions.responses import get_backend

        backend = get_backend(self.account, self.region)
        execution = next((x for x in backend._get_state_machine_for_execution(execution_arn).executions
                          if x.execution_arn == execution_arn), None)
        if execution is None:
            self.client.stop_execution(executionArn=execution_arn)  # raises ExecutionDoesNotExist, as AWS
            return
        self._stopped_at[execution_arn] = time.time()
        # What StopExecution does in moto, with the error and cause its API layer drops.
        execution.stop(stop_date=utcnow(), error=error or "", cause=cause or "")
        self.stop_job_runs(execution_arn)

    # -- Glue runs left behind (defect 8) ------------------------------------------------------------------
    def open_job_runs(self, execution_arn: str | None = None) -> list[JobRunRecord]:
        with self._runs_lock:
            return [run for run in self._runs.values() if execution_arn in (None, run.execution)]

    def stop_job_runs(self, execution_arn: str | None = None, state: str | None = None) -> list[JobRunRecord]:
        """Call backend.stop_job_run for the runs not yet seen terminal; returns those stopped."""
        with self._runs_lock:
            runs = [
                run
                for run in self._runs.values()
                if execution_arn in (None, run.execution) and state in (None, run.state)
            ]
            for run in runs:
                del self._runs[run.run_id]
        for run in runs:
            with contextlib.suppress(Exception):
                self.backend.stop_job_run(run.job_name, run.run_id)
        return runs

    def _on_task_timeout(self, scope: TaskScope) -> None:
        self.stop_job_runs(scope.execution, scope.state)

    def _stop_running_executions(self) -> None:
        for machine in self.client.list_state_machines()["stateMachines"]:
            running = self.client.list_executions(
                stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
            )["executions"]
            for execution in running:
                with contextlib.suppress(Exception):
                    self.stop_execution(execution["executionArn"])

    # -- answering the interpreter's calls -----------------------------------------------------------------
    def _dispatch(self, service: str, operation: str, params: dict[str, Any]) -> tuple[AWSResponse, dict]:
        handler = {
            ("lambda", "Invoke"): self._lambda_invoke,
            ("glue", "StartJobRun"): self._glue_start_job_run,
            ("glue", "GetJobRun"): self._glue_get_job_run,
            ("glue", "BatchStopJobRun"): self._glue_batch_stop_job_run,
            ("sns", "Publish"): self._sns_publish,
        }[(service, operation)]
        try:
            return handler(params)
        except TaskAbandoned:
            raise  # the task timed out on the virtual clock: nobody waits for this answer any more
        except ServiceError as error:
            return _error_response(error)

    def _lambda_invoke(self, params: dict[str, Any]) -> tuple[AWSResponse, dict]:
        if params.get("InvocationType", "RequestResponse") != "RequestResponse":
            raise ServiceError(
                "InvalidParameterValueException", "the local engine only runs RequestResponse invocations"
            )
        raw = params.get("Payload") or b"{}"
        payload = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        request_id = str(uuid.uuid4())
        try:
            result = self.backend.invoke_lambda(str(params["FunctionName"]), payload)
        except (TaskAbandoned, ServiceError):
            raise
        except Exception as error:  # the Python runtime's answer to an unhandled exception
            return _function_error(
                getattr(error, "error_type", None) or type(error).__name__, error, request_id
            )
        try:
            body = json.dumps(result).encode("utf-8")  # the Lambda service returns JSON, nothing else
        except (TypeError, ValueError) as error:
            return _function_error("Runtime.MarshalError", error, request_id)
        return _response(
            {
                "StatusCode": 200,
                "ExecutedVersion": "$LATEST",
                "Payload": StreamingBody(io.BytesIO(body), len(body)),
            },
            request_id=request_id,
        )

    def _glue_start_job_run(self, params: dict[str, Any]) -> tuple[AWSResponse, dict]:
        job_name = str(params["JobName"])
        arguments = {str(key): str(value) for key, value in (params.get("Arguments") or {}).items()}
        run_id = str(self.backend.start_job_run(job_name, arguments))
        scope = current_task()
        with self._runs_lock:
            self._runs[run_id] = JobRunRecord(
                scope.execution if scope else None, scope.state if scope else None, job_name, run_id
            )
        return _response({"JobRunId": run_id})

    def _glue_get_job_run(self, params: dict[str, Any]) -> tuple[AWSResponse, dict]:
        job_name, run_id = str(params["JobName"]), str(params["RunId"])
        run = _json_safe(self.backend.get_job_run(job_name, run_id))
        if not isinstance(run, dict) or "JobRunState" not in run:
            raise ServiceError(
                "InternalServiceException", f"backend returned no JobRunState for {run_id}", 500
            )
        run.setdefault("Id", run_id)
        run.setdefault("JobName", job_name)
        with self._runs_lock:
            record = self._runs.get(run_id)
            if record is not None:
                record.last_state = run["JobRunState"]
                if record.last_state in _TERMINAL_JOB_RUN:
                    del self._runs[run_id]
        return _response({"JobRun": run})

    def _glue_batch_stop_job_run(self, params: dict[str, Any]) -> tuple[AWSResponse, dict]:
        job_name = str(params["JobName"])
        stopped = []
        for run_id in params.get("JobRunIds") or []:
            self.backend.stop_job_run(job_name, str(run_id))
            with self._runs_lock:
                self._runs.pop(str(run_id), None)
            stopped.append({"JobName": job_name, "JobRunId": str(run_id)})
        return _response({"SuccessfulSubmissions": stopped, "Errors": []})

    def _sns_publish(self, params: dict[str, Any]) -> tuple[AWSResponse, dict]:
        topic = str(params.get("TopicArn") or params.get("TargetArn") or "")
        message_id = self.backend.publish(topic, str(params.get("Message", "")), params.get("Subject"))
        return _response({"MessageId": str(message_id)})


def _response(
    parsed: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
    request_id: str | None = None,
) -> tuple[AWSResponse, dict[str, Any]]:
    request_id = request_id or str(uuid.uuid4())
    all_headers = {"x-amzn-requestid": request_id, **(headers or {})}
    # RequestId is required: without it the interpreter fails with States.Runtime KeyError('RequestId').
    parsed["ResponseMetadata"] = {
        "RequestId": request_id,
        "HTTPStatusCode": status,
        "HTTPHeaders": all_headers,
        "RetryAttempts": 0,
    }
    return AWSResponse("https://ticketflow.local", status, all_headers, None), parsed


def _function_error(error_type: str, error: BaseException, request_id: str) -> tuple[AWSResponse, dict]:
    """Invoke's answer when the function raised: 200, FunctionError Unhandled, the runtime's error JSON."""
    body = json.dumps(
        {
            "errorMessage": str(error),
            "errorType": error_type,
            "requestId": request_id,
            "stackTrace": traceback.format_tb(error.__traceback__),
        }
    ).encode("utf-8")
    return _response(
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "ExecutedVersion": "$LATEST",
            "Payload": StreamingBody(io.BytesIO(body), len(body)),
        },
        headers={"x-amz-function-error": "Unhandled"},
        request_id=request_id,
    )


def _error_response(error: ServiceError) -> tuple[AWSResponse, dict[str, Any]]:
    status = error.status if error.status != 400 else _ERROR_STATUS.get(error.code, 400)
    return _response(
        {"Error": {"Code": error.code, "Message": error.message}, "Message": error.message},
        status=max(status, 300),
        headers={"x-amzn-errortype": error.code},
    )


def _json_safe(value: Any) -> Any:
    return json.loads(
        json.dumps(value, default=lambda item: item.isoformat() if hasattr(item, "isoformat") else str(item))
    )


def _remove_handlers() -> None:
    for entry in _HANDLERS:
        with contextlib.suppress(ValueError):
            BUILTIN_HANDLERS.remove(entry)


@contextlib.contextmanager
def _environ(name: str, value: str) -> Any:
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
