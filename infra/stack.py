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
                 env: Environment | None = None, render_code: lambda_.Code | None = None,
                 description: str = "Studio Runner: run notebooks inside SageMaker environments") -> None:
        super().__init__(scope, id_, env=env, description=description)
        runner = StudioRunner(self, "StudioRunner", config=config, code=code, resource_prefix=resource_prefix,
                              definition=definition, render_code=render_code)
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
        if runner.jupyterlab is not None:
            CfnOutput(self, "JupyterLabLifecycleConfigArn", value=runner.jupyterlab.arn,
                      description="Attach to a space's (or the domain's) JupyterLab settings: Notebook Jobs run here")
        schedules = runner.schedules
        CfnOutput(self, "ScheduleGroupName", value=schedules.group.schedule_group_name,
                  description="studio-runner schedule create|update|pause|resume|delete writes schedules here")
        CfnOutput(self, "StackScheduleGroupName", value=schedules.stack_group.schedule_group_name,
                  description="The cdk.json schedules (change them in cdk.json and deploy)")
        CfnOutput(self, "SchedulerRoleArn", value=schedules.role.role_arn,
                  description="The role every schedule's target uses (iam:PassRole it to scheduler.amazonaws.com)")
        CfnOutput(self, "ScheduleDeadLetterQueueArn", value=schedules.dead_letter_queue.queue_arn)
        CfnOutput(self, "ScheduleRetryAttempts", value=str(schedules.retry_attempts))
        CfnOutput(self, "MaxRunSeconds", value=str(config.max_run_seconds))
        CfnOutput(self, "RunPolicyArn", value=runner.access.run.managed_policy_arn,
                  description="Attach to who runs notebooks and reads runs (and schedules)")
        CfnOutput(self, "ManageSchedulesPolicyArn", value=runner.access.manage_schedules.managed_policy_arn,
                  description="Attach with RunPolicyArn to who also creates, changes and deletes schedules")
        self.runner = runner
        self.bucket = bucket
        self.notifications = runner.notifications
