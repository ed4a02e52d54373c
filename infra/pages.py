"""RenderPage: the function that renders a run's HTML page, from a bundle of its own.

nbconvert (and what it pulls in) is the weight of this one function only: the steps' bundle
stays as it was (bench/README.md). Cleanup and ExecutionEnded invoke it synchronously
(``STUDIO_RUNNER_RENDER_FUNCTION``) for runs with ``"html"`` in ``output_formats``; it reads
the executed notebook from the bucket and writes the page beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.function import StudioRunnerFunction
from infra.nag import acknowledge, arn_ref
from infra.network import LambdaNetwork
from infra.permissions import grant_bucket
from studiorunner.report.render import RENDER_FUNCTION_ENV, RENDER_TIMEOUT_SECONDS

#: Cleanup waits this long at most (studiorunner.report.render), inside its own 5 minutes.
RENDER_TIMEOUT = Duration.seconds(RENDER_TIMEOUT_SECONDS)
#: Lambda CPU grows with memory: nbconvert renders on one core, which 1,769 MB buys whole.
RENDER_MEMORY_MB = 1769


class Pages(Construct):
    """The RenderPage function, and the grants of the functions that ask it for pages."""

    def __init__(self, scope: Construct, id_: str, *, code: lambda_.Code, bucket: s3.IBucket,
                 environment: Mapping[str, str], memory_mb: int, log_retention_days: int,
                 callers: Sequence[StudioRunnerFunction], network: LambdaNetwork | None = None) -> None:
        super().__init__(scope, id_)
        self.function = StudioRunnerFunction(
            self, "RenderPage", code=code, handler="studiorunner.steps.render_page.handler",
            description="Studio Runner: render an executed notebook's HTML page (nbconvert, its own bundle)",
            environment=environment, memory_mb=max(memory_mb, RENDER_MEMORY_MB), timeout=RENDER_TIMEOUT,
            log_retention_days=log_retention_days, network=network)
        grant_bucket(self.function.role, bucket, write=True)
        for caller in callers:
            self.function.function.grant_invoke(caller.role)
            acknowledge(caller.role,
                        f"AwsSolutions-IAM5[Resource::{arn_ref(self.function.function.node.default_child)}:*]",
                        "lambda:InvokeFunction on RenderPage only, any version or alias (CDK's grantInvoke "
                        "adds the qualified ARN).")
            caller.function.add_environment(RENDER_FUNCTION_ENV, self.function.function.function_name)
