"""The Studio Runner stack: composes storage, the runner, its triggers and notifications."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import CfnOutput, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.concurrency import TABLE_ENV, Concurrency, FanOut
from infra.config import StudioRunnerConfig
from infra.nag import acknowledge_wildcard_resources
from infra.notifications import Notifications
from infra.permissions import target_statements
from infra.runner import DEFINITION, Runner
from infra.storage import Storage
from infra.triggers import ExecutionEnded, S3Trigger, Schedules

# Steps that log in to a target (each Lambda logs in afresh) and so need its permissions.
# Prepare only validates the payload and plans the run.
TARGET_STEPS = ("StartTarget", "RunCommands", "StartKernel", "RunCells", "Cleanup")
_TARGET_WILDCARD_REASON = (
    "Apps of the one configured space/user profile (app names and types are chosen when the "
    "app starts), or a Secrets Manager secret's random 6-character suffix: the pattern is "
    "scoped to one configured target.")


class StudioRunnerStack(Stack):
    def __init__(self, scope: Construct, id_: str, *, config: StudioRunnerConfig, code: lambda_.Code,
                 definition: Path = DEFINITION, env: Environment | None = None,
                 description: str = "Studio Runner: run notebooks inside SageMaker environments") -> None:
        super().__init__(scope, id_, env=env, description=description)
        storage = Storage(self, "Storage", runs_retention_days=config.runs_retention_days)
        bucket = storage.bucket
        concurrency = Concurrency(self, "Concurrency")

        step_environment = {
            "STUDIO_RUNNER_TARGETS": json.dumps(config.targets_context, sort_keys=True, separators=(",", ":")),
            "STUDIO_RUNNER_DEFAULT_TARGET": config.default_target,
            "STUDIO_RUNNER_BUCKET": bucket.bucket_name,
            "STUDIO_RUNNER_MAX_RUN_SECONDS": str(config.max_run_seconds),
            TABLE_ENV: concurrency.table.table_name,
            "POWERTOOLS_SERVICE_NAME": "studio-runner",
            "POWERTOOLS_METRICS_NAMESPACE": "StudioRunner",
        }
        runner = Runner(
            self, "Runner", code=code, bucket=bucket, environment=step_environment,
            memory_mb=config.lambda_memory_mb, run_cells_timeout_seconds=config.run_cells_timeout_seconds,
            log_retention_days=config.log_retention_days, max_run_seconds=config.max_run_seconds,
            definition=definition)

        def statements() -> list[iam.PolicyStatement]:
            # A fresh list per role: a statement object belongs to one policy document.
            return target_statements(config.targets.values(), partition=self.partition,
                                     region=self.region, account=self.account)

        for step in TARGET_STEPS:
            role = runner.functions[step].role
            for statement in statements():
                role.add_to_principal_policy(statement)
            acknowledge_wildcard_resources(role, statements(), _TARGET_WILDCARD_REASON)

        # AcquireSlot takes slots (and checks on holders); Cleanup and ExecutionEnded give them back.
        for step in ("AcquireSlot", "Cleanup"):
            concurrency.grant_slots(runner.functions[step].role)
        concurrency.grant_check_holders(runner.functions["AcquireSlot"].role, runner.state_machine)
        # A batch: the state machine starts child runs of itself; SummarizeBatch reads how they ended.
        FanOut(self, "FanOut", state_machine=runner.state_machine,
               summarize_role=runner.functions["SummarizeBatch"].role)

        Schedules(self, "Schedules", schedules=config.schedules, state_machine=runner.state_machine,
                  retry_attempts=config.schedule_retry_attempts)
        S3Trigger(self, "S3Trigger", code=code, bucket=bucket, inbox_prefix=config.inbox_prefix,
                  state_machine=runner.state_machine, log_retention_days=config.log_retention_days)
        ended = ExecutionEnded(self, "ExecutionEnded", code=code, state_machine=runner.state_machine,
                       environment=step_environment, target_statements=statements(),
                       bucket=bucket, log_retention_days=config.log_retention_days)
        acknowledge_wildcard_resources(ended.function.role, statements(), _TARGET_WILDCARD_REASON)
        concurrency.grant_slots(ended.function.role)
        notifications = Notifications(self, "Notifications", state_machine=runner.state_machine,
                                      email=config.notification_email)

        CfnOutput(self, "BucketName", value=bucket.bucket_name,
                  description="Output notebooks land under runs/<run_id>/; uploads go under the inbox prefix")
        CfnOutput(self, "StateMachineArn", value=runner.state_machine.state_machine_arn,
                  description="aws stepfunctions start-execution --state-machine-arn <this> --input '<payload>'")
        CfnOutput(self, "InboxPrefix", value=f"s3://{bucket.bucket_name}/{config.inbox_prefix}<target>/")
        CfnOutput(self, "NotificationTopicArn", value=notifications.topic.topic_arn)
        self.bucket = bucket
        self.runner = runner
        self.notifications = notifications
        self.concurrency = concurrency

