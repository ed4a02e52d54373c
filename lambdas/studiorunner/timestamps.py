"""One way to write a moment: UTC, ISO 8601, ending in ``Z`` (Jupyter messages', nbclient's form)."""

from __future__ import annotations

import datetime


def utc_iso(when: datetime.datetime | float | None = None, *, timespec: str = "microseconds") -> str:
    """``when`` (an aware or UTC-naive datetime, epoch seconds, or now) as ``2026-11-22T06:00:00.000000Z``.

    ``timespec`` as in :meth:`datetime.datetime.isoformat` ("seconds", "milliseconds"…).
    Notebook metadata keeps papermill's ``+00:00`` form instead (``notebook.py``).
    """
    if when is None:
        moment = datetime.datetime.now(datetime.UTC)
    elif isinstance(when, datetime.datetime):
        moment = when.astimezone(datetime.UTC) if when.tzinfo else when.replace(tzinfo=datetime.UTC)
    else:
        moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return moment.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"
