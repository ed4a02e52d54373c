"""StartTarget: make sure the target's Jupyter app is running (the state machine waits)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.context import StepContext
from studiorunner.run.start_target import start_target
from studiorunner.targets import TargetProgress

from . import _metrics
from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> TargetProgress:
    ctx = StepContext.begin(event, services())
    progress = start_target(ctx)
    if progress.status == "ready" and progress.started_at:
        _metrics.record(_metrics.APP_WAIT, max(0.0, services().clock() - progress.started_at), target=ctx.run.target)
    return progress
