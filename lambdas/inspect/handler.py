"""InspectSource: read the head of the upload, map its headers, fail fast with SchemaError."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketcore import storage
from ticketcore.contract import load_contract
from ticketcore.events import InspectInput
from ticketcore.inspect import inspect_source

logger = Logger()
tracer = Tracer()


@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_parser(model=InspectInput)
def handler(event: InspectInput, context: LambdaContext) -> dict[str, Any]:
    contract = load_contract(os.environ.get("TICKETFLOW_CONTRACT"))
    result = inspect_source(storage.for_bucket(event.bucket), event.key, event.run_id, contract, event.version_id,
                            event.sequencer)
    logger.info("inspected", extra={"key": event.key, "dialect": result["dialect"], "mapping": result["mapping"]})
    return result
