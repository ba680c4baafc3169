"""Every cdk-nag suppression of the stack (AwsSolutions, NIST 800-53 R5 and Serverless packs), each with its
reason, in one place.

Suppressions are attached to the construct they concern and, for the granular IAM rules, name the exact
findings (`applies_to`), so a new wildcard anywhere else is still reported.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aws_cdk import Stack
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct

from infra.constructs.storage import (
    LANDING_PREFIX,
    LOCKS_PREFIX,
    MANIFESTS_PREFIX,
    PROCESSED_PREFIX,
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    REPORTS_PREFIX,
    SKIPPED_PREFIX,
    STAGING_PREFIX,
    VALIDATION_PREFIX,
    objects,
)

if TYPE_CHECKING:
    from infra.stack import PipelineStack

# --------------------------------------------------------------------------------------------- reasons
XRAY = (
    "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level "
    "permissions, so AWS requires Resource '*' (added by CDK for Tracing.ACTIVE / tracingEnabled)."
)
S3_PREFIX_GRANTS = (
    "Prefix-scoped object grants (Storage.grant_prefix(role, '<prefix>', ...)): object keys are per "
    "upload/run, so the resource is every object under the one prefix this role needs, with named actions "
    "only (never s3:DeleteObjectVersion); s3:ListBucket is limited to that prefix by an s3:prefix condition."
)
KMS_GRANTS = (
    "KMS grants made by CDK with the bucket/topic grants: kms:GenerateDataKey* and kms:ReEncrypt* on the one "
    "customer-managed key that encrypts that bucket or topic (no other key)."
)
GLUE_LOG_GROUPS = (
    "Glue creates its own log groups under /aws-glue/ (names derive from the job's security configuration "
    "and role, e.g. /aws-glue/jobs/<config>-role/<role>/output, /aws-glue/jobs/logs-v2-<config>); the grant "
    "is limited to that prefix in this account and region."
)
GLUE_METRICS = (
    "cloudwatch:PutMetricData supports no resource-level permissions; the statement is restricted to the "
    "'Glue' namespace by the cloudwatch:namespace condition (job and observability metrics)."
)
STATE_MACHINE_LOGGING = (
    "Step Functions logging to CloudWatch Logs uses the log-delivery API (logs:CreateLogDelivery, "
    "GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery, ListLogDeliveries, PutResourcePolicy, "
    "DescribeResourcePolicies, DescribeLogGroups), which supports no resource-level permissions; X-Ray "
    "tracing likewise (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets)."
)
RUNTIME_PINNED = (
    "Python 3.12 is pinned on purpose in one constant (infra/constructs/functions.py PYTHON_RUNTIME): the "
    "Powertools layer, the dependency layer's build image and the validate image follow it; upgrade there."
)
QUEUE_IS_DLQ = (
    "This queue is itself a dead-letter destination (the trigger's asynchronous on-failure destination, or "
    "the EventBridge target's DLQ); a queue behind it would add nothing. An alarm watches its depth and "
    "messages are kept 14 days for inspection and replay."
)
EXECUTION_HISTORY = (
    "The notify function reads the history of the execution it reports on; executions are created per upload "
    "with generated names, so the grant (state_machine.grant_execution) covers this state machine's "
    "executions only: arn:...:execution:<this state machine>:*."
)
INLINE_POLICIES = (
    "The default policy CDK writes for each role's grants holds that one role's least-privilege statements "
    "(per prefix and action, see S3_PREFIX_GRANTS); it is created and deleted with the role and shared by no "
    "other principal, which is what a managed policy would be for."
)
NO_RESERVED_CONCURRENCY = (
    "No reserved concurrency: a new account's Lambda concurrency quota (as low as 10) cannot reserve it, and "
    "the load is bounded upstream: one execution per upload, the Glue job's MaxConcurrentRuns and the "
    "definition's retries with backoff on throttling (Lambda.TooManyRequestsException)."
)
SYNC_INVOKED = (
    "Invoked synchronously by a Step Functions Task (lambda:invoke): a dead-letter queue applies only to "
    "asynchronous invocations. A failure fails the Task, which retries with backoff, then the execution, "
    "whose EventBridge status rule raises the alert and leaves it redrivable."
)
ASYNC_ON_FAILURE = (
    "Invoked asynchronously, with an on-failure destination (an SQS queue, alarmed on depth) instead of a "
    "DeadLetterConfig: the destination receives the whole event with the error, a DLQ only the event."
)
NO_VPC = (
    "The functions reach only AWS APIs (S3, Step Functions, SNS, KMS) over TLS with IAM authorisation and no "
    "resource in a VPC; a VPC would add NAT or endpoints and cold-start cost and protect nothing here."
)
NO_REPLICATION = (
    "No cross-region replication: the data bucket keeps every raw upload version (versioned, RETAIN) and "
    "everything else is derived from those and can be reprocessed; a second region is a deployment choice, "
    "not part of this stack. The access-log bucket is operational metadata with a stated expiry."
)
ACCESS_LOGS_SSE_S3 = (
    "Server access logs hold request metadata (keys, requesters, operations), not object contents; they use "
    "SSE-S3 so that S3's log delivery needs no grant on the data key (a customer key would have to allow the "
    "logging.s3.amazonaws.com principal)."
)
ARCHIVE_REPLICATION = (
    "The role CDK creates for the data bucket's replication rule (raw_archive_retention_days > 0): it reads "
    "object versions of the data bucket (the rule's filter limits replication to support_ticket/raw/; S3 "
    "replication permissions are granted on the bucket's objects), writes replicas into the write-once "
    "archive bucket, and uses the one data key on both sides."
)
ARCHIVE_IS_REPLICA = (
    "The raw archive bucket is itself the replica of the data bucket's uploads (Object Lock, write-once); a "
    "further replica is a deployment choice."
)
NOTIFICATIONS_HANDLER = (
    "CDK's own BucketNotificationsHandler (the custom resource behind bucket.add_event_notification): its "
    "role and AWSLambdaBasicExecutionRole are fixed by CDK and it only calls s3:PutBucketNotification on "
    "the data bucket."
)


def _suppress(construct: IConstruct, rule: str, reason: str, applies_to: list[Any] | None = None) -> None:
    suppression: dict[str, Any] = {"id": rule, "reason": reason}
    if applies_to:
        suppression["applies_to"] = applies_to
    NagSuppressions.add_resource_suppressions(
        construct, [NagPackSuppression(**suppression)], apply_to_children=True
    )


def _arn_finding(service: str, resource: str) -> RegexAppliesTo:
    """A finding on `arn:<partition>:<service>:<region>:<account>:<resource>`, matched whether the stack's
    environment is concrete (arn:aws:...:eu-west-1:123456789012:...) or not (<AWS::Region> placeholders)."""
    tail = re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", resource)
    partition, region, account = (
        f"(?:<AWS::{name}>|[^:<]+)" for name in ("Partition", "Region", "AccountId")
    )
    return RegexAppliesTo(regex=f"/^Resource::arn:{partition}:{service}:{region}:{account}:{tail}$/g")


def _prefix_findings(stack: PipelineStack, *prefixes: str) -> list[str]:
    bucket = stack.get_logical_id(stack.storage.bucket.node.default_child)  # type: ignore[arg-type]
    return [f"Resource::<{bucket}.Arn>/{objects(prefix)}" for prefix in prefixes]


def apply(stack: PipelineStack) -> None:
    kms_actions = ["Action::kms:GenerateDataKey*", "Action::kms:ReEncrypt*"]

    # Lambda functions: X-Ray everywhere, plus exactly the bucket prefixes each one is granted.
    prefixes_of = {
        stack.ingestion.trigger: (SKIPPED_PREFIX,),  # the records of skipped uploads
        # Reads an upload's version and its key's manifest (an erasure's tombstone), writes its landing copy.
        stack.steps.inspect: (RAW_PREFIX, LANDING_PREFIX, MANIFESTS_PREFIX),
        stack.validation.validate: (STAGING_PREFIX, REPORTS_PREFIX, VALIDATION_PREFIX),
        stack.steps.publish: (VALIDATION_PREFIX, STAGING_PREFIX, REPORTS_PREFIX, PROCESSED_PREFIX, LOCKS_PREFIX),
        stack.steps.retract: (PROCESSED_PREFIX, LOCKS_PREFIX, REPORTS_PREFIX, QUARANTINE_PREFIX, LANDING_PREFIX,
                              STAGING_PREFIX, VALIDATION_PREFIX),
        stack.alerts.notify: (),
    }
    for function in stack.functions:
        _suppress(function.role, "AwsSolutions-IAM5", XRAY, ["Resource::*"])
        prefixes = prefixes_of[function]
        if prefixes:
            _suppress(
                function.role,
                "AwsSolutions-IAM5",
                S3_PREFIX_GRANTS,
                _prefix_findings(stack, *prefixes),
            )
        _suppress(function.role, "AwsSolutions-IAM5", KMS_GRANTS, kms_actions)
        if function is not stack.validation.validate:  # the container image has no runtime setting
            _suppress(function.function, "AwsSolutions-L1", RUNTIME_PINNED)
            _suppress(function.function, "Serverless-LambdaLatestVersion", RUNTIME_PINNED)
        _suppress(function.role, "NIST.800.53.R5-IAMNoInlinePolicy", INLINE_POLICIES)
        _suppress(function.function, "NIST.800.53.R5-LambdaConcurrency", NO_RESERVED_CONCURRENCY)
        _suppress(function.function, "NIST.800.53.R5-LambdaInsideVPC", NO_VPC)
        asynchronous = function in (stack.ingestion.trigger, stack.alerts.notify)  # S3 and EventBridge invoke
        for rule in ("NIST.800.53.R5-LambdaDLQ", "Serverless-LambdaDLQ"):
            _suppress(function.function, rule, ASYNC_ON_FAILURE if asynchronous else SYNC_INVOKED)

    state_machine = stack.get_logical_id(stack.pipeline.state_machine.node.default_child)  # type: ignore[arg-type]
    _suppress(
        stack.alerts.notify.role,
        "AwsSolutions-IAM5",
        EXECUTION_HISTORY,
        [
            _arn_finding(
                "states",
                f'execution:{{"Fn::Select":[6,{{"Fn::Split":[":",{{"Ref":"{state_machine}"}}]}}]}}:*',
            )
        ],
    )

    # Glue job role: its four prefixes (landing/, not raw/), its own log groups, its metrics.
    glue_role = stack.etl.role
    _suppress(
        glue_role,
        "AwsSolutions-IAM5",
        S3_PREFIX_GRANTS,
        _prefix_findings(stack, LANDING_PREFIX, STAGING_PREFIX, QUARANTINE_PREFIX, REPORTS_PREFIX),
    )
    _suppress(glue_role, "AwsSolutions-IAM5", KMS_GRANTS, kms_actions)
    _suppress(
        glue_role, "AwsSolutions-IAM5", GLUE_LOG_GROUPS, [_arn_finding("logs", "log-group:/aws-glue/*")]
    )
    _suppress(glue_role, "AwsSolutions-IAM5", GLUE_METRICS, ["Resource::*"])
    _suppress(glue_role, "NIST.800.53.R5-IAMNoInlinePolicy", INLINE_POLICIES)

    # State machine role: logging and tracing.
    _suppress(stack.pipeline.state_machine.role, "AwsSolutions-IAM5", STATE_MACHINE_LOGGING, ["Resource::*"])
    _suppress(stack.pipeline.state_machine.role, "NIST.800.53.R5-IAMNoInlinePolicy", INLINE_POLICIES)

    # Buckets.
    for bucket in (stack.storage.bucket, stack.storage.access_logs):
        _suppress(bucket, "NIST.800.53.R5-S3BucketReplicationEnabled", NO_REPLICATION)
    _suppress(stack.storage.access_logs, "NIST.800.53.R5-S3DefaultEncryptionKMS", ACCESS_LOGS_SSE_S3)
    archive = stack.storage.archive
    if archive is not None:
        _suppress(archive, "NIST.800.53.R5-S3BucketReplicationEnabled", ARCHIVE_IS_REPLICA)
        replication_role = stack.storage.bucket.node.try_find_child("ReplicationRole")
        if replication_role is not None:
            buckets = [stack.get_logical_id(b.node.default_child) for b in (stack.storage.bucket, archive)]  # type: ignore[arg-type]
            _suppress(replication_role, "AwsSolutions-IAM5", ARCHIVE_REPLICATION,
                      [*kms_actions, *[f"Resource::<{b}.Arn>/*" for b in buckets]])
            _suppress(replication_role, "NIST.800.53.R5-IAMNoInlinePolicy", ARCHIVE_REPLICATION)

    # Queues that are dead-letter destinations themselves.
    for queue in (stack.ingestion.failed_events, stack.alerts.undelivered):
        _suppress(queue, "AwsSolutions-SQS3", QUEUE_IS_DLQ)
        _suppress(queue, "Serverless-SQSRedrivePolicy", QUEUE_IS_DLQ)

    # CDK's singleton custom resource for S3 notifications (created at the stack root).
    for child in Stack.of(stack).node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            _suppress(
                child,
                "AwsSolutions-IAM4",
                NOTIFICATIONS_HANDLER,
                ["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"],
            )
    # ...and the policy CDK attaches to that handler's role from the bucket it configures.
    notifications = stack.storage.bucket.node.try_find_child("Notifications")
    if notifications is not None:
        _suppress(notifications, "NIST.800.53.R5-IAMNoInlinePolicy", NOTIFICATIONS_HANDLER)
