"""The one message sent when a run ends, written from the run's record.

The record is what the run left: the execution (status, payload, result or error and cause,
times), the state its steps handed on (the run's spec and cursor, Cleanup's result) and the
executed notebook's own record (``metadata.studio_runner``, the failing cell and its
traceback). From it: a subject and a plain-text body for e-mail, SNS message attributes a
subscriber filters on (``status``, ``target``, ``schedule``, ``notebook``), and the same text
for a chat webhook (``webhook.py``). Standard library only: no step pays for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from studiorunner.report import format_duration

#: A parameter whose name looks like this has its value masked in the message.
SECRET_NAME = re.compile(r"secret|passw|pwd|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|"
                         r"auth|cookie|session[_-]?key|signature|(^|_)key$", re.IGNORECASE)
MASK = "****"
TRACEBACK_LINES = 8  # the last lines of the failing cell's traceback
SUBJECT_LIMIT = 100  # SNS: at most 100 printable ASCII characters, no line break
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_ENDED = {"SUCCEEDED": "succeeded", "FAILED": "failed", "TIMED_OUT": "timed out", "ABORTED": "was aborted",
          "SKIPPED": "was skipped"}


@dataclass
class RunRecord:
    """What a message says about one ended run (every field may be missing but the id and status)."""

    run_id: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, ABORTED (the execution's), or SKIPPED
    notebook: str | None = None
    target: str | None = None
    schedule: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    duration_seconds: float | None = None
    cells_total: int | None = None
    cells_executed: int | None = None
    error: str | None = None  # the execution's error name
    cause: str | None = None
    failing_cell: str | None = None  # as the run record names it: "In [8]", or "cell 3"
    ename: str | None = None
    evalue: str | None = None
    traceback: list[str] = field(default_factory=list)  # its last lines, without colours
    output_notebook: str | None = None
    output_html: str | None = None
    console_url: str | None = None
    next_attempt: str | None = None  # a retry started as this run (payload retry)
    held_until: str | None = None  # the run's kernel was held for a resume until then (UTC)


@dataclass(frozen=True)
class Message:
    subject: str
    body: str
    attributes: dict[str, str]


def masked(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """``parameters`` with the values of secret-looking names replaced by ``****``."""
    return {name: MASK if SECRET_NAME.search(str(name)) else value for name, value in parameters.items()}


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def traceback_tail(lines: Sequence[str], limit: int = TRACEBACK_LINES) -> list[str]:
    """The last ``limit`` non-blank lines of a traceback, colours removed."""
    text = strip_ansi("\n".join(str(line) for line in lines))
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return kept[-limit:]


def _ascii(text: str) -> str:
    return re.sub(r"\s+", " ", text.encode("ascii", "replace").decode()).strip()


def subject(record: RunRecord) -> str:
    """``Studio Runner: sales.ipynb FAILED on analytics (ZeroDivisionError in In [8])``, ≤ 100 ASCII."""
    name = (record.notebook or record.run_id).rsplit("/", 1)[-1]
    text = f"Studio Runner: {name} {record.status}"
    if record.target:
        text += f" on {record.target}"
    why = record.ename or record.error
    if why and record.status != "SUCCEEDED":
        text += f" ({why}{' in ' + record.failing_cell if record.failing_cell and record.ename else ''})"
    text = _ascii(text)
    return text if len(text) <= SUBJECT_LIMIT else text[:SUBJECT_LIMIT - 1] + "~"


def body(record: RunRecord) -> str:
    """The plain-text message: what ran, how it ended, why, where the outputs are, what to type."""
    name = record.notebook or "(commands only)"
    lines = [f"Run {record.run_id} {_ENDED.get(record.status, record.status.lower())} ({record.status}).", ""]
    rows = [("Notebook", name), ("Target", record.target or "(the default target)")]
    if record.schedule:
        rows.append(("Schedule", record.schedule))
    rows.append(("Status", record.status))
    rows.append(("Duration", format_duration(record.duration_seconds)))
    if record.cells_total is not None:
        rows.append(("Cells run", f"{record.cells_executed if record.cells_executed is not None else '?'}"
                                  f"/{record.cells_total}"))
    if record.failing_cell:
        rows.append(("Failing cell", record.failing_cell))
    if record.error and record.status != "SUCCEEDED":
        rows.append(("Error", record.error))
    width = max(len(label) for label, _ in rows) + 1
    lines += [f"{label + ':':<{width}} {value}" for label, value in rows]
    params = masked(record.parameters)
    if params:
        lines += ["", "Parameters:"] + [f"  {key} = {_short(value)}" for key, value in params.items()]
    if record.ename:
        lines += ["", f"{record.ename}: {record.evalue or ''}".rstrip()]
        if record.traceback:
            lines += ["", "Traceback (last lines):"] + [f"  {line}" for line in record.traceback]
    elif record.cause and record.status != "SUCCEEDED":
        lines += ["", f"Cause: {record.cause}"]
    lines += ["", "Outputs:"]
    lines.append(f"  notebook: {record.output_notebook or '(none written)'}")
    if record.output_html:
        lines.append(f"  page:     {record.output_html}")
    if record.next_attempt:
        lines += ["", f"Retried: the next attempt runs as {record.next_attempt}",
                  f"  studio-runner watch {record.next_attempt}"]
    if record.held_until:
        lines += ["", f"Its kernel is held until {record.held_until} (or until resumed): fix the cell, then",
                  f"  studio-runner resume {record.run_id} --notebook FIXED.ipynb"]
    lines += ["", "Get them:", f"  studio-runner download {record.run_id}"]
    if record.console_url:
        lines += ["", f"Console: {record.console_url}"]
    return "\n".join(lines) + "\n"


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit - 1] + "…"


def attributes(record: RunRecord) -> dict[str, str]:
    """SNS message attributes for filter policies (a value must be a non-empty string: a run
    without a schedule has no ``schedule`` attribute, which ``{"exists": false}`` matches)."""
    values = {"status": record.status, "target": record.target, "schedule": record.schedule,
              "notebook": record.notebook, "run_id": record.run_id}
    return {key: str(value)[:256] for key, value in values.items() if value}


def message(record: RunRecord) -> Message:
    return Message(subject=subject(record), body=body(record), attributes=attributes(record))


# -- the record, from what the run left -----------------------------------------------------

def _part(raw: Any, key: str) -> Mapping[str, Any]:
    """``raw[key]`` when both are mappings (a part of a state or an execution), else empty."""
    value = raw.get(key) if isinstance(raw, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def failing_cell_facts(nb: Mapping[str, Any] | None) -> dict[str, Any]:
    """From the executed notebook: its run record's counts and error, the failing cell's label
    and its error output's traceback tail."""
    if not nb:
        return {}
    meta = (nb.get("metadata") or {}).get("studio_runner") or {}
    facts: dict[str, Any] = {key: meta.get(key) for key in ("cells_total", "cells_executed") if meta.get(key) is not None}
    error = _part(meta, "error")
    for cell in nb.get("cells") or []:
        if ((cell.get("metadata") or {}).get("papermill") or {}).get("status") != "failed":
            continue
        count = cell.get("execution_count")
        facts["failing_cell"] = f"In [{count}]" if count is not None else "a cell that never ran"
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                facts.update(ename=output.get("ename"), evalue=output.get("evalue"),
                             traceback=traceback_tail(output.get("traceback") or []))
                break
        break
    if "ename" not in facts and error.get("ename"):
        facts.update(ename=error.get("ename"), evalue=error.get("evalue"))
    if "failing_cell" not in facts and error.get("execution_count") is not None:
        facts["failing_cell"] = f"In [{error['execution_count']}]"
    return facts


