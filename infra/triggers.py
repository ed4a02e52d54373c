"""What starts and what finishes runs outside the state machine.

- schedules: EventBridge Scheduler, one schedule per configured entry, each with its time
  zone, a retry policy and a dead-letter queue; its universal target calls StartExecution
  itself so that the run is named for the schedule (``<schedule>-<scheduler execution id>``,
  ``studiorunner.naming.schedule_run_prefix``): the templated Step Functions target
  cannot name an execution. The ``cdk.json`` schedules live in a group of their own (the
  CLI lists them as the stack's and refuses to change them); the schedules people create
  at run time (``studio-runner schedule create``) go in the other group, with the same
  role, retries and dead-letter queue (studiorunner_cli/schedules/service.py writes the
  same target);
- the S3 trigger: an EventBridge rule on ``Object Created`` under the inbox prefix invokes a
  small Lambda that starts the run under a name derived from the object (a rule cannot name
  an execution, and the name is what makes a duplicated event harmless);
- execution ended: an execution that ends ABORTED or TIMED_OUT never reaches its Cleanup
  state, so a rule hands it to a Lambda that cleans up what it started.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy, Stack, TimeZone
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import Schedule
from infra.function import StudioRunnerFunction
from infra.nag import acknowledge
from infra.network import LambdaNetwork
from studiorunner.naming import schedule_run_prefix

CLEANUP_STATUSES = ["ABORTED", "TIMED_OUT"]


#: How long Scheduler keeps retrying a fire it could not deliver (the CLI's schedules: the same).
MAX_EVENT_AGE_SECONDS = 3600


class Schedules(Construct):
    """The schedule groups, the scheduler role and dead-letter queue every schedule shares, and
    one ``AWS::Scheduler::Schedule`` per configured (``cdk.json``) schedule."""

    def __init__(self, scope: Construct, id_: str, *, schedules: Sequence[Schedule],
                 state_machine: sfn.IStateMachine, retry_attempts: int, resource_prefix: str) -> None:
        super().__init__(scope, id_)
        self.retry_attempts = retry_attempts
        self.dead_letter_queue = undelivered_queue(self, "DeadLetters", what="the EventBridge Scheduler targets")
        # Schedules people create and change at run time: deleting the stack deletes them.
        self.group = scheduler.ScheduleGroup(self, "Group", schedule_group_name=f"{resource_prefix}-schedules",
                                             removal_policy=RemovalPolicy.DESTROY)
        # The cdk.json ones: the CLI lists them as the stack's and refuses to change them.
        self.stack_group = scheduler.ScheduleGroup(self, "StackGroup",
                                                   schedule_group_name=f"{resource_prefix}-stack-schedules",
                                                   removal_policy=RemovalPolicy.DESTROY)
        stack = Stack.of(self)
        # One role for every schedule: Scheduler assumes it, for this account's schedules only.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}),
            description="Studio Runner schedules: start a run of the state machine")
        start = iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine.state_machine_arn])
        # Granted here, not by the targets: the CLI's schedules need them with no cdk.json schedule.
        self.role.add_to_policy(start)
        self.dead_letter_queue.grant_send_messages(self.role)
        self.schedules: dict[str, scheduler.Schedule] = {}
        for entry in schedules:
            self.schedules[entry.name] = scheduler.Schedule(
                self, entry.name,
                schedule_name=entry.name,
                schedule_group=self.stack_group,
                description=entry.description or f"Studio Runner schedule {entry.name}",
                schedule=scheduler.ScheduleExpression.expression(entry.expression, TimeZone.of(entry.timezone)),
                target=scheduler_targets.Universal(
                    service="sfn", action="startExecution",
                    input=scheduler.ScheduleTargetInput.from_object({
                        "StateMachineArn": state_machine.state_machine_arn,
                        "Name": schedule_run_prefix(entry.name) + scheduler.ContextAttribute.execution_id,
                        "Input": json.dumps(entry.run_payload, separators=(",", ":")),
                    }),
                    role=self.role,
                    policy_statements=[start],  # else the target grants StartExecution on '*'
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=retry_attempts,
                    max_event_age=Duration.seconds(MAX_EVENT_AGE_SECONDS),
                ),
            )


def execution_status_pattern(state_machine: sfn.IStateMachine, statuses: Sequence[str]) -> events.EventPattern:
    """The one EventBridge pattern for "an execution of this state machine ended with one of ``statuses``"."""
    return events.EventPattern(
        source=["aws.states"],
        detail_type=["Step Functions Execution Status Change"],
        detail={"stateMachineArn": [state_machine.state_machine_arn], "status": list(statuses)},
    )


def undelivered_queue(scope: Construct, id_: str, *, what: str) -> sqs.Queue:
    """Where an event or an invocation that failed is kept (14 days) for a person to look at."""
    queue = sqs.Queue(scope, id_, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                      retention_period=Duration.days(14))
    acknowledge(queue, "AwsSolutions-SQS3", f"This queue is itself the dead-letter queue of {what}.")
    return queue


class S3Trigger(Construct):
    """``<inbox>/<target>/x.ipynb`` (or a ``.json`` payload) uploaded → a run.

    EventBridge invokes the function asynchronously: an event it could not deliver and an
    invocation that failed after Lambda's retries both land in ``dead_letters`` (an alarm on
    it tells the topic: infra/observability.py), so a bad upload never vanishes silently.
    """

    def __init__(self, scope: Construct, id_: str, *, code: lambda_.Code, bucket: s3.IBucket,
                 inbox_prefix: str, state_machine: sfn.IStateMachine, environment: Mapping[str, str],
                 log_retention_days: int, network: LambdaNetwork | None = None) -> None:
        super().__init__(scope, id_)
        self.dead_letters = undelivered_queue(self, "DeadLetters", what="the S3 trigger (rule target and function)")
        self.function = StudioRunnerFunction(
            self, "Starter", code=code, handler="studiorunner.steps.s3_trigger.handler",
            description="Studio Runner S3 trigger: start a run for an object uploaded to the inbox",
            environment={
                **environment,
                "STUDIO_RUNNER_STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "STUDIO_RUNNER_INBOX_PREFIX": inbox_prefix,
                "STUDIO_RUNNER_BUCKET": bucket.bucket_name,
            },
            memory_mb=256, timeout=Duration.seconds(30), log_retention_days=log_retention_days,
            network=network, on_failure=destinations.SqsDestination(self.dead_letters))
        self.rule = events.Rule(
            self, "ObjectCreated",
            description="Studio Runner: an object was uploaded under the inbox prefix",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={"bucket": {"name": [bucket.bucket_name]},
                        "object": {"key": [{"prefix": inbox_prefix}]}},
            ),
        )
        self.rule.add_target(events_targets.LambdaFunction(
            self.function.function, retry_attempts=4, max_event_age=Duration.hours(2),
            dead_letter_queue=self.dead_letters))


class ExecutionEnded(Construct):
    """ABORTED / TIMED_OUT executions → the execution_ended Lambda, which cleans up after them.

    As for the S3 trigger, what fails is kept in ``dead_letters`` and an alarm tells the topic:
    a cleanup that failed after an abort may leave an app running (and billing).
    """

    def __init__(self, scope: Construct, id_: str, *, code: lambda_.Code, state_machine: sfn.IStateMachine,
                 environment: Mapping[str, str], log_retention_days: int,
                 network: LambdaNetwork | None = None) -> None:
        super().__init__(scope, id_)
        self.dead_letters = undelivered_queue(self, "DeadLetters",
                                              what="the execution-ended cleanup (rule target and function)")
        self.function = StudioRunnerFunction(
            self, "Cleaner", code=code, handler="studiorunner.steps.execution_ended.handler",
            description="Studio Runner: clean up after an execution that ended ABORTED or TIMED_OUT",
            environment={**environment, "STUDIO_RUNNER_STATE_MACHINE_ARN": state_machine.state_machine_arn},
            memory_mb=512, timeout=Duration.minutes(5), log_retention_days=log_retention_days,
            network=network, on_failure=destinations.SqsDestination(self.dead_letters))
        self.rule = events.Rule(
            self, "AbortedOrTimedOut",
            description="Studio Runner: an execution ended ABORTED or TIMED_OUT and skipped its Cleanup state",
            event_pattern=execution_status_pattern(state_machine, CLEANUP_STATUSES),
        )
        self.rule.add_target(events_targets.LambdaFunction(
            self.function.function, retry_attempts=4, max_event_age=Duration.hours(6),
            dead_letter_queue=self.dead_letters))
