"""The CDK app: synthesised once for the module, offline (no Docker, no AWS credentials).

Asserts the properties that matter (triggers, the definition, permissions, encryption, alerting, the
catalog), cdk-nag (AwsSolutions) and cfn-lint. No snapshots: asset hashes churn.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match, Template

from infra.app import BUNDLING_STACKS, cdk_json_context, create_app
from infra.constructs.functions import POWERTOOLS_LAYER_PARAMETER, POWERTOOLS_VERSION, PYTHON_RUNTIME
from infra.paths import REPO_ROOT
from infra.settings import Settings, SettingsError
from infra.stack import PipelineStack
from ticketcore.contract import load_contract

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
ASL_FILE = ROOT / "statemachine" / "pipeline.asl.json"
VIEW_SQL = ROOT / "ticketcore" / "sql" / "tickets_latest.sql"
ENV = cdk.Environment(account="123456789012", region="eu-west-1")
GLUE_SYNC = "arn:aws:states:::glue:startJobRun.sync"
# The Glue job reads only the landing copies inspect makes (never raw/) and writes only its three output prefixes.
GLUE_READ_PREFIXES = {"support_ticket/landing/"}  # never raw/: inspect lands the exact version
GLUE_WRITE_PREFIXES = {"support_ticket/staging/", "support_ticket/quarantine/", "support_ticket/reports/"}


@dataclass
class Synth:
    stack: PipelineStack
    template: Template
    annotations: Annotations
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.to_json()["Resources"]

    def logical_id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v.get("Properties", {}) for k, v in self.resources.items() if v["Type"] == type_}

    def only(self, type_: str) -> dict[str, Any]:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
        return next(iter(found.values()))


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("cdk.out")
    context = {
        BUNDLING_STACKS: [],  # no Docker: the dependency layer is not built
        # Report cdk-nag errors through Annotations (test_cdk_nag_...) instead of failing the synthesis.
        "@aws-cdk/core:failSynthOnValidationErrors": False,
    }
    _, stack = create_app(context=context, outdir=str(outdir), env=ENV)
    # Annotations.from_stack forces the one synthesis; Template.from_stack reuses that assembly.
    annotations = Annotations.from_stack(stack)
    return Synth(stack=stack, template=Template.from_stack(stack), annotations=annotations, outdir=outdir)


@pytest.fixture(scope="module")
def template(synth: Synth) -> Template:
    return synth.template


@pytest.fixture(scope="module")
def definition(synth: Synth) -> dict[str, Any]:
    return json.loads(synth.only("AWS::StepFunctions::StateMachine")["DefinitionString"])


def all_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, including those inside Parallel branches and Map iterators."""
    states: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        states[name] = state
        for branch in state.get("Branches", []):
            states.update(all_states(branch))
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                states.update(all_states(state[key]))
    return states


def statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    """(policy logical ID, statement) for every identity policy in the template."""
    found = []
    for logical_id, props in synth.of_type("AWS::IAM::Policy").items():
        found += [(logical_id, s) for s in props["PolicyDocument"]["Statement"]]
    for logical_id, props in synth.of_type("AWS::IAM::Role").items():
        for policy in props.get("Policies", []):
            found += [(logical_id, s) for s in policy["PolicyDocument"]["Statement"]]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resource_prefix(resource: Any) -> str | None:
    """`<bucket ARN>/prefix*` (an Fn::Join) -> `prefix`; None for anything else."""
    parts = resource["Fn::Join"][1] if isinstance(resource, dict) and "Fn::Join" in resource else [None]
    return parts[1].removeprefix("/").removesuffix("*") if len(parts) == 2 else None


def s3_url(value: Any) -> str:
    """An asset's s3:// URL: a plain string for a concrete environment, Fn::Sub for an agnostic one."""
    return value if isinstance(value, str) else value["Fn::Sub"]


def token_text(token: Any) -> str:
    """A CloudFormation reference as plain text, to compare definitions after substitution."""
    if isinstance(token, dict) and "Fn::GetAtt" in token:
        return "GetAtt:" + ".".join(token["Fn::GetAtt"])
    if isinstance(token, dict) and "Ref" in token:
        return "Ref:" + token["Ref"]
    return json.dumps(token, sort_keys=True)


# --------------------------------------------------------------------------------------------- ingestion
def test_upload_and_removal_notifications_for_every_object_under_raw(synth: Synth) -> None:
    notifications = synth.only("Custom::S3BucketNotifications")
    configs = notifications["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    # Uploads start the pipeline; removals (delete markers and deleted versions) start the erasure. No
    # LifecycleExpiration events: an expiry is not an erasure request.
    assert sorted(e for c in configs for e in c["Events"]) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    for config in configs:
        # No suffix: .csv, .csv.gz and .zip start executions, anything else is recorded as skipped by the trigger.
        rules = {r["Name"]: r["Value"] for r in config["Filter"]["Key"]["FilterRules"]}
        assert rules == {"prefix": "support_ticket/raw/"}
        assert config["LambdaFunctionArn"] == {
            "Fn::GetAtt": [synth.logical_id(synth.stack.ingestion.trigger.function), "Arn"]
        }
    assert notifications["BucketName"] == {"Ref": synth.logical_id(synth.stack.storage.bucket)}


def test_trigger_writes_only_skip_records(synth: Synth) -> None:
    role = {"Ref": synth.logical_id(synth.stack.ingestion.trigger.role)}
    s3_statements = [
        s
        for pid, s in statements(synth)
        if any(a.startswith("s3:") for a in as_list(s["Action"]))
        and role in synth.resources[pid]["Properties"].get("Roles", [])
    ]
    assert s3_statements, "the trigger records skipped uploads"
    for statement in s3_statements:
        assert all(a.startswith(("s3:PutObject", "s3:Abort")) for a in as_list(statement["Action"]))
        assert [resource_prefix(r) for r in as_list(statement["Resource"])] == ["support_ticket/reports/skipped/"]


def test_trigger_retries_twice_then_parks_the_event(synth: Synth, template: Template) -> None:
    trigger = synth.logical_id(synth.stack.ingestion.trigger.function)
    queue = synth.logical_id(synth.stack.ingestion.failed_events)
    template.has_resource_properties(
        "AWS::Lambda::EventInvokeConfig",
        {
            "FunctionName": {"Ref": trigger},
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}},
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "TracingConfig": {"Mode": "Active"},
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "STATE_MACHINE_ARN": {"Ref": synth.logical_id(synth.stack.pipeline.state_machine)},
                        "POWERTOOLS_SERVICE_NAME": "ticketflow",
                        "POWERTOOLS_METRICS_NAMESPACE": "Ticketflow",
                        "POWERTOOLS_LOG_LEVEL": "INFO",
                    }
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue", {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600}
    )


