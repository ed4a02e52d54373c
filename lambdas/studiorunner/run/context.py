"""One prologue for every step after Prepare: the state parsed once, the deadline, the budget."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studiorunner.errors import RunTimeout
from studiorunner.payload import RunSpec
from studiorunner.run.services import SAFETY_MARGIN_SECONDS, Services
from studiorunner.run.state import RunRecord, RunState
from studiorunner.targets import Target

#: A step never gets less than this to work with, even right at the deadline: a zero or
#: negative budget would end the invocation before it saved anything.
MIN_BUDGET_SECONDS = 1.0


@dataclass
class StepContext:
    """What a step knows when it starts: the typed state, the clock reading, the services."""

    state: RunState
    services: Services
    now: float
    _target: Target | None = field(default=None, repr=False)

    @classmethod
    def begin(cls, raw: Mapping[str, Any], services: Services, *, check_deadline: bool = True) -> StepContext:
        """Parse the state once and refuse to go on past the run's deadline (RunTimeout)."""
        ctx = cls(state=RunState.from_dict(raw), services=services, now=services.clock())
        if check_deadline:
            ctx.check_deadline()
        return ctx

    @property
    def run(self) -> RunRecord:
        if self.state.run is None:
            raise ValueError("the state has no run: Prepare did not finish")
        return self.state.run

    @property
    def spec(self) -> RunSpec:
        return self.run.spec

    def target(self) -> Target:
        """The run's target (created once per step)."""
        if self._target is None:
            self._target = self.services.target(self.run.target)
        return self._target

    def check_deadline(self) -> None:
        run = self.run
        if self.state.deadline and self.now > self.state.deadline:
            raise RunTimeout(
                f"The run went past timeouts.run_seconds={run.spec.timeouts.run_seconds:g}",
                run_id=run.run_id,
            )

    def budget(self, remaining_seconds: float) -> float:
        """Seconds this invocation may work: the Lambda's time left less the safety margin,
        never past the run's deadline, never below MIN_BUDGET_SECONDS."""
        budget = remaining_seconds - SAFETY_MARGIN_SECONDS
        if self.state.deadline:
            budget = min(budget, self.state.deadline - self.now)
        return max(budget, MIN_BUDGET_SECONDS)
