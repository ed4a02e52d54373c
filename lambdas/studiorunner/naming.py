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
from datetime import UTC, datetime

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
    when = (when or datetime.now(UTC)).astimezone(UTC)
    suffix = _UNSAFE.sub("-", suffix) if suffix else secrets.token_hex(3)
    tail = f"-{when.strftime(_TIME_FORMAT)}-{suffix}"
    stem = stem_of(notebook, default_stem)[: max(1, MAX_NAME - len(tail))].rstrip("-_") or default_stem
    return (stem + tail)[:MAX_NAME]


#: EventBridge Scheduler's ``<aws.scheduler.execution-id>`` (e.g. ``d32c5kddcf5bb8c3``): the
#: room a schedule's run name keeps for it.
SCHEDULER_ID_ROOM = 40


def schedule_run_prefix(schedule: str) -> str:
    """``<schedule>-`` for a schedule's runs, named ``<schedule>-<scheduler execution id>``:
    the Scheduler names the execution itself (its universal target calls StartExecution),
    and cannot format a time without ``:``, which an execution name may not hold; the
    execution's start date is the run's time. A retried delivery of the same invocation
    reuses the id, so Step Functions refuses it instead of running the notebook twice."""
    stem = _UNSAFE.sub("-", schedule).strip("-_") or "schedule"
    return stem[: MAX_NAME - SCHEDULER_ID_ROOM - 1].rstrip("-_") + "-"


def is_schedule_run(run_id: str, schedule: str) -> bool:
    """Is ``run_id`` a run of ``schedule`` (``<schedule>-<id>``)? Scheduler's execution ids and
    ``schedule run``'s have no '-', so ``daily-report-x`` is not a run of ``daily``."""
    prefix = schedule_run_prefix(schedule)
    return run_id.startswith(prefix) and len(run_id) > len(prefix) and "-" not in run_id[len(prefix):]


def is_valid_name(name: str) -> bool:
    return 0 < len(name) <= MAX_NAME and not _UNSAFE.search(name)
