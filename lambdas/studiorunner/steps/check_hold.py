"""CheckHold: a failed run's kernel held for a resume; released when the hold expires."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run.hold import check_hold

from ._runtime import logger, services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    hold = check_hold(event, services())
    if hold["status"] != "held":
        logger.info("the hold on the run's kernel ended", extra={"hold": hold})
    return hold
