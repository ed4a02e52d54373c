"""What a run records in the notebook, checked against papermill's own code."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from papermill.engines import NotebookExecutionManager
from papermill.exceptions import PapermillExecutionError
from papermill.execute import raise_for_execution_errors, remove_error_markers

from studiorunner.notebook import (
    ERROR_MARKER_TAG,
    add_error_banner,
    code_cells_to_run,
    finish_run,
    mark_cell_finished,
    mark_cell_kernel_died,
    mark_cell_queued,
    mark_cell_started,
    notebook_name,
    output_key,
    prepare_for_run,
    remove_error_banner,
)
from studiorunner.parameters import inject_parameters
from studiorunner.store import notebook_from_bytes, notebook_to_bytes

T0 = datetime(2026, 11, 22, 6, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def sample() -> nbformat.NotebookNode:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})
    nb.cells = [
        new_markdown_cell("# Report"),
        new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        new_code_cell("   \n"),  # blank: not run
        new_code_cell("print(x)", execution_count=7, outputs=[new_output("stream", name="stdout", text="old\n")]),
        new_code_cell("expensive()", metadata={"tags": ["skip-execution"]}),
        new_code_cell("1 / 0"),
        new_code_cell("print('after')"),
    ]
    return nb


def prepare(nb, **overrides):
    kwargs = dict(run_id="run-1", input_path="reports/daily.ipynb",
                  output_uri="s3://bucket/runs/run-1/daily.ipynb", parameters={}, kernel_name="python3",
                  started_at=T0)
    kwargs.update(overrides)
    prepare_for_run(nb, **kwargs)


def test_code_cells_to_run_skips_blank_markdown_and_skip_execution():
    assert code_cells_to_run(sample()) == [1, 3, 5, 6]


def test_code_cells_to_run_on_nbclients_skip_execution_notebook(peer_suites):
    nb = nbformat.read(peer_suites / "nbclient" / "Skip Execution with Cell Tag.ipynb", as_version=4)
    assert code_cells_to_run(nb) == [1]


def test_prepare_for_run_resets_cells_exactly_as_papermills_notebook_start():
    nb = sample()
    reference = copy.deepcopy(nb)
    reference.metadata["papermill"] = {}
    NotebookExecutionManager(reference, output_path=None, progress_bar=False).notebook_start()

    prepare(nb, parameters={"x": 2})

    for ours, theirs in zip(nb.cells, reference.cells, strict=False):
        assert ours.metadata.papermill == theirs.metadata.papermill
        assert ours.get("outputs") == theirs.get("outputs")
        assert ours.get("execution_count") == theirs.get("execution_count")
    assert nb.cells[3].outputs == [] and nb.cells[3].execution_count is None
    assert nb.cells[0].metadata.papermill.status == "pending"

    pm = nb.metadata.papermill
    assert set(reference.metadata.papermill) <= set(pm)
    assert pm.start_time == T0.isoformat() and pm.end_time is None and pm.exception is None
    assert pm.input_path == "reports/daily.ipynb"
    assert pm.output_path == "s3://bucket/runs/run-1/daily.ipynb"
    assert pm.parameters == {"x": 2}

    record = nb.metadata.studio_runner
    assert record.run_id == "run-1" and record.status == "running"
    assert record.cells_total == 4 and record.cells_executed == 0
    assert record.kernel_name == "python3" and record.warnings == []
    nbformat.validate(nb)


def test_prepare_for_run_removes_a_previous_runs_error_banner():
    nb = sample()
    add_error_banner(nb, 5, "ZeroDivisionError", "division by zero")
    prepare(nb)
    assert not [c for c in nb.cells if ERROR_MARKER_TAG in c.metadata.get("tags", [])]
    assert len(nb.cells) == 7


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        prepare(sample(), started_at=datetime(2026, 1, 1))


def run_sample_to_failure(nb):
    prepare(nb)
    mark_cell_started(nb.cells[1], at(1))
    mark_cell_finished(nb.cells[1], "completed", at(1.25))
    mark_cell_started(nb.cells[3], at(2))
    mark_cell_finished(nb.cells[3], "completed", at(2.5))
    mark_cell_started(nb.cells[5], at(3))
    nb.cells[5].outputs = [new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                      traceback=["ZeroDivisionError: division by zero"])]
    nb.cells[5].execution_count = 3
    mark_cell_finished(nb.cells[5], "failed", at(4))
    mark_cell_finished(nb.cells[6], "aborted", at(4))  # the kernel refused the queued request


def test_cell_marks_follow_papermills_shape():
    nb = sample()
    run_sample_to_failure(nb)
    ok, failed, aborted = (nb.cells[i].metadata.papermill for i in (3, 5, 6))
    assert ok == {"status": "completed", "start_time": at(2).isoformat(), "end_time": at(2.5).isoformat(),
                  "duration": 0.5, "exception": False}
    assert failed["status"] == "failed" and failed["exception"] is True and failed["duration"] == 1.0
    assert aborted == {"status": "aborted", "start_time": None, "end_time": at(4).isoformat(),
                       "duration": None, "exception": False}


def test_mark_cell_finished_rejects_unknown_status():
    with pytest.raises(ValueError):
        mark_cell_finished(new_code_cell("x"), "done", T0)


def test_finish_failed_run():
    nb = sample()
    run_sample_to_failure(nb)
    error = {"name": "CellExecutionError", "cell_index": 5, "ename": "ZeroDivisionError", "evalue": "division by zero"}
    finish_run(nb, "failed", at(5), error)

    statuses = [c.metadata.papermill.status for c in nb.cells]
    # markdown and blank cells before the failure count as completed (papermill's
    # notebook_complete); the skip-execution cell says it was skipped.
    assert statuses == ["completed", "completed", "completed", "completed", "skipped", "failed", "aborted"]
    pm = nb.metadata.papermill
    assert pm.end_time == at(5).isoformat() and pm.duration == 5.0 and pm.exception is True
    record = nb.metadata.studio_runner
    assert record.status == "failed" and record.error == error
    assert record.cells_executed == 3 and record.duration == 5.0
    nbformat.validate(nb)


def test_finish_marks_a_cell_still_running_as_aborted():
    nb = sample()
    prepare(nb)
    mark_cell_started(nb.cells[1], at(1))
    finish_run(nb, "failed", at(9), {"name": "KernelDied"})
    cell = nb.cells[1].metadata.papermill
    assert cell.status == "aborted" and cell.duration == 8.0 and cell.exception is False
    # code cells that never ran stay pending; the markdown cell counts as completed
    assert nb.cells[3].metadata.papermill.status == "pending"
    assert nb.cells[0].metadata.papermill.status == "completed"
    assert nb.metadata.studio_runner.cells_executed == 0


def test_finish_succeeded_run():
    nb = sample()
    prepare(nb)
    for i in code_cells_to_run(nb):
        mark_cell_started(nb.cells[i], at(i))
        mark_cell_finished(nb.cells[i], "completed", at(i + 0.5))
    finish_run(nb, "succeeded", at(10))
    assert nb.metadata.papermill.exception is None
    assert nb.metadata.studio_runner.status == "succeeded"
    assert nb.metadata.studio_runner.cells_executed == 4


def papermill_banner(nb, tmp_path):
    reference = copy.deepcopy(nb)
    with pytest.raises(PapermillExecutionError):
        raise_for_execution_errors(reference, str(tmp_path / "out.ipynb"))
    return nbformat.read(tmp_path / "out.ipynb", as_version=4)


def test_error_banner_is_papermills_and_links_to_the_failing_cell(tmp_path):
    nb = sample()
    run_sample_to_failure(nb)
    reference = papermill_banner(nb, tmp_path)

    add_error_banner(nb, 5, "ZeroDivisionError", "division by zero")

    assert len(nb.cells) == len(reference.cells) == 9
    for ours, theirs in zip(nb.cells, reference.cells, strict=False):
        assert ours.metadata.get("tags", []) == theirs.metadata.get("tags", [])
    banner, anchor = nb.cells[0], nb.cells[6]
    assert banner.source.startswith(reference.cells[0].source)  # papermill's text, then the error
    assert "In [3]" in banner.source and 'href="#papermill-error-cell"' in banner.source
    assert "<pre>ZeroDivisionError: division by zero</pre>" in banner.source
    assert anchor.source == reference.cells[6].source
    assert 'id="papermill-error-cell"' in anchor.source
    assert nb.cells[7].source == "1 / 0"  # the anchor sits right before the failing cell
    nbformat.validate(nb)


def test_error_banner_is_idempotent_and_removable():
    nb = sample()
    run_sample_to_failure(nb)
    add_error_banner(nb, 5, "ZeroDivisionError", "division by zero")
    first = [c.source for c in nb.cells]
    # a second call with the index *as it now is* (the failing cell moved to 7)
    add_error_banner(nb, 7, "ZeroDivisionError", "division by zero")
    assert [c.source for c in nb.cells] == first
    assert sum(ERROR_MARKER_TAG in c.metadata.get("tags", []) for c in nb.cells) == 2

    remove_error_banner(nb)
    assert [c.source for c in nb.cells] == [c.source for c in sample().cells]
    remove_error_banner(nb)  # nothing left to remove
    assert len(nb.cells) == 7


def test_papermill_removes_our_banner_too():
    nb = sample()
    run_sample_to_failure(nb)
    add_error_banner(nb, 5, "ZeroDivisionError", "division by zero")
    assert len(remove_error_markers(nb).cells) == 7


def test_error_banner_escapes_the_error_text():
    nb = sample()
    run_sample_to_failure(nb)
    add_error_banner(nb, 5, "ValueError", "<script>alert(1)</script>" + "x" * 1000)
    assert "<script>" not in nb.cells[0].source
    assert "&lt;script&gt;" in nb.cells[0].source
    assert len(nb.cells[0].source) < 1200  # evalue is shortened; the cell has the full text


def test_banner_on_a_v4_4_notebook_keeps_it_valid(peer_suites):
    nb = nbformat.read(peer_suites / "papermill" / "broken1.ipynb", as_version=4)
    assert nb.nbformat_minor < 5
    index = code_cells_to_run(nb)[0]
    add_error_banner(nb, index, "Exception", "boom")
    nbformat.validate(nb)


def test_cell_marks_keep_papermill_and_runner_status_together():
    """One writer for a cell's status: the papermill record and the runner's agree."""
    cell = new_code_cell("x")
    mark_cell_queued(cell)
    assert cell.metadata.studio_runner.status == "queued" and "papermill" not in cell.metadata
    mark_cell_started(cell, at(1))
    assert cell.metadata.studio_runner.status == "running" == cell.metadata.papermill.status
    mark_cell_finished(cell, "failed", at(2), timed_out=True)
    assert cell.metadata.studio_runner == {"status": "failed", "timed_out": True}
    assert cell.metadata.papermill.exception is True and cell.metadata.papermill.duration == 1.0


def test_kernel_death_is_said_in_the_cell():
    cell = new_code_cell("import os; os._exit(1)")
    mark_cell_kernel_died(cell, at(2), "dead")
    assert [o.output_type for o in cell.outputs] == ["error"] and cell.outputs[0].ename == "KernelDied"
    assert "kernel died" in cell.outputs[0].evalue
    assert cell.metadata.papermill.status == "failed" and cell.metadata.studio_runner.kernel_died is True
    nbformat.validate(new_notebook(cells=[cell]))


def test_whole_lifecycle_survives_a_save_and_load(peer_suites):
    nb = nbformat.read(peer_suites / "papermill" / "simple_execute.ipynb", as_version=4)
    inject_parameters(nb, {"msg": "Hello"})
    prepare(nb, parameters={"msg": "Hello"})
    for i in code_cells_to_run(nb):
        mark_cell_started(nb.cells[i], at(i))
        mark_cell_finished(nb.cells[i], "completed", at(i + 1))
    finish_run(nb, "succeeded", at(10))
    nbformat.validate(nb)
    again = notebook_from_bytes(notebook_to_bytes(nb), source="test")
    assert again.metadata.studio_runner.status == "succeeded"
    assert again.metadata.papermill.parameters == {"msg": "Hello"}
    assert again.cells[1].metadata.papermill.status == "completed"


@pytest.mark.parametrize(
    "path, name",
    [
        ("reports/daily.ipynb", "daily"),
        ("daily.ipynb", "daily"),
        ("s3://bucket/inbox/Skip Exceptions.ipynb", "Skip Exceptions"),
        ("a/b.IPYNB", "b"),
        ("notes", "notes"),
    ],
)
def test_notebook_name(path, name):
    assert notebook_name(path) == name


def test_output_key():
    assert output_key("run-1", "reports/daily.ipynb") == "runs/run-1/daily.ipynb"
    with pytest.raises(ValueError):
        output_key("a/b", "daily.ipynb")
    with pytest.raises(ValueError):
        notebook_name("reports/")
