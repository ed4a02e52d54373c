"""StartTarget: make sure the target's Jupyter app (or instance) is up; start it once if not."""

from __future__ import annotations

from studiorunner.run.context import StepContext
from studiorunner.targets import TargetProgress


def start_target(ctx: StepContext) -> TargetProgress:
    """The target's progress: ready, or pending with how long the state machine should wait."""
    progress = ctx.target().ensure_started(ctx.state.target, now=ctx.now,
                                           start_seconds=ctx.spec.timeouts.start_seconds)
    if ctx.run.resume and ctx.run.resume.get("target_created"):
        progress.created = True  # the held run started the app: the resume stops it as that run would have
    return progress
