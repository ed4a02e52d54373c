"""Prepare: validate the payload and target before anything starts."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.prepare import prepare
from studiorunner.run.state import RunRecord

from . import _metrics
from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> RunRecord:
    record = prepare(event, services())
    _metrics.record(_metrics.RUNS_STARTED, 1, target=record.target)
    return record
