"""StartKernel: load the notebook, save the pending output, start a kernel and session."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner import lifecycle

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    return lifecycle.start_kernel(event, services())
