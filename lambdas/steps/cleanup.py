"""Cleanup: runs on every path; removes what the run started and decides the outcome."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner import run

from ._runtime import logger, metrics, services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    outcome = run.cleanup(event, services())
    metrics.add_metric(name="RunsSucceeded" if outcome["status"] == "SUCCEEDED" else "RunsFailed", unit=MetricUnit.Count, value=1)
    if outcome["status"] != "SUCCEEDED":
        logger.error("run failed", extra={"error": outcome["error"], "cause": outcome["cause"]})
    return outcome
