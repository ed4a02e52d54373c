"""Prepare: validate the payload and target before anything starts."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.prepare import prepare

from . import _metrics
from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    record = prepare(event, services())
    _metrics.record(_metrics.RUNS_STARTED, 1, target=record.get("target"))
    return record
