"""Issue 4, end to end: runs a user can trust — parameters, timeouts, cells longer than a
Lambda, dead kernels, cell tags and error policy, live outputs.

Every test goes through the real state machine (moto's interpreter executing
``statemachine/runner.asl.json``) against the Studio stand-in, and asserts what a user
would check: the execution's status/error/result, the executed notebook in S3, and that
nothing is left running. Expected values come from the payload or the notebook itself.

One stand-in + local stack is shared by the module (each costs ~2 s to start); every
notebook has its own name, and each test checks that its run left no kernel behind.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from e2e_support import REPO, Env, assert_nothing_running, errors, stream_text, write_notebook

from localstudio.local_stack import BUCKET, LocalStack
from localstudio.standin import StandIn

BUDGET_ENV = "STUDIO_RUNNER_RUN_CELLS_BUDGET_SECONDS"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("trust-home")
    with StandIn(root=root, flavor="studio-space") as standin, LocalStack(standin, wait_scale=0.05) as stack:
        yield Env(standin, stack, root)


@pytest.fixture
def budget(env: Env, monkeypatch: pytest.MonkeyPatch):
    """Cap each RunCells invocation for one test, exactly as ``LocalStack(run_cells_budget=…)``
    does (the RunCells handler reads this variable on every invocation), without starting a
    second stand-in."""

    def set_budget(seconds: float) -> None:
        monkeypatch.setenv(BUDGET_ENV, str(seconds))

    return set_budget


@pytest.fixture
def faults(env: Env) -> Iterator[Any]:
    """Set stand-in fault knobs for one test; reset them afterwards, also on failure."""
    yield env.standin.set_faults
    env.standin.set_faults(drop_websockets_after_seconds=None, http_errors=[])


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def find_output_key(env: Env, name: str) -> str | None:
    """The S3 key of a run's output notebook ``runs/<run_id>/<name>``, if it exists yet."""
    listing = env.stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")
    keys = [o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith("/" + name)]
    return keys[-1] if keys else None


def read_key(env: Env, key: str) -> nbformat.NotebookNode:
    return nbformat.reads(env.stack.read_output(f"s3://{BUCKET}/{key}").decode(), as_version=4)


def execution_status(env: Env, arn: str) -> str:
    return env.stack.sfn.describe_execution(executionArn=arn)["status"]


# -- 1. parameters ----------------------------------------------------------------------

PARAMETERS = {
    "count": 3,
    "ratio": 0.25,
    "enabled": True,
    "nothing": None,
    "label": 'say "hi" — ünïcode\n',
    "items": [1, "two", None, 4.5, False],
    "options": {"depth": 2, "tags": ["a", "b"], "nested": {"x": None}},
}


def test_parameters_are_injected_after_the_parameters_cell_with_json_types_kept(env: Env) -> None:
    defaults = "\n".join(f"{name} = 'default'" for name in PARAMETERS)
    path = write_notebook(
        env.root, "params/typed.ipynb",
        "import json",
        defaults,
        # the kernel reports what it received: each value and its Python type
        "print(json.dumps({n: [type(v).__name__, v] for n, v in "
        f"{{n: globals()[n] for n in {sorted(PARAMETERS)!r}}}.items()}}))",
        tags={1: ["parameters"]},
    )
    execution = env.run({"notebook": path, "parameters": {**PARAMETERS, "undeclared": 7}})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    injected = nb.cells[2]
    assert "parameters" in nb.cells[1].metadata["tags"]
    assert injected.metadata["tags"] == ["injected-parameters"]
    assert injected.execution_count is not None and injected.metadata.papermill["status"] == "completed"
    seen = json.loads(stream_text(nb.cells[3]))
    python_types = {bool: "bool", int: "int", float: "float", type(None): "NoneType", str: "str",
                    list: "list", dict: "dict"}
    for name, value in PARAMETERS.items():
        assert seen[name] == [python_types[type(value)], value], name
    # the kernel saw 'undeclared' too (papermill injects it) but the user is warned
    warnings = nb.metadata.studio_runner["warnings"]
    assert any("undeclared" in w for w in warnings), warnings
    assert not any(name in w for w in warnings for name in PARAMETERS), warnings
    assert any("undeclared" in w for w in execution.output.get("warnings", [])), execution.output
    assert nb.metadata.papermill["parameters"]["undeclared"] == 7
    assert_nothing_running(env)


