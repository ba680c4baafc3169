"""The local Step Functions engine: moto's ASL interpreter (patched, on a virtual clock) whose Task calls
go to an in-process backend. See engine.py for the service, moto_patches.py for what is patched and why."""

from ticketflow.local.asl import (
    DEFAULT_DEFINITION,
    PIPELINE_PLACEHOLDERS,
    PlaceholderError,
    load_definition,
    placeholders,
    substitute,
)
from ticketflow.local.engine import (
    FunctionError,
    InvalidDefinition,
    JobRunRecord,
    LocalStepFunctions,
    ServiceError,
    TaskBackend,
    current_task,
)
from ticketflow.local.history import StateRun, summarize_history
from ticketflow.local.moto_patches import TaskAbandoned, TaskScope, VirtualClock, Wait

__all__ = [
    "DEFAULT_DEFINITION",
    "PIPELINE_PLACEHOLDERS",
    "FunctionError",
    "InvalidDefinition",
    "JobRunRecord",
    "LocalStepFunctions",
    "PlaceholderError",
    "ServiceError",
    "StateRun",
    "TaskAbandoned",
    "TaskBackend",
    "TaskScope",
    "VirtualClock",
    "Wait",
    "current_task",
    "load_definition",
    "placeholders",
    "substitute",
    "summarize_history",
]
