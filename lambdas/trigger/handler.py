"""S3 ObjectCreated and ObjectRemoved -> StartExecution, one per record; raises if any record failed (retried)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketcore import storage
from ticketcore.trigger import S3ObjectEvent, start_executions

logger = Logger()
tracer = Tracer()
metrics = Metrics()


class StartExecutionFailed(Exception):
    """At least one record could not start an execution; the invocation is retried as a whole."""


def sfn_client() -> Any:
    return boto3.client("stepfunctions")


def write_record(bucket: str, key: str, body: bytes) -> None:
    """A skipped upload's record, under reports/skipped/ of the upload's bucket."""
    storage.for_bucket(bucket).write_bytes(key, body)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    objects = [
        S3ObjectEvent(
            bucket=r.s3.bucket.name,
            key=unquote_plus(r.s3.get_object.key),  # keys arrive URL-encoded ("a+b%25.csv")
            size=int(r.s3.get_object.get("size") or 0),  # a removal event has no size
            version_id=r.s3.get_object.version_id,
            sequencer=r.s3.get_object.sequencer,
            removal=r.event_name if r.event_name.startswith("ObjectRemoved") else None,
        )
        for r in event.records
    ]
    result = start_executions(sfn_client(), os.environ["STATE_MACHINE_ARN"], objects, record=write_record)
    metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=len(result.started))
    metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=len(result.duplicates))
    # Uploads under raw/ that started nothing (recorded); folder markers and foreign keys are not counted.
    metrics.add_metric(name="ObjectsSkipped", unit=MetricUnit.Count, value=len(result.skipped))
    for skipped in result.skipped:
        logger.warning("upload skipped", extra=skipped)
    for ignored in result.ignored:
        logger.info("object ignored", extra=ignored)
    if result.failed:
        logger.error("executions not started", extra={"failed": result.failed})
        raise StartExecutionFailed(f"{len(result.failed)} of {len(objects)} records failed: {result.failed}")
    return result.to_dict()
