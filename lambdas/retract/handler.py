"""RetractSource: an upload deleted from raw/ takes its published rows, quarantined rows and run copies with it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketcore import storage
from ticketcore.erasure import retract
from ticketcore.events import RetractInput
from ticketcore.publish import PublishBusy

__all__ = ["PublishBusy", "handler"]  # PublishBusy: another execution holds the key; the definition retries it

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_parser(model=RetractInput)
def handler(event: RetractInput, context: LambdaContext) -> dict[str, Any]:
    result = retract(storage.for_bucket(event.bucket), event.key, event.run_id, event.sequencer, event.version_id,
                     event.removal)
    metrics.add_metric(name="RowsRetracted", unit=MetricUnit.Count, value=result["rows_retracted"])
    logger.info("retract", extra={k: result[k] for k in ("outcome", "files_retracted", "rows_retracted",
                                                          "objects_deleted")})
    return result
