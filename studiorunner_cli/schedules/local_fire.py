"""The local stack's EventBridge Scheduler: moto keeps schedules but never fires them, so
``studio-runner local up`` calls :meth:`LocalScheduler.tick` every half second and starts,
for every enabled schedule whose fire time has come, the execution its target would start on
AWS: the same input, named ``<schedule>-<execution id>``. Only while the stack is up: a fire
time that passed while it was down is not made up for (nor does Scheduler beyond its retries).
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from studiorunner_cli.schedules.expressions import ExpressionInvalid, parse
from studiorunner_cli.schedules.service import _as_datetime

log = logging.getLogger(__name__)


class LocalScheduler:
    def __init__(self, *, scheduler: Any, stepfunctions: Any, groups: list[str], since: datetime | None = None) -> None:
        self.scheduler, self.sfn, self.groups = scheduler, stepfunctions, groups
        self.last = since or datetime.now(UTC)

    def tick(self, now: datetime | None = None) -> list[str]:
        """Start what fell due in (last tick, now]; the run ids started."""
        now = now or datetime.now(UTC)
        started: list[str] = []
        for group in self.groups:
            try:
                names = [s["Name"] for s in self.scheduler.list_schedules(GroupName=group).get("Schedules", [])]
            except Exception as exc:  # noqa: BLE001 - the loop must go on
                log.warning("cannot list schedules of %s: %s", group, exc)
                continue
            for name in names:
                try:
                    started += self._fire_due(group, name, now)
                except Exception as exc:  # noqa: BLE001 - one bad schedule must not stop the others
                    log.warning("schedule %s: %s: %s", name, type(exc).__name__, exc)
        self.last = now
        return started

    def _fire_due(self, group: str, name: str, now: datetime) -> list[str]:
        raw = self.scheduler.get_schedule(Name=name, GroupName=group)
        if raw.get("State", "ENABLED") != "ENABLED":
            return []
        try:
            expression = parse(raw["ScheduleExpression"], raw.get("ScheduleExpressionTimezone") or "UTC")
        except ExpressionInvalid as exc:
            log.warning("schedule %s: %s", name, exc)
            return []
        due = [t for t in expression.next_fire_times(
            10, after=self.last, start=_as_datetime(raw.get("StartDate")), end=_as_datetime(raw.get("EndDate")),
            created=_as_datetime(raw.get("CreationDate"))) if t <= now]
        started = []
        target = json.loads(raw["Target"]["Input"])
        for _ in due:
            execution_id = secrets.token_hex(8)
            run_id = target["Name"].replace("<aws.scheduler.execution-id>", execution_id)
            self.sfn.start_execution(stateMachineArn=target["StateMachineArn"], name=run_id, input=target["Input"])
            started.append(run_id)
        if due and expression.kind == "at" and raw.get("ActionAfterCompletion") == "DELETE":
            self.scheduler.delete_schedule(Name=name, GroupName=group)
        return started
