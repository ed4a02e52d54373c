"""Run metrics per target: what the stack's dashboard and alarms read (infra/observability.py).

Namespace ``StudioRunner`` (POWERTOOLS_METRICS_NAMESPACE), dimensions ``service`` (the
deployment's resource prefix, POWERTOOLS_SERVICE_NAME) and ``target``. The names below are
the contract with ``infra/observability.py``; a template test checks they agree.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from studiorunner.run.state import Outcome

from ._runtime import metrics

RUNS_STARTED = "RunsStarted"
RUNS_SUCCEEDED = "RunsSucceeded"
RUNS_FAILED = "RunsFailed"
RUN_DURATION = "RunDurationSeconds"
APP_WAIT = "AppWaitSeconds"  # from the first StartTarget check to the app being ready
SLOT_WAIT = "SlotWaitSeconds"  # from the first try for a slot to getting one (concurrency per target)
CELLS_EXECUTED = "CellsExecuted"
CLEANUP_FAILURES = "CleanupFailures"  # something the run started may still be running (and billing)
RUNS_SKIPPED = "RunsSkipped"  # a schedule's fire while its previous run still ran (overlap: skip)
METRIC_NAMES = (RUNS_STARTED, RUNS_SUCCEEDED, RUNS_FAILED, RUN_DURATION, APP_WAIT, SLOT_WAIT, CELLS_EXECUTED,
                CLEANUP_FAILURES, RUNS_SKIPPED)

_UNITS = {RUN_DURATION: MetricUnit.Seconds, APP_WAIT: MetricUnit.Seconds, SLOT_WAIT: MetricUnit.Seconds}


def record(name: str, value: float, *, target: str | None) -> None:
    """Add one metric for ``target`` (flushed by the ``step`` wrapper at the end of the invocation)."""
    if not target:
        return  # a run refused before it had a target: nothing to attribute
    metrics.add_dimension(name="target", value=target)
    metrics.add_metric(name=name, unit=_UNITS.get(name, MetricUnit.Count), value=value)


def record_outcome(outcome: Outcome) -> None:
    """Cleanup's (or ExecutionEnded's) outcome: succeeded/failed, duration, cleanup problems."""
    result = outcome.result
    record(RUNS_SUCCEEDED if outcome.succeeded else RUNS_FAILED, 1, target=result.target)
    if result.duration_seconds is not None:
        record(RUN_DURATION, result.duration_seconds, target=result.target)
    if result.cleanup.problems:
        record(CLEANUP_FAILURES, 1, target=result.target)
