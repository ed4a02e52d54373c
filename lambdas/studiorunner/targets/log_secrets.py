"""Keep presigned URLs, tokens and signatures out of third-party DEBUG logs.

At DEBUG, botocore logs the response of ``CreatePresignedDomainUrl`` (the ``AuthorizedUrl``
with its token) and the signed request (``X-Amz-Security-Token``), and urllib3 logs every
request line (``GET /auth?token=…``). No log level may print a secret, so a filter on
those libraries' loggers rewrites such records before any handler sees them. A filter on
a logger only applies to records created by that very logger, hence one per logger.
"""

from __future__ import annotations

import logging
import re

_PREFIXES = ("botocore", "boto3", "urllib3", "requests", "s3transfer")
_PATTERNS = [
    # presigned URLs: ?token=… (Studio), ?authToken=… (notebook instances)
    (re.compile(r"((?:[?&]|\b)(?:token|authToken|auth_token)=)[^&\s'\"\\]+", re.IGNORECASE), r"\1<redacted>"),
    (re.compile(r"((?:X-Amz-Security-Token|x-amz-security-token)['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}&]+"), r"\1<redacted>"),
    (re.compile(r"((?:Signature|X-Amz-Signature)\s*[=:]\s*)[0-9a-f]{16,}", re.IGNORECASE), r"\1<redacted>"),
    (re.compile(r"((?:Cookie|Set-Cookie)['\"]?\s*:\s*['\"]?)[^'\"\n]+", re.IGNORECASE), r"\1<redacted>"),
]


def redact_secrets(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class SecretFilter(logging.Filter):
    """Rewrites a record's message with the secrets replaced by ``<redacted>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: let logging report it as it would
            return True
        cleaned = redact_secrets(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = SecretFilter()


def quiet_secrets_in_logs() -> None:
    """Install the filter on every logger of the libraries that log requests (idempotent;
    cheap enough to call before each login, as new loggers appear when modules load)."""
    names = [name for name in list(logging.root.manager.loggerDict) if name.split(".")[0] in _PREFIXES]
    for name in set(names) | set(_PREFIXES) | {"botocore.parsers", "botocore.endpoint", "botocore.auth",
                                                "botocore.hooks", "urllib3.connectionpool"}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