def test_parameters_without_a_parameters_cell_go_on_top_with_a_warning(env: Env) -> None:
    path = write_notebook(env.root, "params/untagged.ipynb", "print(greeting)")
    execution = env.run({"notebook": path, "parameters": {"greeting": "hello from the payload"}})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    assert nb.cells[0].metadata["tags"] == ["injected-parameters"]
    assert stream_text(nb.cells[1]) == "hello from the payload\n"
    assert any("'parameters'" in w for w in nb.metadata.studio_runner["warnings"])
    assert execution.output.get("warnings")


def test_cli_parameters_keep_json_types(tmp_path: Path) -> None:
    """``studio-runner run --local NOTEBOOK -y '{"NAME": VALUE}'``: JSON (YAML's subset) keeps its
    types, a value that is not JSON stays a string; the kernel gets those types."""
    import subprocess
    import sys

    root = tmp_path / "cli-home"
    root.mkdir()
    cli_values = {"count": "3", "ratio": "0.25", "enabled": "true", "nothing": "null",
                  "items": '[1, "two"]', "options": '{"k": [1.5]}', "run_date": "2026-11-22",
                  "label": "hello world"}
    names = sorted(cli_values)
    path = write_notebook(root, "cli.ipynb", "\n".join(f"{n} = 'default'" for n in names),
                          "import json\nprint(json.dumps({n: [type(v).__name__, v] for n, v in "
                          f"{{n: globals()[n] for n in {names!r}}}.items()}}))",
                          tags={0: ["parameters"]})
    out = tmp_path / "executed.ipynb"
    args = [sys.executable, "-m", "studiorunner_cli", "run", "--local", str(root / path), "--root", str(root),
            "-o", str(out)]
    for name, value in cli_values.items():
        try:
            typed = json.loads(value)
        except ValueError:
            typed = value
        args += ["-y", json.dumps({name: typed})]
    env_vars = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_RUNNER_"))}
    done = subprocess.run(args, cwd=REPO, env=env_vars, capture_output=True, text=True, timeout=120,
                          check=False)

    assert done.returncode == 0, done.stdout + done.stderr
    nb = nbformat.read(out, as_version=4)
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"]
    seen = json.loads(stream_text(nb.cells[2]))
    for name, text in cli_values.items():
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        assert seen[name] == [type(value).__name__, value], name
    assert seen["run_date"][0] == "str" and seen["count"][0] == "int" and seen["enabled"][0] == "bool"


# -- 2. timeouts ------------------------------------------------------------------------

SLOW_CELL = "import time\nprint('started', flush=True)\ntime.sleep(60)\nprint('not reached')"


def test_cell_timeout_interrupts_the_kernel_and_fails_the_run(env: Env) -> None:
    path = write_notebook(env.root, "timeouts/hang.ipynb", "x = 41", SLOW_CELL, "print('after')")
    start = time.monotonic()
    execution = env.run({"notebook": path, "timeouts": {"cell_seconds": 2}})
    elapsed = time.monotonic() - start

    assert execution.status == "FAILED"
    assert execution.error == "CellTimeout"
    assert elapsed < 20, f"a 2 s cell timeout took {elapsed:.1f} s to fail the run"
    assert "s3://" in execution.cause
    nb = env.output(execution)
    slow = code_cells(nb)[1]
    assert stream_text(slow) == "started\n"
    # the kernel was interrupted: the cell shows the KeyboardInterrupt it raised
    assert [e.ename for e in errors(slow)] == ["KeyboardInterrupt"]
    assert slow.metadata.papermill["status"] == "failed"
    assert code_cells(nb)[2].execution_count is None and code_cells(nb)[2].outputs == []
    assert nb.metadata.studio_runner["status"] == "failed"
    assert_nothing_running(env)