def test_trigger_may_only_start_executions_of_the_pipeline(synth: Synth) -> None:
    role = synth.logical_id(synth.stack.ingestion.trigger.role)
    states_statements = [
        s
        for pid, s in statements(synth)
        if any(a.startswith("states:") for a in as_list(s["Action"]))
        and {"Ref": role} in synth.resources[pid]["Properties"].get("Roles", [])
    ]
    assert [s["Action"] for s in states_statements] == ["states:StartExecution"]
    assert states_statements[0]["Resource"] == {"Ref": synth.logical_id(synth.stack.pipeline.state_machine)}


# ------------------------------------------------------------------------------------------ state machine
def test_definition_is_the_asl_file_with_its_placeholders_substituted(synth: Synth) -> None:
    machine = synth.only("AWS::StepFunctions::StateMachine")
    text = machine["DefinitionString"]
    assert isinstance(text, str), "the definition is the file's text, inlined without intrinsics"
    substitutions = machine["DefinitionSubstitutions"]
    asl_text = ASL_FILE.read_text(encoding="utf-8")
    placeholders = set(re.findall(r"\$\{(\w+)\}", asl_text))
    assert set(substitutions) == placeholders

    stack = synth.stack
    expected_tokens = {
        "InspectFunctionArn": {"Fn::GetAtt": [synth.logical_id(stack.steps.inspect.function), "Arn"]},
        "TransformJobName": {"Ref": stack.get_logical_id(stack.etl.job)},
        "ValidateFunctionArn": {"Fn::GetAtt": [synth.logical_id(stack.validation.validate.function), "Arn"]},
        "PublishFunctionArn": {"Fn::GetAtt": [synth.logical_id(stack.steps.publish.function), "Arn"]},
        "RetractFunctionArn": {"Fn::GetAtt": [synth.logical_id(stack.steps.retract.function), "Arn"]},
    }
    assert substitutions == expected_tokens

    def substitute(source: str, tokens: dict[str, Any]) -> Any:
        for name, token in tokens.items():
            source = source.replace("${" + name + "}", token_text(token))
        return json.loads(source)

    assert substitute(text, substitutions) == substitute(asl_text, expected_tokens)


def test_glue_step_waits_for_the_job_run(definition: dict[str, Any]) -> None:
    glue_states = [s for s in all_states(definition).values() if ":glue:" in s.get("Resource", "")]
    assert glue_states, "the definition runs the Glue job"
    for state in glue_states:
        assert state["Resource"] == GLUE_SYNC
        assert state["Parameters"]["JobName"] == "${TransformJobName}"


def test_no_catch_ends_in_a_fail_state(definition: dict[str, Any]) -> None:
    """A redriven Fail state fails again: errors must leave the execution FAILED at the failing task."""
    states = all_states(definition)
    for name, state in states.items():
        for catcher in state.get("Catch", []):
            assert states[catcher["Next"]]["Type"] != "Fail", (
                f"{name} catches into Fail state {catcher['Next']}"
            )


def test_state_machine_is_standard_logged_traced_and_bounded(
    synth: Synth, definition: dict[str, Any]
) -> None:
    machine = synth.only("AWS::StepFunctions::StateMachine")
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    logging = machine["LoggingConfiguration"]
    assert logging["Level"] == "ALL" and logging["IncludeExecutionData"] is False  # no file content in logs
    group = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert "KmsKeyId" in synth.resources[group]["Properties"]
    assert definition["TimeoutSeconds"] > 0


def test_state_machine_role_is_exactly_the_job_and_the_four_functions(synth: Synth) -> None:
    stack = synth.stack
    role = synth.logical_id(stack.pipeline.state_machine.role)
    mine = [
        s
        for pid, s in statements(synth)
        if {"Ref": role} in synth.resources[pid]["Properties"].get("Roles", [])
    ]

    glue = [s for s in mine if any(a.startswith("glue:") for a in as_list(s["Action"]))]
    assert len(glue) == 1
    assert sorted(as_list(glue[0]["Action"])) == [
        "glue:BatchStopJobRun",
        "glue:GetJobRun",
        "glue:GetJobRuns",
        "glue:StartJobRun",
    ]
    job_arn = json.dumps(glue[0]["Resource"])
    assert (
        ":job/" in job_arn
        and f'"Ref": "{stack.get_logical_id(stack.etl.job)}"' in job_arn
        and "*" not in job_arn
    )

    invoke = [s for s in mine if "lambda:InvokeFunction" in as_list(s["Action"])]
    functions = {
        synth.logical_id(f.function)
        for f in (stack.steps.inspect, stack.validation.validate, stack.steps.publish, stack.steps.retract)
    }
    allowed = [{"Fn::GetAtt": [f, "Arn"]} for f in functions]
    allowed += [{"Fn::Join": ["", [{"Fn::GetAtt": [f, "Arn"]}, ":$LATEST"]]} for f in functions]
    resources = [r for s in invoke for r in as_list(s["Resource"])]
    assert resources and all(r in allowed for r in resources), resources
    assert {json.dumps(r) for r in resources} >= {json.dumps(r) for r in allowed[: len(functions)]}


