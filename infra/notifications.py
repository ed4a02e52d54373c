"""Tell people when a run ends: one message per run, written from the run's record.

- ``Notify`` (a Lambda, ``steps.notify``) is invoked by an EventBridge rule when an execution
  ends FAILED, TIMED_OUT or ABORTED (and SUCCEEDED with ``notify_on_success``). It reads the
  run's record (DescribeExecution, the execution's history, the executed notebook) and
  publishes one message to the encrypted topic ``<prefix>-runs``: a subject and a plain-text
  body for e-mail, and message attributes ``status``, ``target``, ``schedule``, ``notebook``
  (and ``run_id``) for subscription filter policies. What fails is retried and kept in a
  dead-letter queue.
- ``Webhook`` (optional, ``notification_webhook_secret_arn``): a Lambda subscribed to the topic
  posts each message to a Slack-compatible webhook whose URL is kept in Secrets Manager; a
  failed post is retried by Lambda, then kept in a dead-letter queue of its own.
- The fleet alarms that echo single runs (a target's failed runs, cleanup failures) notify
  ``<prefix>-alarms``, e-mailed only to ``alarm_email``: never a second e-mail for the same
  run. The dead-letter alarms (something was lost, not a run's end) notify the runs topic.

Every grant to a service principal on the topics and their key names the alarms that may use
it (``aws:SourceArn``) and this account (``aws:SourceAccount``).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.function import StudioRunnerFunction
from infra.nag import acknowledge, resource_finding
from infra.network import LambdaNetwork
from infra.permissions import grant_bucket
from infra.triggers import execution_status_pattern, undelivered_queue

NOTIFY_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]
SUCCESS_STATUSES = ["SUCCEEDED"]
TOPIC_ENV = "STUDIO_RUNNER_TOPIC_ARN"  # studiorunner.report.notify.TOPIC_ENV
WEBHOOK_SECRET_ENV = "STUDIO_RUNNER_WEBHOOK_SECRET_ARN"  # steps.webhook.SECRET_ENV


class Notifications(Construct):
    """The runs topic and its Notify function, the optional webhook, the alarms topic."""

    def __init__(self, scope: Construct, id_: str, *, state_machine: sfn.IStateMachine, email: str | None,
                 notify_on_success: bool, resource_prefix: str, code: lambda_.Code, bucket: s3.IBucket,
                 environment: Mapping[str, str], log_retention_days: int, network: LambdaNetwork | None = None,
                 webhook_secret_arn: str | None = None, alarm_email: str | None = None) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        # A customer managed key: CloudWatch cannot publish to a topic under the AWS managed
        # aws/sns key, whose policy cannot be changed.
        self.key = kms.Key(self, "Key", enable_key_rotation=True,
                           description=f"Studio Runner ({resource_prefix}): encrypts the run notification topics")
        self.topic = sns.Topic(self, "Topic", topic_name=f"{resource_prefix}-runs",
                               display_name="Studio Runner runs", master_key=self.key, enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.alarm_topic = sns.Topic(self, "AlarmTopic", topic_name=f"{resource_prefix}-alarms",
                                     display_name="Studio Runner alarms", master_key=self.key, enforce_ssl=True)
        if alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.dead_letters = undelivered_queue(self, "DeadLetters", what="the run notifications (rule and Notify)")

        self.function = StudioRunnerFunction(
            self, "Notify", code=code, handler="studiorunner.steps.notify.handler",
            description="Studio Runner: one message per ended run, from its record, to the runs topic",
            environment={**environment, TOPIC_ENV: self.topic.topic_arn}, memory_mb=512,
            timeout=Duration.minutes(1), log_retention_days=log_retention_days, network=network,
            on_failure=destinations.SqsDestination(self.dead_letters))
        role = self.function.role
        self.topic.grant_publish(role)
        acknowledge(role, "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                    "CDK's grantPublish on the encrypted runs topic: the data keys of that topic's own key only.")
        executions = stack.format_arn(service="states", resource="execution",
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                      resource_name=f"{state_machine.state_machine_name}:*")
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["states:DescribeExecution", "states:GetExecutionHistory"], resources=[executions]))
        acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource_finding(self, executions)}]",
                    "The run's record: this state machine's executions, whose names are chosen per run.")
        grant_bucket(role, bucket, write=False, prefix="runs/")  # the executed notebook

        statuses = NOTIFY_STATUSES + (SUCCESS_STATUSES if notify_on_success else [])
        self.rule = events.Rule(
            self, "RunEnded", rule_name=f"{resource_prefix}-run-ended",
            description=f"Studio Runner: a run ended {', '.join(statuses)}: tell people, once",
            event_pattern=execution_status_pattern(state_machine, statuses))
        self.rule.add_target(events_targets.LambdaFunction(
            self.function.function, retry_attempts=4, max_event_age=Duration.hours(6),
            dead_letter_queue=self.dead_letters))

        self.webhook: StudioRunnerFunction | None = None
        self.webhook_dead_letters = None
        if webhook_secret_arn:
            self._webhook(code=code, environment=environment, secret_arn=webhook_secret_arn,
                          log_retention_days=log_retention_days, network=network)

        alarms = stack.format_arn(service="cloudwatch", resource="alarm", arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                  resource_name=f"{resource_prefix}-*")
        account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish", principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
            conditions={"ArnLike": {"aws:SourceArn": alarms}, **account}))
        for topic in (self.topic, self.alarm_topic):
            topic.add_to_resource_policy(iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")], actions=["sns:Publish"],
                resources=[topic.topic_arn], conditions={"ArnLike": {"aws:SourceArn": alarms}, **account}))

    def _webhook(self, *, code: lambda_.Code, environment: Mapping[str, str], secret_arn: str,
                 log_retention_days: int, network: LambdaNetwork | None) -> None:
        self.webhook_dead_letters = undelivered_queue(self, "WebhookDeadLetters",
                                                      what="the webhook (SNS delivery and its function)")
        self.webhook = StudioRunnerFunction(
            self, "Webhook", code=code, handler="studiorunner.steps.webhook.handler",
            description="Studio Runner: post each run message to the chat webhook kept in Secrets Manager",
            environment={**environment, WEBHOOK_SECRET_ENV: secret_arn}, memory_mb=256,
            timeout=Duration.seconds(30), log_retention_days=log_retention_days, network=network)
        # Lambda retries a failed asynchronous invocation twice (the most it allows), then the DLQ.
        self.webhook.function.configure_async_invoke(
            retry_attempts=2, max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.webhook_dead_letters))
        self.webhook.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"], resources=[secret_arn]))
        self.topic.add_subscription(subscriptions.LambdaSubscription(
            self.webhook.function, dead_letter_queue=self.webhook_dead_letters))
