"""StartTarget: make sure the target's Jupyter app (or instance) is up; start it once if not."""

from __future__ import annotations

from typing import Any

from studiorunner.payload import RunSpec
from studiorunner.run.services import Services, check_deadline
from studiorunner.targets import TargetProgress

def start_target(state: dict[str, Any], services: Services) -> dict[str, Any]:
    run = state["run"]
    now = services.clock()
    check_deadline(run, now)
    spec = RunSpec.from_dict(run["spec"])
    progress = TargetProgress.from_dict(state.get("target"))
    progress = services.target(run).ensure_started(progress, now=now, start_seconds=spec.timeouts.start_seconds)
    return progress.to_dict()