def test_lambda_timeouts_are_below_their_task_timeouts(synth: Synth, definition: dict[str, Any]) -> None:
    """A task timeout shorter than its function's leaves the function running after the step gave up."""
    states = all_states(definition)
    stack = synth.stack
    placeholders = {
        "${InspectFunctionArn}": stack.steps.inspect.function,
        "${ValidateFunctionArn}": stack.validation.validate.function,
        "${PublishFunctionArn}": stack.steps.publish.function,
    }
    for state in states.values():
        function = placeholders.get(state.get("Parameters", {}).get("FunctionName", ""))
        if function is not None:
            timeout = synth.resources[synth.logical_id(function)]["Properties"]["Timeout"]
            assert timeout < state["TimeoutSeconds"]
    glue_minutes = synth.only("AWS::Glue::Job")["Timeout"]
    [transform] = [s for s in states.values() if s.get("Resource") == GLUE_SYNC]
    assert glue_minutes * 60 < transform["TimeoutSeconds"]


# --------------------------------------------------------------------------------------------- Glue job
def test_glue_job(synth: Synth, template: Template) -> None:
    template.has_resource_properties(
        "AWS::Glue::Job",
        {
            "GlueVersion": "5.0",
            "MaxRetries": 0,
            "WorkerType": "G.1X",
            "NumberOfWorkers": 2,
            "Timeout": 60,
            "ExecutionProperty": {"MaxConcurrentRuns": 5},
            "Command": Match.object_like({"Name": "glueetl", "PythonVersion": "3"}),
            "SecurityConfiguration": {
                "Ref": synth.stack.get_logical_id(synth.stack.etl.security_configuration)
            },
            "DefaultArguments": Match.object_like(
                {
                    "--job-language": "python",
                    "--enable-continuous-cloudwatch-log": "true",
                    "--enable-metrics": "true",
                    "--enable-observability-metrics": "true",
                }
            ),
        },
    )
    arguments = synth.only("AWS::Glue::Job")["DefaultArguments"]
    assert s3_url(arguments["--extra-py-files"]).endswith(".zip")
    # Glue copies --extra-files into the working directory under the object's name: --contract names it.
    contract_object = s3_url(arguments["--extra-files"]).rsplit("/", 1)[1]
    assert contract_object.endswith(".yaml") and arguments["--contract"] == contract_object
    template.has_resource_properties(
        "AWS::Glue::SecurityConfiguration",
        {
            "EncryptionConfiguration": {
                "S3Encryptions": [Match.object_like({"S3EncryptionMode": "SSE-KMS"})],
                "CloudWatchEncryption": Match.object_like({"CloudWatchEncryptionMode": "SSE-KMS"}),
                "JobBookmarksEncryption": Match.object_like({"JobBookmarksEncryptionMode": "CSE-KMS"}),
            }
        },
    )


def test_glue_library_zip_holds_only_ticketcore(synth: Synth) -> None:
    key = s3_url(synth.only("AWS::Glue::Job")["DefaultArguments"]["--extra-py-files"]).rsplit("/", 1)[1]
    staged = synth.outdir / f"asset.{key.removesuffix('.zip')}"
    assert {p.name for p in staged.iterdir()} == {"ticketcore"}
    assert (staged / "ticketcore" / "__init__.py").is_file()


def test_glue_role_touches_only_its_prefixes_and_its_assets(synth: Synth) -> None:
    stack = synth.stack
    role = synth.logical_id(stack.etl.role)
    bucket_arn = {"Fn::GetAtt": [synth.logical_id(stack.storage.bucket), "Arn"]}
    assert not synth.resources[role]["Properties"].get("ManagedPolicyArns"), "no AWSGlueServiceRole"
    mine = [
        s
        for pid, s in statements(synth)
        if {"Ref": role} in synth.resources[pid]["Properties"].get("Roles", [])
    ]
    read, written = set(), set()
    for statement in mine:
        actions = as_list(statement["Action"])
        if not any(a.startswith("s3:") for a in actions):
            continue
        writes = any(a.startswith(("s3:Put", "s3:Delete", "s3:Abort")) for a in actions)
        for resource in as_list(statement["Resource"]):
            if resource == bucket_arn:  # bucket-level (ListBucket) on the data bucket
                continue
            parts = (
                resource["Fn::Join"][1] if isinstance(resource, dict) and "Fn::Join" in resource else [None]
            )
            if parts[0] == bucket_arn:
                prefix = parts[1].removeprefix("/").removesuffix("*")
                (written if writes else read).add(prefix)
                continue
            # Otherwise one CDK asset object (script, library, contract): exact key, read only.
            text = json.dumps(resource)
            assert "cdk-hnb659fds-assets" in text and "*" not in text and not writes, text
    assert written == GLUE_WRITE_PREFIXES
    assert read <= GLUE_READ_PREFIXES | GLUE_WRITE_PREFIXES and read >= GLUE_READ_PREFIXES


