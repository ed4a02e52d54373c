"""Keeping secrets out of what the library writes: messages, causes, logs, summaries.

Two helpers, for two different inputs:

* :func:`safe_url` takes one URL the library itself built (a REST or WebSocket address)
  and keeps only ``scheme://host[:port]/path``: the query string (a presigned URL's token,
  a WebSocket's ``session_id``), the fragment and any ``user:password@`` are dropped.
* :func:`redact` takes free text someone else wrote (a shell command, its output) and
  replaces the secrets it can recognise with ``…``: URL query strings, ``user:token@``
  in URLs, the values of auth headers, and ``KEY=value`` where the name says secret
  (``API_TOKEN=…``, ``AWS_SECRET_ACCESS_KEY=…``, ``--password=…``).

Recognising secrets in free text is best effort: the places that must never hold a secret
(causes, Step Functions history) get no command output at all (see terminal.commands).

And one for third-party log records, :func:`quiet_secrets_in_logs` (its section below).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from urllib.parse import urlsplit

__all__ = ["quiet_secrets_in_logs", "redact", "redact_secrets", "remember_secret", "safe_url", "without_controls"]


def safe_url(url: str) -> str:
    """``url`` as ``scheme://host[:port]/path``: no userinfo, query string or fragment."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a malformed port: leave it out rather than fail a message
        port = None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"


_HIDDEN = "…"

# scheme://user:password@host — the userinfo goes (a bare ``user@`` is kept: no secret).
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/?#@'\"<>]*:[^\s/?#@'\"<>]*@")
# scheme://host/path?query — the query string goes (presigned URLs carry their token there).
_URL_QUERY = re.compile(r"(?P<url>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'\"<>]+)\?[^\s'\"<>]*")
# Authorization: token abc / Cookie: a=b / X-XSRFToken: … — up to the end of the line or quote.
_AUTH_HEADER = re.compile(
    r"(?i)(?P<name>\b(?:proxy-)?authorization|\bcookie|\bset-cookie|\bx-xsrftoken|\bx-amz-security-token)"
    r"(?P<sep>\s*:\s*)[^\n'\"]+")
# NAME=value (shell assignments, env output, --option=value) where NAME says it is a secret.
_SECRET_NAME = r"[A-Za-z0-9_.-]*(?:token|secret|passw(?:or)?d|passwd|api[_-]?key|access[_-]?key|private[_-]?key|credential|auth(?!or)|signature|cookie|session[_-]?key)[A-Za-z0-9_.-]*"
_SECRET_ASSIGNMENT = re.compile(
    rf"(?i)(?P<name>(?<![A-Za-z0-9_.-]){_SECRET_NAME})(?P<sep>\s*=\s*|\s*:\s+(?=\S))"
    r"(?P<value>\"[^\"\n]*\"|'[^'\n]*'|[^\s'\";&|]+)")


def redact(text: str) -> str:
    """``text`` with the secrets it visibly holds replaced by ``…`` (see the module doc)."""
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{_HIDDEN}@", text)
    text = _URL_QUERY.sub(lambda m: f"{m.group('url')}?{_HIDDEN}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group('name')}{m.group('sep')}{_HIDDEN}", text)
    return _SECRET_ASSIGNMENT.sub(_hide_value, text)


def _hide_value(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group('name')}{match.group('sep')}{quote}{_HIDDEN}{quote}"


# C0 controls but tab and newline, DEL, and C1 controls (CSI is U+009B): a terminal acts on them.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def without_controls(text: str) -> str:
    """``text`` with control characters (ESC, BEL, CR, …) shown as ``\\xNN`` rather than sent
    to whoever reads it: a command's raw escape sequences must not recolour, retitle or
    rewrite the terminal of a person reading a cause or a log."""
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


# ---- log records -----------------------------------------------------------------------
# Keep presigned URLs, tokens, cookies and signatures out of every log line, at every level.
#
# At DEBUG, botocore logs the response of ``CreatePresignedDomainUrl`` (the ``AuthorizedUrl``
# with its token) and of ``GetSecretValue`` (a ``jupyter`` target's token as ``SecretString``),
# the signed request (``X-Amz-Security-Token``, a bytes header: ``b'…'``) and the canonical
# request it signs; urllib3 logs every request line (``GET /auth?token=…``). No log level may
# print a secret, so a filter rewrites such records before anything shows them:
#
# - by pattern (the shapes above), and
# - by value: a secret the run handled (a token read from Secrets Manager, a presigned URL's
#   token, the login cookies) is registered with :func:`remember_secret` and replaced wherever
#   it appears, whatever the library or the shape of the line.
#
# A filter on a logger applies only to records created by that very logger, so the filter
# goes on each library logger *and* on each handler of the root logger (the Lambda runtime's,
# and any a test adds), which every propagating record reaches. :func:`quiet_secrets_in_logs`
# is called by every step handler at the start of each invocation (``studiorunner/steps/_runtime.step``),
# and again before each login, as new loggers appear when modules load.

