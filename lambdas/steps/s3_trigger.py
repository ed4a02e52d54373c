"""Lambda handler: an S3 ``Object Created`` event (via EventBridge) under the inbox → a run."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.s3_trigger import InboxObject, TriggerSettings, start_run

logger = Logger(service="studio-runner")
tracer = Tracer(service="studio-runner")

_clients: dict[str, Any] = {}


def _client(name: str) -> Any:
    # Created on first use, then kept for the container's life.
    if name not in _clients:
        _clients[name] = boto3.client(name)
    return _clients[name]


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    obj = InboxObject.from_event_detail(event.get("detail") or {})
    result = start_run(obj, settings=TriggerSettings.from_env(os.environ),
                       s3=_client("s3"), stepfunctions=_client("stepfunctions"))
    logger.info("s3 trigger", extra={"status": result.status, "key": result.key,
                                     "execution_name": result.execution_name, "reason": result.reason})
    return asdict(result)