def test_no_statement_allows_every_action(synth: Synth) -> None:
    for policy, statement in statements(synth):
        for action in as_list(statement["Action"]):
            assert action != "*" and not re.fullmatch(r"[a-z0-9-]+:\*", action), f"{policy}: {action}"


def s3_statements(synth: Synth) -> list[tuple[str, dict[str, Any]]]:
    """(role logical ID, statement) for every statement that grants an action on the data bucket."""
    bucket = synth.logical_id(synth.stack.storage.bucket)
    found = []
    for pid, statement in statements(synth):
        if bucket not in json.dumps(statement["Resource"]):
            continue
        roles = synth.resources[pid]["Properties"].get("Roles", [{"Ref": pid}])
        found += [(r["Ref"], statement) for r in roles]
    return found


def test_data_bucket_grants_name_each_action_and_never_purge_versions(synth: Synth) -> None:
    grants = s3_statements(synth)
    assert len({role for role, _ in grants}) >= 5  # the Glue job, inspect, validate, publish, trigger
    bucket_arn = {"Fn::GetAtt": [synth.logical_id(synth.stack.storage.bucket), "Arn"]}
    for role, statement in grants:
        actions = as_list(statement["Action"])
        assert all("*" not in a for a in actions), f"{role}: {actions}"
        assert not {"s3:DeleteObjectVersion", "s3:PutBucketPolicy", "s3:PutLifecycleConfiguration"} & set(actions)
        if role.startswith("BucketNotificationsHandler"):  # CDK's own: sets the bucket's notifications
            assert actions == ["s3:PutBucketNotification"], f"{role}: {actions}"
            continue
        if statement["Resource"] == bucket_arn:  # bucket-level: only listing, only under one prefix
            assert actions == ["s3:ListBucket"], f"{role}: {actions}"
            (prefix,) = statement["Condition"]["StringLike"]["s3:prefix"]
            assert prefix.startswith("support_ticket/") and prefix.endswith("/*"), f"{role}: {prefix}"
        else:
            for resource in as_list(statement["Resource"]):
                if "cdk-hnb659fds-assets" in json.dumps(resource):  # the Glue job's script, library, contract
                    assert actions == ["s3:GetObject"] and "*" not in json.dumps(resource), f"{role}: {resource}"
                    continue
                assert (resource_prefix(resource) or "").startswith("support_ticket/"), f"{role}: {resource}"


def test_the_erasure_deletes_derived_data_and_never_touches_raw(synth: Synth) -> None:
    retract = synth.logical_id(synth.stack.steps.retract.role)
    granted: dict[str, set[str]] = {}
    for role, statement in s3_statements(synth):
        if role != retract:
            continue
        for resource in as_list(statement["Resource"]):
            prefix = resource_prefix(resource)
            if prefix is not None:
                granted.setdefault(prefix, set()).update(as_list(statement["Action"]))
    read, write, delete = "s3:GetObject", "s3:PutObject", "s3:DeleteObject"
    assert "support_ticket/raw/" not in granted  # the upload's versions are the lifecycle rule's to expire
    assert {p for p, actions in granted.items() if write in actions} == {
        "support_ticket/processed/", "support_ticket/locks/"}  # the tombstone manifest and the lock
    assert {p for p, actions in granted.items() if delete in actions} == {
        "support_ticket/processed/", "support_ticket/locks/", "support_ticket/reports/", "support_ticket/landing/",
        "support_ticket/validation/", "support_ticket/quarantine/", "support_ticket/staging/"}
    assert read not in granted["support_ticket/quarantine/"] | granted["support_ticket/staging/"]
    assert not any("s3:DeleteObjectVersion" in actions for actions in granted.values())


def test_only_validate_can_write_the_report_that_gates_publish(synth: Synth) -> None:
    stack = synth.stack
    validate = synth.logical_id(stack.validation.validate.role)
    writers, deleters, readers = set(), set(), set()
    for role, statement in s3_statements(synth):
        for resource in as_list(statement["Resource"]):
            if resource_prefix(resource) == "support_ticket/validation/":
                actions = set(as_list(statement["Action"]))
                if "s3:PutObject" in actions:
                    writers.add(role)
                if "s3:DeleteObject" in actions:
                    deleters.add(role)
                if "s3:GetObject" in actions:
                    readers.add(role)
    assert writers == {validate}
    # Publish reads the gate; the erasure reads whose run a report is of, then deletes it (deleting cannot
    # forge a passing report).
    retract = synth.logical_id(stack.steps.retract.role)
    assert readers == {synth.logical_id(stack.steps.publish.role), retract}
    assert deleters <= {validate, retract}
    glue = synth.logical_id(stack.etl.role)
    assert glue not in writers | readers


# Actions AWS allows on no narrower resource than `*` (no resource-level permissions), each suppressed in
# infra/nag_suppressions.py with its reason. Any other action on `*` is a finding of this test.
RESOURCE_STAR_ACTIONS = {
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    "cloudwatch:PutMetricData",
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
}


