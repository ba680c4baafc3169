"""What one execution cost on AWS, or would have cost there: a pure model over its history.

Inputs: the execution's GetExecutionHistory events (AWS or local, same shapes), the Glue job runs it started
(GetJobRun's `JobRun` dicts; the history's own copies when nothing fresher is at hand), the stack's sizes
(`StackSizing`) and a price table (`PriceTable`, one JSON file). Nothing here reads AWS or the disk except
`PriceTable.load` and `StackSizing.from_cdk_json`.

Billing rules and where they come from:
- Glue (AWS Glue pricing; JobRun API reference): Glue 2.0+ Spark jobs are billed per second with a 1-minute
  minimum, at (DPUs per worker x NumberOfWorkers) DPUs over the run's `ExecutionTime`. When the job run
  reports `DPUSeconds` (only for FLEX runs or runs with auto scaling), that figure is the capacity used and
  is taken as it is. FLEX runs have their own price per DPU-hour.
- Lambda (AWS Lambda pricing): GB-seconds = duration x configured memory, duration rounded up to the
  millisecond, plus a price per request. A Task's duration is read from its TaskStarted -> TaskSucceeded /
  TaskFailed / TaskTimedOut timestamps, per attempt (retries included): the invoke's round trip, a little
  more than the billed duration.
- Step Functions Standard (Step Functions pricing and developer guide, "Transitions"): each state entered is
  a state transition, retries included; a redrive counts as one transition and every state it runs again
  counts again. So: StateEntered events + retried attempts + ExecutionRedriven events.
- S3 requests (S3 pricing: PUT, COPY, POST, LIST at one price, GET and HEAD at another; DELETE free): not in
  any history, so estimated from what each step does for one file (`S3_REQUESTS_COUNTED`).

Free tiers are not subtracted. No figure here holds a cell value: counts, durations and prices only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ticketcore.sizing import (
    EXECUTION_CLASSES,
    FUNCTION_MEMORY_MB,
    GLUE_DPU_PER_WORKER,
    MEMORY_OPTIMIZED_PREFIX,
)
from ticketflow.local.history import event_time, events_in_states

PRICES_ENV = "TICKETFLOW_PRICES"
DEFAULT_PRICES = Path(__file__).with_name("prices.json")
DEFAULT_CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"
GLUE_MINIMUM_SECONDS = 60  # Glue 2.0+ Spark jobs: billed per second, 1-minute minimum
SPLIT_BYTES = 128 * 1024 * 1024  # Spark's default maxPartitionBytes: one ranged GET per split of the file
ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")
_TASK_END = ("TaskSucceeded", "TaskFailed", "TaskTimedOut")

# What the S3 estimate counts, per step, for one upload (ticketcore/inspect.py, publish.py, the validate
# handler, the Glue job). Not counted: the Spark committer's own LIST/HEAD/temporary objects, KMS requests,
# CloudWatch Logs, Athena queries, lifecycle expirations, and DELETEs (free).
S3_REQUESTS_COUNTED = (
    "upload: the PUT of the file under raw/ (1)",
    "InspectSource: HEAD of the version, HEAD of the key's manifest, ranged GET of the head (3 GET); "
    "COPY to landing/, PUT inspection.json (2 PUT)",
    "TransformTickets: GET of the script, library and contract assets (3), inspection.json (1), the landing "
    "copy once for its whole-file scan and once per 128 MiB split (GET); PUT per staged Parquet file, "
    "run_report.json, and rows.csv when rows were quarantined",
    "ValidateOutput: GET run_report.json, LIST staging/, GET per staged file; PUT validation report",
    "Publish: HEAD+GET of the validation report and the run report, HEAD of the manifest (5 GET), LIST "
    "staging/, PUT of the lock, COPY per file, HEAD per published file (GET), PUT manifest and publish report",
    "RetractSource (an erasure): PUT of the lock, 2 PUTs of the manifest, 3 LISTs; HEAD+GET of the manifest "
    "(its per-run look-ups and the DELETEs are not counted)",
)


class CostError(ValueError):
    """A price table or stack setting the cost model cannot use (the message names the value found)."""


# ---------------------------------------------------------------- inputs
@dataclass(frozen=True)
class PriceTable:
    """Prices in USD, as the file gives them (`ticketflow/ops/prices.json`, or an override)."""

    region: str
    taken: str  # the date the prices were taken, ISO (YYYY-MM-DD)
    source: str
    glue_dpu_hour: float
    glue_flex_dpu_hour: float
    glue_memory_optimized_dpu_hour: float | None
    lambda_gb_second: float
    lambda_per_million_requests: float
    sfn_per_thousand_transitions: float
    s3_per_thousand_put: float  # PUT, COPY, POST, LIST
    s3_per_thousand_get: float  # GET, HEAD
    trigger_ms: int
    notify_ms: int
    path: str = ""

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> PriceTable:
        """The table at `path`, else $TICKETFLOW_PRICES, else the bundled one. An override file has the
        bundled file's shape and must state its own `region` and `taken`; any price it leaves out is the
        bundled one. Raises CostError naming the file and the bad or missing entry."""
        chosen = Path(path) if path else Path(os.environ[PRICES_ENV]) if os.environ.get(PRICES_ENV) else None
        base = _read_json(DEFAULT_PRICES)
        doc = base
        if chosen is not None and chosen.resolve() != DEFAULT_PRICES.resolve():
            override = _read_json(chosen)
            _refuse_unknown(override, base, chosen)
            for needed in ("region", "taken"):
                if not isinstance(override.get(needed), str) or not override[needed].strip():
                    raise CostError(f"price table {chosen}: {needed!r} must be given (a price is only "
                                    f"meaningful with its region and the date it was taken); found "
                                    f"{override.get(needed)!r}")
            doc = _merge(base, override)
        where = str(chosen or DEFAULT_PRICES)
        try:
            datetime.fromisoformat(str(doc["taken"]))
            table = cls(
                region=str(doc["region"]), taken=str(doc["taken"]), source=str(doc.get("source", "")),
                glue_dpu_hour=_price(doc, "glue", "dpu_hour", where),
                glue_flex_dpu_hour=_price(doc, "glue", "flex_dpu_hour", where),
                glue_memory_optimized_dpu_hour=_price(doc, "glue", "memory_optimized_dpu_hour", where,
                                                      optional=True),
                lambda_gb_second=_price(doc, "lambda", "gb_second", where),
                lambda_per_million_requests=_price(doc, "lambda", "per_million_requests", where),
                sfn_per_thousand_transitions=_price(doc, "stepfunctions", "per_thousand_transitions", where),
                s3_per_thousand_put=_price(doc, "s3", "per_thousand_put_copy_post_list", where),
                s3_per_thousand_get=_price(doc, "s3", "per_thousand_get_head", where),
                trigger_ms=int(_price(doc, "assumptions", "trigger_ms", where)),
                notify_ms=int(_price(doc, "assumptions", "notify_ms", where)),
                path=where,
            )
        except (KeyError, ValueError) as err:
            if isinstance(err, CostError):
                raise
            raise CostError(f"price table {where}: {err}") from err
        return table


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CostError(f"price table {path} cannot be read: {err.strerror or err}") from err
    except ValueError as err:
        raise CostError(f"price table {path} is not JSON: {err}") from err
    if not isinstance(doc, dict):
        raise CostError(f"price table {path} must be a JSON object, found {type(doc).__name__}")
    return doc


def _refuse_unknown(override: Mapping[str, Any], base: Mapping[str, Any], path: Path, prefix: str = "") -> None:
    """A key the bundled table does not have is a typo, never a new price: refused, with the closest key."""
    import difflib

    for key, value in override.items():
        if key not in base:
            close = difflib.get_close_matches(key, list(base), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else f" (known: {', '.join(map(str, base))})"
            raise CostError(f"price table {path}: unknown entry '{prefix}{key}'{hint}")
        if isinstance(value, dict) and isinstance(base[key], dict):
            _refuse_unknown(value, base[key], path, f"{prefix}{key}.")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
            else value
    return merged


def _price(doc: dict[str, Any], section: str, name: str, where: str, optional: bool = False) -> Any:
    value = (doc.get(section) or {}).get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise CostError(f"price table {where}: {section}.{name} must be a number >= 0, found {value!r}")
    return float(value)


@dataclass(frozen=True)
class StackSizing:
    """What the stack deploys that costs money per file: the Glue job's worker type, number of workers
    (the maximum, with auto scaling), execution class and auto scaling, and each function's memory (MB)."""

    glue_worker_type: str
    glue_workers: int
    glue_execution_class: str = "STANDARD"
    glue_auto_scaling: bool = False
    memory_mb: Mapping[str, int] = field(default_factory=lambda: {**FUNCTION_MEMORY_MB, "validate": 3008})

    @classmethod
    def from_context(cls, context: Mapping[str, Any], where: str = "cdk.json") -> StackSizing:
        """From CDK context values (cdk.json's "context", or `-c` strings): glue_worker_type, glue_workers,
        glue_execution_class, glue_auto_scaling, validate_memory_mb. Raises CostError naming a bad value."""
        worker_type = str(context.get("glue_worker_type", "")).strip()
        if worker_type not in GLUE_DPU_PER_WORKER:
            raise CostError(f"{where}: glue_worker_type {worker_type!r} is not one of {tuple(GLUE_DPU_PER_WORKER)}")
        execution_class = str(context.get("glue_execution_class", "STANDARD")).strip().upper()
        if execution_class not in EXECUTION_CLASSES:
            raise CostError(f"{where}: glue_execution_class {execution_class!r} is not one of {EXECUTION_CLASSES}")
        try:
            workers = int(context.get("glue_workers", 0))
            validate_mb = int(context.get("validate_memory_mb", 0))
        except (TypeError, ValueError) as err:
            raise CostError(f"{where}: glue_workers and validate_memory_mb must be integers ({err})") from err
        if workers < 1 or validate_mb < 128:
            raise CostError(f"{where}: glue_workers must be >= 1 and validate_memory_mb >= 128, found "
                            f"{workers} and {validate_mb}")
        scaling = str(context.get("glue_auto_scaling", False)).strip().lower() in ("true", "1", "yes")
        return cls(worker_type, workers, execution_class, scaling, {**FUNCTION_MEMORY_MB, "validate": validate_mb})

    @classmethod
    def from_cdk_json(cls, path: str | os.PathLike[str] = DEFAULT_CDK_JSON) -> StackSizing:
        """The defaults the stack deploys with: cdk.json's "context". Raises CostError when it is missing."""
        try:
            context = json.loads(Path(path).read_text(encoding="utf-8")).get("context") or {}
        except (OSError, ValueError) as err:
            raise CostError(f"cannot read the stack's settings from {path}: {err}") from err
        return cls.from_context(context, str(path))


