"""Issue 20 (part 1, faults 1 and 8), end to end: cells that once hung or killed a run.

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


def test_a_cell_whose_idle_the_server_lost_ends_says_so_and_the_run_goes_on(env: Env) -> None:
    path = write_notebook(env.root, "flood.ipynb", FLOOD, "print('next')")

    execution = env.run({"notebook": path}, timeout=120)

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.output["cells_executed"] == 2
    flood, after = code_cells(env.output(execution))
    record = flood.metadata.studio_runner
    assert record["status"] == "completed"
    assert record["output_lost"]["idle_missing"] is True, record
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