def actions_on_every_resource(template: dict[str, Any]) -> set[str]:
    """Every action some identity policy of `template` allows on Resource `*`."""
    found: set[str] = set()
    for resource in template["Resources"].values():
        docs = [resource["Properties"]["PolicyDocument"]] if resource["Type"] == "AWS::IAM::Policy" else []
        if resource["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        for doc in docs:
            for statement in doc["Statement"]:
                if "*" in as_list(statement["Resource"]):
                    found |= set(as_list(statement["Action"]))
    return found


def test_only_actions_without_resource_permissions_are_granted_on_every_resource(synth: Synth) -> None:
    found = actions_on_every_resource(synth.template.to_json())
    assert found and found <= RESOURCE_STAR_ACTIONS, sorted(found - RESOURCE_STAR_ACTIONS)


def test_a_new_wildcard_grant_fails_make_test(tmp_path: Path) -> None:
    # The suppressions name their exact findings (applies_to): a grant of `s3:*` added to any role is reported
    # by cdk-nag, not swallowed by a suppression on the role; a named action on `*` (whose `Resource::*`
    # finding an X-Ray suppression shares) is caught by the allowlist above.
    from aws_cdk import aws_iam as iam

    context = {BUNDLING_STACKS: [], "@aws-cdk/core:failSynthOnValidationErrors": False}
    _, stack = create_app(context=context, outdir=str(tmp_path), env=ENV)
    stack.etl.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    stack.steps.publish.role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:*"], resources=[stack.storage.bucket.arn_for_objects("*")])
    )
    stack.steps.inspect.role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])
    )
    annotations = Annotations.from_stack(stack)
    errors = annotations.find_error("*", Match.string_like_regexp("AwsSolutions-IAM5.*"))
    flagged = {(e.id.split("/")[2], re.search(r"\[(.*?)\]", str(e.entry.data)).group(1)) for e in errors}
    assert ("Etl", "Action::s3:*") in flagged and ("Steps", "Action::s3:*") in flagged, flagged
    assert any(f[0] == "Steps" and f[1].startswith("Resource::") and f[1].endswith("/*") for f in flagged), flagged
    extra = actions_on_every_resource(Template.from_stack(stack).to_json()) - RESOURCE_STAR_ACTIONS
    assert extra == {"s3:*", "s3:GetObject"}


# -------------------------------------------------------------------------------------------- encryption
def test_data_at_rest_is_encrypted(synth: Synth, template: Template) -> None:
    data_key = synth.logical_id(synth.stack.storage.key)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    Match.object_like(
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": {"Fn::GetAtt": [data_key, "Arn"]},
                            }
                        }
                    )
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": Match.object_like({"DestinationBucketName": Match.any_value()}),
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    for name, bucket in synth.of_type("AWS::S3::Bucket").items():
        assert "BucketEncryption" in bucket, name
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    groups = synth.of_type("AWS::Logs::LogGroup")
    assert len(groups) == 7  # six functions and the state machine
    for name, group in groups.items():
        assert "KmsKeyId" in group, f"log group {name} is not encrypted"
        assert group["RetentionInDays"] == 30
    for name, queue in synth.of_type("AWS::SQS::Queue").items():
        assert queue.get("SqsManagedSseEnabled") or queue.get("KmsMasterKeyId"), name
    for name, key in synth.of_type("AWS::KMS::Key").items():
        assert key["EnableKeyRotation"] is True, name


def test_data_bucket_lifecycle(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {"Prefix": "support_ticket/staging/", "ExpirationInDays": 7, "Status": "Enabled"}
                        ),
                        Match.object_like(  # inspect's landing copies live as long as staging
                            {"Prefix": "support_ticket/landing/", "ExpirationInDays": 7, "Status": "Enabled"}
                        ),
                        # Quarantined rows and reports (examples of bad values): 90 days by default.
                        Match.object_like(
                            {"Prefix": "support_ticket/quarantine/", "ExpirationInDays": 90, "Status": "Enabled"}
                        ),
                        Match.object_like(
                            {"Prefix": "support_ticket/reports/", "ExpirationInDays": 90, "Status": "Enabled"}
                        ),
                        Match.object_like({"NoncurrentVersionExpiration": {"NoncurrentDays": 30}}),
                    ]
                )
            }
        },
    )
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"})


# ---------------------------------------------------------------------------------------------- alerting
def test_failed_executions_reach_the_notify_function(synth: Synth, template: Template) -> None:
    state_machine = synth.logical_id(synth.stack.pipeline.state_machine)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {
                    "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                    "stateMachineArn": [{"Ref": state_machine}],
                },
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [synth.logical_id(synth.stack.alerts.notify.function), "Arn"]},
                        "DeadLetterConfig": {
                            "Arn": {"Fn::GetAtt": [synth.logical_id(synth.stack.alerts.undelivered), "Arn"]}
                        },
                    }
                )
            ],
        },
    )