@dataclass(frozen=True)
class RunFacts:
    """What the S3 estimate needs beyond the history: the upload's size (bytes), the Parquet files the job
    staged, and the rows it quarantined (from the run report; None: unknown, read from the history)."""

    source_bytes: int | None = None
    staged_files: int | None = None
    rows_quarantined: int | None = None


# ---------------------------------------------------------------- results
@dataclass
class GlueRunCost:
    job_run_id: str
    worker_type: str
    workers: int
    execution_class: str
    execution_time_s: float  # as the job run reports it (or the task's duration, see basis)
    dpu_seconds: float  # billed
    basis: str  # how dpu_seconds was found, in words
    usd: float


@dataclass
class LambdaCost:
    function: str
    invocations: int
    duration_ms: int  # summed over invocations, each rounded up to the millisecond
    memory_mb: int
    gb_seconds: float
    usd: float
    measured: bool  # False: the duration is the price table's assumption


@dataclass
class ExecutionCost:
    """One execution's cost: units per service and USD at `prices`. `as_dict()` is the run report's `cost`."""

    glue: list[GlueRunCost]
    lambdas: list[LambdaCost]
    transitions: int
    redrives: int
    s3_put: int  # PUT, COPY, POST, LIST requests
    s3_get: int  # GET, HEAD requests
    usd: dict[str, float]  # glue, lambda, stepfunctions, s3
    region: str
    prices_taken: str
    prices_file: str
    notes: list[str]

    @property
    def dpu_seconds(self) -> float:
        return sum(run.dpu_seconds for run in self.glue)

    @property
    def lambda_gb_seconds(self) -> float:
        return sum(fn.gb_seconds for fn in self.lambdas)

    @property
    def total_usd(self) -> float:
        return sum(self.usd.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: units, USD per service and in total, the price table's region and date, notes."""
        return {
            "total_usd": round(self.total_usd, 6),
            "usd": {k: round(v, 6) for k, v in self.usd.items()},
            "glue_dpu_seconds": round(self.dpu_seconds, 3),
            "glue_job_runs": [asdict(run) for run in self.glue],
            "lambda_gb_seconds": round(self.lambda_gb_seconds, 3),
            "lambda": [asdict(fn) for fn in self.lambdas],
            "state_transitions": self.transitions,
            "redrives": self.redrives,
            "s3_requests": {"put_copy_post_list": self.s3_put, "get_head": self.s3_get, "estimated": True},
            "prices": {"region": self.region, "taken": self.prices_taken, "file": self.prices_file},
            "notes": self.notes,
        }


# ---------------------------------------------------------------- reading the history
def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


@dataclass
class TaskAttempt:
    state: str
    resource_type: str  # "lambda", "glue", ...
    started: datetime | None
    ended: datetime | None
    result: Any  # TaskSucceeded output, or a TaskFailed cause, parsed when JSON
    ended_by: str = ""  # the event that ended it: TaskSucceeded, TaskFailed or TaskTimedOut ("" while it runs)

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return max((self.ended - self.started).total_seconds(), 0.0)


def task_attempts(events: Sequence[Mapping[str, Any]]) -> list[TaskAttempt]:
    """Every Task attempt in the history, in order: its state, resource type, start and end (TaskStarted to
    TaskSucceeded/TaskFailed/TaskTimedOut; end None while it runs) and its output or failure cause."""
    attempts: list[TaskAttempt] = []
    current: TaskAttempt | None = None
    for state, event in events_in_states(events):
        kind = str(event.get("type", ""))
        if kind == "TaskStarted":
            details = event.get("taskStartedEventDetails") or {}
            current = TaskAttempt(state, str(details.get("resourceType", "")), event_time(event.get("timestamp")),
                                  None, None)
            attempts.append(current)
        elif kind in _TASK_END and current is not None:
            details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
            current.ended = event_time(event.get("timestamp"))
            current.ended_by = kind
            current.result = _json(details.get("output") if kind == "TaskSucceeded" else details.get("cause"))
            current = None
    return attempts


def job_runs_in_history(events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The Glue JobRun dicts the history holds: a `glue:startJobRun.sync` task's output (or, when the job run
    failed, its cause) is the JobRun itself. Each carries `_task_seconds`, the task's own duration, for a job run
    that reports no ExecutionTime. A task that failed with no JobRun in its cause never started one (Glue
    refused StartJobRun: `Glue.ConcurrentRunsExceededException`, throttling, a missing job): nothing is billed
    for it. A task that timed out is billed for its duration: its job run may have been running."""
    runs = []
    for attempt in task_attempts(events):
        if attempt.resource_type == "glue" and isinstance(attempt.result, dict) and "JobRunState" in attempt.result:
            runs.append({**attempt.result, "_task_seconds": attempt.seconds})
        elif attempt.resource_type == "glue" and attempt.seconds is not None and attempt.ended_by != "TaskFailed":
            runs.append({"Id": "?", "_task_seconds": attempt.seconds})
    return runs


def lambda_states(definition: Mapping[str, Any]) -> dict[str, str]:
    """State name -> function ("inspect", "validate", ...) for each `lambda:invoke` Task of the definition,
    from its `${<Name>FunctionArn}` placeholder (the definition as in statemachine/, before substitution)."""
    found = {}
    for name, state in (definition.get("States") or {}).items():
        target = str((state.get("Parameters") or {}).get("FunctionName", ""))
        if state.get("Type") == "Task" and target.startswith("${") and target.endswith("FunctionArn}"):
            found[name] = target[2:-len("FunctionArn}")].lower()
    return found


def state_transitions(events: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(billed state transitions, redrives): StateEntered events, plus one per retried Task attempt (each
    TaskScheduled after a visit's first), plus one per ExecutionRedriven."""
    entered = retries = redrives = 0
    scheduled_in_visit = 0
    for event in sorted(events, key=lambda e: e.get("id", 0)):
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            entered += 1
            scheduled_in_visit = 0
        elif kind == "TaskScheduled":
            scheduled_in_visit += 1
            retries += scheduled_in_visit > 1
        elif kind == "ExecutionRedriven":
            redrives += 1
    return entered + retries + redrives, redrives


# ---------------------------------------------------------------- the model
def glue_run_cost(job_run: Mapping[str, Any], sizing: StackSizing, prices: PriceTable) -> GlueRunCost:
    """DPU-seconds and USD of one job run. Worker type, number of workers and execution class come from the
    JobRun when it has them (AWS), else from `sizing` (the local runtime's runs). Raises CostError for a
    worker type without a DPU figure or, for R.*X workers, without a price."""
    worker_type = str(job_run.get("WorkerType") or sizing.glue_worker_type)
    workers = int(job_run.get("NumberOfWorkers") or sizing.glue_workers)
    execution_class = str(job_run.get("ExecutionClass") or sizing.glue_execution_class).upper()
    if worker_type not in GLUE_DPU_PER_WORKER:
        raise CostError(f"Glue job run {job_run.get('Id', '?')}: no DPU figure for worker type {worker_type!r}")
    seconds = job_run.get("ExecutionTime")
    if job_run.get("DPUSeconds") is not None:
        dpu_seconds = float(job_run["DPUSeconds"])
        basis = "DPUSeconds reported by Glue (FLEX or auto scaling run)"
        seconds = float(seconds or 0)
    else:
        if seconds is None:
            seconds = float(job_run.get("_task_seconds") or 0.0)
            basis = "the task's duration (the job run reports no ExecutionTime; Glue start-up included)"
        else:
            seconds = float(seconds)
            basis = "ExecutionTime x capacity"
        capacity = float(job_run.get("MaxCapacity") or GLUE_DPU_PER_WORKER[worker_type] * workers)
        billed = max(seconds, GLUE_MINIMUM_SECONDS)
        if seconds < GLUE_MINIMUM_SECONDS:
            basis += f", 1-minute minimum ({seconds:g} s run)"
        dpu_seconds = capacity * billed
    if worker_type.startswith(MEMORY_OPTIMIZED_PREFIX):
        if prices.glue_memory_optimized_dpu_hour is None:
            raise CostError(f"worker type {worker_type} is billed per memory-optimized DPU-hour, which the price "
                            f"table {prices.path} does not give (glue.memory_optimized_dpu_hour)")
        rate = prices.glue_memory_optimized_dpu_hour
    else:
        rate = prices.glue_flex_dpu_hour if execution_class == "FLEX" else prices.glue_dpu_hour
    return GlueRunCost(str(job_run.get("Id", "?")), worker_type, workers, execution_class, seconds,
                       dpu_seconds, basis, dpu_seconds / 3600 * rate)


def _lambda_cost(function: str, durations_ms: list[int], memory_mb: int, prices: PriceTable,
                 measured: bool) -> LambdaCost:
    total_ms = sum(durations_ms)
    gb_seconds = total_ms / 1000 * memory_mb / 1024
    usd = gb_seconds * prices.lambda_gb_second + len(durations_ms) * prices.lambda_per_million_requests / 1e6
    return LambdaCost(function, len(durations_ms), total_ms, memory_mb, gb_seconds, usd, measured)


def s3_requests(events: Sequence[Mapping[str, Any]], facts: RunFacts | None = None) -> tuple[int, int]:
    """(PUT/COPY/POST/LIST, GET/HEAD) requests one execution makes, estimated per step that ran (see
    S3_REQUESTS_COUNTED). Staged files: `facts`, else the files Publish reported, else 1."""
    facts = facts or RunFacts()
    ran = {a.state for a in task_attempts(events)}
    published = next((len(a.result.get("Payload", {}).get("files") or []) for a in task_attempts(events)
                      if a.state == "Publish" and isinstance(a.result, dict)
                      and isinstance(a.result.get("Payload"), dict)), None)
    files = facts.staged_files if facts.staged_files is not None else published if published is not None else 1
    size = facts.source_bytes if facts.source_bytes is not None else _input_size(events)
    put, get = 1, 0  # the upload itself
    if "InspectSource" in ran:
        put, get = put + 2, get + 3
    if "TransformTickets" in ran:
        splits = max(1, math.ceil(size / SPLIT_BYTES))
        quarantine = 1 if (facts.rows_quarantined or 0) > 0 else 0
        put, get = put + files + 1 + quarantine, get + 3 + 1 + 1 + splits
    if "ValidateOutput" in ran:
        put, get = put + 1 + 1, get + 1 + files
    if "Publish" in ran:
        put, get = put + 1 + 1 + files + 2, get + 5 + files
    if "RetractSource" in ran:
        put, get = put + 5, get + 2
    return put, get


def _input_size(events: Sequence[Mapping[str, Any]]) -> int:
    for event in events:
        if event.get("type") == "ExecutionStarted":
            doc = _json((event.get("executionStartedEventDetails") or {}).get("input")) or {}
            return int(doc.get("size") or 0) if isinstance(doc, dict) else 0
    return 0


def execution_cost(
    events: Sequence[Mapping[str, Any]],
    status: str,
    sizing: StackSizing,
    prices: PriceTable,
    definition: Mapping[str, Any],
    job_runs: Sequence[Mapping[str, Any]] | None = None,
    facts: RunFacts | None = None,
    memory_mb: Mapping[str, int] | None = None,
) -> ExecutionCost:
    """The cost of one execution (`status`: DescribeExecution's). `job_runs`: GetJobRun's JobRun dicts (AWS);
    None reads them from the history. `memory_mb`: each function's configured memory when known (AWS's
    GetFunctionConfiguration), else `sizing`'s. Raises CostError (see glue_run_cost)."""
    notes: list[str] = []
    runs = list(job_runs) if job_runs is not None else job_runs_in_history(events)
    glue = [glue_run_cost(run, sizing, prices) for run in runs]
    if sizing.glue_auto_scaling and any("DPUSeconds" not in run for run in runs):
        notes.append("auto scaling is on: without Glue's DPUSeconds the Glue figure is the maximum (all workers)")

    memory = {**sizing.memory_mb, **(memory_mb or {})}
    functions = lambda_states(definition)
    durations: dict[str, list[int]] = {}
    for attempt in task_attempts(events):
        if attempt.resource_type == "lambda" and attempt.state in functions and attempt.seconds is not None:
            durations.setdefault(functions[attempt.state], []).append(math.ceil(attempt.seconds * 1000))
    lambdas = [_lambda_cost(fn, ms, memory[fn], prices, True) for fn, ms in durations.items()]
    lambdas.append(_lambda_cost("trigger", [prices.trigger_ms], memory["trigger"], prices, False))
    if status in ENDED_BADLY:
        lambdas.append(_lambda_cost("notify", [prices.notify_ms], memory["notify"], prices, False))
    assumed = "the trigger's and notify's durations are" if status in ENDED_BADLY else "the trigger's duration is"
    notes.append(f"Lambda durations are the history's task timings (invoke round trip); {assumed} assumed "
                 "(the price table's assumptions)")
    notes.append("S3 requests are estimated from what each step does, not counted")

    transitions, redrives = state_transitions(events)
    put, get = s3_requests(events, facts)
    usd = {
        "glue": sum(run.usd for run in glue),
        "lambda": sum(fn.usd for fn in lambdas),
        "stepfunctions": transitions * prices.sfn_per_thousand_transitions / 1000,
        "s3": put * prices.s3_per_thousand_put / 1000 + get * prices.s3_per_thousand_get / 1000,
    }
    return ExecutionCost(glue, lambdas, transitions, redrives, put, get, usd, prices.region, prices.taken,
                         prices.path, notes)


def facts_from_report(report: Mapping[str, Any] | None, events: Sequence[Mapping[str, Any]]) -> RunFacts:
    """RunFacts from a run report (`run_report.json`: outputs.files, rows_quarantined) and the execution
    input's `size`; fields the report lacks stay None."""
    report = report or {}
    files = (report.get("outputs") or {}).get("files")
    quarantined = report.get("rows_quarantined")
    return RunFacts(source_bytes=_input_size(events),
                    staged_files=len(files) if isinstance(files, list) else None,
                    rows_quarantined=int(quarantined) if quarantined is not None else None)


# ---------------------------------------------------------------- rendering
def fmt_usd(value: float) -> str:
    """Dollars with enough digits to show a per-file figure: $0.0147, $0.000031, $12.40."""
    if value >= 1:
        return f"${value:,.2f}"
    if value >= 0.01:
        return f"${value:.4f}"
    return f"${value:.6f}"


def render_cost_block(cost: ExecutionCost, width: int = 100) -> list[str]:
    """The `show` block, within `width` columns: a heading naming the prices' region and date, one line per
    service (what, units, USD) with how it was found beneath, the total, and the notes."""
    import textwrap

    rows: list[tuple[str, str, float, str]] = []
    for run in cost.glue:
        rows.append(("Glue", f"{run.dpu_seconds:,.1f} DPU-s", run.usd,
                     f"{run.worker_type} x {run.workers}, {run.execution_class}: {run.basis}"))
    if not cost.glue:
        rows.append(("Glue", "no job run", 0.0, ""))
    for fn in cost.lambdas:
        how = f"{fn.invocations} x, {fn.duration_ms:,} ms at {fn.memory_mb} MB" + ("" if fn.measured else " (assumed)")
        rows.append((f"Lambda {fn.function}", f"{fn.gb_seconds:,.3f} GB-s", fn.usd, how))
    redriven = f", {cost.redrives} redrive(s)" if cost.redrives else ""
    rows.append(("Step Functions", f"{cost.transitions} transitions", cost.usd["stepfunctions"],
                 f"Standard workflow{redriven}"))
    rows.append(("S3 requests", f"{cost.s3_put + cost.s3_get} requests", cost.usd["s3"],
                 f"{cost.s3_put} PUT/COPY/LIST, {cost.s3_get} GET/HEAD (estimated)"))
    lines = [f"Cost (estimated at {cost.region} prices of {cost.prices_taken})"]
    for what, units, usd, how in rows:
        head = f"  {what:<16} {units:>18} {fmt_usd(usd):>11}  "
        said = textwrap.wrap(how, max(width - len(head), 20)) or [""]
        lines.append((head + said[0]).rstrip())
        lines += [" " * len(head) + more for more in said[1:]]
    lines.append(f"  {'Total':<16} {'':>18} {fmt_usd(cost.total_usd):>11}")
    for note in cost.notes:
        lines += textwrap.wrap(note, width, initial_indent="  note: ", subsequent_indent="        ")
    return lines


def render_cost_table(items: Sequence[tuple[str, str, ExecutionCost | None, str | None]],
                      width: int | None = 100) -> str:
    """`executions --cost`: NAME, STATUS, DPU-S, LAMBDA GB-S, TRANSITIONS, S3 REQ, USD per execution
    (`items`: name, status, cost or None, why None), then a total line over the executions costed."""
    from ticketflow.ops.render import table_lines

    headers = ["NAME", "STATUS", "DPU-S", "LAMBDA GB-S", "TRANSITIONS", "S3 REQ", "USD"]
    cells, costed, problems = [], [], []
    for name, status, cost, why in items:
        if cost is None:
            cells.append([name, status, "-", "-", "-", "-", "-"])
            problems.append(f"{name}: not computed: {why}")
            continue
        costed.append(cost)
        cells.append([name, status, f"{cost.dpu_seconds:,.1f}", f"{cost.lambda_gb_seconds:,.3f}",
                      str(cost.transitions), str(cost.s3_put + cost.s3_get), fmt_usd(cost.total_usd)])
    cells.append(["total", f"{len(costed)} costed", f"{sum(c.dpu_seconds for c in costed):,.1f}",
                  f"{sum(c.lambda_gb_seconds for c in costed):,.3f}", str(sum(c.transitions for c in costed)),
                  str(sum(c.s3_put + c.s3_get for c in costed)), fmt_usd(sum(c.total_usd for c in costed))])
    lines = table_lines(headers, cells, right=[2, 3, 4, 5, 6], shrink={0: 20}, width=width)
    lines.insert(len(lines) - 1, "  ".join("-" * len(part) for part in lines[1].split("  ") if part))
    if costed:
        lines += ["", f"USD estimated at {costed[0].region} prices of {costed[0].prices_taken} "
                      f"({Path(costed[0].prices_file).name}); S3 requests estimated"]
    lines += problems
    return "\n".join(lines)
