"""Notify: one message per ended run (FAILED, TIMED_OUT, ABORTED; SUCCEEDED with
``notify_on_success``), written from the run's record and published to the runs topic with
attributes subscribers filter on. Invoked by an EventBridge rule on the execution's status."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.report import notify
from studiorunner.store import S3NotebookStore

from ._runtime import clients, logger, step


@step
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    arn = (event.detail or {}).get("executionArn")
    if not arn:
        return {"sent": False, "reason": "no executionArn in the event"}
    msg = notify.run_message(arn, stepfunctions=clients()("stepfunctions"), store=S3NotebookStore(clients()("s3")),
                             default_target=os.environ.get("STUDIO_RUNNER_DEFAULT_TARGET"))
    message_id = notify.publish(clients()("sns"), os.environ[notify.TOPIC_ENV], msg)
    logger.info("run message sent", extra={"subject": msg.subject, "attributes": msg.attributes,
                                           "message_id": message_id})
    return {"sent": True, "message_id": message_id, "subject": msg.subject, "attributes": msg.attributes}
