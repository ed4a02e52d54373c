"""Cleanup: runs on every path; removes what the run started and decides the outcome."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.cleanup import cleanup
from studiorunner.run.state import Outcome

from . import _metrics
from ._runtime import logger, services, step


@step
def handler(event: dict, context: LambdaContext) -> Outcome:
    outcome = cleanup(event, services())
    _metrics.record_outcome(outcome)
    if not outcome.succeeded:
        logger.error("run failed", extra={"error": outcome.error, "cause": outcome.cause})
    return outcome
