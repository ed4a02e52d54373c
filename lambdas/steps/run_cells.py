"""RunCells: execute cells until done or this invocation's time budget is spent."""

import os

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner import run

from ._runtime import metrics, services, step


def _remaining_seconds(context: LambdaContext) -> float:
    remaining = context.get_remaining_time_in_millis() / 1000.0
    # A deployment (or a test) may give each invocation a smaller budget than the Lambda timeout.
    cap = os.environ.get("STUDIO_RUNNER_RUN_CELLS_BUDGET_SECONDS")
    if cap:
        remaining = min(remaining, float(cap) + run.SAFETY_MARGIN_SECONDS)
    return remaining


@step
def handler(event: dict, context: LambdaContext) -> dict:
    before = (event.get("cursor") or {}).get("cells_executed", 0)
    cursor = run.run_cells(event, services(), remaining_seconds=_remaining_seconds(context))
    metrics.add_metric(name="CellsExecuted", unit=MetricUnit.Count, value=cursor.get("cells_executed", 0) - before)
    return cursor
