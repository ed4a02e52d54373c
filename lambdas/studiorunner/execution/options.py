"""What a :class:`~studiorunner.execution.executor.CellExecutor` is given, and what a cell can answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from studiorunner.errors import StudioRunnerError
from studiorunner.jupyter.connection import KernelChannel

#: execute_requests outstanding at once in the opt-in pipelined mode (the kernel guarded, :mod:`.guard`):
#: measured in bench/ (``python -m bench cells``; bench/README.md). Not RunCells' default (see run_cells.py).
PIPELINE_WINDOW = 4


@dataclass(frozen=True)
class ExecutorOptions:
    """How cells are run; the same for every invocation of a run."""

    cell_timeout: float | None = None  # seconds; None or <= 0: no limit
    allow_errors: bool = False
    window: int = 1  # execute_requests outstanding at once (1: nbclient's; > 1 only with the guard)
    poll_interval: float = 3.0  # how often a silent kernel's state is asked over REST
    replay_grace: float = 1.0  # how long a reconnect waits for replayed messages
    interrupt_grace: float = 5.0  # how long an interrupted cell has to stop
    drain_timeout: float = 5.0  # how long requests queued behind a stop may take to be aborted
    #: After a cell's execute_reply, how long its iopub may stay silent before the runner stops
    #: waiting for its ``status: idle`` (nbclient's ``iopub_timeout``, 4 s): jupyter_server drops
    #: iopub messages it cannot pass on in time, the idle among them.
    iopub_timeout: float = 4.0

    def __post_init__(self) -> None:
        if self.cell_timeout is not None and self.cell_timeout <= 0:
            object.__setattr__(self, "cell_timeout", None)
        object.__setattr__(self, "window", max(1, self.window))


@dataclass(frozen=True)
class KernelControl:
    """What the executor may ask of the kernel besides its socket (REST calls, best effort)."""

    interrupt: Callable[[], None]
    state: Callable[[], str]
    reconnect: Callable[[], KernelChannel] | None = None  # a new socket to the same kernel
    journal: Callable[[], list[dict[str, Any]]] | None = None  # the run's journal, in order


@dataclass(frozen=True)
class Stop:
    """A cell ended the run: raise ``error`` once what is queued is drained (None: a clean stop)."""

    error: StudioRunnerError | None = None
