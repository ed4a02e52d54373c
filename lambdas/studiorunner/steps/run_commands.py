"""RunCommands: run the payload's shell commands in a Jupyter terminal, in order."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.run_commands import run_commands

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    return run_commands(event, services(), remaining_seconds=context.get_remaining_time_in_millis() / 1000.0)
