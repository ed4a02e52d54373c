"""What a run records in the notebook it executes.

Per-cell status and timing use papermill's keys and shapes (``cell.metadata.papermill``
and ``nb.metadata.papermill``), and a failure gets papermill's error banner, so tools that
read papermill output notebooks read ours. What papermill has no key for lives in
``nb.metadata.studio_runner`` (run id, status, error, warnings) and
``cell.metadata.studio_runner`` (the runner's own status — queued, running, … — and facts
such as ``timed_out``, ``error``, ``output_lost``).

This module is the one writer of a cell's status and timing: the executor decides *what*
happened to a cell and calls ``mark_cell_*`` here; nothing else writes those keys.

Times are timezone-aware datetimes written as ISO 8601 strings, as papermill writes them.

Order of a run: ``parameters.inject_parameters`` → ``prepare_for_run`` →
(``mark_cell_queued`` → ``mark_cell_started`` → ``mark_cell_finished``)* → ``finish_run``
(+ ``add_error_banner`` on failure).
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, Literal

import nbformat
from nbformat import NotebookNode

SKIP_TAG = "skip-execution"
ERROR_MARKER_TAG = "papermill-error-cell-tag"

CellStatus = Literal["completed", "failed", "skipped", "aborted"]
RUNNER_KEY = "studio_runner"
RunStatus = Literal["succeeded", "failed"]

_CELL_STATUSES = {"completed", "failed", "skipped", "aborted"}
_RUN_STATUSES = {"succeeded", "failed"}

# papermill's banner, verbatim (papermill/execute.py), so the anchor link works the same.
_ERROR_STYLE = (
    'style="color:red; font-family:Helvetica Neue, Helvetica, Arial, sans-serif; font-size:2em;"'
)
_ERROR_MESSAGE_TEMPLATE = (
    f"<span {_ERROR_STYLE}>An Exception was encountered at "
    "'<a href=\"#papermill-error-cell\">In [%s]</a>'.</span>"
)
_ERROR_ANCHOR_MSG = (
    f'<span id="papermill-error-cell" {_ERROR_STYLE}>'
    "Execution using papermill encountered an exception here and stopped:"
    "</span>"
)
_EVALUE_LIMIT = 500  # the banner names the error; the full traceback is in the cell


def _iso(when: datetime) -> str:
    if when.tzinfo is None or when.utcoffset() is None:
        # A naive time is ambiguous in a file read elsewhere; papermill writes UTC offsets.
        raise ValueError("times recorded in the notebook must be timezone-aware")
    return when.isoformat()


def cell_tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as strings (``"nan"``, ``"inf"``, ``"-inf"``).

    Python's json writes NaN/Infinity, which JupyterLab's strict JSON.parse rejects: a
    NaN parameter recorded as is in the metadata would make the output notebook unopenable.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def ensure_cell_ids(nb: NotebookNode) -> None:
    """Upgrade a v4.0–4.4 notebook to 4.5 in place (cell ids), as papermill does before
    adding cells: a new cell carries an ``id``, which a 4.4 notebook may not have."""
    if nb.get("nbformat") == 4 and nb.get("nbformat_minor", 0) < 5:
        nbformat.v4.upgrade(nb)


def will_run(cell: NotebookNode) -> bool:
    """True for a code cell with non-blank source that is not tagged ``skip-execution``."""
    return (
        cell.get("cell_type") == "code"
        and bool(str(cell.get("source", "")).strip())
        and SKIP_TAG not in cell_tags(cell)
    )


def code_cells_to_run(nb: NotebookNode) -> list[int]:
    """Indexes (in ``nb.cells``) of the cells a run executes, in order."""
    return [i for i, cell in enumerate(nb.cells) if will_run(cell)]


def _pending() -> NotebookNode:
    return NotebookNode(status="pending", start_time=None, end_time=None, duration=None, exception=None)


def prepare_for_run(
    nb: NotebookNode,
    *,
    run_id: str,
    input_path: str,
    output_uri: str,
    parameters: dict[str, Any],
    kernel_name: str,
    started_at: datetime | None = None,
) -> None:
    """Reset ``nb`` for a fresh run (in place), as papermill's ``notebook_start`` does.

    Clears outputs and execution counts of code cells (and the widget state that went with
    them), removes a previous run's error banner, sets every cell's ``metadata.papermill``
    to pending, and writes the run's record in ``nb.metadata.papermill`` and
    ``nb.metadata.studio_runner`` (status ``running``). Warnings recorded by
    ``inject_parameters`` just before are kept; those of an earlier run (a block that
    already has a ``run_id``) are not.
    """
    started = started_at or datetime.now().astimezone()
    remove_error_banner(nb)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.setdefault("metadata", NotebookNode())
        cell.metadata.papermill = _pending()
        cell.metadata.pop("studio_runner", None)

    # An earlier run's widget state names models no kernel of this run made (its outputs are gone).
    nb.metadata.pop("widgets", None)
    previous = nb.metadata.get("studio_runner") or {}
    warnings = list(previous.get("warnings", [])) if "run_id" not in previous else []

    papermill = nb.metadata.setdefault("papermill", NotebookNode())
    papermill.update(
        default_parameters=papermill.get("default_parameters", {}),
        parameters=json_safe(dict(parameters)),
        environment_variables=papermill.get("environment_variables", {}),
        input_path=input_path,
        output_path=output_uri,
        start_time=_iso(started),
        end_time=None,
        duration=None,
        exception=None,
    )
    nb.metadata["studio_runner"] = NotebookNode(
        run_id=run_id,
        status="running",
        input_path=input_path,
        output_uri=output_uri,
        kernel_name=kernel_name,
        start_time=_iso(started),
        end_time=None,
        duration=None,
        cells_total=len(code_cells_to_run(nb)),
        cells_executed=0,
        error=None,
        warnings=warnings,
    )


def runner_record(cell: NotebookNode) -> NotebookNode:
    """The cell's ``metadata.studio_runner`` (created on first use)."""
    meta = cell.setdefault("metadata", NotebookNode())
    if RUNNER_KEY not in meta:
        meta[RUNNER_KEY] = NotebookNode()
    return meta[RUNNER_KEY]


