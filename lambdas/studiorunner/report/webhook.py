"""The run's message posted to a chat webhook (Slack's incoming-webhook JSON, which Mattermost,
Rocket.Chat, Teams' Slack-compatible connectors and most chat tools accept).

One attempt per call, with a deadline: a webhook that answers an error or never answers
raises :class:`WebhookFailed`, and the caller (the Webhook Lambda, invoked asynchronously by
SNS) fails, so Lambda retries it and then keeps the message in a dead-letter queue. The URL
is a secret (it is the credential): it never appears in an error, a log line or a result.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from studiorunner.errors import StudioRunnerError

TIMEOUT_SECONDS = 10.0
_EMOJI = {"SUCCEEDED": ":white_check_mark:", "FAILED": ":x:", "TIMED_OUT": ":hourglass:",
          "ABORTED": ":no_entry_sign:", "SKIPPED": ":fast_forward:"}


class WebhookFailed(StudioRunnerError):
    """The webhook did not take the message (an HTTP error, a timeout, no connection)."""


def slack_payload(subject: str, body: str, attributes: Mapping[str, str]) -> dict[str, Any]:
    """``{"text": …}`` (every Slack-compatible hook reads it) plus blocks for Slack itself."""
    status = attributes.get("status", "")
    title = f"{_EMOJI.get(status, '')} {subject}".strip()
    return {
        "text": f"{title}\n{body}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{_escape(title)}*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{_escape(body)[:2900]}```"}},
        ],
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def post(url: str, payload: Mapping[str, Any], *, timeout: float = TIMEOUT_SECONDS) -> int:
    """POST ``payload`` as JSON; the HTTP status (2xx), else :class:`WebhookFailed`."""
    if not url.startswith(("https://", "http://")):
        raise WebhookFailed("the webhook URL in the secret is not an http(s) URL")
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 — http(s) checked above
            return answer.status
    # Causes are dropped where they carry the URL (HTTPError.url, URLError's request): the URL is the secret.
    except urllib.error.HTTPError as exc:
        raise WebhookFailed(f"the webhook answered HTTP {exc.code}", status=exc.code) from None
    except TimeoutError as exc:  # socket.timeout is TimeoutError; its message has no URL
        raise WebhookFailed(f"the webhook did not answer within {timeout:g} s") from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise WebhookFailed(f"the webhook did not answer within {timeout:g} s") from None
        raise WebhookFailed(f"could not reach the webhook: {type(reason).__name__}") from None
