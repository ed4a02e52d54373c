"""ExecutionEnded: clean up after an execution that was ABORTED or TIMED_OUT.

Invoked by an EventBridge rule on "Step Functions Execution Status Change"; such an
execution never reached its Cleanup state, so its kernel, terminal or app may still run.
"""

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.run import aborted, hold, slots
from studiorunner.run.cleanup import cleanup

from . import _metrics
from ._runtime import clients, logger, services, step


@step
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    detail = event.detail or {}
    arn, status = detail.get("executionArn"), detail.get("status")
    if not arn:
        return {"cleaned": False, "reason": "no executionArn in the event"}
    state = aborted.state_from_history(aborted.history_events(clients()("stepfunctions"), arn))
    # Always (Cleanup may have run and released it already: releasing is idempotent).
    slot = slots.release_slot(state, services(), execution_arn=arn)
    if (state.get("outcome") or {}).get("hold") and (state.get("hold") or {}).get("status") in (None, "held"):
        # Stopped while its kernel was held for a resume: let the hold go now (unless a resume took it).
        released = hold.release(state, services(), "stop")
        logger.info("released the held kernel of a stopped run", extra={"hold": released})
        return {"cleaned": released["status"] == "released", "execution": arn, "status": status,
                "cleanup": {"actions": released["actions"], "problems": released["problems"]}, "slot": slot}
    if not aborted.needs_cleanup(state):
        return {"cleaned": False, "execution": arn, "reason": "nothing started or already cleaned up",
                "slot": slot}
    logger.append_keys(run_id=state["run"].get("run_id"), target=state["run"].get("target"))
    state["error"] = {"Error": f"Execution{str(status).title().replace('_', '')}",
                      "Cause": f"The execution ended {status} before its Cleanup state ran"}
    state.pop("slot", None)  # released above, by this execution's ARN
    outcome = cleanup(state, services())
    _metrics.record_outcome(outcome)  # an aborted or timed-out run is a failed run
    actions = outcome.result.cleanup.to_dict()
    logger.info("cleaned up after %s execution", status, extra={"actions": actions})
    return {"cleaned": True, "execution": arn, "status": status, "cleanup": actions, "slot": slot}
