"""A deployed stack as a target: its bucket, state machine and alert topic, found from its outputs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ticketcore.layout import RAW_PREFIX
from ticketflow.ops.executions import AwsExecutionStore
from ticketflow.ops.render import ENDED_BADLY, ExecutionRow, rows_for

DEFAULT_STACK = "Ticketflow"  # infra/app.py STACK_NAME (not imported: that module needs aws-cdk-lib)
STACK_ENV = "TICKETFLOW_STACK"
# The outputs infra/stack.py declares. CDK may suffix an output's logical ID (a construct path's hash),
# so a key is matched exactly first, then as the prefix of exactly one output key.
BUCKET_OUTPUT, STATE_MACHINE_OUTPUT, TOPIC_OUTPUT = "BucketName", "StateMachineArn", "AlertTopicArn"


class TargetError(Exception):
    """The stack cannot be used: missing, unreadable, or without the outputs we need."""


def default_stack() -> str:
    return os.environ.get(STACK_ENV) or DEFAULT_STACK


@dataclass(frozen=True)
class StackResources:
    stack: str
    bucket: str
    state_machine_arn: str
    topic_arn: str


def output_value(outputs: dict[str, str], key: str, stack: str) -> str:
    if key in outputs:
        return outputs[key]
    matches = sorted(k for k in outputs if k.startswith(key))
    if len(matches) == 1:
        return outputs[matches[0]]
    if matches:
        raise TargetError(f"stack {stack} has several outputs named like {key}: {', '.join(matches)}")
    known = ", ".join(sorted(outputs)) or "none"
    raise TargetError(f"stack {stack} has no output {key} (its outputs: {known})")


def stack_resources(cfn_client: Any, stack: str) -> StackResources:
    try:
        stacks = cfn_client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as err:
        message = err.response.get("Error", {}).get("Message", str(err))
        raise TargetError(f"cannot read CloudFormation stack {stack!r}: {message}") from err
    if not stacks:
        raise TargetError(f"CloudFormation stack {stack!r} not found")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return StackResources(
        stack=stack,
        bucket=output_value(outputs, BUCKET_OUTPUT, stack),
        state_machine_arn=output_value(outputs, STATE_MACHINE_OUTPUT, stack),
        topic_arn=output_value(outputs, TOPIC_OUTPUT, stack),
    )


class AwsTarget:
    """One stack in one account and region (boto3's usual settings, or --profile/--region)."""

    def __init__(self, stack: str, region: str | None = None, profile: str | None = None,
                 session: Any = None) -> None:
        self.stack = stack
        if session is None:
            import boto3

            try:
                session = boto3.Session(profile_name=profile, region_name=region)
            except BotoCoreError as err:  # e.g. ProfileNotFound
                raise TargetError(str(err)) from err
        self.session = session

    def client(self, service: str) -> Any:
        return self.session.client(service)

    @cached_property
    def resources(self) -> StackResources:
        return stack_resources(self.client("cloudformation"), self.stack)

    def store(self) -> AwsExecutionStore:
        return AwsExecutionStore(self.client("stepfunctions"), self.resources.state_machine_arn)

    def upload(self, paths: list[Path]) -> list[str]:
        """Put each file under the raw prefix of the stack's bucket (whose event starts the pipeline)."""
        s3 = self.client("s3")
        uris = []
        for path in paths:
            key = RAW_PREFIX + path.name
            s3.upload_file(str(path), self.resources.bucket, key)
            uris.append(f"s3://{self.resources.bucket}/{key}")
        return uris

    def subscriptions(self) -> list[dict[str, Any]]:
        sns = self.client("sns")
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs = {"TopicArn": self.resources.topic_arn, **({"NextToken": token} if token else {})}
            page = sns.list_subscriptions_by_topic(**kwargs)
            found += page.get("Subscriptions", [])
            token = page.get("NextToken")
            if not token:
                return found

    def alerts(self, limit: int) -> tuple[dict[str, Any], list[ExecutionRow]]:
        """Where alerts go, and the most recent executions that ended badly (newest first)."""
        store = self.store()
        ended_badly = [desc for status in ENDED_BADLY for desc in store.list(status, limit)]
        ended_badly.sort(key=lambda d: d.get("stopDate") or d["startDate"], reverse=True)
        rows = rows_for(store, ended_badly[:limit])
        doc: dict[str, Any] = {
            "stack": self.stack,
            "topic_arn": self.resources.topic_arn,
            "subscriptions": self.subscriptions(),
            "failures": [
                {"name": r.name, "status": r.status, "stopDate": r.stop, "failed_state": r.failed_state,
                 "error": r.error, "cause": r.cause, "source_key": r.source_key}
                for r in rows
            ],
        }
        from ticketcore.storage import S3Storage
        from ticketflow.ops.alerts import skipped_uploads

        doc["skipped_total"], doc["skipped"] = skipped_uploads(
            S3Storage(self.resources.bucket, self.client("s3")), limit
        )
        return doc, rows