def test_a_503_on_the_interrupt_is_still_cell_timeout_with_its_banner(env: Env, faults) -> None:
    """Issue 9: a 503 on the interrupt (a proxy restarting) turned CellTimeout into
    JupyterHTTPError and the timed-out cell got no banner; the interrupt is best effort."""
    faults(http_errors=[{"path_regex": r"/interrupt$", "method": "POST", "status": 503, "count": 5}])
    path = write_notebook(env.root, "timeouts/no_interrupt.ipynb", "x = 41", SLOW_CELL, "print('after')")
    execution = env.run({"notebook": path, "timeouts": {"cell_seconds": 2}})

    assert execution.error == "CellTimeout", (execution.error, execution.cause)
    nb = env.output(execution)
    banner = nb.cells[0]
    assert banner.cell_type == "markdown" and 'href="#papermill-error-cell"' in banner.source
    slow = code_cells(nb)[1]
    assert nb.cells[nb.cells.index(slow) - 1].source.startswith('<span id="papermill-error-cell"')
    assert stream_text(slow) == "started\n" and slow.metadata.papermill["status"] == "failed"
    assert slow.metadata.studio_runner["timed_out"] is True
    assert code_cells(nb)[2].execution_count is None
    assert_nothing_running(env)


def test_cell_timeout_with_allow_errors_carries_on_in_the_same_kernel(env: Env) -> None:
    path = write_notebook(env.root, "timeouts/carry_on.ipynb", "x = 41", SLOW_CELL, "print(x + 1)")
    execution = env.run({"notebook": path, "timeouts": {"cell_seconds": 2}, "allow_errors": True})

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.output["cells_failed"] == 1
    assert execution.output["cells_executed"] == 3
    nb = env.output(execution)
    slow, after = code_cells(nb)[1], code_cells(nb)[2]
    assert [e.ename for e in errors(slow)] == ["KeyboardInterrupt"]
    # interrupted, not restarted: the variable from before the timeout is still there
    assert stream_text(after) == "42\n"
    assert_nothing_running(env)


def test_run_seconds_deadline_is_run_timeout_with_output_saved(env: Env) -> None:
    path = write_notebook(env.root, "timeouts/deadline.ipynb", "print('first')", SLOW_CELL)
    start = time.monotonic()
    execution = env.run({"notebook": path, "timeouts": {"run_seconds": 5}})
    elapsed = time.monotonic() - start

    assert execution.status == "FAILED"
    assert execution.error == "RunTimeout"
    assert "run_seconds" in execution.cause
    assert elapsed < 25, f"a 5 s run deadline took {elapsed:.1f} s to end the run"
    nb = env.output(execution)
    assert stream_text(code_cells(nb)[0]) == "first\n"
    assert stream_text(code_cells(nb)[1]) == "started\n"
    assert nb.metadata.studio_runner["status"] == "failed"
    assert_nothing_running(env)


def test_run_seconds_past_the_state_machine_limit_is_payload_invalid(env: Env) -> None:
    limit = int(os.environ["STUDIO_RUNNER_MAX_RUN_SECONDS"])  # what the deployment configures
    path = write_notebook(env.root, "timeouts/too_long.ipynb", "print(1)")
    execution = env.run({"notebook": path, "timeouts": {"run_seconds": limit + 1}})

    assert execution.status == "FAILED"
    assert execution.error == "PayloadInvalid"
    assert "run_seconds" in execution.cause
    assert execution.invocations == ["studio-runner-prepare", "studio-runner-cleanup"]


# -- 3. cells longer than a RunCells invocation ------------------------------------------

