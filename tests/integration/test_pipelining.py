"""Pipelined cells keep one-cell-at-a-time semantics: the kernel-side guard (execution/guard.py)
against a real jupyter_server + ipykernel, with requests held in transit as behind Studio's proxy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from studiorunner.errors import CellExecutionError
from studiorunner.execution import guard
from studiorunner.execution.cursor import Cursor
from studiorunner.execution.executor import CellExecutor
from studiorunner.execution.options import PIPELINE_WINDOW, ExecutorOptions, KernelControl
from studiorunner.jupyter.kernel_protocol import new_session_id
from tests.integration.kernel_server import JupyterServer, start_server

TRANSIT = 0.4  # seconds a request takes to reach the kernel (a slow proxy)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    srv = start_server(tmp_path_factory.mktemp("pipelining-root"))
    try:
        yield srv
    finally:
        srv.stop()


class SlowToSend:
    """A kernel channel whose requests reach the server ``TRANSIT`` s after they are sent."""

    def __init__(self, channel: Any) -> None:
        self.channel, self.outbox = channel, []

    def send(self, msg: dict[str, Any]) -> None:
        self.outbox.append((time.monotonic() + TRANSIT, msg))

    def recv(self, timeout: float) -> dict[str, Any] | None:
        end = time.monotonic() + timeout
        while True:
            while self.outbox and self.outbox[0][0] <= time.monotonic():
                self.channel.send(self.outbox.pop(0)[1])
            wait = end - time.monotonic()
            if self.outbox:
                wait = min(wait, self.outbox[0][0] - time.monotonic())
            msg = self.channel.recv(max(0.0, wait))
            if msg is not None or time.monotonic() >= end:
                return msg

    def close(self) -> None:
        self.channel.close()


def run_pipelined(server: JupyterServer, root: Path, sources: list[str], *, guarded: bool,
                  **options: Any) -> tuple[Any, Cursor | Exception]:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    kid = server.start_kernel()
    session = new_session_id()
    try:
        with server.open(kid, session) as channel:
            if guarded:
                assert guard.install(channel, run_session=session)
            ex = CellExecutor(SlowToSend(channel), nb, session=session,  # type: ignore[arg-type]
                              kernel=KernelControl(interrupt=lambda: server.interrupt(kid),
                                                   state=lambda: server.kernel_state(kid)),
                              options=ExecutorOptions(window=PIPELINE_WINDOW, **options))
            try:
                return nb, ex.run(Cursor(), deadline=time.monotonic() + 60)
            except CellExecutionError as e:
                return nb, e
    finally:
        server.shutdown_kernel(kid)


def sources(root: Path) -> list[str]:
    """The failing cell is the last of the first window; the next request leaves when the first
    cell's reply comes, and reaches the kernel after the failing cell has ended."""
    return ["x = 1"] * (PIPELINE_WINDOW - 1) + [
        "raise ValueError('fast')", f"open({str(root / 'ran-after-the-error')!r}, 'w').close()", "print('never')"]


FAILING = PIPELINE_WINDOW - 1


def test_without_the_guard_a_request_in_transit_runs_after_a_failure(server: JupyterServer, tmp_path: Path) -> None:
    """Why the guard exists: ipykernel aborts only what is queued when a cell fails."""
    nb, outcome = run_pipelined(server, tmp_path, sources(tmp_path), guarded=False)
    assert isinstance(outcome, CellExecutionError)
    assert (tmp_path / "ran-after-the-error").exists()
    assert nb.cells[FAILING + 1].metadata.studio_runner.get("ran_after_stop") is True


def test_with_the_guard_nothing_runs_after_a_failure(server: JupyterServer, tmp_path: Path) -> None:
    nb, outcome = run_pipelined(server, tmp_path, sources(tmp_path), guarded=True)
    assert isinstance(outcome, CellExecutionError) and outcome.facts["cell_index"] == FAILING
    assert not (tmp_path / "ran-after-the-error").exists()
    for cell in nb.cells[FAILING + 1:]:
        assert cell.metadata.studio_runner.status == "aborted" and cell.outputs == []


def test_with_the_guard_allowed_errors_still_run_every_cell_once_in_order(server: JupyterServer, tmp_path: Path) -> None:
    log = tmp_path / "order"
    cells = [f"open({str(log)!r}, 'a').write('{i}')" + ("\nraise ValueError('allowed')" if i in (1, 3) else "")
             for i in range(6)]
    nb, outcome = run_pipelined(server, tmp_path, cells, guarded=True, allow_errors=True)
    assert isinstance(outcome, Cursor) and outcome.done and outcome.cells_failed == 2
    assert log.read_text() == "012345"
    assert [c.execution_count for c in nb.cells] == [1, 2, 3, 4, 5, 6]
