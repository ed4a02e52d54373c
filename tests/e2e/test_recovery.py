"""Issue 19: recovering from a failed run — retries of infrastructure failures (each attempt
its own execution, notebook and cleanup), through the real state machine on the stand-in."""

from __future__ import annotations

import time
from pathlib import Path

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


# -- hold and resume ------------------------------------------------------------------------------

#: Cells 1-2 set state (a counter in a file, a variable); cell 3 fails; 4-5 need cell 1's variable.
COUNTED = ("from pathlib import Path\n"
           "counter = Path('count.txt')\n"
           "counter.write_text(str(int(counter.read_text()) + 1) if counter.exists() else '1')\n"
           "x = 41")
HELD_CELLS = (COUNTED, "y = x + 1", "raise ValueError('a bad cell')", "print('y is', y)", "print('z is', z)")
FIXED_CELLS = (COUNTED, "y = x + 1", "z = y * 2", "print('y is', y)", "print('z is', z)")


def _runs(env: Env):
    from localstudio.local_stack import BUCKET
    from studiorunner_cli.runs import Runs

    return Runs(env.stack.sfn, env.stack.s3, state_machine_arn=env.stack.state_machine_arn, bucket=BUCKET)


def _held(env: Env, cells, hold_seconds: float):
    """Start a run that fails at cell 3 with its kernel held; return (run id, execution arn) once held."""
    path = write_notebook(env.root, "work/held.ipynb", *cells)
    arn = env.stack.start({"notebook": path, "on_failure": {"hold_kernel_seconds": hold_seconds}})
    run_id = arn.rsplit(":", 1)[-1]
    runs, deadline = _runs(env), time.monotonic() + 120
    while runs.get(f"runs/{run_id}/hold.json") is None:
        desc = env.stack.sfn.describe_execution(executionArn=arn)
        assert desc["status"] == "RUNNING", (desc["status"], desc.get("error"), desc.get("cause"))
        assert time.monotonic() < deadline, "the run was never held"
        time.sleep(0.2)
    return run_id, arn


def _start_resume(env: Env, run_id: str, fixed: Path | None = None, from_cell: int | None = None):
    from studiorunner_cli.recovery import ResumeOptions, check_resume, resume_name

    runs = _runs(env)
    payload, upload = check_resume(runs, ResumeOptions(run=run_id, notebook=str(fixed) if fixed else None,
                                                       from_cell=from_cell), time.time())
    name = resume_name(run_id, 1)
    if upload is not None:
        payload["resume"]["notebook_s3"] = runs.put(f"uploads/{name}/{upload.name}", upload.read_bytes())
    return env.stack.start(payload, name=name)


def test_a_held_run_is_fixed_and_resumed_in_its_own_kernel(env: Env, tmp_path: Path) -> None:
    run_id, held_arn = _held(env, HELD_CELLS, hold_seconds=600)
    # The run is held: its kernel runs; status and list say so, and how to resume it.
    assert len(env.running()["kernels"]) == 1
    runs = _runs(env)
    deadline = time.monotonic() + 30
    while "held until" not in (runs.phase(runs.describe(run_id)) or "") and time.monotonic() < deadline:
        time.sleep(0.2)
    said = runs.phase(runs.describe(run_id))
    assert said.startswith("failed (CellExecutionError); its kernel is held until ") and \
        said.endswith(f": studio-runner resume {run_id} [--notebook FIXED.ipynb] [--from CELL]"), said
    fixed = tmp_path / "fixed.ipynb"
    write_notebook(tmp_path, "fixed.ipynb", *FIXED_CELLS)

    resumed = env.stack.wait(_start_resume(env, run_id, fixed), timeout=180)
    assert resumed.status == "SUCCEEDED", (resumed.error, resumed.cause)
    # Cells 1-2 ran once (in the first run): the resumed cells used their variables.
    assert (env.root / "work" / "count.txt").read_text() == "1"
    nb = env.output(resumed)
    cells = code_cells(nb)
    assert [c.source for c in cells] == list(FIXED_CELLS)
    assert cells[0].execution_count == 1 and cells[1].execution_count == 2  # the first run's outputs, kept
    assert stream_text(cells[3]) == "y is 42\n" and stream_text(cells[4]) == "z is 84\n"
    assert nb.metadata.studio_runner.resumed == {
        "from_run": run_id, "from_cell": 3, "at": nb.metadata.studio_runner.resumed["at"], "edited": True}
    assert resumed.output["cells_executed"] == 3
    # The held run ends, with its own error, and nothing of either is left running.
    held = env.stack.wait(held_arn, timeout=60)
    assert held.status == "FAILED" and held.error == "CellExecutionError"
    assert "its kernel is held until" in held.cause
    assert_nothing_running(env)


