"""PipelineStack: composes the constructs of infra/constructs/ and publishes the outputs an operator needs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra import nag_suppressions
from infra.constructs.alerts import Alerts
from infra.constructs.catalog import Catalog
from infra.constructs.etl_job import EtlJob
from infra.constructs.functions import PipelineFunction, SharedLayers
from infra.constructs.ingestion import Ingestion
from infra.constructs.logs import EncryptedLogs
from infra.constructs.monitoring import Monitoring
from infra.constructs.state_machine import Pipeline
from infra.constructs.steps import PipelineSteps
from infra.constructs.storage import RAW_PREFIX, Storage
from infra.constructs.validation import Validation
from infra.settings import Settings


class PipelineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings

        self.logs = EncryptedLogs(self, "Logs", retention_days=settings.log_retention_days)
        self.storage = Storage(
            self,
            "Storage",
            bucket_name=settings.bucket_name,
            staging_expiry_days=settings.staging_expiry_days,
            quarantine_expiry_days=settings.quarantine_expiry_days,
            noncurrent_expiry_days=settings.raw_version_expiry_days,
            raw_archive_retention_days=settings.raw_archive_retention_days,
            raw_archive_mode=settings.raw_archive_mode,
        )
        self.layers = SharedLayers(self, "Layers")
        self.etl = EtlJob(
            self,
            "Etl",
            storage=self.storage,
            logs=self.logs,
            worker_type=settings.glue_worker_type,
            workers=settings.glue_workers,
            execution_class=settings.glue_execution_class,
            auto_scaling=settings.glue_auto_scaling,
            timeout_minutes=settings.glue_timeout_minutes,
            max_concurrent_runs=settings.glue_max_concurrent_runs,
        )
        self.steps = PipelineSteps(self, "Steps", storage=self.storage, layers=self.layers, logs=self.logs)
        self.validation = Validation(
            self,
            "Validation",
            storage=self.storage,
            logs=self.logs,
            memory_mb=settings.validate_memory_mb,
            timeout_seconds=settings.validate_timeout_seconds,
            base_image=settings.validate_base_image,
        )
        self.pipeline = Pipeline(
            self,
            "Pipeline",
            logs=self.logs,
            job_name=self.etl.job_name,
            job_arn=self.etl.job_arn,
            inspect=self.steps.inspect.function,
            validate=self.validation.validate.function,
            publish=self.steps.publish.function,
            retract=self.steps.retract.function,
        )
        state_machine = self.pipeline.state_machine
        self.ingestion = Ingestion(
            self,
            "Ingestion",
            storage=self.storage,
            state_machine=state_machine,
            layers=self.layers,
            logs=self.logs,
        )
        self.alerts = Alerts(
            self,
            "Alerts",
            state_machine=state_machine,
            layers=self.layers,
            logs=self.logs,
            alert_email=settings.alert_email,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            topic=self.alerts.topic,
            state_machine=state_machine,
            trigger=self.ingestion.trigger.function,
            notify=self.alerts.notify.function,
            failed_events=self.ingestion.failed_events,
            undelivered_alerts=self.alerts.undelivered,
            job_name=self.etl.job_name,
        )
        self.catalog = Catalog(
            self,
            "Catalog",
            storage=self.storage,
            database_name=settings.database_name,
            create_athena=settings.create_athena,
        )

        self._outputs()
        nag_suppressions.apply(self)

    @property
    def functions(self) -> list[PipelineFunction]:
        """Every PipelineFunction of the stack."""
        return [
            self.ingestion.trigger,
            self.steps.inspect,
            self.validation.validate,
            self.steps.publish,
            self.steps.retract,
            self.alerts.notify,
        ]

    def _outputs(self) -> None:
        bucket = self.storage.bucket.bucket_name
        upload_uri = f"s3://{bucket}/{RAW_PREFIX}"
        state_machine_arn = self.pipeline.state_machine.state_machine_arn
        CfnOutput(self, "BucketName", value=bucket, description="The data bucket")
        CfnOutput(
            self, "UploadPrefix", value=upload_uri, description="Upload CSV files here to start the pipeline"
        )
        CfnOutput(
            self,
            "UploadExample",
            value=f"aws s3 cp tickets.csv {upload_uri}",
            description="Uploads one file: .csv, .csv.gz or a .zip of one CSV (other keys are recorded as skipped)",
        )
        CfnOutput(self, "StateMachineArn", value=state_machine_arn)
        CfnOutput(
            self,
            "StateMachineConsoleUrl",
            value=(
                f"https://{self.region}.console.aws.amazon.com/states/home?region={self.region}"
                f"#/statemachines/view/{state_machine_arn}"
            ),
            description="Executions, one per uploaded file",
        )
        CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn, description="Failure alerts")
        workgroup, view_query = self.catalog.workgroup, self.catalog.view_query
        if workgroup is not None and view_query is not None:
            CfnOutput(self, "AthenaWorkgroup", value=workgroup.ref)
            CfnOutput(
                self,
                "CreateViewCommand",
                description="Run once after the first deploy to create the tickets_latest view",
                value=(
                    f"aws athena start-query-execution --work-group {workgroup.ref} "
                    f"--query-execution-context Database={self.settings.database_name} "
                    '--query-string "$(aws athena get-named-query '
                    f"--named-query-id {view_query.attr_named_query_id} "
                    '--query NamedQuery.QueryString --output text)"'
                ),
            )
