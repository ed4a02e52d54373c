"""StartKernel: load the notebook, save the pending output, start a kernel and session."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.start_kernel import start_kernel

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    return start_kernel(event, services())