def test_a_hold_that_expires_releases_everything_and_resume_is_refused(env: Env, tmp_path: Path) -> None:
    from studiorunner_cli.runs import RunsError

    run_id, held_arn = _held(env, HELD_CELLS, hold_seconds=3)
    held = env.stack.wait(held_arn, timeout=60)
    assert held.status == "FAILED" and held.error == "CellExecutionError"
    assert_nothing_running(env)  # kernel, session and app gone after the hold

    with pytest.raises(RunsError, match="hold expired at"):
        _start_resume(env, run_id)
    # The state machine refuses it too (a resume started without the CLI's checks): nothing starts.
    arn = env.stack.start({"notebook": "work/held.ipynb", "resume": {"run_id": run_id}}, name=f"{run_id}-resume9")
    refused = env.stack.wait(arn, timeout=60)
    assert refused.error == "RunNotHeld" and "expired" in refused.cause
    assert_nothing_running(env)


def test_resume_refuses_a_succeeded_run_an_unknown_one_and_a_short_fixed_notebook(env: Env, tmp_path: Path) -> None:
    from studiorunner_cli.parameters import UsageError
    from studiorunner_cli.runs import RunsError

    ok = env.run({"notebook": write_notebook(env.root, "work/ok.ipynb", "1 + 1")})
    with pytest.raises(RunsError, match="succeeded: there is nothing to resume"):
        _start_resume(env, ok.arn.rsplit(":", 1)[-1])
    with pytest.raises(RunsError, match="no run"):
        _start_resume(env, "nothing-20261130T000000Z-000000")
    run_id, held_arn = _held(env, HELD_CELLS, hold_seconds=600)
    short = tmp_path / "short.ipynb"
    write_notebook(tmp_path, "short.ipynb", "x = 1", "y = 2")
    with pytest.raises(UsageError, match="has 2 code cells: it cannot resume from cell 3"):
        _start_resume(env, run_id, short)
    cleaned = env.stack.stop(held_arn)  # a stop lets the hold go at once (ExecutionEnded)
    assert cleaned and "deleted session and its kernel" in "; ".join(cleaned.get("cleanup", {}).get("actions", [])), cleaned
    assert_nothing_running(env)


def test_a_resume_whose_held_kernel_died_fails_clearly_and_leaves_nothing(env: Env) -> None:
    """Killed, the kernel is restarted by Jupyter under the same id, without the first cells'
    variables: resuming in it would run the fixed cells on nothing (NameError at best)."""
    run_id, held_arn = _held(env, HELD_CELLS, hold_seconds=600)
    kernels = env.standin.state()["kernels"]
    env.standin.kill_kernel(kernels[0]["id"])
    resumed = env.stack.wait(_start_resume(env, run_id), timeout=120)
    assert resumed.status == "FAILED" and resumed.error == "RunNotHeld", (resumed.error, resumed.cause)
    assert f"the kernel held for run {run_id} was restarted: the state of its cells is gone" in resumed.cause
    assert env.stack.wait(held_arn, timeout=60).status == "FAILED"
    assert_nothing_running(env)
