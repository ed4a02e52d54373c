"""The pending cells' clocks (``clock()`` values, monotonic): when the executor must act.

Three per request: when the kernel started it (its ``cell_timeout`` runs from there), by
when an interrupted cell must have stopped (``interrupt_grace``), and when it was last
heard of once its reply came (its idle is given up ``iopub_timeout`` later, as nbclient
does). The executor asks :meth:`CellClocks.until` how long it may wait, then
:meth:`CellClocks.due` what is due; acting on it (interrupting, raising, marking) is its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from studiorunner.execution.cursor import Pending
from studiorunner.execution.options import ExecutorOptions


@dataclass
class Due:
    """What is due now: cells to interrupt, one that did not stop when interrupted, one whose idle is given up."""

    interrupt: list[Pending]
    unstoppable: Pending | None = None
    idle_missing: Pending | None = None


class CellClocks:
    def __init__(self, options: ExecutorOptions, clock: Callable[[], float]) -> None:
        self.options, self.clock = options, clock
        self.started: dict[str, float] = {}  # msg_id -> when the kernel started it
        self.interrupt_at: dict[str, float] = {}  # msg_id -> by when it must have stopped
        self.replied: dict[str, float] = {}  # msg_id -> last heard of, once its reply came

    def resume(self, pending: Iterable[Pending], *, wall_now: float) -> None:
        """A new process: map wall-clock starts from the one before onto our clock."""
        now = self.clock()
        self.started, self.interrupt_at, self.replied = {}, {}, {}
        for p in pending:
            if p.started is not None:
                self.started[p.msg_id] = now - max(0.0, wall_now - p.started)
            if p.reply is not None and not p.idle:
                self.replied[p.msg_id] = now

    def start(self, msg_id: str) -> bool:
        """The kernel started it (True the first time)."""
        if msg_id in self.started:
            return False
        self.started[msg_id] = self.clock()
        return True

    def heard_after_reply(self, msg_id: str) -> None:
        self.replied[msg_id] = self.clock()

    def forget(self, msg_id: str) -> None:
        for clocks in (self.started, self.interrupt_at, self.replied):
            clocks.pop(msg_id, None)

    def until(self, pending: Iterable[Pending], until: float) -> float:
        """The earliest of ``until`` and the next time something is due."""
        timeout = self.options.cell_timeout
        for p in pending:
            if p.msg_id in self.replied:
                until = min(until, self.replied[p.msg_id] + self.options.iopub_timeout)
            if p.msg_id in self.interrupt_at:
                until = min(until, self.interrupt_at[p.msg_id])
            elif timeout is not None and p.msg_id in self.started:
                until = min(until, self.started[p.msg_id] + timeout)
        return until

    def due(self, pending: Iterable[Pending]) -> Due:
        """What is due now; a cell past its timeout is marked ``timed_out`` and given its grace."""
        now, timeout = self.clock(), self.options.cell_timeout
        due = Due(interrupt=[])
        for p in pending:
            if p.msg_id in self.interrupt_at:
                if now >= self.interrupt_at[p.msg_id] and due.unstoppable is None:
                    due.unstoppable = p
                continue
            replied = self.replied.get(p.msg_id)
            if replied is not None and now - replied >= self.options.iopub_timeout and due.idle_missing is None:
                due.idle_missing = p
            started = self.started.get(p.msg_id)
            if timeout is not None and started is not None and p.reply is None and now - started >= timeout:
                p.timed_out = True
                self.interrupt_at[p.msg_id] = now + self.options.interrupt_grace
                due.interrupt.append(p)
        return due
