"""Issue 19: recovering from a failed run — retries of infrastructure failures (each attempt
its own execution, notebook and cleanup), through the real state machine on the stand-in."""

from __future__ import annotations

import time

import pytest
from e2e_support import Env, assert_nothing_running, stream_text, write_notebook

#: Dies with the kernel (as an out-of-memory kill would) on its first attempt only: the
#: attempt count is kept in a file beside the notebook, which every attempt sees.
DIES_ONCE = (
    "from pathlib import Path\n"
    "tries = Path('tries.txt')\n"
    "n = int(tries.read_text()) + 1 if tries.exists() else 1\n"
    "tries.write_text(str(n))\n"
    "if n == 1:\n"
    "    import os; os._exit(1)\n"
    "print('attempt', n)"
)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]


@pytest.fixture
def env(local_env) -> Env:
    return local_env(wait_scale=0.01)


def _wait_for(env: Env, name: str, timeout: float = 120.0):
    """The execution ``name`` once it exists and has ended."""
    arn = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        names = {e["name"]: e["executionArn"] for e in env.stack.sfn.list_executions(
            stateMachineArn=env.stack.state_machine_arn)["executions"]}
        if name in names:
            arn = names[name]
            break
        time.sleep(0.2)
    assert arn, f"no execution {name}"
    return env.stack.wait(arn, timeout=timeout)


def test_a_kernel_killed_on_the_first_attempt_succeeds_on_the_second(env: Env) -> None:
    path = write_notebook(env.root, "work/flaky.ipynb", "print('before')", DIES_ONCE)
    first = env.run({"notebook": path, "retry": {"attempts": 2, "interval_seconds": 1}}, timeout=180)

    assert first.status == "FAILED" and first.error == "KernelDied", (first.error, first.cause)
    run_id = first.arn.rsplit(":", 1)[-1]
    second_id = f"{run_id}-attempt2"
    assert f"retrying in 1 s as {second_id} (attempt 2 of 3)" in first.cause
    second = _wait_for(env, second_id)
    assert second.status == "SUCCEEDED", (second.error, second.cause)
    assert (env.root / "work" / "tries.txt").read_text() == "2"

    # Each attempt keeps its own notebook: the first says where its kernel died, the second ran.
    died = code_cells(env.output(first))[1]
    assert [o.ename for o in died.outputs if o.output_type == "error"] == ["KernelDied"]
    assert stream_text(code_cells(env.output(second))[1]) == "attempt 2\n"
    assert second.output["output_notebook"] != first.cause.split("output notebook: ")[-1].split(";")[0]
    # Both attempts are runs of their own, in the list; the second is not retried again.
    names = [e["name"] for e in env.stack.sfn.list_executions(stateMachineArn=env.stack.state_machine_arn)["executions"]]
    assert run_id in names and second_id in names and f"{run_id}-attempt3" not in names
    assert_nothing_running(env)


def test_a_cell_error_is_not_retried_unless_asked(env: Env) -> None:
    path = write_notebook(env.root, "work/bad.ipynb", "1 / 0")
    execution = env.run({"notebook": path, "retry": {"attempts": 3, "interval_seconds": 0}}, timeout=120)

    assert execution.error == "CellExecutionError"
    assert "retrying" not in execution.cause
    run_id = execution.arn.rsplit(":", 1)[-1]
    names = [e["name"] for e in env.stack.sfn.list_executions(stateMachineArn=env.stack.state_machine_arn)["executions"]]
    assert names == [run_id]
    assert_nothing_running(env)