def mark_cell_queued(cell: NotebookNode) -> None:
    """The cell's request is on its way to the kernel (or waits to be sent again)."""
    runner_record(cell)["status"] = "queued"


def mark_cell_started(cell: NotebookNode, when: datetime) -> None:
    """The kernel started the cell: status ``running``, ``exception`` False."""
    pm = cell.metadata.setdefault("papermill", _pending())
    pm.update(status="running", start_time=_iso(when), end_time=None, duration=None, exception=False)
    runner_record(cell)["status"] = "running"


def mark_cell_finished(cell: NotebookNode, status: CellStatus, when: datetime, **facts: Any) -> None:
    """Record how the cell ended: ``end_time``, ``duration`` in seconds since its start
    (None if it never started), ``exception`` True only when it ``failed``; ``facts``
    (JSON values: ``timed_out``, ``error``, ``output_lost``…) go into ``metadata.studio_runner``.

    ``aborted``: the kernel refused a queued request after an earlier error, or the run
    ended before its result came; ``skipped``: the run chose not to execute it.
    """
    if status not in _CELL_STATUSES:
        raise ValueError(f"cell status must be one of {sorted(_CELL_STATUSES)}, not {status!r}")
    pm = cell.metadata.setdefault("papermill", _pending())
    start = pm.get("start_time")
    pm.update(
        status=status,
        end_time=_iso(when),
        duration=(when - datetime.fromisoformat(start)).total_seconds() if start else None,
        exception=status == "failed",
    )
    record = runner_record(cell)
    record["status"] = status
    record.update(facts)


def mark_cell_kernel_died(cell: NotebookNode, when: datetime, kernel_state: str) -> None:
    """The kernel died while running this cell: say so in its outputs (as nbclient's
    ``DeadKernelError`` would end it) and mark it ``failed``."""
    text = (f"The kernel died while this cell was running (kernel state: {kernel_state}); "
            "the outputs above, if any, are all that was received.")
    cell.setdefault("outputs", []).append(
        nbformat.v4.new_output("error", ename="KernelDied", evalue=text, traceback=[f"KernelDied: {text}"]))
    mark_cell_finished(cell, "failed", when, kernel_died=True, error={"ename": "KernelDied", "evalue": text})


