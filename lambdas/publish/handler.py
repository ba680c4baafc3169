"""Publish: move the validated staged files under processed/ and rewrite the source key's manifest."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketcore import storage
from ticketcore.events import StagedRunInput
from ticketcore.publish import PublishBusy, publish

__all__ = ["PublishBusy", "handler"]  # PublishBusy: another execution holds the key; the definition retries it

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_parser(model=StagedRunInput)
def handler(event: StagedRunInput, context: LambdaContext) -> dict[str, Any]:
    result = publish(storage.for_bucket(event.bucket), event.key, event.run_id, event.sequencer, event.source)
    if result["outcome"] == "published":
        metrics.add_metric(name="RowsPublished", unit=MetricUnit.Count, value=result["rows"])
    logger.info("publish", extra={"outcome": result["outcome"], "files": len(result.get("files", []))})
    return {k: result.get(k) for k in ("outcome", "run_id", "source_key", "rows", "files", "replaced_files")}
