"""EventBridge "Step Functions Execution Status Change" (FAILED/TIMED_OUT/ABORTED) -> one SNS message."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from ticketcore.alerts import build_alert

logger = Logger()
tracer = Tracer()


def clients() -> tuple[Any, Any]:
    return boto3.client("stepfunctions"), boto3.client("sns")


@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    sfn, sns = clients()
    arn = event.get("detail", {}).get("executionArn", "")
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"] if arn else []
    region = os.environ.get("AWS_REGION") or sfn.meta.region_name
    alert = build_alert(event, history, region)
    if alert is None:
        return {"sent": False}
    attributes = {k: {"DataType": "String", "StringValue": v or "-"} for k, v in alert.attributes.items()}
    sent = sns.publish(TopicArn=os.environ["TOPIC_ARN"], Subject=alert.subject, Message=alert.message,
                       MessageAttributes=attributes)
    logger.info("alert sent", extra={"subject": alert.subject, "message_id": sent.get("MessageId")})
    return {"sent": True, "message_id": sent.get("MessageId"), "subject": alert.subject}