def record_from(*, execution: Mapping[str, Any], state: Mapping[str, Any] | None = None,
                notebook: Mapping[str, Any] | None = None, console_url: str | None = None) -> RunRecord:
    """The record of an ended run from ``DescribeExecution`` (``execution``, with ``input``/
    ``output`` parsed), the last state its steps handed on (``aborted.state_from_history``) and
    the executed notebook."""
    state = state or {}
    payload = _part(execution, "input")
    payload = payload.get("payload", payload) if isinstance(payload.get("payload", payload), Mapping) else {}
    output = _part(execution, "output")
    outcome = _part(state, "outcome")
    result = output or (_part(outcome, "result")) or {}
    run = _part(state, "run")
    spec = _part(run, "spec")
    schedule = _part(payload, "schedule")
    status = str(execution.get("status") or "UNKNOWN")
    if status == "SUCCEEDED" and result.get("status") == "SKIPPED":
        status = "SKIPPED"
    started, stopped = execution.get("startDate"), execution.get("stopDate")
    duration = result.get("duration_seconds")
    if duration is None and started is not None and stopped is not None:
        duration = (stopped - started).total_seconds()
    record = RunRecord(
        run_id=str(execution.get("name") or result.get("run_id") or run.get("run_id") or "?"),
        status=status,
        notebook=spec.get("notebook") or spec.get("notebook_s3") or payload.get("notebook")
        or payload.get("notebook_s3"),
        target=result.get("target") or run.get("target") or payload.get("target"),
        schedule=schedule.get("name"),
        parameters=dict(spec.get("parameters") or payload.get("parameters") or {}),
        duration_seconds=duration,
        cells_total=result.get("cells_total"),
        cells_executed=result.get("cells_executed"),
        error=execution.get("error") or outcome.get("error"),
        cause=execution.get("cause") or outcome.get("cause"),
        output_notebook=result.get("output_notebook") or run.get("output_uri"),
        output_html=result.get("output_html"),
        console_url=console_url,
        next_attempt=result.get("next_attempt"),
        held_until=result.get("held_until"),
    )
    facts = failing_cell_facts(notebook)
    for key, value in facts.items():
        # The notebook's own counts win: a step that failed never handed its cursor on, so
        # the execution's result may say 0 cells run where the notebook records them.
        if value is not None and (key in ("cells_total", "cells_executed") or getattr(record, key) in (None, [])):
            setattr(record, key, value)
    if status == "SUCCEEDED":
        record.error = record.cause = None
    return record
