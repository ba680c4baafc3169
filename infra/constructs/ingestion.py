"""S3 upload -> trigger Lambda -> StartExecution, with a queue for events the trigger could not handle."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.functions import PipelineFunction, SharedLayers
from infra.constructs.logs import EncryptedLogs
from infra.constructs.storage import RAW_PREFIX, SKIPPED_PREFIX, Storage
from ticketcore.sizing import FUNCTION_MEMORY_MB


class Ingestion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        state_machine: sfn.IStateMachine,
        layers: SharedLayers,
        logs: EncryptedLogs,
    ) -> None:
        super().__init__(scope, construct_id)

        # S3 events that still failed after the asynchronous retries: kept 14 days for inspection/replay.
        self.failed_events = sqs.Queue(
            self,
            "FailedEvents",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )

        # Starts one execution per uploaded object, named from (bucket, key, version): duplicates are no-ops.
        self.trigger = PipelineFunction(
            self,
            "Trigger",
            name="trigger",
            description="ticketflow: start the pipeline for each upload under raw/ (record the others as skipped)",
            logs=logs,
            layers=layers.all,
            environment={"STATE_MACHINE_ARN": state_machine.state_machine_arn},
            timeout=Duration.seconds(30),
            memory_size=FUNCTION_MEMORY_MB["trigger"],
        )
        self.trigger.function.configure_async_invoke(
            retry_attempts=2, on_failure=destinations.SqsDestination(self.failed_events)
        )
        state_machine.grant_start_execution(self.trigger.function)
        # It records an object under raw/ that is not an upload it can start (an .xlsx, an empty file), and
        # may write nothing else.
        storage.grant_prefix(self.trigger.function, SKIPPED_PREFIX, "write")

        # Every object under raw/, whatever its name (.csv, .csv.gz, .zip start executions; anything else is
        # recorded as skipped, never silently ignored). The pipeline writes nothing under raw/, so its own
        # output can never re-trigger it.
        storage.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.LambdaDestination(self.trigger.function),
            s3.NotificationKeyFilter(prefix=RAW_PREFIX),
        )
        # A deletion under raw/ (a delete marker, or a version deleted for good) retracts what was derived from
        # the upload. Lifecycle expirations send other events (LifecycleExpiration:*): never an erasure.
        storage.bucket.add_event_notification(
            s3.EventType.OBJECT_REMOVED,
            s3n.LambdaDestination(self.trigger.function),
            s3.NotificationKeyFilter(prefix=RAW_PREFIX),
        )
