"""Typed payloads the state machine sends to the task Lambdas (parsed with Powertools' parser)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


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
