"""The peer suites through the FULL local run: papermill's and nbclient's own test notebooks
(read from ../shared/peer-suites: tests/peer_suites.py) run by the state machine against the
Studio stand-in, and the executed notebook read back from S3.

The nbclient notebooks are compared with their stored outputs after nbclient's
normalisation — the same one the kernel-level conformance test
(tests/integration/test_conformance_nbclient.py) uses, imported from there.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from e2e_support import Env, assert_nothing_running, errors, stream_text

from localstudio.local_stack import LocalStack
from localstudio.standin import StandIn
from tests.integration.test_conformance_nbclient import assert_same_outputs
from tests.peer_suites import MISSING, PEER_SUITES

NBCLIENT = PEER_SUITES / "nbclient"
PAPERMILL = PEER_SUITES / "papermill"
PARALLEL_ENV = "NBEXECUTE_TEST_PARALLEL_TMPDIR"

pytestmark = pytest.mark.skipif(not PEER_SUITES.is_dir(), reason=MISSING)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("peers-home")
    # Parallel Execute A/B find each other through a folder named in the kernel's
    # environment, as nbclient's test sets it; kernels inherit the stand-in's environment.
    parallel_dir = tmp_path_factory.mktemp("parallel")
    previous = os.environ.get(PARALLEL_ENV)
    os.environ[PARALLEL_ENV] = str(parallel_dir)
    try:
        with StandIn(root=root, flavor="studio-space") as standin, LocalStack(standin, wait_scale=0.05,
                                                                                     # the parallel-execute pair must run at once
                                                                                     max_concurrent_runs=2) as stack:
            yield Env(standin, stack, root)
    finally:
        if previous is None:
            os.environ.pop(PARALLEL_ENV, None)
        else:
            os.environ[PARALLEL_ENV] = previous


def peer(env: Env, suite: Path, name: str) -> str:
    """Copy a peer notebook (and what it reads) into the stand-in's file tree; its path there."""
    folder = env.root / suite.name
    folder.mkdir(exist_ok=True)
    shutil.copy(suite / name, folder / name)
    if name == "Inline Image.ipynb":
        shutil.copy(suite / "python.png", folder / "python.png")  # it opens python.png from its cwd
    return f"{suite.name}/{name}"


