"""The Step Functions workflow, loaded from statemachine/pipeline.asl.json (the file the local runtime and
the tests load too)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.logs import EncryptedLogs
from infra.paths import STATE_MACHINE_DEFINITION

# Actions of the Glue `.sync` integration (start, poll, stop on abort).
GLUE_SYNC_ACTIONS = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]


class Pipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        logs: EncryptedLogs,
        job_name: str,
        job_arn: str,
        inspect: lambda_.IFunction,
        validate: lambda_.IFunction,
        publish: lambda_.IFunction,
        retract: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)

        # Full execution history in CloudWatch; the vendedlogs prefix keeps the logs resource policy small.
        self.log_group = logs.log_group(
            self, "Logs", name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-pipeline"
        )

        # Standard workflow (redrive, exactly-once steps); the timeout is the definition's TimeoutSeconds.
        # The file is read at synthesis and inlined (DefinitionString), not uploaded as an asset
        # (DefinitionBody.from_file), so a definition change shows in `cdk diff` and the template is
        # self-contained.
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(
                STATE_MACHINE_DEFINITION.read_text(encoding="utf-8")
            ),
            definition_substitutions={
                "InspectFunctionArn": inspect.function_arn,
                "TransformJobName": job_name,
                "ValidateFunctionArn": validate.function_arn,
                "PublishFunctionArn": publish.function_arn,
                "RetractFunctionArn": retract.function_arn,
            },
            # Every event, without its input, output or error cause: those can hold what a file contains.
            logs=sfn.LogOptions(
                destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
            tracing_enabled=True,
        )

        # The definition is a file, so CDK cannot derive permissions: grant exactly what its tasks call.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=GLUE_SYNC_ACTIONS, resources=[job_arn])
        )
        for function in (inspect, validate, publish, retract):
            function.grant_invoke_latest_version(self.state_machine)
