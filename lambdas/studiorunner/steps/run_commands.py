"""RunCommands: run the payload's shell commands in a Jupyter terminal, in order."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.context import StepContext
from studiorunner.run.run_commands import run_commands
from studiorunner.run.state import CommandsReport

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> CommandsReport:
    return run_commands(StepContext.begin(event, services()),
                        remaining_seconds=context.get_remaining_time_in_millis() / 1000.0)
