"""``StudioRunner``: the whole of Studio Runner as one construct another CDK app can import.

    from infra.studio_runner import StudioRunner
    runner = StudioRunner(self, "Notebooks", config=load_config(raw), code=lambda_code(bundle=True),
                          resource_prefix="team-a-dev", bucket=my_bucket)
    runner.grant_start_execution(my_role)

It composes the units (storage, the runner, triggers, notifications, observability) and is
the one place where grants between them are wired. ``resource_prefix`` names what must be
unique in an account (state machine, topic, rules, dashboard, alarms), so a dev and a prod
copy can share one. Extensions (the per-target concurrency table) add environment to every
function that runs a step with :meth:`add_environment` and reach their roles through
:attr:`run_functions`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aws_cdk import Annotations, ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.access import AccessPolicies
from infra.concurrency import TABLE_ENV, Concurrency, FanOut
from infra.config import StudioRunnerConfig
from infra.function import StudioRunnerFunction
from infra.jupyterlab import JupyterLabJobs
from infra.nag import (
    acknowledge,
    acknowledge_wildcard_resources,
    arn_ref,
    resource_finding,
)
from infra.network import LambdaNetwork
from infra.notifications import Notifications
from infra.observability import Observability
from infra.pages import Pages
from infra.permissions import grant_bucket, target_statements
from infra.runner import DEFINITION, Runner
from infra.storage import Storage
from infra.triggers import ExecutionEnded, S3Trigger, Schedules
from studiorunner import catalog
from studiorunner.catalog import STEPS

DEFAULT_RESOURCE_PREFIX = "studio-runner"
# Names built from it: `<prefix>-runs`, `<prefix>-<target>-failed-runs` (CloudWatch alarm names
# allow more, Step Functions and SNS names less).
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")
# Steps that log in to a target (each Lambda logs in afresh) and so need its permissions.
# Prepare only validates the payload and plans the run.
TARGET_STEPS = tuple(step.name for step in STEPS if step.uses_target)
_TARGET_WILDCARD_REASON = (
    "Apps of the one configured space/user profile (app names and types are chosen when the "
    "app starts), or a Secrets Manager secret's random 6-character suffix: the pattern is "
    "scoped to one configured target.")
class StudioRunner(Construct):
    """Storage (or ``bucket``), the step functions and state machine, schedules, the S3 inbox,
    the execution-ended cleanup, notifications, the dashboard and alarms, wired together."""

    def __init__(self, scope: Construct, id_: str, *, config: StudioRunnerConfig, code: lambda_.Code,
                 resource_prefix: str = DEFAULT_RESOURCE_PREFIX, bucket: s3.IBucket | None = None,
                 definition: Path = DEFINITION, render_code: lambda_.Code | None = None) -> None:
        super().__init__(scope, id_)
        if not _PREFIX.match(resource_prefix):
            raise ValueError(f"resource_prefix {resource_prefix!r}: 1-40 letters, digits or '-'")
        self.config = config
        self.resource_prefix = resource_prefix
        if bucket is None:
            bucket = Storage(self, "Storage", runs_retention_days=config.runs_retention_days).bucket
        else:
            Annotations.of(self).add_info(
                "studio-runner: using your bucket; it must send its events to EventBridge "
                "(EventBridgeConfiguration) for the inbox to start runs, and keeps its own retention.")
        self.bucket: s3.IBucket = bucket
        network = LambdaNetwork(self, "Network", placement=config.vpc) if config.vpc else None
        # Runs at once per target (max_concurrent_runs): the slots table (infra/concurrency.py).
        self.concurrency = Concurrency(self, "Concurrency")

        powertools = {"POWERTOOLS_SERVICE_NAME": resource_prefix, "POWERTOOLS_METRICS_NAMESPACE": "StudioRunner"}
        step_environment = {
            "STUDIO_RUNNER_TARGETS": json.dumps(config.targets_context, sort_keys=True, separators=(",", ":")),
            "STUDIO_RUNNER_DEFAULT_TARGET": config.default_target,
            "STUDIO_RUNNER_BUCKET": bucket.bucket_name,
            "STUDIO_RUNNER_MAX_RUN_SECONDS": str(config.max_run_seconds),
            TABLE_ENV: self.concurrency.table.table_name,
            **powertools,
        }
        self.runner = Runner(
            self, "Runner", code=code, environment=step_environment, memory_mb=config.lambda_memory_mb,
            run_cells_timeout_seconds=config.run_cells_timeout_seconds,
            log_retention_days=config.log_retention_days, max_run_seconds=config.max_run_seconds,
            state_machine_name=f"{resource_prefix}-runs", network=network, definition=definition)
        self.state_machine: sfn.StateMachine = self.runner.state_machine
        self.schedules = Schedules(self, "Schedules", schedules=config.schedules, state_machine=self.state_machine,
                                   retry_attempts=config.schedule_retry_attempts, resource_prefix=resource_prefix)
        self.s3_trigger = S3Trigger(self, "S3Trigger", code=code, bucket=bucket, inbox_prefix=config.inbox_prefix,
                                    state_machine=self.state_machine, environment=powertools,
                                    log_retention_days=config.log_retention_days, network=network)
        self.execution_ended = ExecutionEnded(self, "ExecutionEnded", code=code, state_machine=self.state_machine,
                                              environment=step_environment,
                                              log_retention_days=config.log_retention_days, network=network)
        # Opt-in: the lifecycle configuration that gives a Studio space's JupyterLab our Notebook Jobs.
        self.jupyterlab: JupyterLabJobs | None = (
            JupyterLabJobs(self, "JupyterLabJobs", config=config.jupyterlab_lifecycle_config,
                           resource_prefix=resource_prefix,
                           target_spaces={name: (target.domain_id, target.space_name)
                                          for name, target in config.targets.items()
                                          if name in config.jupyterlab_lifecycle_config.targets
                                          and target.type == "studio-space"})
            if config.jupyterlab_lifecycle_config else None)
        # The run's HTML page: nbconvert in a function (and bundle) of its own (infra/pages.py).
        self.pages = Pages(self, "Pages", code=render_code or code, bucket=bucket, environment=powertools,
                           memory_mb=config.lambda_memory_mb, log_retention_days=config.log_retention_days,
                           callers=[self.runner.functions["Cleanup"], self.execution_ended.function], network=network)
        self.notifications = Notifications(
            self, "Notifications", state_machine=self.state_machine, email=config.notification_email,
            notify_on_success=config.notify_on_success, resource_prefix=resource_prefix, code=code, bucket=bucket,
            environment={**powertools, "STUDIO_RUNNER_DEFAULT_TARGET": config.default_target},
            log_retention_days=config.log_retention_days, network=network,
            webhook_secret_arn=config.notification_webhook_secret_arn, alarm_email=config.alarm_email)
        self.topic: sns.ITopic = self.notifications.topic
        self.observability = Observability(
            self, "Observability", resource_prefix=resource_prefix, targets=sorted(config.targets),
            state_machine=self.state_machine, topic=self.topic, alarm_topic=self.notifications.alarm_topic,
            dead_letter_queues={"s3-trigger": self.s3_trigger.dead_letters,
                                "execution-ended": self.execution_ended.dead_letters,
                                "notifications": self.notifications.dead_letters,
                                "schedules": self.schedules.dead_letter_queue,
                                **({"webhook": self.notifications.webhook_dead_letters}
                                   if self.notifications.webhook_dead_letters else {})})
        self._wire_grants()
        # Who may do what: policies a platform engineer attaches to people's roles (stack outputs).
        self.access = AccessPolicies(self, "Access", state_machine=self.state_machine, bucket=bucket,
                                     group=self.schedules.group, stack_group=self.schedules.stack_group,
                                     scheduler_role=self.schedules.role)
        for target in config.targets.values():
            kind = catalog.kind(target.type)
            if kind.deploy_warning:  # e.g. studio-classic: retired by AWS
                Annotations.of(self).add_warning_v2(kind.deploy_warning_id,
                                                    kind.deploy_warning.format(name=target.name))

    @property
    def run_functions(self) -> list[StudioRunnerFunction]:
        """Every function that runs (or cleans up) a run: the steps and ExecutionEnded."""
        return [*self.runner.functions.values(), self.execution_ended.function]

    def add_environment(self, name: str, value: str) -> None:
        """Set one environment variable on every function in :attr:`run_functions`."""
        for fn in self.run_functions:
            fn.function.add_environment(name, value)

    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start runs. Whoever may do this runs code as every configured target."""
        return self.state_machine.grant_start_execution(grantee)

    def _target_statements(self) -> list[iam.PolicyStatement]:
        # A fresh list per role: a statement object belongs to one policy document.
        stack = Stack.of(self)
        return target_statements(self.config.targets.values(), partition=stack.partition, region=stack.region,
                                 account=stack.account)

    def _wire_grants(self) -> None:
        """Every grant between the units, here and nowhere else."""
        bucket, machine = self.bucket, self.state_machine
        for step in STEPS:
            fn = self.runner.functions[step.name]
            grant_bucket(fn.role, bucket, write=True)
            fn.function.grant_invoke(machine)
            acknowledge(machine.role, f"AwsSolutions-IAM5[Resource::{arn_ref(fn.function.node.default_child)}:*]",
                        "lambda:InvokeFunction on this step's own function, any version or alias "
                        "(CDK's grantInvoke adds the qualified ARN).")
        acknowledge(machine.role, "AwsSolutions-IAM5[Resource::*]",
                    "CloudWatch Logs vended delivery (logs:CreateLogDelivery …) and X-Ray tracing "
                    "have no resource-level permissions; AWS requires Resource '*'.")
        cleaner = self.execution_ended.function.role
        for role in [self.runner.functions[step].role for step in TARGET_STEPS] + [cleaner]:
            for statement in self._target_statements():
                role.add_to_principal_policy(statement)
            acknowledge_wildcard_resources(role, self._target_statements(), _TARGET_WILDCARD_REASON)

        starter = self.s3_trigger.function.role
        machine.grant_start_execution(starter)
        # It reads `.json` payloads; the `.ipynb` itself is read later by the run.
        grant_bucket(starter, bucket, write=False, prefix=self.config.inbox_prefix)

        executions = Stack.of(self).format_arn(
            service="states", resource="execution", arn_format=ArnFormat.COLON_RESOURCE_NAME,
            resource_name=f"{machine.state_machine_name}:*")
        cleaner.add_to_principal_policy(iam.PolicyStatement(
            actions=["states:GetExecutionHistory", "states:DescribeExecution"], resources=[executions]))
        acknowledge(cleaner, f"AwsSolutions-IAM5[Resource::{resource_finding(self, executions)}]",
                    "History of this state machine's executions, whose names are chosen per run.")
        # Cleanup records the outcome under runs/<run_id>/.
        grant_bucket(cleaner, bucket, write=True)

        # AcquireSlot takes slots (and checks on holders); Cleanup and ExecutionEnded give them back.
        functions = self.runner.functions
        for role in (functions["AcquireSlot"].role, functions["Cleanup"].role, cleaner):
            self.concurrency.grant_slots(role)
        self.concurrency.grant_check_holders(functions["AcquireSlot"].role, machine)
        # CheckOverlap lists this state machine's running executions (is the schedule's previous
        # run still running?). A policy of its own: the state machine depends on the function and
        # so on its role's default policy (a cycle otherwise); the ARN from the name, not the resource.
        machine_arn = Stack.of(self).format_arn(service="states", resource="stateMachine",
                                                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                                                resource_name=machine.state_machine_name)
        list_runs = iam.Policy(self, "CheckOverlapListRuns", statements=[iam.PolicyStatement(
            actions=["states:ListExecutions"], resources=[machine_arn])])
        list_runs.attach_to_role(functions["CheckOverlap"].role)  # type: ignore[arg-type]
        # A batch: the state machine starts child runs of itself; SummarizeBatch reads how they ended.
        self.fan_out = FanOut(self, "FanOut", state_machine=machine, summarize_role=functions["SummarizeBatch"].role)
