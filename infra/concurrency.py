"""A limit of concurrent runs per target: the semaphore's DynamoDB table and who may use it.

The pattern is the one AWS documents for Step Functions (aws-samples/aws-stepfunctions-examples,
"Controlling concurrency in distributed systems"): one item per target counting the runs
that hold a slot, changed only by conditional writes (``lambdas/studiorunner/run/slots.py``).
AcquireSlot takes a slot (and checks on holders with DescribeExecution, to reclaim the slot
of one that is no longer running); Cleanup and ExecutionEnded give it back.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.nag import acknowledge, resource_finding

#: The environment variable the steps read the table's name from (studiorunner.config).
TABLE_ENV = "STUDIO_RUNNER_SLOTS_TABLE"
PARTITION_KEY = "target"


class Concurrency(Construct):
    """``self.table``: one item per target; grants scoped to that table and its item operations."""

    def __init__(self, scope: Construct, id_: str) -> None:
        super().__init__(scope, id_)
        self.table = dynamodb.TableV2(
            self, "Slots",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            # Only counters of runs in flight: nothing to keep once the stack is gone.
            removal_policy=RemovalPolicy.DESTROY,
        )

    def grant_slots(self, role: iam.IRole) -> None:
        """Read and conditionally update slot items (acquire, release): nothing else on the table."""
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem"], resources=[self.table.table_arn]))

    def grant_check_holders(self, role: iam.IRole, state_machine: sfn.StateMachine) -> None:
        """DescribeExecution on this state machine's executions: is a slot's holder still running?

        A policy of its own rather than the role's default one: the state machine depends on
        the AcquireSlot function, which depends on its role's default policy, so naming the
        state machine there would be a cycle.
        """
        executions = Stack.of(self).format_arn(
            service="states", resource="execution", arn_format=ArnFormat.COLON_RESOURCE_NAME,
            resource_name=f"{state_machine.state_machine_name}:*")
        policy = iam.Policy(self, "CheckHolders", statements=[iam.PolicyStatement(
            actions=["states:DescribeExecution"], resources=[executions])])
        policy.attach_to_role(role)  # type: ignore[arg-type]
        acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource_finding(self, executions)}]",
                    "DescribeExecution on this state machine's executions, whose names are chosen "
                    "per run: to reclaim the slot of a holder that is no longer running.")


class FanOut(Construct):
    """What a batch needs: the state machine starts executions of itself (one child run per
    item, ``states:startExecution.sync:2``; a Distributed Map's child workflows) and waits for
    them; SummarizeBatch reads how each child ended.

    Policies of their own, not the roles' default ones: the state machine depends on its
    role's default policy (and on the functions, which depend on theirs), so naming the state
    machine there would be a cycle.
    """

    def __init__(self, scope: Construct, id_: str, *, state_machine: sfn.StateMachine,
                 summarize_role: iam.IRole) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        name = state_machine.state_machine_name
        itself = stack.format_arn(service="states", resource="stateMachine",
                                  arn_format=ArnFormat.COLON_RESOURCE_NAME, resource_name=name)
        executions = stack.format_arn(service="states", resource="execution",
                                      arn_format=ArnFormat.COLON_RESOURCE_NAME, resource_name=f"{name}:*")
        # A Distributed Map's child workflows: execution:<name>/<map run label>:<id>.
        map_runs = stack.format_arn(service="states", resource="execution",
                                    arn_format=ArnFormat.COLON_RESOURCE_NAME, resource_name=f"{name}/*")
        # The rule Step Functions manages to learn when a .sync child execution ends.
        sync_rule = stack.format_arn(service="events", resource="rule",
                                     resource_name="StepFunctionsGetEventsForStepFunctionsExecutionRule")
        self.policy = iam.Policy(self, "StartChildren", statements=[
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[itself]),
            iam.PolicyStatement(actions=["states:DescribeExecution", "states:StopExecution"],
                                resources=[executions, map_runs]),
            iam.PolicyStatement(actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                                resources=[sync_rule]),
        ])
        self.policy.attach_to_role(state_machine.role)  # type: ignore[arg-type]
        for resource in (executions, map_runs):
            acknowledge(self.policy, f"AwsSolutions-IAM5[Resource::{resource_finding(self, resource)}]",
                        "Child runs of a batch are executions of this same state machine, named per "
                        "batch item (and a Distributed Map's child workflows, named per map run).")

        summarize = iam.Policy(self, "ReadChildren", statements=[
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions])])
        summarize.attach_to_role(summarize_role)  # type: ignore[arg-type]
        acknowledge(summarize, f"AwsSolutions-IAM5[Resource::{resource_finding(self, executions)}]",
                    "SummarizeBatch describes the batch's child executions, whose names are chosen per item.")