def expected(suite: Path, name: str) -> nbformat.NotebookNode:
    return nbformat.read(suite / name, as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def user_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The notebook's own cells: without the error banner/anchor a failed run adds."""
    return [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]


# nbclient runs them all with the default Python 3 kernel; many of the files name none.
KERNEL = {"name": "python3"}


# -- nbclient: outputs equal to the stored ones ----------------------------------------

PLAIN = ["HelloWorld.ipynb", "Factorials.ipynb", "Clear Output.ipynb", "Inline Image.ipynb",
         "SVG.ipynb", "Unicode.ipynb", "UnicodePy3.ipynb", "update-display-id.ipynb",
         "Empty Cell.ipynb", "Other Comms.ipynb"]


@pytest.mark.parametrize("name", PLAIN)
def test_nbclient_notebook_matches_through_the_state_machine(env: Env, name: str) -> None:
    execution = env.run({"notebook": peer(env, NBCLIENT, name), "kernel": KERNEL})

    assert execution.succeeded, (execution.error, execution.cause)
    actual = env.output(execution)
    assert_same_outputs(expected(NBCLIENT, name), actual)
    assert execution.output["cells_failed"] == 0
    assert_nothing_running(env)


def test_nbclient_skip_execution_with_cell_tag(env: Env) -> None:
    name = "Skip Execution with Cell Tag.ipynb"
    execution = env.run({"notebook": peer(env, NBCLIENT, name), "kernel": KERNEL})

    assert execution.succeeded, (execution.error, execution.cause)
    actual = env.output(execution)
    assert_same_outputs(expected(NBCLIENT, name), actual)
    assert code_cells(actual)[0].metadata.papermill["status"] == "skipped"
    assert execution.output["cells_executed"] == 1


def test_nbclient_skip_exceptions_with_cell_tags(env: Env) -> None:
    name = "Skip Exceptions with Cell Tags.ipynb"
    execution = env.run({"notebook": peer(env, NBCLIENT, name), "kernel": KERNEL})

    assert execution.succeeded, (execution.error, execution.cause)
    # tracebacks: IPython 9 lays frames out differently from the IPython that made the file
    assert_same_outputs(expected(NBCLIENT, name), env.output(execution), compare_tracebacks=False)
    assert execution.output["cells_failed"] == 1


def test_nbclient_skip_exceptions_with_allow_errors(env: Env) -> None:
    name = "Skip Exceptions.ipynb"
    execution = env.run({"notebook": peer(env, NBCLIENT, name), "kernel": KERNEL, "allow_errors": True})

    assert execution.succeeded, (execution.error, execution.cause)
    assert_same_outputs(expected(NBCLIENT, name), env.output(execution), compare_tracebacks=False)
    assert execution.output["cells_failed"] == 1
    assert_nothing_running(env)


def test_nbclient_interrupt_on_timeout_and_carry_on(env: Env) -> None:
    name = "Interrupt.ipynb"
    start = time.monotonic()
    execution = env.run({"notebook": peer(env, NBCLIENT, name), "kernel": KERNEL,
                         "timeouts": {"cell_seconds": 3}, "allow_errors": True})

    assert time.monotonic() - start < 20
    assert execution.succeeded, (execution.error, execution.cause)
    actual = env.output(execution)
    assert_same_outputs(expected(NBCLIENT, name), actual, compare_tracebacks=False)
    assert execution.output["cells_failed"] == 1
    assert_nothing_running(env)


# -- nbclient: expected failures ---------------------------------------------------------

def test_nbclient_error_fails_the_run_on_its_error_cell(env: Env) -> None:
    name = "Error.ipynb"
    execution = env.run({"notebook": peer(env, NBCLIENT, name), "kernel": KERNEL})

    assert execution.status == "FAILED"
    assert execution.error == "CellExecutionError"
    assert "ZeroDivisionError" in execution.cause
    actual = env.output(execution)
    want = expected(NBCLIENT, name)
    got = nbformat.v4.new_notebook(cells=user_cells(actual))
    assert_same_outputs(want, got, compare_tracebacks=False)
    assert_nothing_running(env)


def test_nbclient_autokill_is_kernel_died_promptly(env: Env) -> None:
    start = time.monotonic()
    execution = env.run({"notebook": peer(env, NBCLIENT, "Autokill.ipynb"), "kernel": KERNEL})
    elapsed = time.monotonic() - start

    assert execution.status == "FAILED"
    assert execution.error == "KernelDied"
    assert elapsed < 20, f"the run took {elapsed:.1f} s to notice the kernel killed itself"
    assert env.output(execution).metadata.studio_runner["status"] == "failed"
    assert_nothing_running(env)


def test_nbclient_disable_stdin_fails_fast(env: Env) -> None:
    start = time.monotonic()
    execution = env.run({"notebook": peer(env, NBCLIENT, "Disable Stdin.ipynb"), "kernel": KERNEL})
    elapsed = time.monotonic() - start

    assert execution.status == "FAILED"
    assert execution.error == "CellExecutionError"
    assert "StdinNotImplementedError" in execution.cause
    assert elapsed < 15, f"input() took {elapsed:.1f} s to fail"
    assert_nothing_running(env)


# -- nbclient: timing and two runs at once ---------------------------------------------

def test_nbclient_sleep1s_timing(env: Env) -> None:
    execution = env.run({"notebook": peer(env, NBCLIENT, "Sleep1s.ipynb"), "kernel": KERNEL})

    assert execution.succeeded, (execution.error, execution.cause)
    cells = code_cells(env.output(execution))
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    t0 = datetime.strptime(stream_text(cells[2]), fmt)
    t1 = datetime.strptime(stream_text(cells[3]), fmt)
    assert (t1 - t0).total_seconds() >= 1.0
    sleep = cells[1]
    # nbclient's per-cell timing keys (the kernel's own message dates), as nbclient's tests check them
    timing = sleep.metadata["execution"]
    for key in ("iopub.status.busy", "iopub.execute_input", "shell.execute_reply", "iopub.status.idle"):
        assert key in timing, timing
    kernel_time = datetime.strptime(timing["shell.execute_reply"], fmt) - datetime.strptime(timing["iopub.execute_input"], fmt)
    assert kernel_time.total_seconds() >= 1.0
    # papermill's duration is measured as messages arrive at the runner: a few ms of jitter
    assert sleep.metadata.papermill["duration"] == pytest.approx(1.0, abs=0.25)


def test_nbclient_parallel_execute_a_and_b_run_at_the_same_time(env: Env) -> None:
    # Each notebook waits (5 s at most) for a file the other writes: they pass only if both run at once.
    arns = [env.stack.start({"notebook": peer(env, NBCLIENT, name), "kernel": KERNEL})
            for name in ("Parallel Execute A.ipynb", "Parallel Execute B.ipynb")]
    executions = [env.stack.wait(arn, timeout=120) for arn in arns]

    for execution in executions:
        assert execution.succeeded, (execution.error, execution.cause)
    assert_nothing_running(env)


# -- papermill ----------------------------------------------------------------------------

def test_papermill_simple_execute_prints_the_injected_message(env: Env) -> None:
    execution = env.run({"notebook": peer(env, PAPERMILL, "simple_execute.ipynb"), "parameters": {"msg": "Hello"}})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    assert "parameters" in nb.cells[0].metadata["tags"]
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]
    assert nb.cells[1].source == '# Parameters\nmsg = "Hello"\n'  # papermill's own translation
    assert stream_text(nb.cells[2]) == "Hello\n"
    assert nb.metadata.studio_runner["warnings"] == []
    assert nb.metadata.papermill["parameters"] == {"msg": "Hello"}
    assert_nothing_running(env)


