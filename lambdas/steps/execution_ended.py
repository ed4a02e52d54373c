"""ExecutionEnded: clean up after an execution that was ABORTED or TIMED_OUT.

Invoked by an EventBridge rule on "Step Functions Execution Status Change"; such an
execution never reached its Cleanup state, so its kernel, terminal or app may still run.
"""

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run import aborted

from studiorunner import run

from ._runtime import logger, services, step

_sfn = None


@step
def handler(event: dict, context: LambdaContext) -> dict:
    global _sfn
    detail = event.get("detail") or {}
    arn, status = detail.get("executionArn"), detail.get("status")
    if not arn:
        return {"cleaned": False, "reason": "no executionArn in the event"}
    _sfn = _sfn or boto3.client("stepfunctions")
    state = aborted.state_from_history(aborted.history_events(_sfn, arn))
    if not aborted.needs_cleanup(state):
        return {"cleaned": False, "execution": arn, "reason": "nothing started or already cleaned up"}
    logger.append_keys(run_id=state["run"].get("run_id"), target=state["run"].get("target"))
    state["error"] = {"Error": f"Execution{str(status).title().replace('_', '')}",
                      "Cause": f"The execution ended {status} before its Cleanup state ran"}
    outcome = run.cleanup(state, services())
    logger.info("cleaned up after %s execution", status, extra={"actions": outcome["result"]["cleanup"]})
    return {"cleaned": True, "execution": arn, "status": status, "cleanup": outcome["result"]["cleanup"]}
