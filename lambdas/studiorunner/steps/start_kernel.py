"""StartKernel: load the notebook, save the pending output, start a kernel and session."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner import run

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    return run.start_kernel(event, services())
