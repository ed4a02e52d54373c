"""nbclient's own test notebooks, run through our executor, compared as nbclient compares them.

They run in the executor's pipelined mode (``PIPELINE_WINDOW``, the kernel guarded), which must
keep nbclient's semantics; RunCells' default, one cell at a time, is nbclient's own order.

Read from ../shared/peer-suites/nbclient (tests/peer_suites.py; see its README for the options and the
normalisation nbclient's tests apply).
"""

from __future__ import annotations

import copy
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from studiorunner.errors import CellExecutionError, KernelDied
from studiorunner.execution import guard
from studiorunner.execution.cursor import Cursor
from studiorunner.execution.executor import CellExecutor
from studiorunner.execution.options import PIPELINE_WINDOW, ExecutorOptions, KernelControl
from studiorunner.jupyter.kernel_protocol import new_session_id
from tests.integration.kernel_server import JupyterServer, start_server
from tests.peer_suites import MISSING, PEER_SUITES

SUITE = PEER_SUITES / "nbclient"

pytestmark = pytest.mark.skipif(not SUITE.is_dir(), reason=MISSING)

_ANSI = re.compile(r"\x1b\[(.*?)([@-~])")
_ADDR = re.compile(r"0x[0-9a-fA-F]+")
_IPY_FILE = re.compile(r"(<ipython-input-.*?>|Cell In\s*\[\d+\])")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    # The kernels' working directory is the suite folder (Inline Image.ipynb opens python.png),
    # as nbclient runs them; the server only reads there.
    srv = start_server(SUITE, state_dir=tmp_path_factory.mktemp("conformance-state"))
    try:
        yield srv
    finally:
        srv.stop()


def execute(server: JupyterServer, name: str, **options: Any) -> tuple[Any, Any, Cursor]:
    expected = nbformat.read(SUITE / name, as_version=4)
    nb = copy.deepcopy(expected)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    kid = server.start_kernel()
    session = new_session_id()
    try:
        with server.open(kid, session) as channel:
            # Pipelined, the kernel guarded (execution/guard.py): the mode that must prove itself
            assert guard.install(channel, run_session=session)
            ex = CellExecutor(channel, nb, session=session,
                              kernel=KernelControl(interrupt=lambda: server.interrupt(kid),
                                                   state=lambda: server.kernel_state(kid)),
                              options=ExecutorOptions(**{"window": PIPELINE_WINDOW, **options}))
            cursor = ex.run(Cursor(), deadline=time.monotonic() + 60)
    except BaseException:
        server.shutdown_kernel(kid)
        raise
    server.shutdown_kernel(kid)
    return expected, nb, cursor


def normalise_output(output: dict[str, Any]) -> dict[str, Any]:
    """nbclient's tests/base normalisation, as the peer-suite README describes it."""
    out = copy.deepcopy(dict(output))
    out.pop("metadata", None)
    if "text" in out:
        out["text"] = _ADDR.sub("<HEXADDR>", out["text"])
    if "data" in out:
        data = dict(out["data"])
        for key, value in list(data.items()):
            if key == "image/svg+xml":
                data[key] = ET.canonicalize(value if isinstance(value, str) else "".join(value))
            elif key.startswith("image/") and isinstance(value, str):
                data[key] = value.replace("\n", "")
            elif key == "text/plain" and isinstance(value, str):
                data[key] = _ADDR.sub("<HEXADDR>", value)
            elif key == "application/vnd.jupyter.widget-view+json":
                data[key] = {**value, "model_id": "<MODEL_ID>"}
        out["data"] = data
    if "traceback" in out:
        out["traceback"] = [_IPY_FILE.sub("<IPY-INPUT>", _ANSI.sub("", line)) for line in out["traceback"]]
    return out


def assert_same_outputs(expected: Any, actual: Any, *, compare_tracebacks: bool = True) -> None:
    for i, (want, got) in enumerate(zip(expected.cells, actual.cells, strict=False)):
        if want.cell_type != "code":
            continue
        assert got.execution_count == want.execution_count, f"cell {i} execution_count"
        w = [normalise_output(o) for o in want.outputs]
        g = [normalise_output(o) for o in got.outputs]
        if not compare_tracebacks:
            for o in w + g:
                o.pop("traceback", None)
        assert g == w, f"cell {i} outputs differ"


PLAIN = ["HelloWorld.ipynb", "Factorials.ipynb", "Clear Output.ipynb", "Inline Image.ipynb",
         "SVG.ipynb", "Unicode.ipynb", "UnicodePy3.ipynb", "update-display-id.ipynb",
         "Empty Cell.ipynb", "Skip Execution with Cell Tag.ipynb"]


@pytest.mark.parametrize("name", PLAIN)
def test_notebook_matches_nbclient(server: JupyterServer, name: str) -> None:
    expected, actual, cursor = execute(server, name)
    assert cursor.done
    assert_same_outputs(expected, actual)


