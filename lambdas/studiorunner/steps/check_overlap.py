"""CheckOverlap: a schedule's fire while its previous run still runs — skip it, wait, or go on."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run import overlap

from ._metrics import RUNS_SKIPPED, record
from ._runtime import clients, logger, services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    state = event["state"]
    result = overlap.check_overlap(state, execution_arn=event["execution"], started=event.get("started"),
                                   stepfunctions=clients()("stepfunctions"))
    if result["decision"] == "skip":
        payload = state.get("payload") or {}
        target = payload.get("target") if isinstance(payload.get("target"), str) else None
        record(RUNS_SKIPPED, 1, target=target or services().config.default_target)
        logger.info("schedule fire skipped", extra={"schedule": result["schedule"], "previous": result["previous"]})
    return result
