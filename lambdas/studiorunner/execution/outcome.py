"""What a cell's reply means for the run: nbclient's and papermill's rules, as one pure function.

``judge`` is given a cell the kernel ran (its reply and idle are in) and says how the cell
ends (status and the facts written in it) and whether the run stops (a :class:`Stop`,
with the error to raise, or none for a clean ``sys.exit()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nbformat import NotebookNode

from studiorunner.errors import CellExecutionError, CellTimeout
from studiorunner.execution.cursor import Pending
from studiorunner.execution.options import ExecutorOptions, Stop
from studiorunner.notebook import CellStatus, cell_tags

RAISES_TAG = "raises-exception"
#: SystemExit values that mean "stop here, successfully" (sys.exit(), sys.exit(0), raise SystemExit).
CLEAN_EXIT_VALUES = ("", "0", "None")


@dataclass
class Verdict:
    status: CellStatus
    facts: dict[str, Any] = field(default_factory=dict)  # for notebook.mark_cell_finished
    stop: Stop | None = None  # the run ends (after what is queued is drained)
    allowed_failure: bool = False  # counts in cells_failed; the queue behind it is sent again
    clean_exit: bool = False  # sys.exit(): the run ends successfully here


def judge(p: Pending, cell: NotebookNode, options: ExecutorOptions) -> Verdict:
    """The verdict on cell ``p.cell`` (``cell``), which the kernel ran and answered."""
    if p.reply == "ok":
        return Verdict("completed")
    index, count = p.cell, cell.get("execution_count")
    ename, evalue = p.ename or "Error", p.evalue or ""
    error = {"ename": ename, "evalue": evalue}
    facts: dict[str, Any] = dict(cell_index=index, execution_count=count, ename=ename, evalue=evalue)
    if p.timed_out:
        if options.allow_errors:
            return Verdict("failed", dict(timed_out=True, error=error), allowed_failure=True)
        return Verdict("failed", dict(timed_out=True, error=error), Stop(CellTimeout(
            f"Cell {index + 1} (In [{count}]) ran longer than {options.cell_timeout:g} s and was interrupted",
            timeout_seconds=options.cell_timeout, **facts)))
    if ename == "SystemExit" and evalue in CLEAN_EXIT_VALUES:
        return Verdict("completed", dict(exit="SystemExit"), Stop(), clean_exit=True)
    if options.allow_errors or RAISES_TAG in cell_tags(cell):
        return Verdict("failed", dict(error=error, allowed=True), allowed_failure=True)
    short = evalue if len(evalue) <= 300 else evalue[:300] + "…"
    return Verdict("failed", dict(error=error),
                   Stop(CellExecutionError(f"Cell {index + 1} (In [{count}]) raised {ename}: {short}", **facts)))
