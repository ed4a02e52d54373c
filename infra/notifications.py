"""Tell a person when a run ends FAILED, TIMED_OUT or ABORTED (and, if asked, SUCCEEDED).

The message is built by an EventBridge input transformer from the execution's status-change
event: the run id, the status, the error and cause (which name the cell and the output
notebook), the payload (notebook, target, parameters), the run's S3 folder and a console
link. Every grant to a service principal on the topic and its key names the rule or alarm
that may use it (``aws:SourceArn``) and this account (``aws:SourceAccount``).
"""

from __future__ import annotations

import jsii
from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.triggers import execution_status_pattern, undelivered_queue

NOTIFY_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]
SUCCESS_STATUSES = ["SUCCEEDED"]


def _field(path: str) -> str:
    return events.EventField.from_path(path)


def run_message(*, ended: str, bucket_name: str, default_target: str, with_error: bool) -> events.RuleTargetInput:
    """The notification's text (an input transformer: no code runs to write it)."""
    name, region = _field("$.detail.name"), _field("$.region")
    lines = [f"Studio Runner run {name} {ended} ({_field('$.detail.status')})."]
    if with_error:
        lines += [f"Error: {_field('$.detail.error')}", f"Cause: {_field('$.detail.cause')}"]
    lines += [
        f"Payload (notebook, target, parameters): {_field('$.detail.input')}",
        f"(a payload that names no target ran on the default target, {default_target})",
        f"Output notebook and logs: s3://{bucket_name}/runs/{name}/",
        (f"Console: https://{region}.console.aws.amazon.com/states/home?region={region}"
         f"#/v2/executions/details/{_field('$.detail.executionArn')}"),
    ]
    return events.RuleTargetInput.from_text("\n".join(lines))


@jsii.implements(events.IRuleTarget)
class ConditionedTopicTarget:
    """An SNS topic as a rule target whose publish grant names the rule and the account.

    CDK's ``SnsTopic`` target grants ``events.amazonaws.com`` publishing without conditions.
    """

    def __init__(self, *, topic: sns.ITopic, rule_arn: str, message: events.RuleTargetInput,
                 dead_letter_queue: sqs.IQueue) -> None:
        self.topic, self.rule_arn, self.message, self.dead_letter_queue = topic, rule_arn, message, dead_letter_queue

    def bind(self, rule: events.IRule, id: str | None = None) -> events.RuleTargetConfig:
        conditions = {"ArnEquals": {"aws:SourceArn": self.rule_arn},
                      "StringEquals": {"aws:SourceAccount": Stack.of(rule).account}}
        events_principal = iam.ServicePrincipal("events.amazonaws.com")
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            principals=[events_principal], actions=["sns:Publish"], resources=[self.topic.topic_arn],
            conditions=conditions))
        self.dead_letter_queue.add_to_resource_policy(iam.PolicyStatement(
            principals=[events_principal], actions=["sqs:SendMessage"],
            resources=[self.dead_letter_queue.queue_arn], conditions=conditions))
        return events.RuleTargetConfig(
            arn=self.topic.topic_arn,
            input=self.message,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.dead_letter_queue.queue_arn),
            retry_policy=events.CfnRule.RetryPolicyProperty(maximum_retry_attempts=8,
                                                            maximum_event_age_in_seconds=6 * 3600),
        )


class Notifications(Construct):
    """An encrypted SNS topic fed by EventBridge rules on the state machine's executions."""

    def __init__(self, scope: Construct, id_: str, *, state_machine: sfn.IStateMachine, email: str | None,
                 notify_on_success: bool, resource_prefix: str, bucket_name: str, default_target: str) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        # A customer managed key: EventBridge and CloudWatch cannot publish to a topic under
        # the AWS managed aws/sns key, whose policy cannot be changed.
        self.key = kms.Key(self, "Key", enable_key_rotation=True,
                           description=f"Studio Runner ({resource_prefix}): encrypts the run notification topic")
        self.topic = sns.Topic(self, "Topic", topic_name=f"{resource_prefix}-runs",
                               display_name="Studio Runner runs", master_key=self.key, enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.dead_letters = undelivered_queue(self, "DeadLetters", what="the notification rules' topic target")

        # Explicit names, so the key's policy can name the rules and alarms without depending
        # on them (the rules depend on the topic, which depends on the key).
        self.alarm_name_prefix = f"{resource_prefix}-"
        rules = {"RunEnded": (f"{resource_prefix}-run-failed", NOTIFY_STATUSES, "ended", True,
                              "Studio Runner: a run ended FAILED, TIMED_OUT or ABORTED")}
        if notify_on_success:
            rules["RunSucceeded"] = (f"{resource_prefix}-run-succeeded", SUCCESS_STATUSES, "succeeded", False,
                                     "Studio Runner: a run SUCCEEDED (notify_on_success)")
        self.rules: dict[str, events.Rule] = {}
        rule_arns = []
        for rule_id, (rule_name, statuses, ended, with_error, description) in rules.items():
            rule_arn = stack.format_arn(service="events", resource="rule", resource_name=rule_name)
            rule_arns.append(rule_arn)
            rule = events.Rule(self, rule_id, rule_name=rule_name, description=description,
                               event_pattern=execution_status_pattern(state_machine, statuses))
            rule.add_target(ConditionedTopicTarget(
                topic=self.topic, rule_arn=rule_arn, dead_letter_queue=self.dead_letters,
                message=run_message(ended=ended, bucket_name=bucket_name, default_target=default_target,
                                    with_error=with_error)))
            self.rules[rule_id] = rule

        alarms = stack.format_arn(service="cloudwatch", resource="alarm", arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                  resource_name=f"{self.alarm_name_prefix}*")
        account = {"StringEquals": {"aws:SourceAccount": stack.account}}
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="EventBridgeRulesPublish", principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
            conditions={"ArnEquals": {"aws:SourceArn": rule_arns}, **account}))
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish", principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
            conditions={"ArnLike": {"aws:SourceArn": alarms}, **account}))
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")], actions=["sns:Publish"],
            resources=[self.topic.topic_arn], conditions={"ArnLike": {"aws:SourceArn": alarms}, **account}))
