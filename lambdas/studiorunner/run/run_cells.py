"""RunCells: execute cells from the cursor until done or this invocation's time budget is spent."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nbformat import NotebookNode

from studiorunner import notebook as nbtools
from studiorunner.errors import JupyterHTTPError, KernelDied, OutputUnwritable, StudioRunnerError
from studiorunner.execution import journal as run_journal
from studiorunner.execution.cursor import Cursor
from studiorunner.execution.executor import CellExecutor
from studiorunner.execution.options import ExecutorOptions, KernelControl
from studiorunner.jupyter.connection import KernelChannel
from studiorunner.jupyter.rest import DEAD_STATES, JupyterClient
from studiorunner.run.cleanup import write_back_path
from studiorunner.run.context import StepContext
from studiorunner.run.state import present
from studiorunner.store import ThrottledSaver

#: on_cell_start(index, cell) / on_cell_end(index, cell, status): called once the cell is marked.
CellHook = Callable[[int, NotebookNode], None]
CellEndHook = Callable[[int, NotebookNode, str], None]


def _ignore(*_args: Any) -> None:
    return None


def run_cells(ctx: StepContext, *, remaining_seconds: float,
              on_cell_start: CellHook = _ignore, on_cell_end: CellEndHook = _ignore,
              on_cell_resumed: CellHook = _ignore) -> Cursor:
    """Execute cells from the cursor until done or the time budget is spent."""

    services = ctx.services
    run, spec, kernel = ctx.run, ctx.spec, ctx.state.kernel
    # A resume starts at its resume point; every later invocation carries on from its cursor.
    cursor = ctx.state.cursor if ctx.state.cursor is not None or not run.resume \
        else Cursor(next_cell=int(run.resume["from_index"]))
    cursor = cursor or Cursor()
    target = ctx.target()
    jupyter = JupyterClient(target.login())
    store = services.notebooks()
    # What StartKernel left in the state before RunCells could run.
    output_uri = present(run.output_uri, "run.output_uri")
    kernel_id = present(kernel.id, "kernel.id")
    client_session = present(kernel.client_session_id, "kernel.client_session_id")
    nb = store.read(output_uri)
    resumed = cursor.running_cell() if cursor.pending and cursor.paused_at is not None else None
    if resumed is not None:  # the cell the previous invocation left running: progress takes it over
        on_cell_resumed(resumed, nb.cells[resumed])
    # When S3 refuses the notebook to the end (the bucket deleted mid-run…), it goes into the
    # target's tree where write_back would put it, and OutputUnwritable says so.
    saver = ThrottledSaver(store, output_uri, fallback=lambda done: _write_to_tree(jupyter, kernel.path, done))
    deadline = time.monotonic() + ctx.budget(remaining_seconds)

    def on_start(index: int, cell: NotebookNode) -> None:
        on_cell_start(index, cell)

    def on_end(index: int, cell: NotebookNode, status: str) -> None:
        saver.save_if_due(nb)
        on_cell_end(index, cell, status)

    journal_path = kernel.journal

    def read_journal() -> list[dict[str, Any]]:
        text = jupyter.read_text(journal_path) if journal_path else None
        if text is None:
            raise FileNotFoundError("the run's journal is missing")
        return run_journal.parse(text)

    def kernel_state() -> str:
        try:
            return jupyter.kernel_state(kernel_id)
        except JupyterHTTPError:
            if target.lost_error() is not None:
                return "missing"  # gone with its app (idle shutdown): TargetFailed below says so
            raise

    ws = jupyter.channels(kernel_id, client_session)
    try:
        try:
            channel = KernelChannel.open(ws.url, headers=ws.headers)
        except Exception as exc:
            lost = target.lost_error()  # the app stopped under the run (idle shutdown)?
            if lost is not None:
                raise lost from None
            state_now = jupyter.kernel_state(kernel_id)
            if state_now not in DEAD_STATES:
                raise
            # The kernel died between two invocations: the cell it was running says so.
            index = cursor.running_cell()
            if index is not None:
                nbtools.mark_cell_kernel_died(nb.cells[index], datetime.now(UTC), state_now)
            raise KernelDied(f"Kernel {kernel.name!r} is gone", kernel=kernel.name, kernel_state=state_now,
                             cell_index=index) from exc
        executor = CellExecutor(
            channel, nb, session=client_session,
            kernel=KernelControl(
                interrupt=lambda: jupyter.interrupt_kernel(kernel_id),
                state=kernel_state,
                # A dropped socket is reopened with the same session_id, so jupyter_server replays
                # what it buffered; where it does not (a proxy dropped the session_id, another
                # client took the buffer), the run's journal supplies it.
                reconnect=lambda: KernelChannel.open(ws.url, headers=ws.headers),
                journal=read_journal if journal_path else None,
            ),
            # One cell at a time, as nbclient. Pipelining (window=PIPELINE_WINDOW, safe against an
            # error with the kernel's guard: execution/guard.py) is not the default yet: with it, a
            # local stop (the run's kernel deleted mid-cell) let the queued next cell run in 1 of 2
            # runs of e2e/test_cli_local.py::test_a_signal_mid_run_stops_it_cleans_up_and_keeps_the_partial_notebook.
            options=ExecutorOptions(cell_timeout=spec.timeouts.cell_seconds, allow_errors=spec.allow_errors),
            on_cell_start=on_start, on_cell_end=on_end,
        )
        try:
            cursor = executor.run(cursor, deadline=deadline)
        finally:
            channel.close()
    except StudioRunnerError as caught:
        error: StudioRunnerError = caught
        if isinstance(error, (KernelDied, JupyterHTTPError)):
            error = target.lost_error() or error  # the app stopped under the run (idle shutdown)?
        _record_failure(nb, error)
        try:
            saver.flush(nb)
        except OutputUnwritable as unwritable:  # the run's first error stays its error
            error.message = f"{error.message} ({unwritable.message})"
            error.facts["written_to"] = unwritable.facts.get("written_to")
        # Where the executed notebook is, as a fact: Cleanup's cause names it (from the run record).
        error.facts.setdefault("output_notebook", run.output_uri)
        if error is caught:
            raise
        raise error from None
    if cursor.done:
        nbtools.finish_run(nb, "succeeded", datetime.now(UTC), None)
    saver.flush(nb)
    # The cursor goes back into the next invocation as is: nothing but the cursor in it.
    return cursor


def _write_to_tree(jupyter: JupyterClient, source_path: str | None, nb: NotebookNode) -> str:
    """Write the executed notebook beside its source in the target's tree; its path there."""

    path = write_back_path(source_path or "studio-runner-output.ipynb")
    jupyter.write_notebook(path, nb)
    return path


def _record_failure(nb: NotebookNode, exc: StudioRunnerError) -> None:
    facts = exc.facts
    index = facts.get("cell_index")
    if index is not None:
        nbtools.add_error_banner(nb, index, facts.get("ename", type(exc).__name__), facts.get("evalue", exc.message))
    nbtools.finish_run(nb, "failed", datetime.now(UTC),
                       {"error": type(exc).__name__, "message": exc.message,
                        **{k: v for k, v in facts.items() if isinstance(v, (str, int, float, type(None)))}})
