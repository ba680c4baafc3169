"""Python Lambda functions of the pipeline: runtime, layers, role, log group and tracing in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Annotations, BundlingOptions, Duration, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.constructs.logs import EncryptedLogs
from infra.paths import DEPENDENCIES_LAYER, REPO_ROOT, glob_only

# The runtime of every zip function, the Powertools layer and the dependency layer's build image.
# lambdas/validate/Dockerfile's base image (public.ecr.aws/lambda/python:3.12) must follow it.
PYTHON_RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
# The Powertools release the functions run, the same one pyproject.toml and the validate image pin.
POWERTOOLS_VERSION = "3.37.0"
# Powertools publishes the layer ARN of each release as a public SSM parameter; resolving it at deploy
# time pins the semantic version instead of a per-region layer number.
POWERTOOLS_LAYER_PARAMETER = (
    f"/aws/service/powertools/python/{ARCHITECTURE.name}/{PYTHON_RUNTIME.name}/{POWERTOOLS_VERSION}"
)

POWERTOOLS_ENVIRONMENT = {
    "POWERTOOLS_SERVICE_NAME": "ticketflow",
    "POWERTOOLS_METRICS_NAMESPACE": "Ticketflow",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def zip_code(name: str) -> lambda_.Code:
    """The repository root, trimmed to what `lambdas.<name>.handler` imports: no Docker needed."""
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        exclude=glob_only("lambdas/__init__.py", f"lambdas/{name}/", "ticketcore/", "contracts/"),
    )


class SharedLayers(Construct):
    """Third-party code of the zip functions, outside their own assets."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)

        # Powertools (with pydantic and the X-Ray SDK) as AWS publishes it, so the assets stay small.
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            ssm.StringParameter.value_for_string_parameter(self, POWERTOOLS_LAYER_PARAMETER),
        )

        # What the Powertools layer and the runtime lack (PyYAML, charset-normalizer), built by pip in
        # the Lambda build image at deploy time.
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            description="ticketflow: PyYAML and charset-normalizer for the zip functions",
            compatible_runtimes=[PYTHON_RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            code=lambda_.Code.from_asset(
                str(DEPENDENCIES_LAYER),
                bundling=BundlingOptions(
                    image=PYTHON_RUNTIME.bundling_image,
                    command=[
                        "bash",
                        "-c",
                        # Hash-locked (`make lock`): pip refuses a package or file the lock does not name.
                        "pip install --no-cache-dir --require-hashes --only-binary=:all: --no-deps"
                        " -r requirements.lock -t /asset-output/python",
                    ],
                ),
            ),
        )
        if not Stack.of(self).bundling_required:
            Annotations.of(self.dependencies).add_warning_v2(
                "ticketflow:DependenciesNotBundled",
                "Bundling skipped (aws:cdk:bundling-stacks excludes this stack): the dependency layer holds "
                "only its requirement files. Fine for offline synthesis and tests; deploy with the CDK CLI.",
            )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.powertools, self.dependencies]


class PipelineFunction(Construct):
    """A traced function with its own role and encrypted log group; `image` makes it a container image."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        description: str,
        logs: EncryptedLogs,
        timeout: Duration,
        memory_size: int,
        environment: Mapping[str, str],
        layers: Sequence[lambda_.ILayerVersion] = (),
        image: lambda_.DockerImageCode | None = None,
        ephemeral_storage_mb: int = 512,
    ) -> None:
        super().__init__(scope, construct_id)

        # Its own log group: encrypted, with the pipeline's retention, created before the first invoke.
        self.log_group = logs.log_group(self, "Logs")

        # Its own role, so each function gets exactly its grants and no managed policy.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"ticketflow {name} function",
        )
        self.log_group.grant_write(self.role)

        common: dict[str, Any] = {
            "description": description,
            "role": self.role,
            "architecture": ARCHITECTURE,
            "timeout": timeout,
            "memory_size": memory_size,
            "ephemeral_storage_size": Size.mebibytes(ephemeral_storage_mb),
            "environment": {**POWERTOOLS_ENVIRONMENT, **environment},
            "tracing": lambda_.Tracing.ACTIVE,
            "log_group": self.log_group,
        }
        self.function: lambda_.Function
        if image is None:
            # Zip function running lambdas/<name>/handler.py:handler.
            self.function = lambda_.Function(
                self,
                "Function",
                runtime=PYTHON_RUNTIME,
                handler=f"lambdas.{name}.handler.handler",
                code=zip_code(name),
                layers=list(layers),
                **common,
            )
        else:
            # Container image function (its dependencies exceed the 250 MB zip limit).
            self.function = lambda_.DockerImageFunction(self, "Function", code=image, **common)
