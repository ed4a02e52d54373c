"""Issue 20 (part 1, faults 1 and 8), end to end: cells that once hung or killed a run; and
issue 21.2: widget state saved, an Output widget's prints kept out of the cell.

The real state machine against a stand-in whose iopub message rate limit is low (50
messages/s, Studio's is 1000) and which loses a rate-limited cell's ``status: idle``, as a
loaded server does (see ``Faults.iopub_idle_lost_when_rate_limited``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_support import Env, assert_nothing_running, stream_text, write_notebook

from localstudio.local_stack import LocalStack
from localstudio.standin import StandIn
from studiorunner.execution.options import PIPELINE_WINDOW

FLOOD = ("from IPython.display import clear_output\n"
         "for i in range(3000):\n"
         "    clear_output(wait=True)\n"
         "    print(i)")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("execution-faults-home")
    with StandIn(root=root, flavor="studio-space", iopub_msg_rate_limit=50,
                 faults={"iopub_idle_lost_when_rate_limited": True}) as standin, \
            LocalStack(standin, wait_scale=0.05) as stack:
        yield Env(standin, stack, root)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def test_a_cell_whose_idle_the_server_lost_ends_from_the_journal_and_the_run_goes_on(env: Env) -> None:
    """4 s (iopub_timeout) after the reply the run stops waiting: the run's journal holds what
    the server dropped, the idle among it, and the cell ends with all its output."""
    path = write_notebook(env.root, "flood.ipynb", FLOOD, "print('next')")

    execution = env.run({"notebook": path}, timeout=120)

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.output["cells_executed"] == 2
    flood, after = code_cells(env.output(execution))
    assert flood.metadata.studio_runner["status"] == "completed"
    assert "output_lost" not in flood.metadata.studio_runner
    assert stream_text(flood) == "2999\n"  # the end of the loop, recovered
    assert stream_text(after) == "next\n"
    assert_nothing_running(env)


def test_a_cell_whose_idle_the_server_lost_ends_says_so_and_the_run_goes_on(env: Env) -> None:
    """Without a journal to read (the cell removed it), the cell says its output may be incomplete."""
    remove_journal = ("import glob, os\n"
                      "for journal in glob.glob('studio-runner/runs/*/journal.jsonl'):\n"
                      "    os.remove(journal)")
    # (the next cell waits for the server to catch up: without a journal, what a busy server
    # drops of it would be marked too)
    path = write_notebook(env.root, "flood-no-journal.ipynb", remove_journal, FLOOD,
                          "import time\ntime.sleep(2)\nprint('next')")

    execution = env.run({"notebook": path}, timeout=120)

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.output["cells_executed"] == 3
    _, flood, after = code_cells(env.output(execution))
    record = flood.metadata.studio_runner
    assert record["status"] == "completed"
    assert record["output_lost"] == {"idle_missing": True, "iopub_timeout_seconds": 4.0}, record
    assert "the end of this cell's output may be missing" in stream_text(flood, "stderr")
    assert stream_text(after) == "next\n"
    assert_nothing_running(env)


def test_a_lone_surrogate_in_output_is_kept_as_a_replacement_character(env: Env) -> None:
    path = write_notebook(
        env.root, "surrogate.ipynb",
        "display({'text/plain': 'raw \\udc80 display'}, raw=True)",
        "import os\nname = os.fsdecode(b'file-\\x80.csv')  # surrogateescape\nprint(name)",
        "print('after')",
    )

    execution = env.run({"notebook": path}, timeout=120)

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.output["cells_executed"] == 3
    cells = code_cells(env.output(execution))
    assert cells[0].outputs[0].data["text/plain"] == "raw \ufffd display"
    assert stream_text(cells[1]) == "file-\ufffd.csv\n"
    assert stream_text(cells[2]) == "after\n"
    assert_nothing_running(env)


def test_widget_state_is_saved_and_an_output_widgets_prints_stay_in_it(env: Env) -> None:
    pytest.importorskip("ipywidgets")
    path = write_notebook(
        env.root, "widgets.ipynb",
        "import ipywidgets as widgets\nslider = widgets.IntSlider(value=7, max=10)\nslider",
        "out = widgets.Output()\ndisplay(out)\nprint('cell')\nwith out:\n    print('inside the widget')",
        # The kernel is told what its Output widget holds (as nbclient tells it): cells already
        # queued behind the capture (the pipelining window) run before they hear it, as in
        # JupyterLab's Run All.
        *["pass"] * PIPELINE_WINDOW,
        "slider.value = 9\nprint(len(out.outputs))",
    )

    execution = env.run({"notebook": path}, timeout=120)

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    saved = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]
    slider_id = code_cells(nb)[0].outputs[0].data["application/vnd.jupyter.widget-view+json"]["model_id"]
    out_id = code_cells(nb)[1].outputs[0].data["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert saved["state"][slider_id]["model_name"] == "IntSliderModel"
    assert saved["state"][slider_id]["state"]["value"] == 9  # its last state
    assert saved["state"][out_id]["state"]["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "inside the widget\n"}]
    assert stream_text(code_cells(nb)[1]) == "cell\n"
    assert stream_text(code_cells(nb)[-1]) == "1\n"
