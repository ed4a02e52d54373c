"""Recovering from a failed run: retries of infrastructure failures, reruns, hold and resume.

The payload's recovery keys, checked with the rest of the payload (``payload.validate_payload``)::

    "retry":      {"attempts": 2, "interval_seconds": 60, "errors": ["CellTimeout"]}
    "on_failure": {"hold_kernel_seconds": 7200}
    "attempt":    {"number": 2, "first_run": "daily-20261130T060000Z-3fa9c1"}   (set by a retry)
    "resume":     {"run_id": "daily-…", "from_cell": 3, "notebook_s3": "s3://…/edited.ipynb"}  (set by resume)

A retry is a new execution of the same payload, ``<first run>-attempt<N>``, started by the
failed one's state machine after ``interval_seconds`` (a Wait state, then Step Functions'
own ``startExecution``): each attempt has its own notebook, its own cleanup and its own line
in ``list``. Only errors that are not the notebook's fault are retried by default
(:data:`RETRIED_BY_DEFAULT`); ``errors`` adds others (e.g. ``CellTimeout`` for a flaky service).

A hold (``on_failure.hold_kernel_seconds``) keeps a run's kernel alive after a cell failed
(:data:`HELD_ON`), so that ``studio-runner resume`` can carry on in it from the failing cell
with every variable the cells before computed (``run/hold.py`` keeps and releases it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

#: Errors that say the infrastructure failed, not the notebook: the whole run is tried again.
#: Never by default: CellExecutionError, CellTimeout, RunTimeout, PayloadInvalid, TargetNotAllowed,
#: NotebookNotFound/Invalid/AccessDenied, KernelSpecNotFound, Command*: another try would fail the same way.
RETRIED_BY_DEFAULT = (
    "KernelDied",          # the kernel process died or vanished (OOM, the app was recycled)
    "KernelNotReady",      # a kernel never answered after it was started
    "TargetFailed",        # the app or instance failed to start, or went away mid-run
    "TargetNotReady",      # it did not become ready within timeouts.start_seconds
    "TargetBusy",          # no concurrency slot within timeouts.queue_seconds
    "JupyterUnavailable",  # the Jupyter server did not answer (after the steps' own retries)
    "LoginFailed",         # the presigned login did not land (a Studio hiccup; a wrong setup fails every attempt)
    "States.Timeout",      # a step's Lambda timed out
    "Lambda.Unknown",      # a step's Lambda crashed (out of memory…)
)
#: Never retried, even when named in ``retry.errors``: another attempt cannot change the answer.
NEVER_RETRIED = ("PayloadInvalid", "TargetNotAllowed")
MAX_ATTEMPTS = 10
DEFAULT_INTERVAL_SECONDS = 60.0
MAX_INTERVAL_SECONDS = 24 * 3600.0
#: How long a failed run's kernel may be held for a resume: a Studio session lasts at most 12 h.
MAX_HOLD_SECONDS = 12 * 3600.0
#: The errors after which a run's kernel can be held: the kernel is alive and has the state
#: of the cells before (a dead kernel, a target gone, a bad payload have nothing to keep).
HELD_ON = ("CellExecutionError", "CellTimeout")

RETRY_KEYS = {"attempts", "interval_seconds", "errors"}
ON_FAILURE_KEYS = {"hold_kernel_seconds"}
ATTEMPT_KEYS = {"number", "first_run"}
RESUME_KEYS = {"run_id", "from_cell", "notebook_s3"}
_ERROR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,99}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_ATTEMPT_SUFFIX = re.compile(r"-attempt\d+$")


@dataclass
class RetryPolicy:
    attempts: int = 0  # how many more times a failed run is tried (0: never)
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    errors: list[str] = field(default_factory=list)  # retried besides RETRIED_BY_DEFAULT

    def retries(self, error: str) -> bool:
        return error not in NEVER_RETRIED and (error in RETRIED_BY_DEFAULT or error in self.errors)


@dataclass
class ResumeSpec:
    """A resume's payload key: carry on the held run ``run_id`` in its own kernel."""

    run_id: str
    from_cell: int | None = None  # the code cell to start from, counted from 1 (default: the failed one)
    notebook_s3: str | None = None  # the edited notebook whose cells, from there on, are run


