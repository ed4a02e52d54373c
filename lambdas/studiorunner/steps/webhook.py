"""Webhook: each run message of the runs topic posted to a chat webhook (Slack-compatible JSON).

SNS invokes it asynchronously; a webhook that fails or never answers makes the invocation
fail, Lambda retries it twice, then the message is kept in the dead-letter queue (an alarm
tells the topic). The URL is read from Secrets Manager (``notification_webhook_secret_arn``:
a bare URL, or JSON ``{"url": …}``) and never logged.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.report import webhook

from ._runtime import clients, logger, step

SECRET_ENV = "STUDIO_RUNNER_WEBHOOK_SECRET_ARN"
_url: str | None = None


def webhook_url() -> str:
    """The URL kept in the secret (read once per container)."""
    global _url
    if _url is None:
        text = clients()("secretsmanager").get_secret_value(SecretId=os.environ[SECRET_ENV])["SecretString"].strip()
        if text.startswith("{"):
            text = str(json.loads(text).get("url") or "")
        _url = text
    return _url


@step
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    posted = 0
    for record in event.get("Records") or []:
        sns = record.get("Sns") or {}
        attributes = {name: str(value.get("Value")) for name, value in (sns.get("MessageAttributes") or {}).items()}
        payload = webhook.slack_payload(sns.get("Subject") or "Studio Runner", sns.get("Message") or "", attributes)
        status = webhook.post(webhook_url(), payload)
        logger.info("run message posted to the webhook", extra={"http_status": status,
                                                                 "run_id": attributes.get("run_id")})
        posted += 1
    return {"posted": posted}
