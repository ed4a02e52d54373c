"""AcquireSlot: take one of the target's concurrency slots, or tell the state machine to wait."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run import slots

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> slots.SlotState:
    return slots.acquire_slot(event["state"], services(), execution_arn=event["execution"])
