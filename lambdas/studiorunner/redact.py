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
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact", "safe_url", "without_controls"]


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