def test_skip_exceptions_with_cell_tags(server: JupyterServer) -> None:
    expected, actual, cursor = execute(server, "Skip Exceptions with Cell Tags.ipynb")
    assert cursor.done and cursor.cells_failed == 1
    # tracebacks: IPython 9 prints a different frame layout than the IPython that made the file
    assert_same_outputs(expected, actual, compare_tracebacks=False)


def test_skip_exceptions_allow_errors(server: JupyterServer) -> None:
    expected, actual, cursor = execute(server, "Skip Exceptions.ipynb", allow_errors=True)
    assert cursor.done and cursor.cells_failed == 1
    assert_same_outputs(expected, actual, compare_tracebacks=False)


def test_interrupt_on_timeout_and_carry_on(server: JupyterServer) -> None:
    start = time.monotonic()
    expected, actual, cursor = execute(server, "Interrupt.ipynb", cell_timeout=3, allow_errors=True)
    assert time.monotonic() - start < 30
    assert cursor.done and cursor.cells_failed == 1
    assert_same_outputs(expected, actual, compare_tracebacks=False)
    assert actual.cells[0].metadata["studio_runner"]["timed_out"] is True


def test_error_notebook_fails(server: JupyterServer) -> None:
    with pytest.raises(CellExecutionError) as failed:
        execute(server, "Error.ipynb")
    assert failed.value.facts["ename"] == "ZeroDivisionError"
    assert failed.value.facts["cell_index"] == 0


def test_autokill_raises_kernel_died_promptly(server: JupyterServer) -> None:
    start = time.monotonic()
    with pytest.raises(KernelDied):
        execute(server, "Autokill.ipynb")
    assert time.monotonic() - start < 30


def test_disable_stdin_fails_fast(server: JupyterServer) -> None:
    start = time.monotonic()
    with pytest.raises(CellExecutionError) as failed:
        execute(server, "Disable Stdin.ipynb")
    assert failed.value.facts["ename"] == "StdinNotImplementedError"
    assert time.monotonic() - start < 30


VIEW = "application/vnd.jupyter.widget-view+json"


def widget_states(nb: Any) -> list[dict[str, Any]]:
    """The saved state of each widget a cell displays, in the order they are displayed."""
    saved = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]
    assert saved["version_major"] == 2 and saved["version_minor"] == 0
    views = [o.data["application/vnd.jupyter.widget-view+json"]["model_id"] for c in nb.cells
             if c.cell_type == "code" for o in c.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    return [saved["state"][model_id] for model_id in views]


def as_ipywidgets_7_saved_it(nb: Any) -> Any:
    """The peer files were saved with ipywidgets 7, whose widgets displayed themselves
    (display_data); ipywidgets 8's are the cell's result (execute_result), in nbclient too
    (checked: nbclient 0.11 on these files here). Nothing else is changed."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "execute_result" and VIEW in out.get("data", {}):
                out["output_type"] = "display_data"
                out.pop("execution_count", None)
    return nb


def test_widget_state_is_saved_as_nbclient_saves_it(server: JupyterServer) -> None:
    """nbclient's test_widgets: every widget a cell displays has its model in metadata.widgets."""
    pytest.importorskip("ipywidgets")
    expected, actual, cursor = execute(server, "JupyterWidgets.ipynb")
    assert cursor.done
    assert_same_outputs(expected, as_ipywidgets_7_saved_it(actual))
    (label,) = widget_states(actual)
    assert (label["model_name"], label["model_module"]) == ("LabelModel", "@jupyter-widgets/controls")
    assert label["state"]["value"] == "Hello World"
    layout = label["state"]["layout"].removeprefix("IPY_MODEL_")  # the models it refers to are saved too
    assert actual.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"][layout]["model_name"] == \
        "LayoutModel"


def test_output_widgets_capture_their_output_as_nbclient_does(server: JupyterServer) -> None:
    """Output.ipynb: what a cell prints inside ``with out:`` is the widget's, never the cell's."""
    pytest.importorskip("ipywidgets")
    expected, actual, cursor = execute(server, "Output.ipynb")
    assert cursor.done
    assert_same_outputs(expected, as_ipywidgets_7_saved_it(actual), compare_tracebacks=False)
    got = [[normalise_output(o) for o in w["state"].get("outputs", [])] for w in widget_states(actual)]
    want = [[normalise_output(o) for o in w["state"].get("outputs", [])] for w in widget_states(expected)]
    for output in [o for outputs in got + want for o in outputs]:
        output.pop("traceback", None)  # IPython 9 prints other frames than the IPython that made the file
    assert got == want
    assert [o["text"] for o in got[0][:1]] == ["in output\n"]
    assert got[0][1]["ename"] == "ValueError"  # the error raised inside `with output1:` is the widget's


def test_comms_without_a_widget_are_ignored(server: JupyterServer) -> None:
    expected, actual, cursor = execute(server, "Other Comms.ipynb")
    assert cursor.done
    assert_same_outputs(expected, actual)
    assert "widgets" not in actual.metadata