def test_alarms_publish_to_the_alert_topic(synth: Synth) -> None:
    topic = {"Ref": synth.logical_id(synth.stack.alerts.topic)}
    alarms = synth.of_type("AWS::CloudWatch::Alarm").values()
    watched = {(a["Namespace"], a["MetricName"]) for a in alarms}
    assert watched == {
        ("AWS/States", "ExecutionsFailed"),
        ("AWS/States", "ExecutionsTimedOut"),
        ("AWS/Lambda", "Errors"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("Ticketflow", "ObjectsSkipped"),
    }
    [skipped] = [a for a in alarms if a["MetricName"] == "ObjectsSkipped"]
    assert skipped["Dimensions"] == [{"Name": "service", "Value": "ticketflow"}] and skipped["Statistic"] == "Sum"
    assert skipped["TreatMissingData"] == "notBreaching"
    for alarm in alarms:
        assert alarm["AlarmActions"] == [topic]
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_alerts_can_arrive_by_both_paths(synth: Synth, template: Template) -> None:
    stack = synth.stack
    topic = synth.logical_id(stack.alerts.topic)
    account, region = stack.account, stack.region
    this_account = {"StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:*"}}
    # The topic's policy (enforce_ssl makes one) allows this account's CloudWatch alarms to publish...
    template.has_resource_properties("AWS::SNS::TopicPolicy", {
        "Topics": [{"Ref": topic}],
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Sid": "CloudWatchAlarmsPublish", "Effect": "Allow", "Action": "sns:Publish",
            "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Condition": this_account,
        })])},
    })
    # ...and to use the topic's key, under the same conditions.
    key = synth.resources[synth.logical_id(stack.alerts.key)]["Properties"]["KeyPolicy"]["Statement"]
    [cloudwatch] = [s for s in key if s.get("Sid") == "CloudWatchAlarmsEncryptAlerts"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert cloudwatch["Condition"] == this_account
    # The notify function's failures land in the undelivered-alerts queue, which is alarmed, and so are its errors.
    queue = synth.logical_id(stack.alerts.undelivered)
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {
        "FunctionName": {"Ref": synth.logical_id(stack.alerts.notify.function)},
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}},
        "MaximumRetryAttempts": 2,
    })
    alarms = synth.of_type("AWS::CloudWatch::Alarm").values()
    notify_errors = [a for a in alarms if a["MetricName"] == "Errors"
                     and a["Dimensions"] == [{"Name": "FunctionName",
                                              "Value": {"Ref": synth.logical_id(stack.alerts.notify.function)}}]]
    assert len(notify_errors) == 1 and notify_errors[0]["AlarmActions"] == [{"Ref": topic}]


def test_dashboard_shows_glue_time_and_row_metrics(synth: Synth) -> None:
    body = json.dumps(synth.only("AWS::CloudWatch::Dashboard")["DashboardBody"])
    for needle in (
        "glue.driver.aggregate.elapsedTime",
        "JobRunId",
        "RowsPublished",
        "RowsQuarantined",
        "Ticketflow",
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionTime",
    ):
        assert needle in body, needle


# ------------------------------------------------------------------------------------------------ catalog
def test_tickets_table_follows_the_contract(synth: Synth) -> None:
    glue_type = {
        "string": "string",
        "enum": "string",
        "timestamp": "timestamp",
        "integer": "int",
        "array": "array<string>",
    }
    contract = load_contract(ROOT / "contracts" / "support_tickets.yaml")
    expected = [{"Name": c.name, "Type": glue_type[c.type]} for c in contract.columns.values()]
    expected += [
        # One map for the columns beyond the contract, one for the text of values that failed typing: the schema
        # is the same for every file (the Glue job writes them under these names: spark_transform.output_columns).
        {"Name": "extra", "Type": "map<string,string>"},
        {"Name": "_unparsed", "Type": "map<string,string>"},
        {"Name": "resolution_hours", "Type": "double"},
        {"Name": "_source_key", "Type": "string"},
        {"Name": "_source_line", "Type": "bigint"},
        {"Name": "_run_id", "Type": "string"},
        {"Name": "_ingested_at", "Type": "timestamp"},
    ]
    table = synth.only("AWS::Glue::Table")["TableInput"]
    assert table["Name"] == "tickets"
    assert table["StorageDescriptor"]["Columns"] == expected
    assert {"Name": "satisfaction_score", "Type": "int"} in expected and {
        "Name": "tags",
        "Type": "array<string>",
    } in expected
    assert table["PartitionKeys"] == [{"Name": "year", "Type": "string"}, {"Name": "month", "Type": "string"}]
    assert "ParquetHiveSerDe" in table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.year.range"] == "2000,2100"
    assert (parameters["projection.month.range"], parameters["projection.month.digits"]) == ("1,12", "2")
    template = json.dumps(parameters["storage.location.template"])
    assert "/support_ticket/processed/tickets/year=${year}/month=${month}/" in template


def test_athena_workgroup_and_view(synth: Synth, template: Template) -> None:
    template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "WorkGroupConfiguration": Match.object_like(
                {
                    "EnforceWorkGroupConfiguration": True,
                    "PublishCloudWatchMetricsEnabled": True,
                    "ResultConfiguration": Match.object_like(
                        {"EncryptionConfiguration": Match.object_like({"EncryptionOption": "SSE_KMS"})}
                    ),
                }
            )
        },
    )
    query = synth.only("AWS::Athena::NamedQuery")
    assert query["QueryString"].startswith("CREATE OR REPLACE VIEW tickets_latest AS\n")
    select = VIEW_SQL.read_text(encoding="utf-8").split("SELECT", 1)[1].strip()
    assert query["QueryString"].endswith(select)
    assert query["Database"] == "ticketflow"


# ---------------------------------------------------------------------------------------------- packaging
def test_zip_functions_carry_only_their_handler_ticketcore_and_the_contract(synth: Synth) -> None:
    stack = synth.stack
    for fn in (stack.ingestion.trigger, stack.steps.inspect, stack.steps.publish, stack.alerts.notify):
        props = synth.resources[synth.logical_id(fn.function)]["Properties"]
        name = props["Handler"].split(".")[1]
        assert props["Handler"] == f"lambdas.{name}.handler.handler"
        assert props["Runtime"] == PYTHON_RUNTIME.name
        staged = synth.outdir / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
        assert {p.name for p in staged.iterdir()} <= {"lambdas", "ticketcore", "contracts"}
        assert {p.name for p in (staged / "lambdas").iterdir()} <= {"__init__.py", name}
        assert not list(staged.rglob("__pycache__"))


