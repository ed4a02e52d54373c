"""Run ids people can read: ``<notebook stem>-<UTC time>-<short random>``.

The run id is the Step Functions execution name, so it must fit its rules: at most 80
characters of ``[A-Za-z0-9_-]`` (names with other characters are accepted by the API but
break CloudWatch metrics), unique among the state machine's executions for 90 days. The
time is to the second and sortable (``20261130T174501Z``); the suffix makes two runs of the
same notebook in the same second distinct (6 hex digits: a collision in one second is
1 in 16 million), or, for a derived name, makes it a function of what it derives from.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

MAX_NAME = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


def stem_of(notebook: str | None, default: str = "run") -> str:
    """``reports/Daily Report.ipynb`` → ``Daily-Report``; an s3:// URI works too."""
    name = str(notebook or "").rstrip("/").rsplit("/", 1)[-1]
    if name.lower().endswith(".ipynb"):
        name = name[: -len(".ipynb")]
    return _UNSAFE.sub("-", name).strip("-_") or default


def run_name(notebook: str | None, *, when: datetime | None = None, suffix: str | None = None,
             default_stem: str = "run") -> str:
    """``<stem>-<UTC time>-<suffix>`` within 80 characters (the stem is shortened, never the rest)."""
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    suffix = _UNSAFE.sub("-", suffix) if suffix else secrets.token_hex(3)
    tail = f"-{when.strftime(_TIME_FORMAT)}-{suffix}"
    stem = stem_of(notebook, default_stem)[: max(1, MAX_NAME - len(tail))].rstrip("-_") or default_stem
    return (stem + tail)[:MAX_NAME]


def is_valid_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME and not _UNSAFE.search(name)