def ticking_cell(seconds: float, every: float = 0.25) -> str:
    """A cell that prints before, a numbered line every ``every`` s for ``seconds``, and after."""
    n = int(seconds / every)
    return (
        "import time\n"
        "print('before', flush=True)\n"
        f"for i in range({n}):\n"
        "    print('during', i, flush=True)\n"
        f"    time.sleep({every})\n"
        "print('after', flush=True)"
    )


def expected_ticks(seconds: float, every: float = 0.25) -> str:
    n = int(seconds / every)
    return "before\n" + "".join(f"during {i}\n" for i in range(n)) + "after\n"


def test_cell_longer_than_a_run_cells_budget_loses_no_output(env: Env, budget) -> None:
    budget(5)
    path = write_notebook(env.root, "long/twelve.ipynb", ticking_cell(12), "print('next cell')")
    execution = env.run({"notebook": path})

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.invocations.count("studio-runner-run-cells") >= 2, execution.invocations
    nb = env.output(execution)
    long_cell, next_cell = code_cells(nb)
    assert stream_text(long_cell) == expected_ticks(12)
    assert stream_text(long_cell, "stderr") == ""  # no gap note: nothing was lost
    assert long_cell.metadata.papermill["status"] == "completed"
    assert long_cell.metadata.papermill["duration"] >= 11.9  # it prints for 12 s
    assert stream_text(next_cell) == "next cell\n"
    assert execution.output["cells_executed"] == 2
    assert_nothing_running(env)


def take_over_kernel_socket(env: Env, kernel_id: str, seconds: float) -> int:
    """Attach another client (its own session_id) to the kernel for ``seconds``, as a user's
    open JupyterLab tab would; returns how many messages it received. jupyter_server hands a
    kernel's message buffer only to the session that left it, so the run cannot get back what
    this client was sent."""
    import uuid

    import websocket

    url = env.standin.jupyter_url.replace("http://", "ws://", 1)
    ws = websocket.create_connection(
        f"{url}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}",
        header=[f"Authorization: token {env.standin.token}"], timeout=seconds)
    received = 0
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            ws.settimeout(left)
            try:
                ws.recv()
                received += 1
            except websocket.WebSocketTimeoutException:
                break
    finally:
        ws.close()
    return received


def test_output_taken_by_another_client_is_marked_never_silently_lost(env: Env, budget, monkeypatch) -> None:
    import studiorunner.steps.run_cells as handler

    budget(5)
    real_run_cells = handler.run_cells
    calls: list[int] = []

    def run_cells(ctx, *, remaining_seconds, **hooks):
        calls.append(1)
        if len(calls) == 2:  # between two RunCells invocations, mid-cell
            calls.append(take_over_kernel_socket(env, ctx.state.kernel.id, 1.5))
        return real_run_cells(ctx, remaining_seconds=remaining_seconds, **hooks)

    monkeypatch.setattr(handler, "run_cells", run_cells)  # what the RunCells handler calls
    every, n = 0.1, 100
    path = write_notebook(env.root, "long/taken.ipynb",
                          f"import time\nfor i in range({n}):\n    print(i, flush=True)\n    time.sleep({every})")
    execution = env.run({"notebook": path})

    assert execution.succeeded, (execution.error, execution.cause)
    assert len(calls) >= 3 and calls[2] > 0, "the other client never received the cell's output"
    cell = code_cells(env.output(execution))[0]
    printed = [int(line) for line in stream_text(cell).split()]
    missing = sorted(set(range(n)) - set(printed))
    gap_noted = "lost" in stream_text(cell, "stderr") or "may be incomplete" in stream_text(cell, "stderr")
    assert not missing or gap_noted, (
        f"lines {missing[0]}..{missing[-1]} ({len(missing)} lines) are missing from the cell "
        "and nothing in the cell says so")
    # issue 8.7: the run's journal gives back what the other client took: nothing is missing,
    # in order, nothing twice, and so nothing had to be marked
    assert printed == list(range(n)) and not gap_noted
    assert_nothing_running(env)


def dropped_sockets(env: Env) -> int:
    """How many kernel WebSockets the stand-in has dropped so far (it logs each one)."""
    return Path(env.standin.log_path).read_text(errors="replace").count("dropping kernel WebSocket")


