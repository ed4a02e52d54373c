"""What starts and what finishes runs outside the state machine.

- schedules: EventBridge Scheduler, one schedule per configured entry, each with its time
  zone, a retry policy and a dead-letter queue;
- the S3 trigger: an EventBridge rule on ``Object Created`` under the inbox prefix invokes a
  small Lambda that starts the run under a name derived from the object (a rule cannot name
  an execution, and the name is what makes a duplicated event harmless);
- execution ended: an execution that ends ABORTED or TIMED_OUT never reaches its Cleanup
  state, so a rule hands it to a Lambda that cleans up what it started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import ArnFormat, Duration, Stack, TimeZone
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import Schedule
from infra.function import StudioRunnerFunction
from infra.nag import acknowledge, arn_ref, resource_finding

CLEANUP_STATUSES = ["ABORTED", "TIMED_OUT"]


class Schedules(Construct):
    """One ``AWS::Scheduler::Schedule`` per configured schedule, sharing a dead-letter queue."""

    def __init__(self, scope: Construct, id_: str, *, schedules: Sequence[Schedule],
                 state_machine: sfn.IStateMachine, retry_attempts: int) -> None:
        super().__init__(scope, id_)
        self.dead_letter_queue = sqs.Queue(
            self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            retention_period=Duration.days(14))
        acknowledge(self.dead_letter_queue, "AwsSolutions-SQS3",
                    "This queue is itself the dead-letter queue of the EventBridge Scheduler targets.")
        self.schedules: dict[str, scheduler.Schedule] = {}
        for entry in schedules:
            self.schedules[entry.name] = scheduler.Schedule(
                self, entry.name,
                description=entry.description or f"Studio Runner schedule {entry.name}",
                schedule=scheduler.ScheduleExpression.expression(entry.expression, TimeZone.of(entry.timezone)),
                target=scheduler_targets.StepFunctionsStartExecution(
                    state_machine,
                    input=scheduler.ScheduleTargetInput.from_object(entry.payload),
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=retry_attempts,
                    max_event_age=Duration.hours(1),
                ),
            )


class S3Trigger(Construct):
    """``<inbox>/<target>/x.ipynb`` (or a ``.json`` payload) uploaded → a run."""

    def __init__(self, scope: Construct, id_: str, *, code: lambda_.Code, bucket: s3.IBucket,
                 inbox_prefix: str, state_machine: sfn.IStateMachine, log_retention_days: int) -> None:
        super().__init__(scope, id_)
        self.function = StudioRunnerFunction(
            self, "Starter", code=code, handler="steps.s3_trigger.handler",
            description="Studio Runner S3 trigger: start a run for an object uploaded to the inbox",
            environment={
                "STUDIO_RUNNER_STATE_MACHINE_ARN": state_machine.state_machine_arn,
                "STUDIO_RUNNER_INBOX_PREFIX": inbox_prefix,
                "STUDIO_RUNNER_BUCKET": bucket.bucket_name,
                "POWERTOOLS_SERVICE_NAME": "studio-runner",
            },
            memory_mb=256, timeout=Duration.seconds(30), log_retention_days=log_retention_days)
        state_machine.grant_start_execution(self.function.role)
        # It reads `.json` payloads; the `.ipynb` itself is read later by the run.
        bucket.grant_read(self.function.role, f"{inbox_prefix}*")
        acknowledge(self.function.role,
                    f"AwsSolutions-IAM5[Resource::{arn_ref(bucket.node.default_child)}/{inbox_prefix}*]",
                    "Read access to objects under the inbox prefix only, whose keys users choose.")
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*"):
            acknowledge(self.function.role, f"AwsSolutions-IAM5[Action::{action}]",
                        "CDK's grantRead limited to the inbox prefix of the Studio Runner bucket.")

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
        self.rule.add_target(events_targets.LambdaFunction(self.function.function, retry_attempts=4,
                                                           max_event_age=Duration.hours(2)))


class ExecutionEnded(Construct):
    """ABORTED / TIMED_OUT executions → the execution_ended Lambda, which cleans up after them."""

    def __init__(self, scope: Construct, id_: str, *, code: lambda_.Code, state_machine: sfn.StateMachine,
                 environment: Mapping[str, str], target_statements: Sequence[iam.PolicyStatement],
                 bucket: s3.IBucket, log_retention_days: int) -> None:
        super().__init__(scope, id_)
        self.function = StudioRunnerFunction(
            self, "Cleaner", code=code, handler="steps.execution_ended.handler",
            description="Studio Runner: clean up after an execution that ended ABORTED or TIMED_OUT",
            environment={**environment, "STUDIO_RUNNER_STATE_MACHINE_ARN": state_machine.state_machine_arn},
            memory_mb=512, timeout=Duration.minutes(5), log_retention_days=log_retention_days)
        role = self.function.role
        executions = Stack.of(self).format_arn(
            service="states", resource="execution", arn_format=ArnFormat.COLON_RESOURCE_NAME,
            resource_name=f"{state_machine.state_machine_name}:*")
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["states:GetExecutionHistory", "states:DescribeExecution"], resources=[executions]))
        acknowledge(role, f"AwsSolutions-IAM5[Resource::{resource_finding(self, executions)}]",
                    "History of this state machine's executions, whose names are chosen per run.")
        for statement in target_statements:
            role.add_to_principal_policy(statement)
        bucket.grant_read_write(role)
        acknowledge(role, f"AwsSolutions-IAM5[Resource::{arn_ref(bucket.node.default_child)}/*]",
                    "Cleanup records the outcome under runs/<run_id>/, keys chosen per run.")
        for action in ("s3:GetObject*", "s3:GetBucket*", "s3:List*", "s3:DeleteObject*", "s3:Abort*"):
            acknowledge(role, f"AwsSolutions-IAM5[Action::{action}]",
                        "CDK's grantReadWrite on the Studio Runner bucket only.")

        self.rule = events.Rule(
            self, "AbortedOrTimedOut",
            description="Studio Runner: an execution ended ABORTED or TIMED_OUT and skipped its Cleanup state",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [state_machine.state_machine_arn], "status": CLEANUP_STATUSES},
            ),
        )
        self.rule.add_target(events_targets.LambdaFunction(self.function.function, retry_attempts=4,
                                                           max_event_age=Duration.hours(6)))