# (responses: moto's HTTP mock, in the local stack only, logs each passed-through URL)
_PREFIXES = ("botocore", "boto3", "urllib3", "requests", "s3transfer", "websocket", "responses")
_REDACTED = "<redacted>"
# An optional bytes prefix and quote before a value: botocore prints header dicts with bytes values.
_Q = r"(?:b?['\"])?"
_PATTERNS = [
    # presigned URLs: ?token=… (Studio), ?authToken=… (notebook instances)
    (re.compile(r"((?:[?&]|\b)(?:token|authToken|auth_token)=)[^&\s'\"\\]+", re.IGNORECASE), r"\1" + _REDACTED),
    # X-Amz-Security-Token: value / 'X-Amz-Security-Token': b'value' / x-amz-security-token:value (canonical request)
    (re.compile(r"(x-amz-security-token['\"]?\s*[:=]\s*" + _Q + r")[^'\"\s,}&\\]+", re.IGNORECASE), r"\1" + _REDACTED),
    (re.compile(r"((?:Signature|X-Amz-Signature)\s*[=:]\s*)[0-9a-f]{16,}", re.IGNORECASE), r"\1" + _REDACTED),
    (re.compile(r"((?:Cookie|Set-Cookie)['\"]?\s*:\s*" + _Q + r")[^'\"\n]+", re.IGNORECASE), r"\1" + _REDACTED),
    # Secrets Manager's answer, "SecretString": "…" or "SecretBinary": "…": the rest of the line
    # goes (a JSON secret inside the JSON answer, escaped once or twice, has no safe end to find)
    (re.compile(r"((?:\"|')Secret(?:String|Binary)\\?(?:\"|')\s*:\s*)[^\n]*"), r"\1" + _REDACTED),
]

#: Values registered by the run (newest last); bounded, as a warm container serves many runs.
_KNOWN: OrderedDict[str, None] = OrderedDict()
_KNOWN_MAX = 256
_MIN_LENGTH = 8  # a shorter value is no secret worth the name, and would blot out ordinary words
_lock = threading.Lock()


def remember_secret(value: str | bytes | None) -> None:
    """Register a secret the run handles: every log line is cleaned of it from now on."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not value or len(value) < _MIN_LENGTH:
        return
    with _lock:
        _KNOWN[value] = None
        _KNOWN.move_to_end(value)
        while len(_KNOWN) > _KNOWN_MAX:
            _KNOWN.popitem(last=False)


def redact_secrets(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    with _lock:
        known = list(_KNOWN)
    for value in known:
        if value in text:
            text = text.replace(value, _REDACTED)
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
        for name, value in list(vars(record).items()):  # extra keys (a URL, a header) too
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                cleaned = redact_secrets(value)
                if cleaned != value:
                    setattr(record, name, cleaned)
        return True


#: What every LogRecord has; anything else on a record came in through ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


_FILTER = SecretFilter()


def _add(filterer: logging.Filterer) -> None:
    if _FILTER not in filterer.filters:
        filterer.addFilter(_FILTER)


def quiet_secrets_in_logs(*loggers: logging.Logger) -> None:
    """Install the filter on every logger of the libraries that log requests, on each handler
    of the root logger, and on ``loggers`` (and their handlers) — idempotent and cheap enough
    to call at the start of every invocation."""
    names = [name for name in list(logging.root.manager.loggerDict) if name.split(".")[0] in _PREFIXES]
    for name in set(names) | set(_PREFIXES) | {"botocore.parsers", "botocore.endpoint", "botocore.auth",
                                                "botocore.hooks", "urllib3.connectionpool"}:
        _add(logging.getLogger(name))
    for logger in (logging.getLogger(), *loggers):
        _add(logger)
        for handler in list(logger.handlers):
            _add(handler)
