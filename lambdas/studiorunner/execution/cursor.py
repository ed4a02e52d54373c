"""Where a run stands between two processes: the :class:`Cursor` and its :class:`Pending` requests.

Both are plain JSON (they live in the Step Functions state, so they stay small) and carry
no secret: cell indexes, message ids, counts and wall-clock times.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
    last_iopub: str | None = None  # msg_id of the last iopub message received for one of our cells
    errors_seen: int = 0  # failed cells whose reply came: what each request tells the kernel's guard
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
        if self.errors_seen:
            data["errors_seen"] = self.errors_seen
        if self.last_iopub is not None and self.pending:
            data["last_iopub"] = self.last_iopub
        if self.outputs.get("displays") or self.outputs.get("clear_pending") or self.outputs.get("widgets"):
            data["outputs"] = self.outputs
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cursor:
        data = dict(data)
        data["pending"] = [Pending.from_dict(p) for p in data.get("pending") or []]
        return cls(**data)

    def find(self, msg_id: str | None) -> Pending | None:
        for p in self.pending:
            if p.msg_id == msg_id:
                return p
        return None

    def running_cell(self) -> int | None:
        """The cell the kernel is running: the oldest request sent and not answered (None: none).

        (Pipelined, an earlier cell may still be pending for its idle alone: it ran to its end.)
        """
        return next((p.cell for p in self.pending if p.reply is None), None)