def test_papermill_no_parameters_injects_at_the_top(env: Env) -> None:
    execution = env.run({"notebook": peer(env, PAPERMILL, "no_parameters.ipynb"), "parameters": {"msg": "Hello"}})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    assert nb.cells[0].metadata["tags"] == ["injected-parameters"]
    assert 'msg = "Hello"' in nb.cells[0].source
    assert any("'parameters'" in w for w in nb.metadata.studio_runner["warnings"])
    # the notebook's own first cell (msg = None) runs after the injected one, as with papermill
    assert stream_text(nb.cells[2]) == "None\n"


def test_papermill_complex_parameters_are_recognised(env: Env) -> None:
    # Its parameters cell ends in a broken line (`= 2`, a SyntaxError when run): carry on past it.
    params = {"msg": "Hi", "a": 3.5, "b": ["x", "y"], "c": {"k": 1}, "d": True, "e": 1}
    execution = env.run({"notebook": peer(env, PAPERMILL, "complex_parameters.ipynb"),
                         "parameters": params, "allow_errors": True})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]
    assert [e.ename for e in errors(nb.cells[0])] == ["SyntaxError"]
    assert errors(nb.cells[1]) == [] and nb.cells[1].execution_count is not None
    warnings = nb.metadata.studio_runner["warnings"]
    # every name the cell defines (annotated, multi-line, commented) is known; only 'e' is not
    assert [w for w in warnings if "not defined" in w] == [
        "Parameter 'e' is not defined in the notebook's parameters cell"]


def test_papermill_result_no_exec_parameters_cell(env: Env) -> None:
    execution = env.run({"notebook": peer(env, PAPERMILL, "result_no_exec.ipynb"),
                         "parameters": {"foo": 2, "bar": "bye"}})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    assert [c.metadata.get("tags") for c in nb.cells] == [["parameters"], ["injected-parameters"]]
    assert nb.metadata.studio_runner["warnings"] == []


