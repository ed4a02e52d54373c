"""Output the runner may not have received: detecting it, and saying so in the cell.

jupyter_server replays a kernel's buffered messages only to the WebSocket session that left
them (the ``session_id`` query parameter). If another client (an open JupyterLab tab) attached
meanwhile, or a proxy dropped the parameter, what the kernel sent while no runner was
connected is gone from the socket. ipykernel numbers every message it sends,
``{session}_{pid}_{n}`` with one counter per kernel process (jupyter_client's
``Session.msg_id``); the cursor keeps the highest ``n`` received, and a reconnect whose first
messages all lie past it lost messages in between. A full replay resumes at exactly the next
number. Conservative by design: messages ipykernel sent to another client's requests while
we were away count as a gap too, and that only happens when another client was attached.

What is lost may still be recovered from the run's journal (:mod:`.journal`); what cannot be
recovered is marked in the cell, never silent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbformat import NotebookNode

from studiorunner.execution.cursor import Cursor, kernel_msg_seq
from studiorunner.execution.journal import recoverable
from studiorunner.execution.options import Stop
from studiorunner.execution.outputs import OutputRecorder, server_note
from studiorunner.jupyter.kernel_protocol import parent_msg_id
from studiorunner.notebook import runner_record
from studiorunner.timestamps import utc_iso

logger = logging.getLogger(__name__)

#: Messages after a reconnect within which the next expected number must show up: the
#: kernel's threads (shell, iopub) may deliver a few numbers out of order.
GAP_CHECK_MESSAGES = 10
GAP_NOTE = ("[studio-runner] output of this cell between {start} and {end} may be incomplete: "
            "the kernel sent messages while the runner was not connected that jupyter_server did not "
            "replay (another client, such as an open JupyterLab tab, was attached to the kernel and "
            "received them, or a proxy dropped the WebSocket's session_id), and the run's journal "
            "could not supply them.\n")
LOST_NOTE = ("[studio-runner] output of this cell {span} was lost: the kernel is idle but "
             "jupyter_server replayed no reply for it (the server restarted or another "
             "client took its message buffer). The cell's outputs above may be incomplete.\n")

IDLE_MISSING_NOTE = ("[studio-runner] the end of this cell's output may be missing: the kernel finished "
                     "the cell (its execute_reply came), but its last output messages, its status idle "
                     "among them, did not arrive within {seconds:g} s. jupyter_server drops output it "
                     "cannot pass on in time (its iopub rate limits, or a full queue on a busy server).\n")


def iso(epoch: float) -> str:
    return utc_iso(epoch, timespec="seconds")


@dataclass
class GapCheck:
    """A reconnect while cells were pending: do the first messages continue where we left off?"""

    expected: int  # the kernel's next message number after the highest we had received
    cells: set[str]  # msg ids of the requests pending across the gap
    start: float | None  # wall-clock time we stopped listening
    end: float  # wall-clock time we listened again
    lowest: int | None = None  # lowest message number received since
    received: int = 0
    first_at: float | None = None  # clock() of the first message received since
    ours: bool = False  # a message for a cell pending across the gap arrived (it runs on)

    def observe(self, number: int, now: float, ours: bool) -> None:
        self.received += 1
        if self.lowest is None or number < self.lowest:
            self.lowest = number
        if self.first_at is None:
            self.first_at = now
        self.ours = self.ours or ours

    def verdict(self, now: float, grace: float, *, force: bool) -> str | None:
        """``"continued"`` (a full replay, or nothing received), ``"gap"``, or None (not yet known).

        Decided once the next number showed up, or enough messages / time / the cell's end
        passed without it. Without a message for a pending cell its reply may be gone too:
        the idle check says that.
        """
        if self.lowest is None:
            return "continued" if force else None
        if self.lowest <= self.expected:
            return "continued"
        waited = self.first_at is not None and now - self.first_at >= grace
        if force or (self.ours and (waited or self.received >= GAP_CHECK_MESSAGES)):
            return "gap"
        return None

    @property
    def missing(self) -> int:
        return (self.lowest or self.expected) - self.expected

    def lost_record(self) -> dict[str, Any]:
        return {"from": iso(self.start) if self.start is not None else None, "to": iso(self.end),
                "messages_not_replayed": self.missing}


def gap_note(lost: dict[str, Any]) -> str:
    return GAP_NOTE.format(start=lost.get("from") or "the last message received", end=lost.get("to"))


class MissedOutput:
    """One invocation's watch over messages the runner may not have received.

    After a reconnect (or a resume from a cursor) while cells were pending, a
    :class:`GapCheck` decides whether the server replayed what the kernel sent meanwhile.
    With a journal, the pending cells' iopub messages are held until it knows: then what
    was missed is applied from the journal first and the held messages after it, so the
    cell's outputs stay in order with nothing twice. Without one (or when it cannot cover
    the gap) the cell gets a note.
    """

    def __init__(self, cur: Cursor, nb: NotebookNode, recorder: OutputRecorder, *,
                 handle: Callable[[dict[str, Any]], Stop | None],
                 end: Callable[..., None],
                 journal: Callable[[], list[dict[str, Any]]] | None,
                 clock: Callable[[], float], wall: Callable[[], float], grace: float,
                 paused_at: float | None, resumed_at: float) -> None:
        self.cur, self.nb, self.recorder = cur, nb, recorder
        self.handle, self.end, self.journal = handle, end, journal
        self.clock, self.wall, self.grace = clock, wall, grace
        self.paused_at, self.resumed_at = paused_at, resumed_at
        self.from_cursor = {p.msg_id for p in cur.pending} if paused_at is not None else set()
        self.check: GapCheck | None = None
        self.held: list[dict[str, Any]] | None = None  # iopub messages held while a check is open

    def observe(self, msg: dict[str, Any]) -> None:
        """Track the kernel's message numbers; feed an open gap check."""
        seq = kernel_msg_seq(msg)
        if seq is None or server_note(msg):  # the server's rate-limit note has the server's numbers
            return
        cur = self.cur
        prefix, number = seq
        if prefix != cur.kernel_session:
            # Learn the kernel's prefix only from replies to our own requests: messages the
            # server itself writes (status: restarting) carry the server's session.
            if cur.find(parent_msg_id(msg)) is None:
                return
            if cur.kernel_session is not None and self.check is not None:
                self.check = None  # another kernel process: the idle check and KernelDied handle it
            cur.kernel_session, cur.kernel_seq = prefix, number
            return
        if cur.kernel_seq is None or number > cur.kernel_seq:
            cur.kernel_seq = number
        if self.check is not None:
            self.check.observe(number, self.clock(), parent_msg_id(msg) in self.check.cells)

    def hold(self, msg: dict[str, Any]) -> bool:
        """Keep ``msg`` back while a check is open (True), or let it be applied now (False)."""
        if self.held is None or self.check is None or msg.get("channel") != "iopub" \
                or self.cur.find(parent_msg_id(msg)) is None:
            return False
        self.held.append(msg)
        return True

    def begin(self, start: float | None, end: float) -> None:
        """We stopped listening at ``start`` and listen again since ``end``."""
        cur = self.cur
        if self.check is None and cur.pending and cur.kernel_session is not None and cur.kernel_seq is not None:
            self.check = GapCheck(expected=cur.kernel_seq + 1, cells={p.msg_id for p in cur.pending},
                                  start=start, end=end)
            if self.journal is not None:
                self.held = []

    def settle(self, *, force: bool = False, before: str | None = None) -> Stop | None:
        """Once the check knows: recover what was missed from the journal, else note it.

        ``before``: a cell about to end (its note must go in first): settle now if it is
        one the check covers.
        """
        check = self.check
        if check is None or (before is not None and before not in check.cells):
            return None
        verdict = check.verdict(self.clock(), self.grace, force=force or before is not None)
        if verdict is None:
            return None
        self.check = None
        recovered, stop = self.recover(check.cells) if verdict == "gap" else (True, None)
        if not recovered:
            for p in self.cur.pending:
                if p.msg_id not in check.cells or p.reply == "aborted":
                    continue
                lost = check.lost_record()
                runner_record(self.nb.cells[p.cell])["output_lost"] = lost
                self.keep_note(p.cell)
                logger.warning("cell %d: %d kernel messages between %s and %s were not replayed",
                               p.cell, check.missing, lost["from"], lost["to"])
        held, self.held = self.held or [], None
        for msg in held:
            stop = stop or self.handle(msg)
        return stop

    def recover(self, cells: set[str], *, after: str | None = None) -> tuple[bool, Stop | None]:
        """Apply from the journal what the pending ``cells`` were sent and we never received
        (after ``after``, the last message received for them; default: the last received of all).

        (True, first stop) when the journal covers the gap; (False, None) when it cannot
        say (no journal, unreadable, our last message not in it, or it overflowed).
        """
        if self.journal is None:
            return False, None
        try:
            journal = self.journal()
        except Exception as e:  # noqa: BLE001 - a journal we cannot read is a gap we mark
            logger.warning("reading the run's journal failed: %s", type(e).__name__)
            return False, None
        held = self.held or []
        found = recoverable(journal, after=after or self.cur.last_iopub, cells=cells,
                            until=held[0].get("msg_id") if held else None,
                            received={m.get("msg_id") for m in held},
                            replied={p.msg_id for p in self.cur.pending if p.reply is not None})
        if found is None:
            return False, None
        if found:
            logger.info("recovered %d kernel messages from the run's journal", len(found))
        stop: Stop | None = None
        for msg in found:
            stop = stop or self.handle(msg)
        return True, stop

    def lost_replies(self, last_heard_wall: float) -> Stop | None:
        """The kernel is idle yet pending cells never completed: their messages went elsewhere."""
        pending = {p.msg_id for p in self.cur.pending}
        recovered, stop = self.recover(pending)
        if recovered and not any(p.msg_id in pending for p in self.cur.pending):
            return stop
        self.check, self.held = None, None  # the note below says more than a gap check would
        for p in list(self.cur.pending):
            self.cur.pending.remove(p)
            if self.paused_at is not None and p.msg_id in self.from_cursor:
                span = f"between {iso(self.paused_at)} and {iso(self.resumed_at)}"
            else:
                span = f"after {iso(last_heard_wall)}"
            self.recorder.append_note(p.cell, LOST_NOTE.format(span=span))
            self.cur.cells_executed += 1 if p.started is not None else 0
            self.end(p.cell, "completed", output_lost={
                "from": iso(self.paused_at) if self.paused_at is not None else None,
                "to": iso(self.resumed_at)})
            logger.warning("cell %d: output lost %s", p.cell, span)
        return stop

    def idle_missing(self, index: int, seconds: float) -> None:
        """A cell's reply came but its ``status: idle`` never did (nbclient's iopub_timeout): say so."""
        runner_record(self.nb.cells[index])["output_lost"] = {"idle_missing": True, "iopub_timeout_seconds": seconds}
        self.recorder.append_note(index, IDLE_MISSING_NOTE.format(seconds=seconds))
        logger.warning("cell %d: no status idle within %g s of its execute_reply; its output may be incomplete",
                       index, seconds)

    def keep_note(self, index: int) -> None:
        """Put the gap note in the cell unless it is there (a clear_output may have removed it)."""
        cell = self.nb.cells[index]
        lost = runner_record(cell).get("output_lost")
        if not lost or "messages_not_replayed" not in lost:
            return
        note = gap_note(lost)
        if any(note in (out.get("text") or "") for out in cell.outputs):
            return
        self.recorder.append_note(index, note)
