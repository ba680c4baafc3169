"""The published tickets as an Athena table (columns from the contract), a workgroup and the
`tickets_latest` view."""

from __future__ import annotations

import re

from aws_cdk import Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from constructs import Construct

from infra.constructs.storage import ATHENA_RESULTS_PREFIX, TICKETS_PREFIX, Storage
from infra.paths import CONTRACT, TICKETS_LATEST_SQL
from ticketcore.contract import Contract, load_contract

TABLE_NAME = "tickets"
VIEW_NAME = "tickets_latest"
# Contract column type -> Glue/Athena type of the Parquet column the Glue job writes.
GLUE_TYPES = {
    "string": "string",
    "enum": "string",
    "timestamp": "timestamp",
    "integer": "int",
    "array": "array<string>",
}
# What the Glue job adds after the contract's columns (ticketcore.spark_transform.output_columns): the columns a
# file has beyond the contract, and the original text of values that failed typing, each one map, so the table's
# schema never changes file by file (Athena: `extra['product_line']`, `_unparsed['satisfaction_score']`).
DERIVED_COLUMNS = [
    ("extra", "map<string,string>"),
    ("_unparsed", "map<string,string>"),
    ("resolution_hours", "double"),
    ("_source_key", "string"),
    ("_source_line", "bigint"),
    ("_run_id", "string"),
    ("_ingested_at", "timestamp"),
]
PARTITION_KEYS = [("year", "string"), ("month", "string")]
# Athena stops (and bills no further) a query that would scan more than this.
BYTES_SCANNED_CUTOFF = 10 * 1024**3


def table_columns(contract: Contract) -> list[tuple[str, str]]:
    """(name, Glue type) of every published column, in the order the Glue job writes them."""
    return [(c.name, GLUE_TYPES[c.type]) for c in contract.columns.values()] + DERIVED_COLUMNS


def view_statement() -> str:
    """The Athena DDL of the view, around the SQL that `ticketflow query` also uses (comments dropped)."""
    body = (
        "\n".join(
            line
            for line in TICKETS_LATEST_SQL.read_text(encoding="utf-8").splitlines()
            if not re.match(r"^\s*--", line)
        )
        .strip()
        .rstrip(";")
    )
    return f"CREATE OR REPLACE VIEW {VIEW_NAME} AS\n{body}"


class Catalog(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        database_name: str,
        create_athena: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        bucket_name = storage.bucket.bucket_name
        location = f"s3://{bucket_name}/{TICKETS_PREFIX}"

        # The Glue Data Catalog database Athena queries.
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name, description="ticketflow: published support tickets"
            ),
        )

        # The published Parquet files; partition projection finds year=/month= folders without crawlers.
        self.table = glue.CfnTable(
            self,
            "TicketsTable",
            catalog_id=account,
            database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE_NAME,
                description="Published support tickets (one row per ticket version per file)",
                table_type="EXTERNAL_TABLE",
                parameters={
                    "EXTERNAL": "TRUE",
                    "classification": "parquet",
                    "projection.enabled": "true",
                    "projection.year.type": "integer",
                    "projection.year.range": "2000,2100",
                    "projection.month.type": "integer",
                    "projection.month.range": "1,12",
                    "projection.month.digits": "2",
                    "storage.location.template": f"{location}year=${{year}}/month=${{month}}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=n, type=t) for n, t in PARTITION_KEYS],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[
                        glue.CfnTable.ColumnProperty(name=n, type=t)
                        for n, t in table_columns(load_contract(CONTRACT))
                    ],
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                        parameters={"serialization.format": "1"},
                    ),
                ),
            ),
        )
        self.table.node.add_dependency(self.database)

        self.workgroup: athena.CfnWorkGroup | None = None
        self.view_query: athena.CfnNamedQuery | None = None
        if not create_athena:
            return

        # Queries run here: results encrypted under athena-results/, settings enforced, scans capped.
        self.workgroup = athena.CfnWorkGroup(
            self,
            "Workgroup",
            name=database_name,
            description="ticketflow: query the published tickets",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=BYTES_SCANNED_CUTOFF,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{bucket_name}/{ATHENA_RESULTS_PREFIX}",
                    expected_bucket_owner=account,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=storage.key.key_arn
                    ),
                ),
            ),
        )

        # CloudFormation cannot create an Athena view: this saved query creates it once (see the outputs).
        self.view_query = athena.CfnNamedQuery(
            self,
            "TicketsLatestView",
            name=VIEW_NAME,
            description="Run once after the first deploy: creates the latest-version-per-ticket view",
            database=database_name,
            work_group=self.workgroup.ref,
            query_string=view_statement(),
        )
        self.view_query.node.add_dependency(self.database)
