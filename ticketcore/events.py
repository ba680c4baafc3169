"""Typed payloads the state machine sends to the task Lambdas (parsed with Powertools' parser), and what it
starts with and gets back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class InspectInput(BaseModel):
    bucket: str
    key: str
    run_id: str
    version_id: str = ""
    sequencer: str = ""


class StagedRunInput(BaseModel):
    """What ValidateOutput and Publish receive."""

    bucket: str
    key: str
    run_id: str
    staging_uri: str
    reports_uri: str
    sequencer: str = ""
    # Inspect's record of the upload the run read (key, version_id, etag, bytes); Publish puts it in the manifest.
    source: dict[str, Any] = {}


class RetractInput(BaseModel):
    """What RetractSource receives: the removed key, the version its event names, and the S3 event name."""

    bucket: str
    key: str
    run_id: str
    removal: str
    version_id: str = ""
    sequencer: str = ""


# ---------------------------------------------------------------- what the execution starts with, what tasks return
# The static data-flow check of `ticketflow test-definition` resolves every JSONPath of the definition against
# these (ticketflow/deftest/dataflow.py); tests/e2e/test_pipeline.py checks that the real outputs of a local run
# validate against them, so they cannot drift from the handlers. A closed model (extra="forbid") lets a typo in a
# path be found; an open one only its declared fields.
class ExecutionInput(BaseModel):
    """The execution input the trigger starts (`ticketcore.trigger.execution_input`)."""

    model_config = ConfigDict(extra="forbid")
    bucket: str
    key: str
    size: int = 0
    version_id: str = ""
    sequencer: str = ""
    removal: str | None = None  # the S3 event name, present only for a deletion (RouteEvent's Choice)


class SourceRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str
    version_id: str | None = None
    etag: str | None = None
    bytes: int


class InspectOutput(BaseModel):
    """What InspectSource's function returns (`ticketcore.inspect.inspect_source`)."""

    model_config = ConfigDict(extra="forbid")
    source_uri: str
    inspection_uri: str
    source: SourceRecord
    staging_uri: str
    quarantine_uri: str
    reports_uri: str
    bytes: int
    compression: str | None = None
    dialect: dict[str, Any]
    profile: str | None = None
    mapping: dict[str, str]
    unknown_columns: int
    columns_not_preferred: int
    sample_field_counts: dict[str, int]


class ValidateOutput(BaseModel):
    """What ValidateOutput's function returns when the output passes (it raises DataQualityError otherwise)."""

    model_config = ConfigDict(extra="forbid")
    success: bool
    row_count: int
    failed_expectations: list[str]
    warnings: list[str]
    report_uri: str


class PublishOutput(BaseModel):
    """What Publish's function returns (its publication)."""

    model_config = ConfigDict(extra="forbid")
    outcome: str
    run_id: str | None = None
    source_key: str | None = None
    rows: int | None = None
    files: list[dict[str, Any]] | None = None
    replaced_files: list[Any] | None = None


class RetractOutput(BaseModel):
    """What RetractSource's function returns: the outcome, and counts that depend on it (an open shape)."""

    model_config = ConfigDict(extra="allow")
    outcome: str
