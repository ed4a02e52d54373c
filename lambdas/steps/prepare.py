"""Prepare: validate the payload and target before anything starts."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner import run

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    return run.prepare(event, services())
