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
