"""The run's state in Step Functions, typed: one part per step, (de)serialised here only.

The state machine carries a JSON object; each step reads it whole and returns the part
it owns (its ``result_path`` in ``studiorunner.catalog.STEPS``, the ResultPath in
``statemachine/runner.asl.json``)::

    run     – Prepare:     RunRecord       (ResultSelector wraps Prepare's result as $.run)
    slot    – AcquireSlot: SlotState (status acquired | waiting | unlimited, message, …)
    target  – StartTarget: TargetProgress
    commands– RunCommands: CommandsReport
    kernel  – StartKernel: KernelProgress
    cursor  – RunCells:    execution.cursor.Cursor (its own to_dict); Cleanup reads CursorSummary
    error   – any Catch:   {"Error": name, "Cause": …}
    outcome – Cleanup:     Outcome (status, error, cause, result: RunResult, retry, hold)

Everything here is small and holds no secret (Step Functions keeps the history for 90 days):
ids, S3 URIs, counters, epoch seconds. Unknown keys are ignored when reading, so a state
written by an older deployment (an execution in flight during a redeploy) still loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from studiorunner.execution.cursor import Cursor
from studiorunner.payload import RunSpec
from studiorunner.targets import TargetProgress
from studiorunner.targets.base import Progress

__all__ = ["CleanupActions", "CommandsReport", "Outcome", "RunResult", "CursorSummary", "KernelProgress", "RunRecord", "RunState", "SlotState", "TargetProgress",
           "known_fields", "present"]

T = TypeVar("T")


def present(value: T | None, what: str) -> T:
    """``value``, which the state machine's order guarantees is set (Prepare gives a run with a
    notebook its ``output_uri`` before StartKernel runs); ValueError naming it when it is not."""
    if value is None:
        raise ValueError(f"the state has no {what}: a step ran out of the state machine's order")
    return value


def known_fields(cls: type[T], raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keys of ``raw`` that are fields of the dataclass ``cls`` (others are ignored)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return {k: v for k, v in (raw or {}).items() if k in names}


@dataclass
class RunRecord:
    """What Prepare decided; read by every later step, never changed after Prepare."""

    run_id: str
    target: str
    target_type: str
    spec: RunSpec
    output_uri: str | None = None  # s3://bucket/runs/<run_id>/<name>.ipynb, None for a commands-only run
    commands_log_uri: str | None = None
    started_at: float = 0.0  # epoch seconds when Prepare ran
    deadline: float | None = None  # epoch seconds: started_at + timeouts.run_seconds (+ time queued: RunState)
    #: A resume (payload ``resume``): what Prepare took over from the held run (run/hold.py,
    #: recovery.resume_notebook): source_run, from_index, from_cell, cells_to_run, kernel,
    #: target_created, slot_owner.
    resume: dict[str, Any] | None = None

    @property
    def has_notebook(self) -> bool:
        return bool(self.spec.notebook or self.spec.notebook_s3)

    @property
    def has_commands(self) -> bool:
        return bool(self.spec.commands)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["spec"] = self.spec.to_dict()
        # The ASL's Choice states read these two; they are derived, never read back.
        data["has_notebook"], data["has_commands"] = self.has_notebook, self.has_commands
        return data

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> RunRecord:
        data = known_fields(cls, raw)
        data["spec"] = RunSpec.from_dict(raw["spec"])
        return cls(**data)


@dataclass
class KernelProgress(Progress):
    """What StartKernel returns: the run's kernel and session, or how long to wait for them."""

    name: str | None = None  # the kernelspec chosen
    path: str | None = None  # the notebook's path in the target's file tree
    session_path: str | None = None  # the run's own session path (never the notebook's: see start_kernel)
    warnings: list[str] = field(default_factory=list)
    cells_total: int = 0
    id: str | None = None  # kernel id
    session_id: str | None = None  # the Jupyter session this run created
    client_session_id: str | None = None  # the WebSocket session_id (replay on reconnect)
    journal: str | None = None  # the run's journal in the target's tree (execution/journal.py), once started
    #: The kernel process's own session id (kernel_info_reply's header): a kernel restarted under
    #: the same id (Jupyter's restarter) has another, and none of the run's variables.
    process: str | None = None
    # Studio Classic: a kernel POST starts a KernelGateway app; it may outlive one Lambda.
    posted: bool = False
    kernels_before: list[str] | None = None
    apps_before: list[str] | None = None
    app_name: str | None = None
    app_created: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> KernelProgress:
        return cls(**known_fields(cls, raw))

    @property
    def started_anything(self) -> bool:
        """True when this run may have a kernel or session to remove."""
        return bool(self.id or self.session_id or self.posted or self.session_path)


@dataclass
class CommandsReport:
    """What RunCommands returns: each command's summary and where the full log is."""

    results: list[dict[str, Any]] = field(default_factory=list)
    log_uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> CommandsReport:
        return cls(**known_fields(cls, raw))


@dataclass
class CleanupActions:
    """What Cleanup did, and what it kept or could not remove (``result.cleanup``)."""

    actions: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # something the run started may still be running

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"actions": self.actions, "kept": self.kept}
        if self.problems:
            data["problems"] = self.problems
        return data

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> CleanupActions:
        return cls(**known_fields(cls, raw))


