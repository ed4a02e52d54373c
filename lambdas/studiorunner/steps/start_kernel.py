"""StartKernel: load the notebook, save the pending output, start a kernel and session."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.context import StepContext
from studiorunner.run.start_kernel import start_kernel
from studiorunner.run.state import KernelProgress

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> KernelProgress:
    return start_kernel(StepContext.begin(event, services()))