def test_dropped_websocket_mid_cell_loses_no_output(env: Env, faults) -> None:
    drops_before = dropped_sockets(env)
    faults(drop_websockets_after_seconds=3)
    path = write_notebook(env.root, "long/dropped.ipynb", ticking_cell(6), "print('next cell')")
    execution = env.run({"notebook": path})

    assert dropped_sockets(env) > drops_before, "the stand-in never dropped the run's WebSocket"
    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    long_cell, next_cell = code_cells(nb)
    assert stream_text(long_cell) == expected_ticks(6)
    assert stream_text(next_cell) == "next cell\n"
    assert_nothing_running(env)


# -- 4. dead kernels ----------------------------------------------------------------------

def test_kernel_killed_mid_cell_is_kernel_died_within_seconds(env: Env) -> None:
    flag = env.root / "dead" / "started.flag"
    path = write_notebook(
        env.root, "dead/killed.ipynb",
        "print('first cell')",
        # the flag tells the test the cell is running (the kernel's cwd is the notebook's folder)
        "import time\nprint('started', flush=True)\nopen('started.flag', 'w').close()\ntime.sleep(60)",
        "print('never')",
    )
    arn = env.stack.start({"notebook": path})
    try:
        wait_for(flag.exists, 30, "the cell to start")
        kernels = env.standin.state()["kernels"]
        assert len(kernels) == 1, kernels
        env.standin.kill_kernel(kernels[0]["id"])
        killed_at = time.monotonic()
    finally:
        execution = env.stack.wait(arn, timeout=120)
    ended_after = time.monotonic() - killed_at

    assert execution.status == "FAILED"
    assert execution.error == "KernelDied"
    assert ended_after < 15, f"the run took {ended_after:.1f} s to notice the dead kernel"
    nb = env.output(execution)
    first, killed, never = code_cells(nb)
    assert stream_text(first) == "first cell\n"
    assert stream_text(killed) == "started\n"  # output received before the kill is saved
    assert never.execution_count is None and never.outputs == []
    assert nb.metadata.studio_runner["status"] == "failed"
    # issue 9: the cell where the kernel died says so (it was left "aborted" without a word)
    assert [e.ename for e in errors(killed)] == ["KernelDied"]
    assert killed.metadata.papermill["status"] == "failed"
    assert_nothing_running(env)


def test_os_exit_in_a_cell_says_the_kernel_died_in_that_cell(env: Env) -> None:
    """Issue 9: ``os._exit(1)``: the run said KernelDied but the cell stayed ``pending`` with
    no output saying why (its execute_input never left the dying kernel)."""
    path = write_notebook(env.root, "dead/exit.ipynb", "print('first cell')", "import os\nos._exit(1)",
                          "print('never')")
    execution = env.run({"notebook": path}, timeout=120)

    assert execution.error == "KernelDied", (execution.error, execution.cause)
    nb = env.output(execution)
    first, exiting, never = code_cells(nb)
    assert stream_text(first) == "first cell\n"
    assert [e.ename for e in errors(exiting)] == ["KernelDied"]
    assert exiting.metadata.papermill["status"] == "failed" and exiting.metadata.studio_runner["status"] == "failed"
    assert nb.cells[0].cell_type == "markdown" and "KernelDied" in nb.cells[0].source  # the banner
    assert never.execution_count is None and never.outputs == []
    assert_nothing_running(env)


# -- 5. cell tags and error policy ---------------------------------------------------------

