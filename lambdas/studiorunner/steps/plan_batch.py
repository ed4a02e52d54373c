"""PlanBatch: validate a batch payload (parameter_sets or runs) and every child run in it."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run import batch

from ._runtime import services, step


@step
def handler(event: dict, context: LambdaContext) -> dict:
    return batch.plan_batch(event.get("payload"), services(), execution=event["execution"],
                            state_machine=event["state_machine"])
