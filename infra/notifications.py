"""Tell a person when a run ends FAILED, TIMED_OUT or ABORTED."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

NOTIFY_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]


class Notifications(Construct):
    """An encrypted SNS topic fed by an EventBridge rule on the state machine's executions."""

    def __init__(self, scope: Construct, id_: str, *, state_machine: sfn.IStateMachine,
                 email: str | None) -> None:
        super().__init__(scope, id_)
        # A customer managed key: EventBridge cannot publish to a topic under the AWS
        # managed aws/sns key, because that key's policy cannot be changed.
        self.key = kms.Key(self, "Key", enable_key_rotation=True,
                           description="Studio Runner: encrypts the run notification topic")
        self.key.grant(iam.ServicePrincipal("events.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        self.topic = sns.Topic(self, "Topic", display_name="Studio Runner run failures",
                               master_key=self.key, enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        execution_arn = events.EventField.from_path("$.detail.executionArn")
        status = events.EventField.from_path("$.detail.status")
        self.rule = events.Rule(
            self, "RunEnded",
            description="Studio Runner: a run ended FAILED, TIMED_OUT or ABORTED",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [state_machine.state_machine_arn], "status": NOTIFY_STATUSES},
            ),
        )
        self.rule.add_target(targets.SnsTopic(self.topic, message=events.RuleTargetInput.from_text(
            f"Studio Runner run {execution_arn} ended {status}. The execution's error and cause say "
            f"which step or cell failed and where the output notebook is.")))