def test_validate_is_an_image_with_the_configured_size(synth: Synth, template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"PackageType": "Image", "MemorySize": 3008, "Timeout": 300, "TracingConfig": {"Mode": "Active"}},
    )
    dockerfile = (ROOT / "lambdas" / "validate" / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG BASE_IMAGE=public\.ecr\.aws/lambda/python:(\d+\.\d+)$", dockerfile, re.M)
    assert base and f"python{base.group(1)}" == PYTHON_RUNTIME.name, "the image follows PYTHON_RUNTIME"
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.M)


def test_powertools_layer_pins_the_project_version(synth: Synth) -> None:
    parameters = synth.template.to_json()["Parameters"]
    assert POWERTOOLS_LAYER_PARAMETER in [p.get("Default") for p in parameters.values()]
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    image_pins = (ROOT / "lambdas" / "validate" / "requirements.txt").read_text(encoding="utf-8")
    assert any(p.startswith("aws-lambda-powertools") and p.endswith(f"=={POWERTOOLS_VERSION}") for p in pins)
    assert f"aws-lambda-powertools[parser,tracer]=={POWERTOOLS_VERSION}" in image_pins


def test_outputs(synth: Synth) -> None:
    outputs = synth.template.to_json()["Outputs"]
    assert {
        "BucketName",
        "UploadPrefix",
        "UploadExample",
        "StateMachineArn",
        "StateMachineConsoleUrl",
        "AlertTopicArn",
        "AthenaWorkgroup",
        "CreateViewCommand",
    } <= set(outputs)
    assert "aws s3 cp tickets.csv s3://" in json.dumps(outputs["UploadExample"])


def test_an_optional_write_once_archive_keeps_every_upload(synth: Synth, tmp_path: Path) -> None:
    # Off by default: no bucket with Object Lock, no replication.
    buckets = synth.of_type("AWS::S3::Bucket")
    assert not any(b.get("ObjectLockEnabled") or b.get("ReplicationConfiguration") for b in buckets.values())
    context = {BUNDLING_STACKS: [], "@aws-cdk/core:failSynthOnValidationErrors": False,
               "raw_archive_retention_days": 400, "raw_archive_mode": "compliance"}
    _, stack = create_app(context=context, outdir=str(tmp_path), env=ENV)
    annotations = Annotations.from_stack(stack)
    assert annotations.find_error("*", Match.string_like_regexp(NAG_RULE)) == []
    template = Template.from_stack(stack).to_json()
    archive_id = stack.get_logical_id(stack.storage.archive.node.default_child)
    archive = template["Resources"][archive_id]["Properties"]
    assert archive["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Days": 400, "Mode": "COMPLIANCE"}}}
    assert archive["VersioningConfiguration"] == {"Status": "Enabled"}
    key = stack.get_logical_id(stack.storage.key.node.default_child)
    [sse] = archive["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": [key, "Arn"]}
    data = template["Resources"][stack.get_logical_id(stack.storage.bucket.node.default_child)]["Properties"]
    [rule] = data["ReplicationConfiguration"]["Rules"]
    # Only uploads, and never their deletions: an erasure does not reach the write-once copy.
    assert rule["Filter"] == {"Prefix": "support_ticket/raw/"} and rule["Status"] == "Enabled"
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    assert rule["Destination"]["Bucket"] == {"Fn::GetAtt": [archive_id, "Arn"]}
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), "--format", "json", str(tmp_path / f"{stack.artifact_id}.template.json")],
                            capture_output=True, text=True, timeout=300)
    assert [f for f in json.loads(result.stdout or "[]") if f["Level"] == "Error"] == []


# ------------------------------------------------------------------------------------------ static checks
NAG_RULE = r"(AwsSolutions|NIST\.800\.53\.R5|Serverless)-.*"


def test_cdk_nag_reports_no_unsuppressed_finding(synth: Synth) -> None:
    errors = synth.annotations.find_error("*", Match.string_like_regexp(NAG_RULE))
    warnings = synth.annotations.find_warning("*", Match.string_like_regexp(NAG_RULE))
    assert errors == [], "\n".join(f"{e.id}: {e.entry.data}" for e in errors)
    assert warnings == [], "\n".join(f"{w.id}: {w.entry.data}" for w in warnings)


