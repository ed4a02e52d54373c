"""The cell execution engine: runs a notebook's code cells over one kernel WebSocket.

It can stop before a deadline and be resumed by a later process from a small JSON
:class:`~studiorunner.execution.cursor.Cursor`: the kernel keeps running the cells already
sent, jupyter_server buffers their messages while no socket is open, and a new executor on
a new channel (same kernel, same WebSocket ``session_id``) collects them. Where the server
replays nothing, the run's journal supplies what was missed, and what nothing can supply is
marked in the cell (:mod:`.gaps`, :mod:`.journal`).

Semantics follow nbclient (``NotebookClient.async_execute_cell``), in its small steps:
send; poll output (a cell is finished when both its shell ``execute_reply`` and its iopub
``status: idle`` have arrived, matched by ``parent_header.msg_id``; an idle that never comes
is given up ``iopub_timeout`` after the reply); check the kernel is alive when the socket is
silent; handle timeouts (interrupt, then give up). Outputs are recorded by
:class:`~.outputs.OutputRecorder`; the pending cells' clocks are :mod:`.clocks`'; what a
reply means for the run is :func:`.outcome.judge`; a cell's status and timing are written
by :mod:`studiorunner.notebook` alone.

Pipelining (``window`` > 1, opt-in: RunCells sends one cell at a time, see run_cells.py) keeps up
to ``window`` execute_requests outstanding. Every request carries ``stop_on_error=True`` and
the count of failed cells seen so far (:mod:`.guard`: the kernel aborts a request sent before
the runner knew of a failure, as ipykernel aborts what was queued, so nothing runs after a
failure that would not have run one cell at a time). After an allowed error
(``allow_errors`` or the ``raises-exception`` tag) the aborted cells are sent again, in
order, once nothing is outstanding; otherwise (and after a clean ``sys.exit()``) they stay
unexecuted. Without the guard a request that reaches the kernel after it finished aborting
runs; such a cell is marked ``metadata.studio_runner.ran_after_stop``, never hidden.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

from nbformat import NotebookNode

from studiorunner import notebook as nbtools
from studiorunner.errors import CellTimeout, KernelDied
from studiorunner.execution.clocks import CellClocks
from studiorunner.execution.cursor import Cursor, Pending
from studiorunner.execution.gaps import MissedOutput
from studiorunner.execution.guard import ERRORS_KEY
from studiorunner.execution.options import ExecutorOptions, KernelControl, Stop
from studiorunner.execution.outcome import judge
from studiorunner.execution.outputs import OutputRecorder, server_note
from studiorunner.jupyter.connection import ChannelClosed, KernelChannel
from studiorunner.jupyter.kernel_protocol import execute_request, parent_msg_id
from studiorunner.jupyter.rest import DEAD_STATES

logger = logging.getLogger(__name__)



def _noop(*_args: Any) -> None:
    return None


class CellExecutor:
    """Runs the code cells of ``nb`` (in place) on the kernel behind ``channel``.

    ``on_cell_start(index, cell)`` and ``on_cell_end(index, cell, status)`` are notifications
    (saving, progress); the cell is already marked when they are called.
    """

    def __init__(
        self,
        channel: KernelChannel,
        nb: NotebookNode,
        *,
        session: str,
        kernel: KernelControl,
        options: ExecutorOptions | None = None,
        on_cell_start: Callable[[int, NotebookNode], None] = _noop,
        on_cell_end: Callable[[int, NotebookNode, str], None] = _noop,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self.nb = nb
        self.session = session
        self.kernel = kernel
        self.options = options or ExecutorOptions()
        self.on_cell_start = on_cell_start
        self.on_cell_end = on_cell_end
        self.clock = clock
        self.wall = wall_clock
        # per-run state, reset by run()
        self.cur = Cursor()
        self.recorder = OutputRecorder(nb, session=session, send=self._send)
        self.clocks = CellClocks(self.options, clock)
        self._last_iopub_of: dict[str, str | None] = {}  # request -> the last of its iopub we received
        self._announced: set[str] = set()
        self._last_heard = 0.0
        self._next_poll = 0.0
        self._idle_strikes = 0
        self._resumed_ids: set[str] = set()  # pending across a pause, not heard from since
        self.missed = self._missed(None, 0.0)
        self._stop: Stop | None = None
        self._drain_until: float | None = None

    # -- public --

    def run(self, cursor: Cursor, *, deadline: float) -> Cursor:
        """Run cells from ``cursor`` until the notebook is done or ``deadline`` (a ``clock()`` value).

        Returns the cursor to resume from (``done`` True when finished). Raises
        :class:`CellExecutionError`, :class:`CellTimeout` or :class:`KernelDied`; the
        notebook then holds every output received, the failing cell marked.
        """
        self._begin(cursor)
        cur = self.cur
        while True:
            if self._stop is None:
                self._send_more(deadline)
            if not cur.pending:
                if self._stop is not None and self._stop.error is not None:
                    raise self._stop.error
                if self._stop is not None or (cur.next_cell >= len(self.nb.cells) and not cur.requeue):
                    return self._end_of_run(done=True)
            now = self.clock()
            if now >= deadline and self._stop is None:
                stop = self.missed.settle(force=True)
                if stop is None:
                    return self._end_of_run(done=False)
                self._begin_stop(stop, deadline)
                continue
            if self._stop is not None and self._drain_until is not None and now >= self._drain_until:
                self._give_up_drain()
                continue
            stop = self._poll_output(self._wait_time(deadline)) or self._act_on_clocks()
            if stop is not None and self._stop is None:
                self._begin_stop(stop, deadline)

    # -- the run's state --

    def _begin(self, cursor: Cursor) -> None:
        cur = self.cur = Cursor.from_dict(cursor.to_dict())  # never mutate the caller's copy
        self.recorder = OutputRecorder(self.nb, cur.outputs, session=self.session, send=self._send)
        resumed = bool(cur.pending) and cur.paused_at is not None
        resumed_at = self.wall()
        now = self.clock()
        self.clocks.resume(cur.pending, wall_now=resumed_at)
        self._announced = {p.msg_id for p in cur.pending if p.started is not None}
        self._last_heard = now
        self._next_poll = now + (self.options.replay_grace if resumed else self.options.poll_interval)
        self._idle_strikes = 0
        self._resumed_ids = {p.msg_id for p in cur.pending} if resumed else set()
        self._stop, self._drain_until = None, None
        self.missed = self._missed(cur.paused_at if resumed else None, resumed_at)
        if resumed:
            self.missed.begin(cur.paused_at, resumed_at)

    def _missed(self, paused_at: float | None, resumed_at: float) -> MissedOutput:
        return MissedOutput(self.cur, self.nb, self.recorder, handle=self._handle, end=self._end,
                            journal=self.kernel.journal, clock=self.clock, wall=self.wall,
                            grace=self.options.replay_grace, paused_at=paused_at, resumed_at=resumed_at)

    def _end_of_run(self, *, done: bool) -> Cursor:
        cur = self.cur
        cur.done = done
        cur.paused_at = None if done else self.wall()
        cur.outputs = self.recorder.state()
        return cur

    def _begin_stop(self, stop: Stop, deadline: float) -> None:
        """A cell ended the run: send nothing more, let what is queued be aborted, then raise/return."""
        self._stop = stop
        now = self.clock()
        self._drain_until = max(now + 0.2, min(now + self.options.drain_timeout, deadline))
        for index in self.cur.requeue:
            self.nb.cells[index].metadata.pop("execution", None)
            self._end(index, "aborted")
        self.cur.requeue = []

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.wall(), datetime.UTC)

    def _end(self, index: int, status: nbtools.CellStatus, **facts: Any) -> None:
        cell = self.nb.cells[index]
        nbtools.mark_cell_finished(cell, status, self._now(), **facts)
        self.on_cell_end(index, cell, status)

    # -- sending --

    def _send_more(self, deadline: float) -> None:
        cur = self.cur
        while len(cur.pending) < self.options.window and self.clock() < deadline:
            if cur.hold:
                if cur.pending:
                    return  # requests queued behind an allowed error may come back aborted
                cur.hold = False
            if cur.requeue:
                if cur.pending:
                    return  # resend aborted cells only once nothing is outstanding: order matters
                index = cur.requeue.pop(0)
            else:
                if cur.next_cell >= len(self.nb.cells):
                    return
                index = cur.next_cell
                cur.next_cell += 1
                cell = self.nb.cells[index]
                if not nbtools.will_run(cell):
                    if cell.cell_type == "code" and cell.source.strip():  # tagged skip-execution
                        self._end(index, "skipped")
                    continue
            cell = self.nb.cells[index]
            msg = execute_request(cell.source, session=self.session, stop_on_error=True, allow_stdin=False)
            msg["metadata"][ERRORS_KEY] = cur.errors_seen  # see guard.py
            self.recorder.start_cell(index)
            nbtools.mark_cell_queued(cell)
            self._send(msg)
            cur.pending.append(Pending(cell=index, msg_id=msg["msg_id"]))

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self.channel.send(msg)
        except ChannelClosed:
            self._reopen()
            self.channel.send(msg)

    # -- polling output --

    def _poll_output(self, timeout: float) -> Stop | None:
        """Wait up to ``timeout`` for one message and apply it; on silence, check the kernel."""
        try:
            msg = self.channel.recv(timeout)
        except ChannelClosed:
            self._reopen()
            return None
        if msg is None:
            return self.missed.settle() or self._check_alive()
        self.missed.observe(msg)
        if self.missed.hold(msg):  # applied once we know whether anything came before it
            self._last_heard = self.clock()
            return self.missed.settle()
        return self._handle(msg)

    def _handle(self, msg: dict[str, Any]) -> Stop | None:
        channel = msg.get("channel")
        msg_type = msg.get("msg_type")
        content = msg.get("content") or {}
        cur = self.cur
        if channel == "iopub" and msg_type == "status" and content.get("execution_state") in ("restarting", "dead"):
            state = content["execution_state"]
            raise self._kernel_died(f"the kernel {'restarted' if state == 'restarting' else 'died'} "
                                    "while the notebook was running", state)
        p = cur.find(parent_msg_id(msg))
        if p is None:
            return None  # not ours (server nudges, other clients, cells already finished)
        self._last_heard = self.clock()
        self._idle_strikes = 0
        self._resumed_ids.discard(p.msg_id)
        if channel == "iopub":
            if not server_note(msg):
                # the kernel's own (the journal has it), never the note the server wrote itself:
                # the journal is read from the last message it holds
                cur.last_iopub = msg.get("msg_id") or (msg.get("header") or {}).get("msg_id") or cur.last_iopub
                self._last_iopub_of[p.msg_id] = cur.last_iopub
            if msg_type == "execute_input" or (msg_type == "status" and content.get("execution_state") == "busy"):
                # busy starts the timeout clock; only execute_input proves the cell runs
                # (an aborted request also gets busy/idle)
                self._mark_started(p, announce=msg_type == "execute_input")
            if msg_type == "status" and content.get("execution_state") == "idle":
                p.idle = True
            self.recorder.process(msg, p.cell)
        elif channel == "shell" and msg_type == "execute_reply":
            if p.reply is not None:
                return None  # a copy (the journal's) of a reply already applied
            p.reply = content.get("status", "error")
            cur.errors_seen = max(cur.errors_seen + (p.reply == "error"),
                                  int((msg.get("metadata") or {}).get(ERRORS_KEY) or 0))
            if p.reply == "error":
                p.ename = content.get("ename")
                p.evalue = str(content.get("evalue", ""))[:1000]
            if p.reply != "aborted":
                self.recorder.record_reply(msg, p.cell)
        else:
            return None
        if p.reply == "aborted" or (p.reply is not None and p.idle):
            return self._finish(p)
        if p.reply is not None:
            self.clocks.heard_after_reply(p.msg_id)
        return None

    def _mark_started(self, p: Pending, *, announce: bool) -> None:
        if self.clocks.start(p.msg_id):
            p.started = self.wall()
        if announce and p.msg_id not in self._announced:
            self._announced.add(p.msg_id)
            cell = self.nb.cells[p.cell]
            nbtools.mark_cell_started(cell, self._now())
            self.on_cell_start(p.cell, cell)

    # -- a cell's outcome --

    def _finish(self, p: Pending) -> Stop | None:
        """A cell's reply and idle are both in: record its outcome; a Stop ends the run."""
        cur = self.cur
        self.missed.settle(before=p.msg_id)  # before the cell ends: its note goes in it
        cur.pending.remove(p)
        self.clocks.forget(p.msg_id)
        self._last_iopub_of.pop(p.msg_id, None)
        index, cell = p.cell, self.nb.cells[p.cell]
        if p.reply == "aborted":
            # Aborted behind an error: send again once nothing is outstanding, unless that
            # error turns out to stop the run (then the cell is marked aborted).
            if self._stop is None:
                cur.requeue.append(index)
                cur.requeue.sort()
                nbtools.mark_cell_queued(cell)
            else:
                cell.metadata.pop("execution", None)  # never ran: no timing, as nbclient leaves it
                self._end(index, "aborted")
            return None
        cur.cells_executed += 1
        self.missed.keep_note(index)
        self.recorder.finish_cell(index)
        if self._stop is not None:
            # the kernel ran it although an earlier cell had stopped the run (see module doc)
            self._end(index, "completed" if p.reply == "ok" else "failed", ran_after_stop=True)
            return None
        verdict = judge(p, cell, self.options)
        if verdict.allowed_failure:
            cur.cells_failed += 1
            cur.hold = True
        if verdict.clean_exit:
            cur.exit = "SystemExit"
        self._end(index, verdict.status, **verdict.facts)
        return verdict.stop

    def _give_up_drain(self) -> None:
        """Cells queued behind a stop never answered: interrupt once, then leave them unexecuted."""
        for p in list(self.cur.pending):
            self.cur.pending.remove(p)
            self._end(p.cell, "aborted", unanswered=True)
        self._interrupt("after the run stopped")

    # -- timeouts --

    def _wait_time(self, deadline: float) -> float:
        now = self.clock()
        until = min(self._next_poll, self._drain_until if self._stop is not None and self._drain_until else deadline)
        return max(0.0, min(self.clocks.until(self.cur.pending, until) - now, self.options.poll_interval))

    def _act_on_clocks(self) -> Stop | None:
        """Interrupt a cell past its timeout; give up on one that did not stop when interrupted;
        as nbclient's ``iopub_timeout``, end a cell whose reply came and whose iopub then stayed
        silent (what the journal still has of it applied first), marked. Bug fix: the run used
        to wait for ever for an idle the server had lost (issue 20)."""
        due = self.clocks.due(self.cur.pending)
        for p in due.interrupt:
            logger.warning("cell %d timed out: interrupting the kernel", p.cell)
            # Bug fix: a failed interrupt (a 503 from a restarting proxy) used to end the
            # run as JupyterHTTPError; it is best effort, and the grace still applies.
            self._interrupt("on a cell timeout")
        if (stuck := due.unstoppable) is not None:
            count, timeout = self.nb.cells[stuck.cell].get("execution_count"), self.options.cell_timeout
            self._end(stuck.cell, "failed", timed_out=True)
            raise CellTimeout(f"Cell {stuck.cell + 1} (In [{count}]) ran longer than {timeout:g} s"
                              " and did not stop when interrupted",
                              cell_index=stuck.cell, execution_count=count, timeout_seconds=timeout)
        if (silent := due.idle_missing) is not None:
            _recovered, stop = self.missed.recover({silent.msg_id}, after=self._last_iopub_of.get(silent.msg_id))
            if silent in self.cur.pending:
                self.missed.idle_missing(silent.cell, self.options.iopub_timeout)
                silent.idle = True
                stop = self._finish(silent) or stop
            return stop
        return None

    def _interrupt(self, why: str) -> None:
        try:
            self.kernel.interrupt()
        except Exception as e:  # noqa: BLE001 - best effort; the caller's deadline still holds
            logger.warning("interrupting the kernel %s failed: %s", why, type(e).__name__)

    # -- is the kernel alive? --

    def _safe_state(self) -> str:
        try:
            return self.kernel.state()
        except Exception as e:  # noqa: BLE001 - an unreachable server is not a verdict
            logger.warning("kernel state check failed: %s", type(e).__name__)
            return "unknown"

    def _check_alive(self) -> Stop | None:
        """The socket was silent: every ``poll_interval``, ask the server about the kernel."""
        now = self.clock()
        if now < self._next_poll:
            return None
        state = self._safe_state()
        if state in DEAD_STATES:
            raise self._kernel_died(f"the kernel is {state}", state)
        silent_for = now - self._last_heard
        if state == "idle" and self.cur.pending and silent_for >= self.options.replay_grace:
            self._idle_strikes += 1
        else:
            self._idle_strikes = 0
        quick = bool(self._resumed_ids)
        self._next_poll = now + (self.options.replay_grace if quick else self.options.poll_interval)
        if self._idle_strikes >= 2:
            self._idle_strikes = 0
            return self.missed.lost_replies(self.wall() - (self.clock() - self._last_heard))
        return None

    def _kernel_died(self, message: str, state: str) -> KernelDied:
        """KernelDied for the cell the kernel was running, which says so in its outputs.

        Bug fix: the cell used to stay ``pending`` (``os._exit`` in the cell: its
        execute_input never left the kernel) or ``aborted`` (SIGKILL), without a word.
        """
        for p in [p for p in self.cur.pending if p.reply not in (None, "aborted")]:
            p.idle = True  # it ran to its end (pipelined, its idle was still on the way)
            self._finish(p)
        index = self.cur.running_cell()
        if index is not None:
            nbtools.mark_cell_kernel_died(self.nb.cells[index], self._now(), state)
            self.on_cell_end(index, self.nb.cells[index], "failed")
        return KernelDied(message, kernel_state=state, cell_index=index)

    def _reopen(self) -> None:
        """The socket dropped: the kernel may be gone; otherwise reopen it if we can."""
        state = self._safe_state()
        if state in DEAD_STATES:
            raise self._kernel_died(f"the kernel is {state} (its WebSocket closed)", state)
        if self.kernel.reconnect is not None:
            stopped_at = self.wall() - (self.clock() - self._last_heard)
            for _attempt in range(3):
                try:
                    self.channel = self.kernel.reconnect()
                except Exception as e:  # noqa: BLE001 - any failure to reopen means the same
                    # No sleep between attempts: each handshake is itself bounded by its timeout.
                    logger.warning("reopening the kernel WebSocket failed: %s", type(e).__name__)
                    continue
                self.missed.begin(stopped_at, self.wall())
                return
        raise KernelDied("the kernel WebSocket closed and could not be reopened", kernel_state=state)
