"""StartTarget: make sure the target's Jupyter app is running (the state machine waits)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.start_target import start_target

from . import _metrics
from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    progress = start_target(event, services())
    if progress.get("status") == "ready" and progress.get("started_at"):
        _metrics.record(_metrics.APP_WAIT, max(0.0, services().clock() - progress["started_at"]),
                        target=(event.get("run") or {}).get("target"))
    return progress
