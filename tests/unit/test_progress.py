"""What ``progress.json`` says while cells run, as ``studio-runner watch`` prints it."""

from __future__ import annotations

import io
import json

from studiorunner.notebook import code_cells_to_run
from studiorunner.progress import ProgressReporter
from studiorunner_cli.display import ProgressPrinter
from tests.unit.test_executor import make, run


def test_a_skipped_cell_takes_no_number_in_the_sequence() -> None:
    ex, _kernel, nb = make({}, "a", "skipme", "b")
    nb.cells[1].metadata["tags"] = ["skip-execution"]
    writes: list[dict] = []
    reporter = ProgressReporter(lambda uri, data: writes.append(json.loads(data)), "s3://b/runs/r/progress.json",
                                run_id="r", cells_total=len(code_cells_to_run(nb)), min_interval=0.0)
    ex.on_cell_start, ex.on_cell_end = reporter.cell_started, reporter.cell_finished
    run(ex)
    reporter.finish("done")

    out = io.StringIO()
    printer = ProgressPrinter(out)
    for data in writes:
        printer.update(data)
    assert writes[-1]["cells_total"] == 2 and writes[-1]["cells_finished"] == 2
    finished = [line.split() for line in out.getvalue().splitlines() if "running for" not in line]
    assert [(line[1], line[-1]) for line in finished] == [("1", "(1/2)"), ("3", "(2/2)")], out.getvalue()  # papermill numbers cells from 1
