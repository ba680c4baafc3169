"""Failure alerts: an encrypted SNS topic, fed by an EventBridge rule on execution status (through the
notify Lambda) and by CloudWatch alarms (infra/constructs/monitoring.py)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.constructs.functions import PipelineFunction, SharedLayers
from infra.constructs.logs import EncryptedLogs
from ticketcore.sizing import FUNCTION_MEMORY_MB

# Terminal statuses that need a person; redrive restarts such an execution at its failed state.
ALERT_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]


class Alerts(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        layers: SharedLayers,
        logs: EncryptedLogs,
        alert_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)

        # Alert messages name files and errors: encrypt the topic with a key of the account.
        self.key = kms.Key(
            self, "TopicKey", description="ticketflow: encrypts the alert topic", enable_key_rotation=True
        )
        stack = Stack.of(self)
        # CloudWatch alarm actions publish to the encrypted topic as the CloudWatch service: only this
        # account's alarms (the confused-deputy conditions AWS recommends for service principals).
        alarms_of_this_account = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"},
        }
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsEncryptAlerts",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # a key policy's resource is the key itself
                conditions=alarms_of_this_account,
            )
        )
        # Where people (and tools) subscribe to pipeline failures.
        self.topic = sns.Topic(
            self, "Topic", display_name="ticketflow alerts", master_key=self.key, enforce_ssl=True
        )
        # The topic policy `enforce_ssl` creates allows no service: the alarms need their own allow.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=alarms_of_this_account,
            )
        )
        if alert_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alert_email))

        # Turns an execution status event into a readable message (file, failed state, error, redrive hint).
        self.notify = PipelineFunction(
            self,
            "Notify",
            name="notify",
            description="ticketflow: publish a readable alert for a failed, timed-out or aborted execution",
            logs=logs,
            layers=layers.all,
            environment={
                "TOPIC_ARN": self.topic.topic_arn,
                "STATE_MACHINE_ARN": state_machine.state_machine_arn,
            },
            timeout=Duration.seconds(30),
            memory_size=FUNCTION_MEMORY_MB["notify"],
        )
        self.topic.grant_publish(self.notify.function)
        # The message names the failed state and its error, read from the execution's history.
        state_machine.grant_execution(self.notify.function, "states:GetExecutionHistory")

        # Events EventBridge could not deliver to the notify function after its retries, and events notify
        # failed on (its asynchronous invocation's failure destination): an alert that did not go out is kept.
        self.undelivered = sqs.Queue(
            self,
            "UndeliveredAlerts",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.notify.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.undelivered),
            retry_attempts=2,
            max_event_age=Duration.hours(6),
        )

        # The alert path that keeps redrive possible: no Catch -> Fail in the definition, a rule instead.
        self.rule = events.Rule(
            self,
            "ExecutionFailed",
            description="ticketflow: an execution ended FAILED, TIMED_OUT or ABORTED",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"status": ALERT_STATUSES, "stateMachineArn": [state_machine.state_machine_arn]},
            ),
            targets=[
                targets.LambdaFunction(
                    self.notify.function,
                    dead_letter_queue=self.undelivered,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )
