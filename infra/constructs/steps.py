"""The zip Lambda steps of the state machine around the Glue job: inspect before it, publish after it, and
retract, which runs instead of them when an upload is deleted."""

from __future__ import annotations

from aws_cdk import Duration
from constructs import Construct

from infra.constructs.functions import PipelineFunction, SharedLayers
from infra.constructs.logs import EncryptedLogs
from infra.constructs.storage import (
    LANDING_PREFIX,
    LOCKS_PREFIX,
    MANIFESTS_PREFIX,
    PROCESSED_PREFIX,
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    REPORTS_PREFIX,
    STAGING_PREFIX,
    VALIDATION_PREFIX,
    Storage,
)
from ticketcore.sizing import FUNCTION_MEMORY_MB


class PipelineSteps(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        layers: SharedLayers,
        logs: EncryptedLogs,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = {"DATA_BUCKET": storage.bucket.bucket_name}

        # Reads only the head of the upload and fails with SchemaError before any Glue cost.
        self.inspect = PipelineFunction(
            self,
            "Inspect",
            name="inspect",
            description="ticketflow: check the upload's head against the contract, copy that version to landing/",
            logs=logs,
            layers=layers.all,
            environment=environment,
            # Below the state's TimeoutSeconds (330); the server-side copy of a multi-GB upload takes a while.
            timeout=Duration.seconds(300),
            memory_size=FUNCTION_MEMORY_MB["inspect"],
        )
        # Reads exactly the upload version an event names and copies it to landing/<execution>/.
        storage.grant_prefix(self.inspect.function, RAW_PREFIX, "read_versions")
        storage.grant_prefix(self.inspect.function, LANDING_PREFIX, "write")
        # The key's manifest: an erasure's tombstone newer than the event refuses the upload (SourceErased).
        storage.grant_prefix(self.inspect.function, MANIFESTS_PREFIX, "read")

        # Moves the validated staged files under processed/ and rewrites the source key's manifest
        # (processed/_manifests/), then writes its report beside the run's other reports.
        self.publish = PipelineFunction(
            self,
            "Publish",
            name="publish",
            description="ticketflow: publish validated staged output under processed/",
            logs=logs,
            layers=layers.all,
            environment=environment,
            timeout=Duration.seconds(240),  # below the state's TimeoutSeconds (300)
            memory_size=FUNCTION_MEMORY_MB["publish"],
        )
        storage.grant_prefix(self.publish.function, VALIDATION_PREFIX, "read")  # the gate
        storage.grant_prefix(self.publish.function, STAGING_PREFIX, "read", "list", "delete")
        storage.grant_prefix(self.publish.function, REPORTS_PREFIX, "read", "write")  # its publish report
        storage.grant_prefix(self.publish.function, PROCESSED_PREFIX, "read", "list", "write", "delete")
        # The per-key publish lock (ticketcore.publish.publish_lock): created, read, taken over, deleted.
        storage.grant_prefix(self.publish.function, LOCKS_PREFIX, "read", "write", "delete")

        # Erasure (ticketcore.erasure): deletes what was derived from a deleted upload, under the same lock.
        self.retract = PipelineFunction(
            self,
            "Retract",
            name="retract",
            description="ticketflow: retract a deleted upload's published rows, quarantined rows and run copies",
            logs=logs,
            layers=layers.all,
            environment=environment,
            timeout=Duration.seconds(240),  # below the state's TimeoutSeconds (300)
            memory_size=FUNCTION_MEMORY_MB["retract"],
        )
        storage.grant_prefix(self.retract.function, PROCESSED_PREFIX, "read", "list", "write", "delete")
        storage.grant_prefix(self.retract.function, LOCKS_PREFIX, "read", "write", "delete")
        # A run's records (inspection, run, publish and validation reports) say which key it read; then each
        # run's copies and reports go.
        for prefix in (REPORTS_PREFIX, LANDING_PREFIX, VALIDATION_PREFIX):
            storage.grant_prefix(self.retract.function, prefix, "read", "list", "delete")
        for prefix in (QUARANTINE_PREFIX, STAGING_PREFIX):
            storage.grant_prefix(self.retract.function, prefix, "list", "delete")
