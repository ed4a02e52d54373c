"""RunCells: execute cells until done or this invocation's time budget is spent."""

import os

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.errors import StudioRunnerError
from studiorunner.execution.cursor import Cursor
from studiorunner.progress import reporter_for
from studiorunner.run.context import StepContext
from studiorunner.run.run_cells import run_cells
from studiorunner.run.services import SAFETY_MARGIN_SECONDS

from . import _metrics
from ._runtime import logger, services, step


def _remaining_seconds(context: LambdaContext) -> float:
    remaining = context.get_remaining_time_in_millis() / 1000.0
    # A deployment (or a test) may give each invocation a smaller budget than the Lambda timeout.
    cap = os.environ.get("STUDIO_RUNNER_RUN_CELLS_BUDGET_SECONDS")
    if cap:
        remaining = min(remaining, float(cap) + SAFETY_MARGIN_SECONDS)
    return remaining


def _log_cell(record: dict) -> None:
    # One line per finished cell makes CloudWatch Logs a progress view (index, status, seconds).
    logger.info("cell finished", extra={"cell": record["cell"], "status": record["status"], "seconds": record["seconds"]})


@step
def handler(event: dict, context: LambdaContext) -> Cursor:
    # runs/<run id>/progress.json: what `studio-runner watch` polls instead of the notebook.
    progress = reporter_for(event, services().notebooks(), on_cell_finished=_log_cell)
    try:
        ctx = StepContext.begin(event, services())
        before = ctx.state.cursor_summary.cells_executed
        if progress:
            cursor = run_cells(ctx, remaining_seconds=_remaining_seconds(context),
                               on_cell_start=progress.cell_started, on_cell_end=progress.cell_finished,
                               on_cell_resumed=progress.cell_resumed)
        else:
            cursor = run_cells(ctx, remaining_seconds=_remaining_seconds(context))
    except Exception as exc:
        if progress:  # always finished: its refresh timer must not outlive the invocation
            message = exc.message if isinstance(exc, StudioRunnerError) else None
            progress.finish("failed", {"name": type(exc).__name__, "message": message})
        raise
    if progress:
        progress.finish("done" if cursor.done else "running")
    _metrics.record(_metrics.CELLS_EXECUTED, cursor.cells_executed - before, target=ctx.run.target)
    return cursor