def finish_run(
    nb: NotebookNode, status: RunStatus, when: datetime, error: dict[str, Any] | None = None
) -> None:
    """Close the run's record.

    As papermill's ``notebook_complete``: cells still ``pending`` before the first failed
    cell become ``completed`` (markdown, blank cells), except code cells tagged
    ``skip-execution``, which become ``skipped``; cells after a failure stay ``pending``
    (they did not run). A cell still ``running`` when the run ends is ``aborted``: its
    result never came. ``error`` (e.g. ``{"name", "cell_index", "ename", "evalue"}``) is
    stored as given, so it must be JSON-serialisable and free of secrets.
    """
    if status not in _RUN_STATUSES:
        raise ValueError(f"run status must be one of {sorted(_RUN_STATUSES)}, not {status!r}")
    end = _iso(when)
    failed_seen = False
    executed = 0
    for cell in nb.cells:
        pm = cell.metadata.setdefault("papermill", _pending())
        if pm.get("status") == "running":
            mark_cell_finished(cell, "aborted", when)
        state = pm.get("status")
        if state == "failed":
            failed_seen = True
        elif state == "pending" and not failed_seen:
            if cell.get("cell_type") == "code" and SKIP_TAG in cell_tags(cell):
                pm["status"] = "skipped"
            elif not will_run(cell):
                pm["status"] = "completed"
        if cell.get("cell_type") == "code" and pm.get("status") in {"completed", "failed"} and pm.get("start_time"):
            executed += 1

    papermill = nb.metadata.setdefault("papermill", NotebookNode())
    papermill["end_time"] = end
    if papermill.get("start_time"):
        papermill["duration"] = (when - datetime.fromisoformat(papermill["start_time"])).total_seconds()
    papermill["exception"] = True if status == "failed" else None

    record = nb.metadata.setdefault("studio_runner", NotebookNode())
    record.update(status=status, end_time=end, error=error, cells_executed=executed)
    if record.get("start_time"):
        record["duration"] = (when - datetime.fromisoformat(record["start_time"])).total_seconds()


def add_error_banner(nb: NotebookNode, cell_index: int, ename: str, evalue: str) -> None:
    """Mark the failing cell as papermill does: a red banner at the top linking to an
    anchor cell placed just before ``nb.cells[cell_index]``, both tagged
    ``papermill-error-cell-tag``. ``cell_index`` is the index at call time; any banner
    already there is replaced, so the notebook never has two.
    """
    failing = nb.cells[cell_index]
    remove_error_banner(nb)
    ensure_cell_ids(nb)
    index = next(i for i, cell in enumerate(nb.cells) if cell is failing)

    evalue = str(evalue)
    if len(evalue) > _EVALUE_LIMIT:
        evalue = evalue[:_EVALUE_LIMIT] + "…"
    # papermill's banner text, then what failed (escaped: evalue is arbitrary text).
    message = _ERROR_MESSAGE_TEMPLATE % str(failing.get("execution_count"))
    # An HTML block, not a code span: entities are decoded in HTML, not in `code`.
    message += f"\n\n<pre>{html.escape(f'{ename}: {evalue}' if evalue else ename)}</pre>"
    banner = nbformat.v4.new_markdown_cell(message)
    banner.metadata["tags"] = [ERROR_MARKER_TAG]
    anchor = nbformat.v4.new_markdown_cell(_ERROR_ANCHOR_MSG)
    anchor.metadata["tags"] = [ERROR_MARKER_TAG]
    for cell in (banner, anchor):
        cell.metadata["papermill"] = NotebookNode(
            status="completed", start_time=None, end_time=None, duration=None, exception=None
        )
    nb.cells.insert(index, anchor)
    nb.cells.insert(0, banner)


def remove_error_banner(nb: NotebookNode) -> None:
    """Remove the cells ``add_error_banner`` (or papermill) added."""
    nb.cells = [cell for cell in nb.cells if ERROR_MARKER_TAG not in cell_tags(cell)]


def notebook_name(path: str) -> str:
    """The notebook's file name without ``.ipynb`` (``reports/daily.ipynb`` → ``daily``);
    accepts Jupyter paths and ``s3://`` URIs."""
    name = "" if path.endswith("/") else PurePosixPath(path).name
    if name.lower().endswith(".ipynb"):
        name = name[: -len(".ipynb")]
    if not name or name in {".", ".."}:
        raise ValueError(f"no notebook name in path {path!r}")
    return name


def output_key(run_id: str, notebook_path: str) -> str:
    """The S3 key of a run's output notebook: ``runs/<run_id>/<name>.ipynb``."""
    if not run_id or "/" in run_id or run_id in {".", ".."}:
        raise ValueError(f"run id {run_id!r} cannot be a single S3 key segment")
    return f"runs/{run_id}/{notebook_name(notebook_path)}.ipynb"