def test_skip_execution_cells_are_not_run_and_raises_exception_cells_may_fail(env: Env) -> None:
    path = write_notebook(
        env.root, "tags/tags.ipynb",
        "x = 1",
        "open('skipped.flag', 'w').close()\nx = 100",
        "raise ValueError('expected by the author')",
        "print(x)",
        tags={1: ["skip-execution"], 2: ["raises-exception"]},
    )
    execution = env.run({"notebook": path})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    cells = code_cells(nb)
    assert cells[1].execution_count is None and cells[1].outputs == []
    assert cells[1].metadata.papermill["status"] == "skipped"
    assert not (env.root / "tags" / "skipped.flag").exists()
    assert [e.ename for e in errors(cells[2])] == ["ValueError"]
    assert cells[2].metadata.papermill["status"] == "failed"
    assert stream_text(cells[3]) == "1\n"
    assert execution.output["cells_executed"] == 3
    assert_nothing_running(env)


def test_cells_after_a_failing_cell_never_run(env: Env) -> None:
    """A failed run must not go on to run the cells after the failure (they may have side
    effects: a write, an e-mail). The first cell fails within a millisecond; the next cell's
    request carries a 2 MB comment, so it is still on its way to the kernel when the kernel
    aborts its queue — as any request is on Studio, where the proxy and TLS add tens of ms.
    A runner that sends it anyway (pipelining) runs it after the failure."""
    flag = env.root / "stop" / "ran-after-error.flag"
    path = write_notebook(env.root, "stop/first_fails.ipynb",
                          "%not_a_magic",
                          "open('ran-after-error.flag', 'w').close()\n# " + "x" * 2_000_000,
                          "print('third')")
    for attempt in range(3):
        execution = env.run({"notebook": path})
        assert execution.error == "CellExecutionError"
        nb = env.output(execution)
        later = code_cells(nb)[1:]
        assert not flag.exists(), f"run {attempt + 1}: the cell after the failing cell ran"
        assert [c.execution_count for c in later] == [None, None], f"run {attempt + 1}: a later cell ran"
        assert [c.outputs for c in later] == [[], []]
    assert_nothing_running(env)


def test_allow_errors_carries_on_and_counts_failed_cells(env: Env) -> None:
    path = write_notebook(
        env.root, "tags/allow.ipynb",
        "print('one')", "1 / 0", "print('three')", "undefined_name", "print('five')",
    )
    execution = env.run({"notebook": path, "allow_errors": True})

    assert execution.succeeded, (execution.error, execution.cause)
    result = execution.output
    assert result["cells_failed"] == 2
    assert result["cells_executed"] == 5 and result["cells_total"] == 5
    nb = env.output(execution)
    cells = code_cells(nb)
    assert [stream_text(cells[i]) for i in (0, 2, 4)] == ["one\n", "three\n", "five\n"]
    assert [e.ename for e in errors(cells[1])] == ["ZeroDivisionError"]
    assert [e.ename for e in errors(cells[3])] == ["NameError"]
    assert [c.metadata.papermill["status"] for c in cells] == ["completed", "failed", "completed", "failed", "completed"]
    assert [c.execution_count for c in cells] == [1, 2, 3, 4, 5]
    assert_nothing_running(env)


# -- 6. live outputs -----------------------------------------------------------------------

def test_output_notebook_is_live_in_s3_while_the_run_goes_on(env: Env) -> None:
    flag = env.root / "live" / "slow.flag"
    path = write_notebook(
        env.root, "live/progress.ipynb",
        "print('first')",
        "import time\nopen('slow.flag', 'w').close()\ntime.sleep(6)\nprint('slow done')",
        "print('last')",
    )
    arn = env.stack.start({"notebook": path})
    try:
        wait_for(flag.exists, 30, "the slow cell to start")

        def first_cell_saved() -> nbformat.NotebookNode | None:
            key = find_output_key(env, "progress.ipynb")
            nb = read_key(env, key) if key else None
            return nb if nb is not None and stream_text(code_cells(nb)[0]) == "first\n" else None

        live = wait_for(first_cell_saved, 5, "the first cell's output in S3 while the slow cell runs")
        assert execution_status(env, arn) == "RUNNING"
    finally:
        execution = env.stack.wait(arn, timeout=120)

    assert execution.succeeded, (execution.error, execution.cause)
    assert live.metadata.studio_runner["status"] == "running"
    assert code_cells(live)[0].metadata.papermill["status"] == "completed"
    assert code_cells(live)[2].metadata.papermill["status"] == "pending"
    assert code_cells(live)[2].outputs == []

    final = env.output(execution)
    assert final.metadata.studio_runner["status"] == "succeeded"
    assert stream_text(code_cells(final)[2]) == "last\n"
    assert_nothing_running(env)