def test_papermill_broken1_keeps_outputs_up_to_the_failing_cell_and_marks_it(env: Env) -> None:
    execution = env.run({"notebook": peer(env, PAPERMILL, "broken1.ipynb")})

    assert execution.status == "FAILED"
    assert execution.error == "CellExecutionError"
    assert "AssertionError" in execution.cause
    nb = env.output(execution)
    cells = code_cells(nb)
    assert stream_text(cells[0]) == "We're good.\n"
    failing = cells[1]
    assert failing.source == "assert False"
    assert [e.ename for e in errors(failing)] == ["AssertionError"]
    assert failing.metadata.papermill["status"] == "failed" and failing.metadata.papermill["exception"] is True
    assert cells[2].execution_count is None and cells[2].outputs == []
    # one banner at the top (the input's stale banner from an earlier papermill run is gone),
    # linking to the anchor right before the failing cell
    marked = [i for i, c in enumerate(nb.cells) if "papermill-error-cell-tag" in c.metadata.get("tags", [])]
    assert len(marked) == 2 and marked[0] == 0
    assert 'href="#papermill-error-cell"' in nb.cells[0].source
    assert f"In [{failing.execution_count}]" in nb.cells[0].source
    anchor_at = marked[1]
    assert 'id="papermill-error-cell"' in nb.cells[anchor_at].source
    assert nb.cells[anchor_at + 1] is failing
    assert_nothing_running(env)


@pytest.mark.parametrize("name", ["sysexit.ipynb", "sysexit0.ipynb", "systemexit.ipynb"])
def test_papermill_clean_exit_stops_the_run_without_failing_it(env: Env, name: str) -> None:
    execution = env.run({"notebook": peer(env, PAPERMILL, name)})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    cells = code_cells(nb)
    assert [e.ename for e in errors(cells[1])] == ["SystemExit"]
    assert cells[2].execution_count is None and cells[2].outputs == []  # "Cell should not execute."
    assert execution.output["cells_executed"] == 2
    assert execution.output.get("exit") == "SystemExit"
    assert nb.metadata.studio_runner["status"] == "succeeded"
    assert_nothing_running(env)


def test_papermill_sysexit1_fails_the_run(env: Env) -> None:
    execution = env.run({"notebook": peer(env, PAPERMILL, "sysexit1.ipynb")})

    assert execution.status == "FAILED"
    assert execution.error == "CellExecutionError"
    assert "SystemExit" in execution.cause
    nb = env.output(execution)
    cells = code_cells(nb)
    assert [e.ename for e in errors(cells[1])] == ["SystemExit"]
    assert cells[2].execution_count is None and cells[2].outputs == []
    assert nb.metadata.studio_runner["status"] == "failed"
    assert_nothing_running(env)


def test_papermill_line_magic_error_fails_on_the_magic(env: Env) -> None:
    execution = env.run({"notebook": peer(env, PAPERMILL, "line_magic_error.ipynb")})

    assert execution.status == "FAILED"
    assert execution.error == "CellExecutionError"
    assert "UsageError" in execution.cause
    cells = code_cells(env.output(execution))
    # IPython reports a usage error on stderr, not as an error output
    assert "UsageError: Line magic function `%undefined-line-magic` not found." in stream_text(cells[0], "stderr")
    assert cells[0].metadata.papermill["status"] == "failed"
    assert cells[1].execution_count is None and cells[1].outputs == []  # "Cell should not execute."


def test_papermill_keyboard_interrupt_cell_times_out(env: Env) -> None:
    # sleep(60): with a 2 s cell timeout the kernel is interrupted, as papermill's stored output shows
    execution = env.run({"notebook": peer(env, PAPERMILL, "keyboard_interrupt.ipynb"), "timeouts": {"cell_seconds": 2}})

    assert execution.status == "FAILED"
    assert execution.error == "CellTimeout"
    want = [o.ename for o in expected(PAPERMILL, "keyboard_interrupt.ipynb").cells[0].outputs if o.output_type == "error"]
    assert [e.ename for e in errors(code_cells(env.output(execution))[0])] == want == ["KeyboardInterrupt"]
    assert_nothing_running(env)


def test_papermill_logging_is_captured(env: Env) -> None:
    # its third cell imports ggplot (not installed anywhere now): carry on past it
    execution = env.run({"notebook": peer(env, PAPERMILL, "test_logging.ipynb"), "allow_errors": True})

    assert execution.succeeded, (execution.error, execution.cause)
    cells = code_cells(env.output(execution))
    assert re.search(r"INFO:test:test text", stream_text(cells[0], "stderr"))
    assert stream_text(cells[1]) == "hello world\n"
    assert [e.ename for e in errors(cells[2])] == ["ModuleNotFoundError"]
    assert execution.output["cells_failed"] == 1
