"""Prepare: validate the payload and target before anything starts."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner import lifecycle

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    return lifecycle.prepare(event, services())
