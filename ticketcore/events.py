"""Typed payloads the state machine sends to the task Lambdas (parsed with Powertools' parser)."""

from __future__ import annotations

from pydantic import BaseModel


class InspectInput(BaseModel):
    bucket: str
    key: str
    run_id: str
    version_id: str = ""


class StagedRunInput(BaseModel):
    """What ValidateOutput and Publish receive."""

    bucket: str
    key: str
    run_id: str
    staging_uri: str
    reports_uri: str
    sequencer: str = ""
