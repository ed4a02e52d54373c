"""The Studio Runner stack: one ``StudioRunner`` construct and the outputs the CLI reads."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnOutput, Environment, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import StudioRunnerConfig
from infra.runner import DEFINITION
from infra.studio_runner import DEFAULT_RESOURCE_PREFIX, StudioRunner

DEFAULT_STACK_ID = "StudioRunner"


class StudioRunnerStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: StudioRunnerConfig, code: lambda_.Code,
                 resource_prefix: str = DEFAULT_RESOURCE_PREFIX, definition: Path = DEFINITION,
                 env: Environment | None = None,
                 description: str = "Studio Runner: run notebooks inside SageMaker environments") -> None:
        super().__init__(scope, id_, env=env, description=description)
        runner = StudioRunner(self, "StudioRunner", config=config, code=code, resource_prefix=resource_prefix,
                              definition=definition)
        bucket = runner.bucket
        # Output keys are what `studio-runner` (the CLI) reads: keep them stable.
        CfnOutput(self, "BucketName", value=bucket.bucket_name,
                  description="Output notebooks land under runs/<run_id>/; uploads go under the inbox prefix")
        CfnOutput(self, "StateMachineArn", value=runner.state_machine.state_machine_arn,
                  description="aws stepfunctions start-execution --state-machine-arn <this> --input '<payload>'")
        CfnOutput(self, "InboxPrefix", value=f"s3://{bucket.bucket_name}/{config.inbox_prefix}<target>/")
        CfnOutput(self, "NotificationTopicArn", value=runner.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=runner.observability.dashboard.dashboard_name,
                  description="CloudWatch > Dashboards: runs, waits, cells and cleanup failures per target")
        self.runner = runner
        self.bucket = bucket
        self.notifications = runner.notifications
