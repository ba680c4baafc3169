"""ValidateOutput: the contract's great-expectations suite on a run's staged output.

Always writes `<reports>/validation_report.json` (publish refuses without a passing one), then raises
`DataQualityError` (the Step Functions error name) when an error-severity expectation failed.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketcore import layout, storage, validation
from ticketcore.contract import load_contract
from ticketcore.events import StagedRunInput as ValidateInput
from ticketcore.validation import DataQualityError

__all__ = ["DataQualityError", "handler"]  # the error this function raises: its class name is the SFN error

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Ticketflow")


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_parser(model=ValidateInput)
def handler(event: ValidateInput, context: LambdaContext) -> dict[str, Any]:
    validation.prefetch_gx()  # the 2-3.5 s import runs while the files are listed, fetched and read
    store = storage.for_bucket(event.bucket)
    reports = store.key_of(event.reports_uri).rstrip("/") + "/"
    report_key = layout.validation_report_key(event.run_id)
    try:
        # Read at each invocation: an operator may correct the contract and redrive.
        contract = load_contract(os.environ.get("TICKETFLOW_CONTRACT"))
        run_report = json.loads(store.read_bytes(reports + layout.RUN_REPORT))
        result = validation.validate_run(store, event.staging_uri, run_report, contract)
    except Exception as exc:  # a report that says why, so no earlier passing report is left to publish
        store.write_bytes(report_key, json.dumps({"success": False, "run_id": event.run_id,
                                                  "error": f"{type(exc).__name__}: {exc}"}).encode())
        raise
    store.write_bytes(report_key, validation.report_json(result, run_id=event.run_id, source_key=event.key,
                                                         contract=contract.source_path))
    metrics.add_metric(name="RowsValidated", unit=MetricUnit.Count, value=result.row_count)
    failed = result.failed_errors + result.failed_warnings
    metrics.add_metric(name="ExpectationsFailed", unit=MetricUnit.Count, value=len(failed))
    logger.info("validated", extra={"success": result.success, "row_count": result.row_count,
                                    "failed_errors": result.failed_errors, "warnings": result.failed_warnings,
                                    "timings": result.timings})
    result.raise_on_failure()
    return {"success": True, "row_count": result.row_count, "failed_expectations": failed,
            "warnings": result.failed_warnings, "report_uri": store.uri(report_key)}