def nag_report(synth: Synth, pack: str) -> dict[str, set[tuple[str, str]]]:
    """cdk-nag's CSV report of one pack: compliance status -> {(rule, resource path)}."""
    found: dict[str, set[tuple[str, str]]] = {}
    with (synth.outdir / f"{pack}--{synth.stack.stack_name}-NagReport.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            found.setdefault(row["Compliance"], set()).add((row["Rule ID"], row["Resource ID"]))
    return found


def test_the_readme_states_each_nag_packs_counts(synth: Synth) -> None:
    # README's table of the three packs: suppressed findings (rules) and unsuppressed, as the reports count.
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    stated = {m[0]: (int(m[1]), int(m[2]), int(m[3]))
              for m in re.findall(r"^\| `([\w.]+)` \| (\d+) \((\d+) rules?\) \| (\d+) \|$", readme, re.M)}
    assert set(stated) == {"AwsSolutions", "NIST.800.53.R5", "Serverless"}, stated
    for pack, counts in stated.items():
        report = nag_report(synth, pack)
        suppressed = report.get("Suppressed", set())
        unsuppressed = {f for status, fs in report.items() if status not in ("Compliant", "Suppressed") for f in fs}
        assert counts == (len(suppressed), len({rule for rule, _ in suppressed}), len(unsuppressed)), pack
        assert report.get("Compliant"), pack  # the pack ran on this stack


def test_cfn_lint_reports_no_error(synth: Synth) -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    template_file = synth.outdir / f"{synth.stack.artifact_id}.template.json"
    result = subprocess.run(
        [str(cfn_lint), "--format", "json", str(template_file)], capture_output=True, text=True, timeout=300
    )
    findings = json.loads(result.stdout or "[]")
    errors = [f"{f['Rule']['Id']} {f['Message']}" for f in findings if f["Level"] == "Error"]
    assert result.returncode in (0, 4, 8, 12) and errors == [], result.stderr + "\n".join(errors)


# --------------------------------------------------------------------------------- settings (no synthesis)
def test_settings_parse_cli_strings_and_reject_bad_values() -> None:
    def settings(**overrides: Any) -> Settings:
        return Settings.from_node(cdk.App(context={**cdk_json_context(), **overrides}).node)

    assert (settings().quarantine_expiry_days, settings().raw_version_expiry_days) == (90, 30)
    parsed = settings(glue_workers="4", create_athena="false", alert_email="ops@example.com", bucket_name="")
    assert (parsed.glue_workers, parsed.create_athena, parsed.alert_email, parsed.bucket_name) == (
        4,
        False,
        "ops@example.com",
        None,
    )
    for bad in (
        {"glue_workers": 1},
        {"glue_worker_type": "G.3X"},
        {"log_retention_days": 31},
        {"validate_timeout_seconds": 901},
        {"alert_email": "nobody"},
        {"create_athena": "maybe"},
        {"quarantine_expiry_days": 3},  # shorter than staging: a redrive would find its reports gone
        {"raw_version_expiry_days": 0},
        {"validate_base_image": "public.ecr.aws/lambda/python:3.12"},  # a tag, not a digest
        {"validate_base_image": "public.ecr.aws/lambda/python@sha256:abc"},
        {"raw_archive_retention_days": -1},
        {"raw_archive_mode": "forever"},
        {"glue_execution_class": "CHEAP"},
        {"glue_execution_class": "FLEX", "glue_worker_type": "G.4X"},  # Flex: G.1X or G.2X only
        {"glue_auto_scaling": "sometimes"},
    ):
        with pytest.raises(SettingsError):
            settings(**bad)
    assert settings(validate_base_image=PINNED_BASE).validate_base_image == PINNED_BASE
    assert (settings().glue_execution_class, settings().glue_auto_scaling) == ("STANDARD", False)
    flex = settings(glue_execution_class="flex", glue_worker_type="G.2X", glue_auto_scaling="true")
    assert (flex.glue_execution_class, flex.glue_auto_scaling) == ("FLEX", True)
    with pytest.raises(SettingsError, match=r"FLEX runs on G\.1X or G\.2X workers only, got glue_worker_type 'G\.4X'"):
        settings(glue_execution_class="FLEX", glue_worker_type="G.4X")


def test_cost_settings_are_off_by_default_and_reach_the_job_when_on(synth: Synth, tmp_path: Path) -> None:
    default = synth.only("AWS::Glue::Job")
    assert default["ExecutionClass"] == "STANDARD" and "--enable-auto-scaling" not in default["DefaultArguments"]
    context = {BUNDLING_STACKS: [], "@aws-cdk/core:failSynthOnValidationErrors": False,
               "glue_execution_class": "FLEX", "glue_auto_scaling": "true", "glue_workers": "10"}
    _, stack = create_app(context=context, outdir=str(tmp_path), env=ENV)
    annotations = Annotations.from_stack(stack)
    template = Template.from_stack(stack)
    template.has_resource_properties("AWS::Glue::Job", {
        "ExecutionClass": "FLEX", "WorkerType": "G.1X", "NumberOfWorkers": 10,  # the maximum, with auto scaling
        "DefaultArguments": Match.object_like({"--enable-auto-scaling": "true"}),
    })
    # Still clean under cdk-nag and cfn-lint with both on.
    assert annotations.find_error("*", Match.string_like_regexp(NAG_RULE)) == []
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    template_file = tmp_path / f"{stack.artifact_id}.template.json"
    result = subprocess.run([str(cfn_lint), "--format", "json", str(template_file)], capture_output=True, text=True,
                            timeout=300)
    errors = [f"{f['Rule']['Id']} {f['Message']}" for f in json.loads(result.stdout or "[]") if f["Level"] == "Error"]
    assert result.returncode in (0, 4, 8, 12) and errors == [], result.stderr + "\n".join(errors)


# A made-up digest (the test never pulls it): the shape a deploy passes with -c validate_base_image=...
PINNED_BASE = "public.ecr.aws/lambda/python:3.12@sha256:" + "0123456789abcdef" * 4


def test_a_base_image_digest_reaches_the_image_build_and_a_tag_warns(synth: Synth, tmp_path: Path) -> None:
    warnings = synth.annotations.find_warning("*", Match.string_like_regexp(".*BaseImageNotPinned.*"))
    assert len(warnings) == 1 and "validate_base_image" in str(warnings[0].entry.data)
    context = {BUNDLING_STACKS: [], "@aws-cdk/core:failSynthOnValidationErrors": False,
               "validate_base_image": PINNED_BASE}
    _, stack = create_app(context=context, outdir=str(tmp_path), env=ENV)
    assert not Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp(".*BaseImageNotPinned.*"))
    assets = json.loads((tmp_path / f"{stack.artifact_id}.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["dockerBuildArgs"] == {"BASE_IMAGE": PINNED_BASE}


@pytest.mark.infra
def test_validate_has_room_for_the_staged_files(template):
    # The staged Parquet is downloaded to /tmp (about 180 MB per million rows; the default is 512 MB).
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"PackageType": "Image", "EphemeralStorage": {"Size": 2048}},
    )