@dataclass
class RunResult:
    """The run's result (``outcome.result``): what the execution's output and `studio-runner`
    show. The keys after ``cleanup`` are written only when set."""

    run_id: str | None
    status: str  # SUCCEEDED | FAILED
    target: str | None
    output_notebook: str | None
    cleanup: CleanupActions = field(default_factory=CleanupActions)
    output_html: str | None = None
    cells_total: int | None = None
    cells_executed: int | None = None
    cells_failed: int | None = None
    duration_seconds: float | None = None
    exit: str | None = None  # the notebook's own early exit (CursorSummary.exit)
    commands: list[dict[str, Any]] | None = None
    warnings: list[str] | None = None
    next_attempt: str | None = None  # the retry's execution name (payload recovery)
    held_until: str | None = None  # its kernel is held for a resume until then (UTC)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"run_id": self.run_id, "status": self.status, "target": self.target,
                                "output_notebook": self.output_notebook}
        if self.output_html:
            data["output_html"] = self.output_html
        data.update(cells_total=self.cells_total, cells_executed=self.cells_executed,
                    cells_failed=self.cells_failed, duration_seconds=self.duration_seconds,
                    cleanup=self.cleanup.to_dict())
        for key in ("exit", "commands", "warnings", "next_attempt", "held_until"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> RunResult:
        data = known_fields(cls, raw)
        data["cleanup"] = CleanupActions.from_dict(data.get("cleanup"))
        return cls(**{"run_id": None, "status": "", "target": None, "output_notebook": None, **data})


@dataclass
class Outcome:
    """What Cleanup (or ExecutionEnded) decides: the run's status, its one error and cause, its
    result, and the retry the state machine starts (``$.outcome``; the ASL reads ``status``
    and ``retry``)."""

    status: str  # SUCCEEDED | FAILED
    result: RunResult
    error: str | None = None
    cause: str | None = None
    retry: dict[str, Any] | None = None  # recovery.NextAttempt.to_dict()
    hold: dict[str, Any] | None = None  # run.hold.keep(): the kernel is kept for a resume

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status}
        if not self.succeeded:
            data.update(error=self.error, cause=self.cause)
        data["result"] = self.result.to_dict()
        if self.retry:
            data["retry"] = self.retry
        if self.hold:
            data["hold"] = self.hold
        return data

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Outcome | None:
        if not raw:
            return None
        data = known_fields(cls, raw)
        data["result"] = RunResult.from_dict(data.get("result"))
        return cls(**{"status": "", **data})


@dataclass
class CursorSummary:
    """The part of RunCells' cursor that Cleanup and the result read (the executor owns the rest)."""

    done: bool = False
    cells_executed: int = 0
    cells_failed: int = 0
    exit: str | None = None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> CursorSummary:
        return cls(**known_fields(cls, raw))


@dataclass
class SlotState:
    """What AcquireSlot records in ``run.slot`` (small, no secrets); ``status`` is
    ``acquired``, ``waiting`` or ``unlimited`` (no limit for this target)."""

    status: str
    owner: str = ""  # the execution ARN that holds / asks for the slot
    limit: int | None = None
    in_use: int = 0  # slots taken when we last looked
    holders: list[str] = field(default_factory=list)  # execution names, for `status`
    attempt: int = 0
    wait_seconds: int = 0
    waiting_since: float | None = None
    waited_seconds: float = 0.0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> SlotState | None:
        if not raw:
            return None
        return cls(**known_fields(cls, raw))


@dataclass
class RunState:
    """The whole state as a step receives it."""

    run: RunRecord | None = None
    target: TargetProgress = field(default_factory=TargetProgress)
    commands: CommandsReport | None = None
    kernel: KernelProgress = field(default_factory=KernelProgress)
    cursor: Cursor | None = None  # RunCells' (None: no cell sent yet)
    error: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None
    slot: SlotState | None = None  # as AcquireSlot left it (None: no slot step ran yet)

    @property
    def deadline(self) -> float | None:
        """The run's deadline, counted from when it got its slot: time queued is not run time."""
        if self.run is None or not self.run.deadline:
            return None
        return self.run.deadline + float((self.slot.waited_seconds if self.slot else 0) or 0)

    @property
    def cursor_summary(self) -> CursorSummary:
        cursor = self.cursor or Cursor()
        return CursorSummary(done=cursor.done, cells_executed=cursor.cells_executed,
                             cells_failed=cursor.cells_failed, exit=cursor.exit)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> RunState:
        raw = raw or {}
        return cls(
            run=RunRecord.from_dict(raw["run"]) if raw.get("run") else None,
            target=TargetProgress.from_dict(raw.get("target")),
            commands=CommandsReport.from_dict(raw["commands"]) if raw.get("commands") else None,
            kernel=KernelProgress.from_dict(raw.get("kernel")),
            cursor=Cursor.from_dict(known_fields(Cursor, raw["cursor"])) if raw.get("cursor") else None,
            error=raw.get("error"),
            outcome=raw.get("outcome"),
            slot=SlotState.from_dict(raw.get("slot")),
        )
