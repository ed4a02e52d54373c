"""S3Trigger: an S3 ``Object Created`` event (via EventBridge) under the inbox → a run."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.s3_trigger import InboxObject, TriggerSettings, start_run

from ._runtime import clients, logger, step


@step
@event_source(data_class=S3EventBridgeNotificationEvent)
def handler(event: S3EventBridgeNotificationEvent, context: LambdaContext) -> dict[str, Any]:
    uploaded = event.detail.object
    obj = InboxObject.uploaded(bucket=event.detail.bucket.name, key=uploaded.key, etag=uploaded.etag,
                               sequencer=uploaded.get("sequencer") or "", version_id=uploaded.get("version-id") or "",
                               event_time=event.get("time") or "")
    result = start_run(obj, settings=TriggerSettings.from_env(os.environ),
                       s3=clients()("s3"), stepfunctions=clients()("stepfunctions"))
    logger.info("s3 trigger", extra={"status": result.status, "key": result.key,
                                     "execution_name": result.execution_name, "reason": result.reason})
    return asdict(result)
