"""The great-expectations validation step: a container image, since GX with pandas exceeds the zip limit."""

from __future__ import annotations

from aws_cdk import Annotations, Duration, IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.functions import PipelineFunction
from infra.constructs.logs import EncryptedLogs
from infra.constructs.storage import REPORTS_PREFIX, STAGING_PREFIX, VALIDATION_PREFIX, Storage
from infra.paths import REPO_ROOT, VALIDATE_DOCKERFILE, docker_only


class Validation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        logs: EncryptedLogs,
        memory_mb: int,
        timeout_seconds: int,
        base_image: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)

        # Built by the CDK CLI at deploy time (Docker needed then, not at synthesis) from the repository
        # root, trimmed to what the Dockerfile copies.
        image = lambda_.DockerImageCode.from_image_asset(
            str(REPO_ROOT),
            file=VALIDATE_DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_AMD64,
            ignore_mode=IgnoreMode.DOCKER,
            exclude=docker_only("lambdas/__init__.py", "lambdas/validate/", "ticketcore/", "contracts/"),
            # The base image by digest (Settings.validate_base_image); a tag can be moved to other content.
            build_args={"BASE_IMAGE": base_image} if base_image else None,
        )
        if base_image is None:
            Annotations.of(self).add_warning_v2(
                "ticketflow:BaseImageNotPinned",
                "The validate image builds FROM a tag (public.ecr.aws/lambda/python:3.12); pin it by digest with "
                "-c validate_base_image=public.ecr.aws/lambda/python:3.12@sha256:<digest>.",
            )

        # Runs the contract's expectation suite on the staged output; error-severity failures stop the run.
        self.validate = PipelineFunction(
            self,
            "Validate",
            name="validate",
            description="ticketflow: great-expectations suite from the contract on the staged output",
            logs=logs,
            image=image,
            environment={"DATA_BUCKET": storage.bucket.bucket_name},
            timeout=Duration.seconds(timeout_seconds),
            memory_size=memory_mb,
            # Staged Parquet is downloaded to /tmp: about 180 MB per million rows.
            ephemeral_storage_mb=2048,
        )
        storage.grant_prefix(self.validate.function, STAGING_PREFIX, "read", "list")
        storage.grant_prefix(self.validate.function, REPORTS_PREFIX, "read")  # the run report
        # The only writer of the report that gates publish.
        storage.grant_prefix(self.validate.function, VALIDATION_PREFIX, "write")
