"""SummarizeBatch: how every child run ended, written to S3; the batch's outcome."""

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run import batch

from ._runtime import logger, services, step

_sfn = None


@step
def handler(event: dict, context: LambdaContext) -> dict:
    global _sfn
    _sfn = _sfn or boto3.client("stepfunctions")
    outcome = batch.summarize_batch(event, services(), sfn=_sfn)
    if outcome["status"] != "SUCCEEDED":
        logger.error("batch failed", extra={"error": outcome["error"], "cause": outcome["cause"]})
    return outcome
