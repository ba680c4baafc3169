"""Deployment settings: read once from the CDK context, typed and checked.

The defaults live in cdk.json ("context"); override one with `cdk deploy -c glue_workers=4`. Values given
with `-c` arrive as strings, so every reader below converts and validates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from constructs import Node

from ticketcore.sizing import EXECUTION_CLASSES, FLEX_WORKER_TYPES, GLUE_DPU_PER_WORKER

# Glue 5.0 Spark worker types (G.025X is for streaming jobs only): the ones the cost model has DPUs for.
GLUE_WORKER_TYPES = tuple(GLUE_DPU_PER_WORKER)
# The values CloudWatch Logs accepts for a retention period, in days.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DIGEST_PINNED = re.compile(r"[a-z0-9.\-]+(?:/[a-z0-9._\-]+)+(?::[\w.\-]+)?@sha256:[0-9a-f]{64}")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class SettingsError(ValueError):
    """A context value is missing or out of range."""


@dataclass(frozen=True)
class Settings:
    bucket_name: str | None  # None: CloudFormation generates a unique name
    alert_email: str | None  # None: no e-mail subscription on the alert topic
    database_name: str
    glue_worker_type: str
    glue_workers: int
    glue_timeout_minutes: int
    glue_max_concurrent_runs: int
    log_retention_days: int
    staging_expiry_days: int
    quarantine_expiry_days: int  # quarantined rows (customer data) and the run's reports
    raw_version_expiry_days: int  # replaced or deleted upload versions (noncurrent versions)
    create_athena: bool
    validate_memory_mb: int
    validate_timeout_seconds: int
    # The validate image's base, pinned by digest (`<repository>@sha256:<64 hex>`); None: the Dockerfile's tag.
    validate_base_image: str | None = None
    # A write-once (S3 Object Lock) archive of every upload, kept this many days; 0: no archive.
    raw_archive_retention_days: int = 0
    raw_archive_mode: str = "governance"  # or "compliance": no one, root included, can shorten it
    # Glue's execution class: STANDARD, or FLEX (spare capacity: cheaper per DPU-hour, may start late).
    glue_execution_class: str = "STANDARD"
    # Glue auto scaling (--enable-auto-scaling): glue_workers becomes the maximum; Glue reports DPUSeconds.
    glue_auto_scaling: bool = False

    @classmethod
    def from_node(cls, node: Node) -> Settings:
        ctx = _Context(node)
        settings = cls(
            bucket_name=ctx.optional_text("bucket_name"),
            alert_email=ctx.optional_text("alert_email"),
            database_name=ctx.text("database_name"),
            glue_worker_type=ctx.text("glue_worker_type"),
            glue_workers=ctx.integer("glue_workers"),
            glue_timeout_minutes=ctx.integer("glue_timeout_minutes"),
            glue_max_concurrent_runs=ctx.integer("glue_max_concurrent_runs"),
            log_retention_days=ctx.integer("log_retention_days"),
            staging_expiry_days=ctx.integer("staging_expiry_days"),
            quarantine_expiry_days=ctx.integer("quarantine_expiry_days"),
            raw_version_expiry_days=ctx.integer("raw_version_expiry_days"),
            create_athena=ctx.flag("create_athena"),
            validate_memory_mb=ctx.integer("validate_memory_mb"),
            validate_timeout_seconds=ctx.integer("validate_timeout_seconds"),
            validate_base_image=ctx.optional_text("validate_base_image"),
            raw_archive_retention_days=ctx.integer("raw_archive_retention_days"),
            raw_archive_mode=ctx.text("raw_archive_mode"),
            glue_execution_class=ctx.text("glue_execution_class").upper(),
            glue_auto_scaling=ctx.flag("glue_auto_scaling"),
        )
        settings.check()
        return settings

    def check(self) -> None:
        problems = []
        if self.bucket_name is not None and not _BUCKET.match(self.bucket_name):
            problems.append(f"bucket_name {self.bucket_name!r} is not a valid S3 bucket name")
        if self.alert_email is not None and not _EMAIL.match(self.alert_email):
            problems.append(f"alert_email {self.alert_email!r} is not an e-mail address")
        if not re.fullmatch(r"[a-z0-9_]{1,255}", self.database_name):
            problems.append("database_name must be lower-case letters, digits and underscores (Athena)")
        if self.glue_worker_type not in GLUE_WORKER_TYPES:
            problems.append(f"glue_worker_type must be one of {GLUE_WORKER_TYPES}")
        if self.glue_execution_class not in EXECUTION_CLASSES:
            problems.append(f"glue_execution_class must be one of {EXECUTION_CLASSES}, got "
                            f"{self.glue_execution_class!r}")
        elif self.glue_execution_class == "FLEX" and self.glue_worker_type not in FLEX_WORKER_TYPES:
            # AWS Glue developer guide, "Flex execution": G.1X and G.2X workers only.
            problems.append(f"glue_execution_class FLEX runs on {' or '.join(FLEX_WORKER_TYPES)} workers only, "
                            f"got glue_worker_type {self.glue_worker_type!r}")
        if self.glue_workers < 2:
            problems.append("glue_workers must be at least 2 (one driver, one executor)")
        if not 1 <= self.glue_timeout_minutes <= 2880:
            problems.append("glue_timeout_minutes must be between 1 and 2880")
        if self.glue_max_concurrent_runs < 1:
            problems.append("glue_max_concurrent_runs must be at least 1")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            problems.append(f"log_retention_days must be one of {LOG_RETENTION_DAYS}")
        if self.staging_expiry_days < 1:
            problems.append("staging_expiry_days must be at least 1")
        if self.quarantine_expiry_days < self.staging_expiry_days:
            problems.append("quarantine_expiry_days must be at least staging_expiry_days (a redrive needs both)")
        if self.raw_version_expiry_days < 1:
            problems.append("raw_version_expiry_days must be at least 1")
        if not 128 <= self.validate_memory_mb <= 10240:
            problems.append("validate_memory_mb must be between 128 and 10240")
        if not 1 <= self.validate_timeout_seconds <= 900:
            problems.append("validate_timeout_seconds must be between 1 and 900")
        if not 0 <= self.raw_archive_retention_days <= 36500:
            problems.append("raw_archive_retention_days must be between 0 (no archive) and 36500")
        if self.raw_archive_mode not in ("governance", "compliance"):
            problems.append("raw_archive_mode must be governance or compliance")
        if self.validate_base_image is not None and not _DIGEST_PINNED.fullmatch(self.validate_base_image):
            problems.append("validate_base_image must name the image by digest: <repository>@sha256:<64 hex digits>")
        if problems:
            raise SettingsError("invalid CDK context: " + "; ".join(problems))


class _Context:
    def __init__(self, node: Node) -> None:
        self._node = node

    def _get(self, key: str) -> Any:
        value = self._node.try_get_context(key)
        if value is None:
            raise SettingsError(f'CDK context {key!r} is missing: cdk.json\'s "context" holds its default')
        return value

    def optional_text(self, key: str) -> str | None:
        value = self._node.try_get_context(key)
        if value is None:
            return None
        return str(value).strip() or None

    def text(self, key: str) -> str:
        return str(self._get(key)).strip()

    def integer(self, key: str) -> int:
        value = self._get(key)
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"CDK context {key!r} must be an integer, got {value!r}") from exc

    def flag(self, key: str) -> bool:
        value = self._get(key)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise SettingsError(f"CDK context {key!r} must be true or false, got {value!r}")