@dataclass
class Recovery:
    """The recovery part of a run's spec (``RunSpec.recovery``)."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    hold_kernel_seconds: float = 0.0
    attempt: int = 1  # this run is attempt N of its first run
    first_run: str | None = None  # None for a first attempt
    resume: ResumeSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Recovery:
        data = dict(raw or {})
        data["retry"] = RetryPolicy(**(data.get("retry") or {}))
        data["resume"] = ResumeSpec(**data["resume"]) if data.get("resume") else None
        return cls(**data)


def _number(value: Any, where: str, low: float, high: float, problems: list[str]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        problems.append(f"{where} must be a number from {low:g} to {high:g}, got {value!r}")
        return None
    return float(value)


def _object(raw: Mapping[str, Any], key: str, allowed: set[str], problems: list[str]) -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        problems.append(f"'{key}' must be an object with {', '.join(repr(k) for k in sorted(allowed))}")
        return {}
    for unknown in sorted(set(value) - allowed):
        problems.append(f"unknown key '{key}.{unknown}' (allowed: {', '.join(sorted(allowed))})")
    return value


def recovery_from_payload(raw: Mapping[str, Any], problems: list[str]) -> Recovery:
    """The payload's ``retry``, ``on_failure`` and ``attempt``; problems appended to ``problems``."""
    recovery = Recovery()
    retry = _object(raw, "retry", RETRY_KEYS, problems)
    if "attempts" in retry:
        attempts = retry["attempts"]
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 0 <= attempts <= MAX_ATTEMPTS:
            problems.append(f"'retry.attempts' must be a whole number from 0 to {MAX_ATTEMPTS}, got {attempts!r}")
        else:
            recovery.retry.attempts = attempts
    if "interval_seconds" in retry:
        interval = _number(retry["interval_seconds"], "'retry.interval_seconds'", 0, MAX_INTERVAL_SECONDS, problems)
        recovery.retry.interval_seconds = DEFAULT_INTERVAL_SECONDS if interval is None else interval
    errors = retry.get("errors", [])
    if not isinstance(errors, list) or not all(isinstance(e, str) and _ERROR_NAME.match(e) for e in errors):
        problems.append(f"'retry.errors' must be a list of error names (e.g. [\"CellTimeout\"]), got {errors!r}")
    else:
        never = [e for e in errors if e in NEVER_RETRIED]
        if never:
            problems.append(f"'retry.errors' names {', '.join(never)}, which another attempt cannot mend")
        recovery.retry.errors = list(dict.fromkeys(errors))

    on_failure = _object(raw, "on_failure", ON_FAILURE_KEYS, problems)
    if "hold_kernel_seconds" in on_failure:
        held = _number(on_failure["hold_kernel_seconds"], "'on_failure.hold_kernel_seconds'", 0, MAX_HOLD_SECONDS,
                       problems)
        recovery.hold_kernel_seconds = held or 0.0

    attempt = _object(raw, "attempt", ATTEMPT_KEYS, problems)
    if attempt:
        number, first = attempt.get("number"), attempt.get("first_run")
        if isinstance(number, bool) or not isinstance(number, int) or not 2 <= number <= MAX_ATTEMPTS + 1:
            problems.append(f"'attempt.number' must be a whole number from 2 to {MAX_ATTEMPTS + 1}, got {number!r}")
        else:
            recovery.attempt = number
        if not isinstance(first, str) or not _RUN_ID.match(first):
            problems.append(f"'attempt.first_run' must be a run id, got {first!r}")
        else:
            recovery.first_run = first

    resume = _object(raw, "resume", RESUME_KEYS, problems)
    if resume:
        run_id, from_cell, edited = resume.get("run_id"), resume.get("from_cell"), resume.get("notebook_s3")
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            problems.append(f"'resume.run_id' must be a run id, got {run_id!r}")
            run_id = ""
        if from_cell is not None and (isinstance(from_cell, bool) or not isinstance(from_cell, int) or from_cell < 1):
            problems.append(f"'resume.from_cell' must be a code cell's number (1 or more), got {from_cell!r}")
            from_cell = None
        if edited is not None and (not isinstance(edited, str) or not edited.startswith("s3://")
                                   or not edited.endswith(".ipynb")):
            problems.append(f"'resume.notebook_s3' must look like s3://bucket/key.ipynb, got {edited!r}")
            edited = None
        recovery.resume = ResumeSpec(run_id=run_id, from_cell=from_cell, notebook_s3=edited)
    return recovery


def attempt_name(first_run: str, number: int) -> str:
    """``<first run>-attempt<N>``, within Step Functions' 80 characters (the first run's id shortened)."""
    suffix = f"-attempt{number}"
    return first_run[: 80 - len(suffix)].rstrip("-_") + suffix


def first_run_of(run_id: str) -> str:
    """The first attempt's id of ``run_id`` (itself for a first attempt)."""
    return _ATTEMPT_SUFFIX.sub("", run_id)


@dataclass(frozen=True)
class NextAttempt:
    """What the state machine needs to start the next attempt (Cleanup's ``outcome.retry``)."""

    name: str
    number: int
    of: int  # how many attempts the run may have in all
    wait_seconds: int
    patch: dict[str, Any]  # merged into the execution's input: the same payload, the next attempt

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        when = f"in {self.wait_seconds} s" if self.wait_seconds else "now"
        return f"retrying {when} as {self.name} (attempt {self.number} of {self.of})"


