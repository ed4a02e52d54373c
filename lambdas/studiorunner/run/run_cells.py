"""RunCells: execute cells from the cursor until done or this invocation's time budget is spent."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from studiorunner import notebook as nbtools
from studiorunner.errors import KernelDied, StudioRunnerError
from studiorunner.jupyter.rest import JupyterClient
from studiorunner.run.context import StepContext
from studiorunner.run.services import Services
from studiorunner.store import ThrottledSaver

def run_cells(state: dict[str, Any], services: Services, *, remaining_seconds: float) -> dict[str, Any]:
    """Execute cells from the cursor until done or the time budget is spent."""
    from studiorunner.execution.executor import CellExecutor, Cursor
    from studiorunner.jupyter.connection import KernelChannel

    ctx = StepContext.begin(state, services)
    run, spec, kernel = ctx.run, ctx.spec, ctx.state.kernel
    cursor = Cursor.from_dict(ctx.state.cursor)
    jupyter = JupyterClient(ctx.target().login())
    store = services.notebooks()
    nb = store.read(run.output_uri)
    saver = ThrottledSaver(store, run.output_uri)
    deadline = time.monotonic() + ctx.budget(remaining_seconds)

    def on_start(index: int, cell) -> None:
        nbtools.mark_cell_started(cell, datetime.now(timezone.utc))

    def on_end(index: int, cell, status: str) -> None:
        nbtools.mark_cell_finished(cell, status, datetime.now(timezone.utc))
        saver.save_if_due(nb)

    ws = jupyter.channels(kernel.id, kernel.client_session_id)
    try:
        channel = KernelChannel.open(ws.url, headers=ws.headers)
    except Exception as exc:
        if jupyter.kernel_state(kernel.id) in ("dead", "missing"):
            raise KernelDied(f"Kernel {kernel.name!r} is gone", kernel=kernel.name,
                             output_notebook=run.output_uri) from exc
        raise
    executor = CellExecutor(
        channel, nb, session=kernel.client_session_id,
        cell_timeout=spec.timeouts.cell_seconds, allow_errors=spec.allow_errors,
        interrupt=lambda: jupyter.interrupt_kernel(kernel.id),
        kernel_state=lambda: jupyter.kernel_state(kernel.id),
        on_cell_start=on_start, on_cell_end=on_end,
        # A dropped socket is reopened with the same session_id, so jupyter_server replays what it buffered.
        reconnect=lambda: KernelChannel.open(ws.url, headers=ws.headers),
    )
    try:
        cursor = executor.run(cursor, deadline=deadline)
    except StudioRunnerError as exc:
        _record_failure(nb, exc)
        saver.flush(nb)
        # Where the executed notebook is, as a fact: Cleanup's cause names it (from the run record).
        exc.facts.setdefault("output_notebook", run.output_uri)
        raise
    finally:
        channel.close()
    if cursor.done:
        nbtools.finish_run(nb, "succeeded", datetime.now(timezone.utc), None)
    saver.flush(nb)
    # The cursor goes back into the next invocation as is: nothing but the cursor in it.
    return cursor.to_dict()


def _record_failure(nb, exc: StudioRunnerError) -> None:
    facts = exc.facts
    index = facts.get("cell_index")
    if index is not None:
        nbtools.add_error_banner(nb, index, facts.get("ename", type(exc).__name__), facts.get("evalue", exc.message))
    nbtools.finish_run(nb, "failed", datetime.now(timezone.utc),
                       {"error": type(exc).__name__, "message": exc.message, **{k: v for k, v in facts.items() if isinstance(v, (str, int, float, type(None)))}})
