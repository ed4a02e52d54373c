"""Where a resume starts (issue 19): cells are numbered as the run's errors name them ("Cell N",
the position in the notebook as run), and the fixed notebook, which has no injected-parameters
cell, is matched by code cell."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from studiorunner import notebook as nbtools
from studiorunner.errors import PayloadInvalid
from studiorunner.recovery import failed_cell_number, resume_notebook


def _held() -> nbformat.NotebookNode:
    """As the held run saved it: a markdown cell, the parameters and injected cells, A, B (failed), C."""
    cells = [new_markdown_cell("# Report"), new_code_cell("n = 1"), new_code_cell("n = 5"),
             new_code_cell("a = n"), new_code_cell("b = 1 / 0"), new_code_cell("print(a, b)")]
    cells[1].metadata["tags"] = ["parameters"]
    cells[2].metadata["tags"] = ["injected-parameters"]
    for cell in cells[1:4]:
        cell.metadata["papermill"] = {"status": "completed"}
    cells[4].metadata["papermill"] = {"status": "failed"}
    nb = new_notebook(cells=cells)
    nbtools.add_error_banner(nb, 4, "ZeroDivisionError", "division by zero")  # as Cleanup leaves it
    return nb


def test_the_failed_cell_is_numbered_as_the_error_named_it():
    assert failed_cell_number(_held()) == 5  # "Cell 5 (In [4]) raised ZeroDivisionError" (the banner not counted)


def test_the_fixed_notebook_takes_over_from_the_failed_cell_matched_by_code_cell():
    fixed = new_notebook(cells=[new_markdown_cell("# Report"), new_code_cell("n = 1"), new_code_cell("a = n"),
                                new_code_cell("b = 2"), new_code_cell("print(a, b)")])
    nb, index, start = resume_notebook(_held(), fixed, None, source_run="r", when="t")
    assert (start, index) == (5, 4)
    assert [c.source for c in nb.cells] == ["# Report", "n = 1", "n = 5", "a = n", "b = 2", "print(a, b)"]
    assert nb.cells[4].metadata.papermill["status"] == "pending" and nb.cells[4].outputs == []
    assert nb.cells[3].metadata.papermill["status"] == "completed"  # the first run's cell kept as it ran
    assert nb.metadata["studio_runner"]["resumed"]["from_cell"] == 5


def test_from_a_given_cell_and_points_that_do_not_exist():
    nb, index, start = resume_notebook(_held(), None, 4, source_run="r", when="t")
    assert (start, index) == (4, 3) and nb.cells[3].source == "a = n"
    with pytest.raises(PayloadInvalid, match="has 6 cells: it cannot resume from cell 7"):
        resume_notebook(_held(), None, 7, source_run="r", when="t")
    short = new_notebook(cells=[new_code_cell("n = 1"), new_code_cell("a = n")])
    with pytest.raises(PayloadInvalid, match="has 2 code cells: it cannot resume from cell 5 \\(code cell 3\\)"):
        resume_notebook(_held(), short, None, source_run="r", when="t")
