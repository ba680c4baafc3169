"""The data bucket: uploads, Glue's staging/quarantine/report output, the published tables, Athena results."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

# The bucket layout every component agrees on (the trigger, the Glue job, the Lambdas, the catalog) is
# ticketcore.layout's; re-exported here for the constructs.
from ticketcore.layout import (
    LANDING_PREFIX,
    LOCKS_PREFIX,
    MANIFESTS_PREFIX,
    PROCESSED_PREFIX,
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    REPORTS_PREFIX,
    SKIPPED_PREFIX,
    STAGING_PREFIX,
    TICKETS_PREFIX,
    VALIDATION_PREFIX,
)

__all__ = [
    "ATHENA_RESULTS_PREFIX",
    "LANDING_PREFIX",
    "LOCKS_PREFIX",
    "MANIFESTS_PREFIX",
    "PROCESSED_PREFIX",
    "QUARANTINE_PREFIX",
    "RAW_PREFIX",
    "REPORTS_PREFIX",
    "SKIPPED_PREFIX",
    "STAGING_PREFIX",
    "TICKETS_PREFIX",
    "VALIDATION_PREFIX",
    "Storage",
    "objects",
]

# Athena query results: outside support_ticket/, so never mistaken for pipeline data.
ATHENA_RESULTS_PREFIX = "athena-results/"


# What each kind of access to a prefix allows, action by action (CDK's bucket.grant_* use wildcards:
# s3:DeleteObject* includes s3:DeleteObjectVersion, a purge that no role here may do, and s3:List* is bucket-wide).
OBJECT_ACTIONS = {
    "read": ("s3:GetObject",),
    "read_versions": ("s3:GetObject", "s3:GetObjectVersion"),  # the exact upload version an event names
    "write": ("s3:PutObject", "s3:AbortMultipartUpload"),
    "delete": ("s3:DeleteObject",),  # in a versioned bucket: a delete marker, the versions stay
}
# The data key: reading SSE-KMS objects decrypts; writing generates a data key (and decrypts, for multipart).
KEY_ACTIONS = {
    "read": ("kms:Decrypt",),
    "read_versions": ("kms:Decrypt",),
    "write": ("kms:GenerateDataKey", "kms:Decrypt"),
    "delete": (),
}
ACCESS = (*OBJECT_ACTIONS, "list")


def objects(prefix: str) -> str:
    """The object-key pattern for a bucket grant: every key under `prefix`."""
    return f"{prefix}*"


class Storage(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket_name: str | None,
        staging_expiry_days: int,
        quarantine_expiry_days: int = 90,
        noncurrent_expiry_days: int = 30,
        athena_results_expiry_days: int = 30,
        access_log_expiry_days: int = 365,
        raw_archive_retention_days: int = 0,
        raw_archive_mode: str = "governance",
    ) -> None:
        super().__init__(scope, construct_id)

        # One key for the data at rest: the bucket's default, and what the Glue job writes with, so that
        # every bucket grant also covers decrypting what Glue produced.
        self.key = kms.Key(
            self,
            "DataKey",
            description="ticketflow: encrypts the data bucket and the Glue job's S3 output and bookmarks",
            enable_key_rotation=True,
        )

        # Server access logs of the data bucket: request metadata, SSE-S3 (log delivery needs no key grant).
        # Versioned, so a log cannot be overwritten unseen; old versions expire with the logs.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAccessLogs",
                    expiration=Duration.days(access_log_expiry_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

        # Optional write-once archive of every upload (raw_archive_retention_days > 0): S3 replicates each new
        # object under raw/ into a bucket with Object Lock, whose default retention no role can shorten
        # (compliance) or only with s3:BypassGovernanceRetention (governance). Deletions are not replicated,
        # so an erasure leaves the archived originals until their retention ends (README).
        self.archive: s3.Bucket | None = None
        replication: list[s3.ReplicationRule] = []
        if raw_archive_retention_days > 0:
            lock = (s3.ObjectLockRetention.compliance if raw_archive_mode == "compliance"
                    else s3.ObjectLockRetention.governance)
            self.archive = s3.Bucket(
                self,
                "RawArchiveBucket",
                **self._data_bucket_defaults("raw-archive/"),
                object_lock_enabled=True,
                object_lock_default_retention=lock(Duration.days(raw_archive_retention_days)),
                removal_policy=RemovalPolicy.RETAIN,
            )
            replication.append(s3.ReplicationRule(
                destination=self.archive,
                filter=s3.Filter(prefix=RAW_PREFIX),
                delete_marker_replication=False,
                sse_kms_encrypted_objects=True,
                kms_key=self.key,
                priority=0,
            ))

        # Uploads land under raw/ (which triggers the pipeline); everything derived lives beside it.
        self.bucket = s3.Bucket(
            self,
            "DataBucket",
            bucket_name=bucket_name,
            **self._data_bucket_defaults("data-bucket/"),
            replication_rules=replication or None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireStaging",
                    prefix=STAGING_PREFIX,
                    expiration=Duration.days(staging_expiry_days),
                ),
                # Inspect's copy of exactly the upload version a run reads: needed until the run ends or is redriven.
                s3.LifecycleRule(
                    id="ExpireLanding",
                    prefix=LANDING_PREFIX,
                    expiration=Duration.days(staging_expiry_days),
                ),
                # Quarantined rows hold customer data; reports hold examples of bad values: kept long enough
                # to fix and re-run a file, then gone.
                s3.LifecycleRule(
                    id="ExpireQuarantine",
                    prefix=QUARANTINE_PREFIX,
                    expiration=Duration.days(quarantine_expiry_days),
                ),
                s3.LifecycleRule(
                    id="ExpireReports",
                    prefix=REPORTS_PREFIX,
                    expiration=Duration.days(quarantine_expiry_days),
                ),
                s3.LifecycleRule(
                    id="ExpireValidationReports",
                    prefix=VALIDATION_PREFIX,
                    expiration=Duration.days(quarantine_expiry_days),
                ),
                s3.LifecycleRule(
                    id="ExpireAthenaResults",
                    prefix=ATHENA_RESULTS_PREFIX,
                    expiration=Duration.days(athena_results_expiry_days),
                ),
                s3.LifecycleRule(
                    id="ExpireNoncurrentVersions",
                    noncurrent_version_expiration=Duration.days(noncurrent_expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _data_bucket_defaults(self, access_log_prefix: str) -> dict[str, Any]:
        """What every bucket holding upload data shares: the data key (with an S3 bucket key), no public
        access, owner-enforced objects, TLS only, versioning, server access logs under `access_log_prefix`."""
        return {
            "encryption": s3.BucketEncryption.KMS,
            "encryption_key": self.key,
            "bucket_key_enabled": True,
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "object_ownership": s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            "enforce_ssl": True,
            "versioned": True,
            "server_access_logs_bucket": self.access_logs,
            "server_access_logs_prefix": access_log_prefix,
        }

    def grant_prefix(self, grantee: iam.IGrantable, prefix: str, *access: str) -> None:
        """Give `grantee` exactly `access` (keys of OBJECT_ACTIONS, and "list") to the objects under `prefix`:
        one statement of named S3 actions on `<bucket>/<prefix>*`, s3:ListBucket on the bucket only for
        requests whose s3:prefix lies under `prefix`, and the matching actions on the data key. Raises
        ValueError for an unknown kind of access."""
        unknown = sorted(set(access) - set(ACCESS))
        if unknown or not access:
            raise ValueError(f"unknown access {unknown} for {prefix}: use {', '.join(ACCESS)}")
        principal = grantee.grant_principal
        actions = sorted({a for kind in access if kind != "list" for a in OBJECT_ACTIONS[kind]})
        if actions:
            principal.add_to_principal_policy(
                iam.PolicyStatement(actions=actions, resources=[self.bucket.arn_for_objects(objects(prefix))])
            )
        if "list" in access:
            principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[self.bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [objects(prefix)]}},
                )
            )
        key_actions = sorted({a for kind in access if kind != "list" for a in KEY_ACTIONS[kind]})
        if key_actions:
            self.key.grant(grantee, *key_actions)