def test_each_cell_records_papermill_status_and_timing(env: Env) -> None:
    from datetime import datetime

    path = write_notebook(env.root, "live/timing.ipynb", "import time", "time.sleep(1.5)", "print('ok')")
    execution = env.run({"notebook": path})

    assert execution.succeeded, (execution.error, execution.cause)
    nb = env.output(execution)
    for cell in code_cells(nb):
        pm = cell.metadata.papermill
        assert pm["status"] == "completed" and pm["exception"] is False
        start, end = datetime.fromisoformat(pm["start_time"]), datetime.fromisoformat(pm["end_time"])
        assert start.tzinfo is not None and end >= start
        assert pm["duration"] == pytest.approx((end - start).total_seconds(), abs=1e-3)
    # the cell sleeps 1.5 s; times are taken as messages arrive, so allow a few ms of jitter
    assert code_cells(nb)[1].metadata.papermill["duration"] == pytest.approx(1.5, abs=0.25)
    run = nb.metadata.papermill
    assert run["start_time"] and run["end_time"] and run["duration"] >= 1.45
    assert_nothing_running(env)


def test_failed_run_has_an_error_banner_linking_the_failing_cell(env: Env) -> None:
    path = write_notebook(env.root, "live/banner.ipynb", "print('ok')", "raise KeyError('missing-key')", "print('never')")
    execution = env.run({"notebook": path})

    assert execution.error == "CellExecutionError"
    nb = env.output(execution)
    banner = nb.cells[0]
    assert banner.cell_type == "markdown" and 'href="#papermill-error-cell"' in banner.source
    assert "KeyError" in banner.source and "missing-key" in banner.source
    failing_at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and errors(c))
    anchor = nb.cells[failing_at - 1]
    assert anchor.cell_type == "markdown" and 'id="papermill-error-cell"' in anchor.source
    assert f"In [{nb.cells[failing_at].execution_count}]" in banner.source
    assert nb.cells[failing_at].metadata.papermill["exception"] is True


def test_write_back_puts_the_executed_notebook_next_to_the_source(env: Env) -> None:
    path = write_notebook(env.root, "writeback/report.ipynb", "print('written back')")
    source_bytes = (env.root / path).read_bytes()
    execution = env.run({"notebook": path, "write_back": True})

    assert execution.succeeded, (execution.error, execution.cause)
    assert (env.root / path).read_bytes() == source_bytes  # the source itself is left alone
    written = env.root / "writeback" / "report.output.ipynb"  # the name studiorunner.run.cleanup.write_back_path gives
    assert sorted(p.name for p in written.parent.glob("*.ipynb")) == ["report.ipynb", "report.output.ipynb"]
    nb = nbformat.read(written, as_version=4)
    assert stream_text(code_cells(nb)[0]) == "written back\n"
    assert nb.metadata.studio_runner["status"] == "succeeded"
    assert nb == env.output(execution)  # the same executed notebook as in S3
    assert_nothing_running(env)


def test_write_back_of_a_failed_run_shows_the_failure(env: Env) -> None:
    path = write_notebook(env.root, "writeback/broken.ipynb", "print('ok')", "1 / 0")
    execution = env.run({"notebook": path, "write_back": True})

    assert execution.error == "CellExecutionError"
    nb = nbformat.read(env.root / "writeback" / "broken.output.ipynb", as_version=4)
    assert nb.metadata.studio_runner["status"] == "failed"
    assert 'href="#papermill-error-cell"' in nb.cells[0].source
    assert [e.ename for c in code_cells(nb) for e in errors(c)] == ["ZeroDivisionError"]
    assert_nothing_running(env)
