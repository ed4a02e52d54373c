"""The cell execution engine: runs a notebook's code cells over one kernel WebSocket.

It can stop before a deadline and be resumed by a later process from a small JSON
:class:`Cursor`: the kernel keeps running the cells already sent, jupyter_server buffers
their messages while no socket is open, and a new :class:`CellExecutor` on a new channel
(same kernel, same WebSocket ``session_id``) collects them.

Semantics follow nbclient (``NotebookClient.async_execute_cell``): a cell is finished
when both its shell ``execute_reply`` and its iopub ``status: idle`` have arrived,
matched by ``parent_header.msg_id``; outputs are recorded by
:class:`studiorunner.execution.outputs.OutputRecorder`.

Pipelining (opt-in, ``window`` > 1): up to ``window`` execute_requests are outstanding,
so the kernel never waits for a network round trip between cells. The default is 1, as in
nbclient: a cell is sent only once the previous one has finished. Pipelining is not the
default because ipykernel's ``stop_on_error`` only aborts requests already queued when
the error happens; one still in transit (behind Studio's proxy and TLS, a large cell)
runs after the failure — user code with side effects, which a run must never do. Every
request is sent with
``stop_on_error=True``: after an error the kernel aborts what is queued behind it. When
the error is allowed (``allow_errors`` or the ``raises-exception`` tag) the aborted
cells are sent again, in order, once nothing is outstanding; otherwise (and after a
clean ``sys.exit()``) they stay unexecuted. Known limit of pipelining: a request that
reaches the kernel after it finished aborting (a cell that fails within one network
round trip) runs; such a cell is marked ``metadata.studio_runner.ran_after_stop`` so it
is visible, never hidden.

Output taken by another client: jupyter_server replays its buffer only to the session that
left it; if another client (an open JupyterLab tab) attaches while no runner is connected,
the buffer is discarded and what the kernel sent meanwhile goes to that client. The cell
may still get its reply, so the idle check below cannot see the loss. ipykernel numbers
every message it sends, ``{session}_{pid}_{n}`` with one counter per kernel process
(jupyter_client's ``Session.msg_id``); the cursor keeps the highest ``n`` received, and a
reconnect whose first messages all lie past it lost messages in between: the cells pending
across the gap get a note (``metadata.studio_runner.output_lost``). A full replay resumes at
exactly the next number, so it gets none. Conservative by design: messages ipykernel sent
to another client's requests while we were away count as a gap too, and that only happens
when another client was attached, which is exactly when output can be lost.
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from nbformat import NotebookNode

from studiorunner.errors import CellExecutionError, CellTimeout, KernelDied
from studiorunner.execution.outputs import OutputRecorder, runner_meta
from studiorunner.jupyter.kernel_protocol import execute_request, parent_msg_id
from studiorunner.jupyter.connection import ChannelClosed, KernelChannel

logger = logging.getLogger(__name__)

SKIP_TAG = "skip-execution"
RAISES_TAG = "raises-exception"
#: SystemExit values that mean "stop here, successfully" (sys.exit(), sys.exit(0), raise SystemExit).
CLEAN_EXIT_VALUES = ("", "0", "None")
DEAD_STATES = ("dead", "missing")
#: Messages after a reconnect within which the next expected number must show up: the
#: kernel's threads (shell, iopub) may deliver a few numbers out of order.
GAP_CHECK_MESSAGES = 10
GAP_NOTE = ("[studio-runner] output of this cell between {start} and {end} may be incomplete: "
            "the kernel sent messages while the runner was not connected that jupyter_server did not "
            "replay (another client, such as an open JupyterLab tab, was attached to the kernel and "
            "received them; the output sent to it was lost here).\n")


def kernel_msg_seq(msg: dict[str, Any]) -> tuple[str, int] | None:
    """(``{session}_{pid}``, n) from an ipykernel message id ``{session}_{pid}_{n}``, else None."""
    msg_id = msg.get("msg_id") or (msg.get("header") or {}).get("msg_id")
    if not isinstance(msg_id, str):
        return None
    prefix, sep, number = msg_id.rpartition("_")
    if not sep or not prefix or "_" not in prefix or not number.isdigit():
        return None
    return prefix, int(number)


@dataclass
class _GapCheck:
    """A reconnect while cells were pending: do the first messages continue where we left off?"""

    expected: int  # the kernel's next message number after the highest we had received
    cells: set[str]  # msg ids of the requests pending across the gap
    start: float | None  # wall-clock time we stopped listening
    end: float  # wall-clock time we listened again
    lowest: int | None = None  # lowest message number received since
    received: int = 0
    first_at: float | None = None  # clock() of the first message received since
    ours: bool = False  # a message for a cell pending across the gap arrived (it runs on)


@dataclass
class Pending:
    """An execute_request sent whose reply and idle have not both arrived."""

    cell: int
    msg_id: str
    started: float | None = None  # wall-clock (epoch) time the kernel started it
    reply: str | None = None  # execute_reply status: "ok" | "error" | "aborted"
    idle: bool = False
    ename: str | None = None
    evalue: str | None = None
    timed_out: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v is not False}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pending:
        return cls(**data)


@dataclass
class Cursor:
    """Where a run stands; JSON-serialisable and small (it lives in Step Functions state)."""

    next_cell: int = 0  # index into nb.cells of the next cell not yet sent
    pending: list[Pending] = field(default_factory=list)
    done: bool = False
    cells_executed: int = 0  # code cells the kernel ran (including allowed failures)
    cells_failed: int = 0  # errors allowed by tag / allow_errors (timeouts included)
    exit: str | None = None  # "SystemExit" when sys.exit()/sys.exit(0) stopped the run
    requeue: list[int] = field(default_factory=list)  # aborted behind an allowed error: send again
    hold: bool = False  # after an allowed error: send nothing new until the queue behind it answered
    paused_at: float | None = None  # wall-clock time the last process stopped listening
    kernel_session: str | None = None  # "{session}_{pid}" of the kernel's message ids
    kernel_seq: int | None = None  # highest message number received from that kernel
    outputs: dict[str, Any] = field(default_factory=dict)  # OutputRecorder.state()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "next_cell": self.next_cell,
            "pending": [p.to_dict() for p in self.pending],
            "done": self.done,
            "cells_executed": self.cells_executed,
            "cells_failed": self.cells_failed,
            "exit": self.exit,
        }
        if self.requeue:
            data["requeue"] = list(self.requeue)
        if self.hold:
            data["hold"] = True
        if self.paused_at is not None:
            data["paused_at"] = self.paused_at
        if self.kernel_session is not None and self.kernel_seq is not None:
            data["kernel_session"] = self.kernel_session
            data["kernel_seq"] = self.kernel_seq
        if self.outputs.get("displays") or self.outputs.get("clear_pending"):
            data["outputs"] = self.outputs
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cursor:
        data = dict(data)
        data["pending"] = [Pending.from_dict(p) for p in data.get("pending") or []]
        return cls(**data)


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _noop(*_args: Any) -> None:
    return None


class CellExecutor:
    """Runs the code cells of ``nb`` (in place) on the kernel behind ``channel``."""

    def __init__(
        self,
        channel: KernelChannel,
        nb: NotebookNode,
        *,
        session: str,
        cell_timeout: float | None,
        allow_errors: bool,
        interrupt: Callable[[], None],
        kernel_state: Callable[[], str],
        on_cell_start: Callable[[int, NotebookNode], None] = _noop,
        on_cell_end: Callable[[int, NotebookNode, str], None] = _noop,
        reconnect: Callable[[], KernelChannel] | None = None,
        window: int = 1,
        poll_interval: float = 3.0,
        replay_grace: float = 1.0,
        interrupt_grace: float = 5.0,
        drain_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.channel = channel
        self.nb = nb
        self.session = session
        self.cell_timeout = cell_timeout if cell_timeout and cell_timeout > 0 else None
        self.allow_errors = allow_errors
        self.interrupt = interrupt
        self.kernel_state = kernel_state
        self.on_cell_start = on_cell_start
        self.on_cell_end = on_cell_end
        self.reconnect = reconnect
        self.window = max(1, window)
        self.poll_interval = poll_interval
        self.replay_grace = replay_grace
        self.interrupt_grace = interrupt_grace
        self.drain_timeout = drain_timeout
        self.clock = clock
        self.wall = wall_clock
        self.recorder: OutputRecorder | None = None
        self._started_mono: dict[str, float] = {}
        self._interrupt_at: dict[str, float] = {}
        self._announced: set[str] = set()
        self._gap_check: _GapCheck | None = None
        self._cur: Cursor | None = None

    # -- public --

    def run(self, cursor: Cursor, *, deadline: float) -> Cursor:
        """Run cells from ``cursor`` until the notebook is done or ``deadline`` (a ``clock()`` value).

        Returns the cursor to resume from (``done`` True when finished). Raises
        :class:`CellExecutionError`, :class:`CellTimeout` or :class:`KernelDied`; the
        notebook then holds every output received, the failing cell marked.
        """
        cur = Cursor.from_dict(cursor.to_dict())  # never mutate the caller's copy
        self.recorder = OutputRecorder(self.nb, cur.outputs)
        resumed = bool(cur.pending) and cur.paused_at is not None
        resumed_at = self.wall()
        now = self.clock()
        for p in cur.pending:  # map wall-clock starts from an earlier process onto our clock
            if p.started is not None:
                self._started_mono[p.msg_id] = now - max(0.0, resumed_at - p.started)
                self._announced.add(p.msg_id)
        self._last_heard = now
        self._next_poll = now + (self.replay_grace if resumed else self.poll_interval)
        self._idle_strikes = 0
        self._resumed_ids = {p.msg_id for p in cur.pending} if resumed else set()
        self._gap = (cur.paused_at, resumed_at)
        self._from_cursor = {p.msg_id for p in cur.pending} if resumed else set()
        self._drain_until = None
        self._cur = cur
        self._gap_check = None
        if resumed:
            self._begin_gap_check(cur, cur.paused_at, resumed_at)
        stop: BaseException | None = None  # the error that ends the run, raised after draining
        stopping = False

        while True:
            if not stopping:
                self._send_more(cur, deadline)
            if not cur.pending:
                if stop is not None:
                    raise stop
                if stopping or (cur.next_cell >= len(self.nb.cells) and not cur.requeue):
                    cur.done = True
                    cur.paused_at = None
                    cur.outputs = self.recorder.state()
                    return cur
            now = self.clock()
            if now >= deadline and not stopping:
                self._settle_gap_check(cur, force=True)
                cur.paused_at = self.wall()
                cur.outputs = self.recorder.state()
                return cur
            if stopping and now >= self._drain_until:
                self._give_up_drain(cur)
                continue

            msg = self._recv(self._wait_time(cur, deadline, stopping))
            if msg is not None:
                self._observe(cur, msg)
                result = self._handle(cur, msg)
            else:
                self._settle_gap_check(cur)
                result = self._on_silence(cur)
            if result is None:
                self._check_timeouts(cur)
                continue
            # a cell ended the run: stop sending, let what is queued be aborted, then raise/return
            if not stopping:
                stopping = True
                stop = result if isinstance(result, BaseException) else None
                now = self.clock()
                self._drain_until = max(now + 0.2, min(now + self.drain_timeout, deadline))
                for index in cur.requeue:
                    self.nb.cells[index].metadata.pop("execution", None)
                    self._end(index, "aborted")
                cur.requeue = []
            self._check_timeouts(cur)

    # -- sending --

    def _runnable(self, index: int) -> str | None:
        """None if the cell is to be executed, else why it is skipped."""
        cell = self.nb.cells[index]
        if cell.cell_type != "code" or not cell.source.strip():
            return "not code"
        if SKIP_TAG in cell.metadata.get("tags", []):
            return "tag"
        return None

    def _send_more(self, cur: Cursor, deadline: float) -> None:
        while len(cur.pending) < self.window and self.clock() < deadline:
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
                why = self._runnable(index)
                if why is not None:
                    if why == "tag":
                        runner_meta(self.nb.cells[index])["status"] = "skipped"
                        self.on_cell_end(index, self.nb.cells[index], "skipped")
                    continue
            cell = self.nb.cells[index]
            msg = execute_request(cell.source, session=self.session, stop_on_error=True,
                                  allow_stdin=False)
            assert self.recorder is not None
            self.recorder.start_cell(index)
            runner_meta(cell)["status"] = "queued"
            self._send(msg)
            cur.pending.append(Pending(cell=index, msg_id=msg["msg_id"]))

    def _send(self, msg: dict[str, Any]) -> None:
        try:
            self.channel.send(msg)
        except ChannelClosed:
            self._reopen()
            self.channel.send(msg)

    # -- receiving --

    def _recv(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self.channel.recv(timeout)
        except ChannelClosed:
            self._reopen()
            return None

    def _reopen(self) -> None:
        """The socket dropped: the kernel may be gone; otherwise reopen it if we can."""
        state = self._safe_state()
        if state in DEAD_STATES:
            raise KernelDied(f"the kernel is {state} (its WebSocket closed)", kernel_state=state)
        if self.reconnect is not None:
            stopped_at = self.wall() - (self.clock() - self._last_heard)
            for _attempt in range(3):
                try:
                    self.channel = self.reconnect()
                    if self._cur is not None and self._gap_check is None:
                        self._begin_gap_check(self._cur, stopped_at, self.wall())
                    return
                except Exception as e:  # noqa: BLE001 - any failure to reopen means the same
                    # No sleep between attempts: each handshake is itself bounded by its timeout.
                    logger.warning("reopening the kernel WebSocket failed: %s", type(e).__name__)
        raise KernelDied("the kernel WebSocket closed and could not be reopened",
                         kernel_state=state)

    def _safe_state(self) -> str:
        try:
            return self.kernel_state()
        except Exception as e:  # noqa: BLE001 - an unreachable server is not a verdict
            logger.warning("kernel state check failed: %s", type(e).__name__)
            return "unknown"

    def _wait_time(self, cur: Cursor, deadline: float, stopping: bool) -> float:
        now = self.clock()
        until = min(self._next_poll, self._drain_until if stopping else deadline)
        for p in cur.pending:
            if p.msg_id in self._interrupt_at:
                until = min(until, self._interrupt_at[p.msg_id])
            elif self.cell_timeout is not None and p.msg_id in self._started_mono:
                until = min(until, self._started_mono[p.msg_id] + self.cell_timeout)
        return max(0.0, min(until - now, self.poll_interval))

    def _find(self, cur: Cursor, msg_id: str | None) -> Pending | None:
        for p in cur.pending:
            if p.msg_id == msg_id:
                return p
        return None

    def _handle(self, cur: Cursor, msg: dict[str, Any]) -> BaseException | bool | None:
        channel = msg.get("channel")
        msg_type = msg.get("msg_type")
        content = msg.get("content") or {}
        if channel == "iopub" and msg_type == "status" and content.get("execution_state") in ("restarting", "dead"):
            state = content["execution_state"]
            raise KernelDied(f"the kernel {'restarted' if state == 'restarting' else 'died'} "
                             "while the notebook was running", kernel_state=state,
                             cell_index=cur.pending[0].cell if cur.pending else None)
        p = self._find(cur, parent_msg_id(msg))
        if p is None:
            return None  # not ours (server nudges, other clients, cells already finished)
        self._last_heard = self.clock()
        self._idle_strikes = 0
        self._resumed_ids.discard(p.msg_id)
        assert self.recorder is not None
        if channel == "iopub":
            if msg_type == "execute_input" or (msg_type == "status" and content.get("execution_state") == "busy"):
                # busy starts the timeout clock; only execute_input proves the cell runs
                # (an aborted request also gets busy/idle)
                self._mark_started(p, announce=msg_type == "execute_input")
            if msg_type == "status" and content.get("execution_state") == "idle":
                p.idle = True
            self.recorder.process(msg, p.cell)
        elif channel == "shell" and msg_type == "execute_reply":
            p.reply = content.get("status", "error")
            if p.reply == "error":
                p.ename = content.get("ename")
                p.evalue = str(content.get("evalue", ""))[:1000]
            if p.reply != "aborted":
                self.recorder.record_reply(msg, p.cell)
        else:
            return None
        if p.reply == "aborted" or (p.reply is not None and p.idle):
            return self._finish(cur, p)
        return None

    def _mark_started(self, p: Pending, *, announce: bool) -> None:
        if p.msg_id not in self._started_mono:
            self._started_mono[p.msg_id] = self.clock()
            p.started = self.wall()
        if announce and p.msg_id not in self._announced:
            self._announced.add(p.msg_id)
            cell = self.nb.cells[p.cell]
            runner_meta(cell)["status"] = "running"
            self.on_cell_start(p.cell, cell)

    # -- finishing a cell --

    def _end(self, index: int, status: str, **meta: Any) -> None:
        cell = self.nb.cells[index]
        m = runner_meta(cell)
        m["status"] = status
        m.update(meta)
        self.on_cell_end(index, cell, status)

    def _finish(self, cur: Cursor, p: Pending) -> BaseException | bool | None:
        """A cell's reply and idle are both in. Returns an error / True to end the run."""
        if self._gap_check is not None and p.msg_id in self._gap_check.cells:
            self._settle_gap_check(cur, force=True)  # before the cell ends: its note goes in it
        cur.pending.remove(p)
        self._interrupt_at.pop(p.msg_id, None)
        self._started_mono.pop(p.msg_id, None)
        index, cell = p.cell, self.nb.cells[p.cell]
        stopped = self._drain_until is not None
        if p.reply == "aborted":
            # Aborted behind an error: send again once nothing is outstanding, unless that
            # error turns out to stop the run (then the cell is marked aborted).
            if not stopped:
                cur.requeue.append(index)
                cur.requeue.sort()
                runner_meta(cell)["status"] = "queued"
            else:
                cell.metadata.pop("execution", None)  # never ran: no timing, as nbclient leaves it
                self._end(index, "aborted")
            return None
        cur.cells_executed += 1
        assert self.recorder is not None
        self._keep_gap_note(index)
        self.recorder.finish_cell(index)
        if stopped:
            # the kernel ran it although an earlier cell had stopped the run (see module doc)
            self._end(index, "completed" if p.reply == "ok" else "failed", ran_after_stop=True)
            return None
        if p.reply == "ok":
            self._end(index, "completed")
            return None
        ename, evalue = p.ename or "Error", p.evalue or ""
        count = cell.get("execution_count")
        facts = dict(cell_index=index, execution_count=count, ename=ename, evalue=evalue)
        if p.timed_out:
            if self.allow_errors:
                cur.cells_failed += 1
                cur.hold = True
                self._end(index, "failed", timed_out=True, error={"ename": ename, "evalue": evalue})
                return None
            self._end(index, "failed", timed_out=True, error={"ename": ename, "evalue": evalue})
            return CellTimeout(
                f"Cell {index} (In [{count}]) ran longer than {self.cell_timeout:g} s and was interrupted",
                timeout_seconds=self.cell_timeout, **facts)
        if ename == "SystemExit" and evalue in CLEAN_EXIT_VALUES:
            cur.exit = "SystemExit"
            self._end(index, "completed", exit="SystemExit")
            return True
        if self.allow_errors or RAISES_TAG in cell.metadata.get("tags", []):
            cur.cells_failed += 1
            cur.hold = True
            self._end(index, "failed", error={"ename": ename, "evalue": evalue}, allowed=True)
            return None
        self._end(index, "failed", error={"ename": ename, "evalue": evalue})
        short = evalue if len(evalue) <= 300 else evalue[:300] + "…"
        return CellExecutionError(f"Cell {index} (In [{count}]) raised {ename}: {short}", **facts)

    _drain_until: float | None = None

    def _give_up_drain(self, cur: Cursor) -> None:
        """Cells queued behind a stop never answered: interrupt once, then leave them unexecuted."""
        for p in list(cur.pending):
            cur.pending.remove(p)
            self._end(p.cell, "aborted", unanswered=True)
        try:
            self.interrupt()
        except Exception as e:  # noqa: BLE001 - best effort; the run is already ending
            logger.warning("interrupt after stop failed: %s", type(e).__name__)

    # -- silence, timeouts, lost replays --

    def _check_timeouts(self, cur: Cursor) -> None:
        now = self.clock()
        for p in cur.pending:
            if p.msg_id in self._interrupt_at:
                if now >= self._interrupt_at[p.msg_id]:
                    count = self.nb.cells[p.cell].get("execution_count")
                    self._end(p.cell, "failed", timed_out=True)
                    raise CellTimeout(
                        f"Cell {p.cell} (In [{count}]) ran longer than {self.cell_timeout:g} s"
                        " and did not stop when interrupted",
                        cell_index=p.cell, execution_count=count, timeout_seconds=self.cell_timeout)
                continue
            started = self._started_mono.get(p.msg_id)
            if self.cell_timeout is None or started is None or p.reply is not None:
                continue
            if now - started >= self.cell_timeout:
                logger.warning("cell %d timed out after %.1f s: interrupting the kernel", p.cell, now - started)
                p.timed_out = True
                self._interrupt_at[p.msg_id] = now + self.interrupt_grace
                self.interrupt()

    def _on_silence(self, cur: Cursor) -> BaseException | bool | None:
        now = self.clock()
        if now < self._next_poll:
            return None
        state = self._safe_state()
        if state in DEAD_STATES:
            raise KernelDied(f"the kernel is {state}", kernel_state=state,
                             cell_index=cur.pending[0].cell if cur.pending else None)
        silent_for = now - self._last_heard
        if state == "idle" and cur.pending and silent_for >= self.replay_grace:
            self._idle_strikes += 1
        else:
            self._idle_strikes = 0
        quick = bool(self._resumed_ids)
        self._next_poll = now + (self.replay_grace if quick else self.poll_interval)
        if self._idle_strikes >= 2:
            self._idle_strikes = 0
            return self._mark_lost(cur)
        return None

    def _mark_lost(self, cur: Cursor) -> BaseException | bool | None:
        """The kernel is idle yet pending cells never completed: their messages are gone."""
        paused_at, resumed_at = self._gap
        self._gap_check = None  # the note below says more than a gap check would
        for p in list(cur.pending):
            cur.pending.remove(p)
            cell = self.nb.cells[p.cell]
            if paused_at is not None and p.msg_id in self._from_cursor:
                span = f"between {_iso(paused_at)} and {_iso(resumed_at)}"
            else:
                span = f"after {_iso(self.wall() - (self.clock() - self._last_heard))}"
            note = (f"[studio-runner] output of this cell {span} was lost: the kernel is idle but "
                    "jupyter_server replayed no reply for it (the server restarted or another "
                    "client took its message buffer). The cell's outputs above may be incomplete.\n")
            assert self.recorder is not None
            self.recorder.append_note(p.cell, note)
            cur.cells_executed += 1 if p.started is not None else 0
            self._end(p.cell, "completed", output_lost={
                "from": _iso(paused_at) if paused_at is not None else None, "to": _iso(resumed_at)})
            logger.warning("cell %d: output lost %s", p.cell, span)
        return None

    # -- messages the kernel sent to nobody we can see --

    def _observe(self, cur: Cursor, msg: dict[str, Any]) -> None:
        """Track the kernel's message numbers; feed a pending gap check."""
        seq = kernel_msg_seq(msg)
        if seq is None:
            return
        prefix, number = seq
        if prefix != cur.kernel_session:
            # Learn the kernel's prefix only from replies to our own requests: messages the
            # server itself writes (status: restarting) carry the server's session.
            if self._find(cur, parent_msg_id(msg)) is None:
                return
            if cur.kernel_session is not None and self._gap_check is not None:
                self._gap_check = None  # another kernel process: the idle check and KernelDied handle it
            cur.kernel_session, cur.kernel_seq = prefix, number
            return
        if cur.kernel_seq is None or number > cur.kernel_seq:
            cur.kernel_seq = number
        check = self._gap_check
        if check is not None:
            check.received += 1
            if check.lowest is None or number < check.lowest:
                check.lowest = number
            if check.first_at is None:
                check.first_at = self.clock()
            check.ours = check.ours or parent_msg_id(msg) in check.cells
            self._settle_gap_check(cur)

    def _begin_gap_check(self, cur: Cursor, start: float | None, end: float) -> None:
        if cur.pending and cur.kernel_session is not None and cur.kernel_seq is not None:
            self._gap_check = _GapCheck(expected=cur.kernel_seq + 1, cells={p.msg_id for p in cur.pending},
                                        start=start, end=end)

    def _settle_gap_check(self, cur: Cursor, *, force: bool = False) -> None:
        """Decide once the next number showed up, or enough messages / time / the cell's end passed without it."""
        check = self._gap_check
        if check is None or check.lowest is None:
            if force:
                self._gap_check = None  # nothing received: the cursor still holds the old number
            return
        if check.lowest <= check.expected:
            self._gap_check = None  # continued where we left off: a full replay
            return
        # Without a message for a pending cell, its reply may be gone too: _mark_lost says that.
        waited = check.first_at is not None and self.clock() - check.first_at >= self.replay_grace
        if not (force or (check.ours and (waited or check.received >= GAP_CHECK_MESSAGES))):
            return
        self._gap_check = None
        missing = check.lowest - check.expected
        for p in cur.pending:
            if p.msg_id not in check.cells or p.reply == "aborted":
                continue
            cell = self.nb.cells[p.cell]
            start = _iso(check.start) if check.start is not None else None
            end = _iso(check.end)
            runner_meta(cell)["output_lost"] = {"from": start, "to": end, "messages_not_replayed": missing}
            self._keep_gap_note(p.cell)
            logger.warning("cell %d: %d kernel messages between %s and %s were not replayed",
                           p.cell, missing, start, end)

    def _keep_gap_note(self, index: int) -> None:
        """Put the gap note in the cell unless it is there (a clear_output may have removed it)."""
        cell = self.nb.cells[index]
        lost = runner_meta(cell).get("output_lost")
        if not lost or "messages_not_replayed" not in lost:
            return
        note = GAP_NOTE.format(start=lost.get("from") or "the last message received", end=lost.get("to"))
        if any(note in (out.get("text") or "") for out in cell.outputs):
            return
        assert self.recorder is not None
        self.recorder.append_note(index, note)
