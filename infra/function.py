"""One Lambda function the way every Studio Runner function is built.

Each function has its own role (so grants stay per function), its own log group with the
configured retention (no LogRetention custom resource), X-Ray tracing, and the Python
runtime the tests run on (``infra.bundling.RUNTIME``).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import ARCHITECTURE, RUNTIME
from infra.nag import acknowledge
from infra.network import LambdaNetwork

_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS",
    1096: "THREE_YEARS", 1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS", 3288: "NINE_YEARS", 3653: "TEN_YEARS",
}


def retention(days: int) -> logs.RetentionDays:
    return logs.RetentionDays[_RETENTION[days]]


class StudioRunnerFunction(Construct):
    """A Python Lambda function over the shared code asset, with its role and log group."""

    def __init__(self, scope: Construct, id_: str, *, code: lambda_.Code, handler: str,
                 description: str, environment: Mapping[str, str], memory_mb: int,
                 timeout: Duration, log_retention_days: int, network: LambdaNetwork | None = None,
                 on_failure: lambda_.IDestination | None = None) -> None:
        super().__init__(scope, id_)
        self.log_group = logs.LogGroup(self, "Logs", retention=retention(log_retention_days),
                                       removal_policy=RemovalPolicy.DESTROY)
        # A role of its own instead of AWSLambdaBasicExecutionRole: logs only to its own group.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"Studio Runner: {description}")
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self, "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=code,
            handler=handler,
            description=description,
            environment=dict(environment),
            memory_size=memory_mb,
            timeout=timeout,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            role=self.role,
            vpc=network.vpc if network else None,
            vpc_subnets=network.subnets if network else None,
            security_groups=network.security_groups if network else None,
            # Only functions invoked asynchronously (by EventBridge) get one: where what failed is kept.
            on_failure=on_failure,
        )
        if network is not None:
            acknowledge(self.role, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                                   "AWSLambdaVPCAccessExecutionRole]",
                        "Lambda's own managed policy for the network interfaces of a function in a VPC "
                        "(ec2:CreateNetworkInterface and friends, which need Resource '*').")
        acknowledge(self.function, "AwsSolutions-L1",
                    "Python 3.13 on purpose: the runtime the Lambda-side tests run on against the "
                    "built bundle (make test-bundle); 3.14 once the tests run there.")
        acknowledge(self.role, "AwsSolutions-IAM5[Resource::*]",
                    "X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) have no "
                    "resource-level permissions; AWS requires Resource '*'.")
