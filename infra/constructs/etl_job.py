"""The Glue 5.0 Spark job that types the upload into staging, quarantine and reports."""

from __future__ import annotations

from pathlib import PurePosixPath

from aws_cdk import ArnFormat, Stack, Token
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.constructs.logs import EncryptedLogs
from infra.constructs.storage import (
    LANDING_PREFIX,
    QUARANTINE_PREFIX,
    REPORTS_PREFIX,
    STAGING_PREFIX,
    Storage,
)
from infra.paths import CONTRACT, GLUE_SCRIPT, REPO_ROOT, glob_only

GLUE_VERSION = "5.0"  # Spark 3.5, Python 3.11


class EtlJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        logs: EncryptedLogs,
        worker_type: str,
        workers: int,
        timeout_minutes: int,
        max_concurrent_runs: int,
        execution_class: str = "STANDARD",
        auto_scaling: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        # The job script, uploaded as-is to the CDK asset bucket.
        script = s3_assets.Asset(self, "Script", path=str(GLUE_SCRIPT))
        # The `ticketcore` package the script imports: a directory asset is a zip, which Glue puts on
        # sys.path through --extra-py-files (the zip holds ticketcore/ at its root).
        library = s3_assets.Asset(self, "Library", path=str(REPO_ROOT), exclude=glob_only("ticketcore/"))
        # The contract, which Glue copies into the job's working directory through --extra-files.
        contract = s3_assets.Asset(self, "Contract", path=str(CONTRACT))
        # Glue keeps the S3 object's file name, which for an asset is "<hash>.yaml", not the source name.
        contract_file = contract.s3_object_key
        if not Token.is_unresolved(contract_file):
            contract_file = PurePosixPath(contract_file).name

        # Least privilege instead of AWSGlueServiceRole: read the run's landing copy (never raw/: inspect copies
        # exactly the version the event names), write its three output prefixes.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="ticketflow Glue job: reads landing copies, writes staging, quarantine and reports",
        )
        storage.grant_prefix(self.role, LANDING_PREFIX, "read", "list")
        for prefix in (STAGING_PREFIX, QUARANTINE_PREFIX, REPORTS_PREFIX):
            # Read, list and delete too: Spark's committer lists, renames and overwrites its own output.
            storage.grant_prefix(self.role, prefix, "read", "list", "write", "delete")
        for asset in (script, library, contract):  # each exact asset object, read only
            self.role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"], resources=[asset.bucket.arn_for_objects(asset.s3_object_key)]
                )
            )
        # Glue creates and writes its own log groups under /aws-glue/ (names depend on the security
        # configuration), and associates them with the log key.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:AssociateKmsKey",
                ],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws-glue/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        logs.key.grant_encrypt_decrypt(self.role)
        # Job metrics and observability metrics; PutMetricData has no resource-level permissions.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )

        # Encrypts what the job writes: S3 output with the data key (readable through bucket grants),
        # its CloudWatch logs with the log key, job bookmarks client-side with the data key.
        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            name=f"{stack.stack_name}-etl",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=storage.key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=logs.key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=storage.key.key_arn
                ),
            ),
        )

        # Cost settings (README "Settings for cost"): FLEX runs on spare capacity at a lower price per DPU-hour
        # but may start late; auto scaling makes `workers` the maximum and bills only the workers used.
        scaling = {"--enable-auto-scaling": "true"} if auto_scaling else {}
        # The job Step Functions runs with .sync; it never retries itself (the state machine does).
        self.job = glue.CfnJob(
            self,
            "Job",
            description="ticketflow: map, type and quarantine one uploaded CSV into staging",
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=script.s3_object_url
            ),
            worker_type=worker_type,
            number_of_workers=workers,
            execution_class=execution_class,
            timeout=timeout_minutes,
            max_retries=0,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=max_concurrent_runs),
            security_configuration=self.security_configuration.ref,
            default_arguments={
                "--job-language": "python",
                "--extra-py-files": library.s3_object_url,
                "--extra-files": contract.s3_object_url,
                "--contract": contract_file,
                "--job-bookmark-option": "job-bookmark-disable",
                "--enable-continuous-cloudwatch-log": "true",
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                **scaling,
            },
        )

    @property
    def job_name(self) -> str:
        return self.job.ref

    @property
    def job_arn(self) -> str:
        return Stack.of(self).format_arn(service="glue", resource="job", resource_name=self.job_name)