def next_attempt(run_id: str, recovery: Recovery, error: str | None) -> NextAttempt | None:
    """The next attempt of a run that failed with ``error``, or None (not retried, or no attempts left)."""
    if not error or not recovery.retry.retries(error):
        return None
    total = recovery.retry.attempts + 1
    if recovery.attempt >= total:
        return None
    first = recovery.first_run or first_run_of(run_id)
    number = recovery.attempt + 1
    return NextAttempt(
        name=attempt_name(first, number), number=number, of=total,
        wait_seconds=int(math.ceil(recovery.retry.interval_seconds)),
        patch={"attempt": {"number": number, "first_run": first}},
    )


# ---- resume: the notebook it runs ------------------------------------------------------------

INJECTED_TAG = "injected-parameters"


def _numbered_code_cells(nb: Any) -> list[int]:
    """Indexes in ``nb.cells`` of its code cells as a person numbers them (papermill's
    "Cell N": code cells from 1, the injected-parameters cell not counted)."""
    from studiorunner.notebook import cell_tags  # nbformat: see resume_notebook's import

    return [i for i, cell in enumerate(nb.cells)
            if cell.get("cell_type") == "code" and INJECTED_TAG not in cell_tags(cell)]


def _banner_free(nb: Any) -> list[Any]:
    """``nb``'s cells without the error banner, as the run numbered them (the banner came after)."""
    from studiorunner.notebook import ERROR_MARKER_TAG, cell_tags

    return [cell for cell in nb.cells if ERROR_MARKER_TAG not in cell_tags(cell)]


def failed_cell_number(nb: Any) -> int | None:
    """"Cell N" of the cell that failed, as the run's error named it (its position from 1)."""
    for number, cell in enumerate(_banner_free(nb), start=1):
        if cell.get("cell_type") == "code" and (
                (cell.metadata.get("papermill") or {}).get("status") == "failed"
                or (cell.metadata.get("studio_runner") or {}).get("status") == "failed"):
            return number
    return None


def resume_point(held: Any, from_cell: int | None, *, source_run: str) -> tuple[int, int, int]:
    """Where a resume starts in ``held`` (the held run's executed notebook): (the cell's number,
    as errors name cells: "Cell N"; its index once the banner is gone; how many code cells come
    before it, the injected-parameters cell not counted — the fixed notebook is matched by that
    count, since it has no injected cell). PayloadInvalid when there is no such cell."""
    from studiorunner.errors import PayloadInvalid

    cells = _banner_free(held)
    start = from_cell or failed_cell_number(held)
    if start is None:
        raise PayloadInvalid(f"run {source_run} has no failed code cell to resume from: give 'resume.from_cell'")
    if start > len(cells):
        raise PayloadInvalid(f"run {source_run}'s notebook has {len(cells)} cells: it cannot resume from cell {start}")
    cut = start - 1
    before = sum(1 for cell in cells[:cut] if cell.get("cell_type") == "code"
                 and INJECTED_TAG not in (cell.get("metadata", {}).get("tags") or []))
    return start, cut, before


def resume_notebook(held: Any, edited: Any | None, from_cell: int | None, *, source_run: str,
                    when: str) -> tuple[Any, int, int]:
    """The notebook a resume runs: ``held`` (the held run's executed notebook) up to its cell
    ``from_cell`` ("Cell N" as errors number cells; default: the one that failed), with its
    outputs; from there on the cells of ``edited`` (from its code cell of the same rank) or
    ``held``'s own, with no output. Returns (notebook, index in ``nb.cells`` of the first cell to
    run, the cell number it starts from). PayloadInvalid when the point exists in neither."""
    # nbformat and the notebook helpers only when a resume is prepared: the CLI imports this
    # module (retries, rerun) and would pay +192-308 ms (min-median of 7 fresh processes).
    from nbformat.v4.nbbase import random_cell_id

    from studiorunner.errors import PayloadInvalid
    from studiorunner.notebook import _pending, remove_error_banner

    nb = held
    start, cut, before = resume_point(nb, from_cell, source_run=source_run)
    remove_error_banner(nb)
    tail = nb.cells[cut:]
    if edited is not None:
        remove_error_banner(edited)
        theirs = _numbered_code_cells(edited)
        if before >= len(theirs):
            raise PayloadInvalid(f"the edited notebook has {len(theirs)} code cells: it cannot resume from "
                                 f"cell {start} (code cell {before + 1})")
        tail = edited.cells[theirs[before]:]
    for cell in tail:
        cell.setdefault("metadata", {})
        cell.metadata["papermill"] = _pending()
        cell.metadata.pop("studio_runner", None)
        if cell.get("cell_type") == "code":
            cell.outputs, cell.execution_count = [], None
    kept_ids = {cell.get("id") for cell in nb.cells[:cut]}
    for cell in tail:
        if cell.get("id") in kept_ids:  # an edited copy of a kept cell: ids must stay unique
            cell["id"] = random_cell_id()
    nb.cells = nb.cells[:cut] + list(tail)
    record = nb.metadata.setdefault("studio_runner", {})
    record["resumed"] = {"from_run": source_run, "from_cell": start, "at": when,
                         "edited": edited is not None}
    return nb, cut, start
