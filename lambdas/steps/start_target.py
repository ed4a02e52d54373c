"""StartTarget: make sure the target's Jupyter app is running (the state machine waits)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner import run

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    return run.start_target(event, services())
