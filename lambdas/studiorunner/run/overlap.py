"""CheckOverlap: what a schedule's fire does while the schedule's previous run is still running.

A run started by a schedule carries ``schedule: {name, overlap}`` in its payload. Before
anything else (before Prepare: nothing is started, no slot taken, no notebook written), this
step lists the state machine's RUNNING executions and looks for an earlier run of the same
schedule (``<schedule>-<id>``, started before this one; the same second: the smaller name
first, so two fires at once never both give way):

- ``skip`` (the default): the new execution ends at once, SUCCEEDED with ``status: SKIPPED``
  and the reason as its output (``list`` shows it SKIPPED; the step counts ``RunsSkipped``);
- ``queue``: wait (the state machine's ``WaitForPrevious``) until no earlier run is running,
  so the runs of a schedule run one after another, in the order they fired; past the payload's
  ``timeouts.queue_seconds`` (if set) the fire gives way as with ``skip``;
- ``allow``: the state machine does not call this step.

Nothing here knows about Lambda: the step handler passes in its execution and a Step
Functions client; tests use moto.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from studiorunner.naming import is_schedule_run

#: The state machine's Wait between two looks while queued: short at first, then every WAIT_CAP seconds.
WAIT_FIRST, WAIT_CAP = 5, 60


@dataclass
class OverlapState:
    """What CheckOverlap records in ``$.overlap`` (small, no secrets)."""

    decision: str  # "run" | "skip" | "wait"
    schedule: str = ""
    policy: str = "skip"
    previous: list[str] = field(default_factory=list)  # the earlier runs still running
    attempt: int = 0
    wait_seconds: int = 0
    waiting_since: str | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def state_machine_of(execution_arn: str) -> str:
    """``arn:…:execution:<machine>:<name>`` → ``arn:…:stateMachine:<machine>``."""
    head, _, _ = execution_arn.rpartition(":")
    return head.replace(":execution:", ":stateMachine:", 1)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def earlier_running(stepfunctions: Any, *, execution_arn: str, started: datetime, schedule: str) -> list[str]:
    """The schedule's runs, started before this one, that are still RUNNING (oldest first)."""
    me = execution_arn.rsplit(":", 1)[-1]
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_of(execution_arn), "statusFilter": "RUNNING",
                              "maxResults": 1000}
    found: list[tuple[datetime, str]] = []
    while True:
        page = stepfunctions.list_executions(**kwargs)
        for item in page.get("executions", []):
            name = item["name"]
            if name == me or not is_schedule_run(name, schedule):
                continue
            when = _as_datetime(item.get("startDate")) or started
            if when < started or (when == started and name < me):
                found.append((when, name))
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return [name for _, name in sorted(found)]


def check_overlap(state: dict[str, Any], *, execution_arn: str, started: Any, stepfunctions: Any,
                  now: datetime | None = None) -> dict[str, Any]:
    """CheckOverlap: ``run``, ``skip`` or ``wait`` (with ``wait_seconds``); the new ``$.overlap``."""
    raw_payload = state.get("payload")
    payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
    schedule = payload.get("schedule")
    now = now or datetime.now(UTC)
    if not isinstance(schedule, dict) or not isinstance(schedule.get("name"), str):
        # Not a schedule's run, or a malformed 'schedule': Prepare names the problem (PayloadInvalid).
        return OverlapState(decision="run").to_dict()
    name, policy = schedule["name"], schedule.get("overlap", "skip")
    if policy not in ("skip", "queue"):
        return OverlapState(decision="run", schedule=name, policy=str(policy)).to_dict()
    began = _as_datetime(started) or now
    previous = earlier_running(stepfunctions, execution_arn=execution_arn, started=began, schedule=name)
    raw_before = state.get("overlap")
    before: dict[str, Any] = raw_before if isinstance(raw_before, dict) else {}
    attempt = int(before.get("attempt", -1)) + 1
    result = OverlapState(decision="run", schedule=name, policy=policy, previous=previous, attempt=attempt,
                          waiting_since=before.get("waiting_since"))
    if not previous:
        if result.waiting_since:
            result.message = f"the previous run of schedule {name} ended; this one starts"
        return result.to_dict()
    if policy == "skip":
        result.decision = "skip"
        result.message = (f"skipped: the previous run of schedule {name} ({', '.join(previous)}) is still running "
                          "(overlap: skip)")
        return result.to_dict()
    result.waiting_since = result.waiting_since or now.isoformat()
    waited = (now - (_as_datetime(result.waiting_since) or now)).total_seconds()
    raw_timeouts = payload.get("timeouts")
    timeouts: dict[str, Any] = raw_timeouts if isinstance(raw_timeouts, dict) else {}
    limit = timeouts.get("queue_seconds")
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0 and waited > limit:
        # timeouts.queue_seconds bounds a queue, this one too: give way rather than pile up.
        result.decision = "skip"
        result.message = (f"skipped: waited {waited:.0f} s for the previous run of schedule {name} "
                          f"({', '.join(previous)}) to end (overlap: queue, timeouts.queue_seconds={limit:g})")
        return result.to_dict()
    result.decision = "wait"
    result.wait_seconds = int(min(WAIT_CAP, WAIT_FIRST * 2 ** min(attempt, 8)))
    result.message = (f"waiting for the previous run of schedule {name} ({', '.join(previous)}) to end "
                      "(overlap: queue)")
    return result.to_dict()
