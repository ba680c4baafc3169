"""Alarms that back the best-effort EventBridge alert path, and one dashboard of the pipeline."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

PERIOD = Duration.minutes(5)
METRICS_NAMESPACE = "Ticketflow"  # POWERTOOLS_METRICS_NAMESPACE
SERVICE_DIMENSION = {"service": "ticketflow"}  # Powertools adds service=POWERTOOLS_SERVICE_NAME


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        state_machine: sfn.StateMachine,
        trigger: lambda_.IFunction,
        notify: lambda_.IFunction,
        failed_events: sqs.IQueue,
        undelivered_alerts: sqs.IQueue,
        job_name: str,
    ) -> None:
        super().__init__(scope, construct_id)

        def at_least_one(construct_id: str, metric: cw.Metric, description: str) -> cw.Alarm:
            alarm = metric.create_alarm(
                self,
                construct_id,
                alarm_description=description,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            return alarm

        def rows(metric_name: str) -> cw.Metric:
            return cw.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=metric_name,
                dimensions_map=SERVICE_DIMENSION,
                statistic="Sum",
                period=PERIOD,
            )

        # EventBridge delivery is best effort: the execution metrics alarm on their own.
        self.alarms = [
            at_least_one(
                "ExecutionsFailed",
                state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                "ticketflow: a pipeline execution failed (redrive it once the cause is fixed)",
            ),
            at_least_one(
                "ExecutionsTimedOut",
                state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                "ticketflow: a pipeline execution timed out",
            ),
            # A trigger error means an upload may not have started an execution.
            at_least_one(
                "TriggerErrors",
                trigger.metric_errors(period=PERIOD, statistic="Sum"),
                "ticketflow: the trigger function failed on an S3 event (it is retried twice)",
            ),
            # Events that exhausted the trigger's retries: uploads that never started an execution.
            at_least_one(
                "FailedEventsWaiting",
                failed_events.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                "ticketflow: S3 events the trigger could not handle are waiting in the failed-events queue",
            ),
            # The notify function failed: the alert of an execution may not have gone out (its event waits in
            # the undelivered-alerts queue, alarmed below).
            at_least_one(
                "NotifyErrors",
                notify.metric_errors(period=PERIOD, statistic="Sum"),
                "ticketflow: the notify function failed to send a failure alert (see UndeliveredAlerts)",
            ),
            # Alerts EventBridge could not hand to the notify function, or that notify failed on.
            at_least_one(
                "UndeliveredAlertsWaiting",
                undelivered_alerts.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                "ticketflow: failure alerts could not be delivered to, or sent by, the notify function",
            ),
            # The trigger's count of objects under raw/ that started no execution (not a CSV upload, empty).
            at_least_one(
                "ObjectsSkipped",
                rows("ObjectsSkipped"),
                "ticketflow: an object uploaded under raw/ was skipped (not .csv, .csv.gz or a one-CSV .zip, or "
                "empty); `ticketflow alerts` lists each with its reason",
            ),
        ]

        glue_elapsed = cw.Metric(
            namespace="Glue",
            metric_name="glue.driver.aggregate.elapsedTime",
            dimensions_map={"JobName": job_name, "JobRunId": "ALL", "Type": "count"},
            statistic="Maximum",
            period=PERIOD,
            label="Glue job elapsed time (ms)",
        )

        # One page to follow the pipeline: volume, outcome, duration, Glue time and rows.
        self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=Duration.days(1))
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Executions",
                left=[
                    state_machine.metric_started(period=PERIOD, statistic="Sum"),
                    state_machine.metric_succeeded(period=PERIOD, statistic="Sum"),
                    state_machine.metric_failed(period=PERIOD, statistic="Sum"),
                    state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Execution time (ms)",
                left=[
                    state_machine.metric_time(period=PERIOD, statistic="Average"),
                    state_machine.metric_time(period=PERIOD, statistic="Maximum"),
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Glue job elapsed time", left=[glue_elapsed], width=12),
            cw.GraphWidget(
                title="Rows published / quarantined; uploads skipped",
                left=[rows("RowsPublished"), rows("RowsQuarantined")],
                right=[rows("ObjectsSkipped")],
                width=12,
            ),
        )
        self.dashboard.add_widgets(cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24))
