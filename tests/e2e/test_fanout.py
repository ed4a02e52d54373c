"""Fan-out (issue 11.2): one payload with parameter_sets → one child run per set, through a Map
state of the local state machine (the child runs are executions of the same state machine)."""

from __future__ import annotations

import json
from datetime import datetime

import nbformat
from e2e_support import assert_nothing_running, write_notebook

KERNEL_DATE = "%Y-%m-%dT%H:%M:%S.%fZ"


def _most_at_once(windows: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_twenty_parameter_sets_four_at_a_time_give_twenty_notebooks_and_a_batch_result(local_env):
    env = local_env("studio-space", max_concurrent_runs=4)
    path = write_notebook(env.root, "square.ipynb", "x = 0", "import time\ntime.sleep(0.2)\nprint(x * x)",
                          tags={0: ["parameters"]})
    sets = [{"x": i} for i in range(20)]
    execution = env.run({"notebook": path, "parameter_sets": sets, "max_concurrency": 4}, timeout=600)

    assert execution.succeeded, (execution.error, execution.cause)
    result = execution.output
    assert (result["status"], result["total"], result["succeeded"], result["failed"]) == ("SUCCEEDED", 20, 20, 0)
    assert [r["index"] for r in result["runs"]] == list(range(20))
    windows = []
    for i, child in enumerate(result["runs"]):
        assert child["status"] == "SUCCEEDED" and child["run_id"].endswith(f"-{i}")
        assert child["output"]["run_id"] == child["run_id"]
        uri = child["output"]["output_notebook"]
        assert uri.endswith(f"runs/{child['run_id']}/square.ipynb")
        nb = nbformat.reads(env.stack.read_output(uri).decode(), as_version=4)
        assert nb.cells[1].source == f"# Parameters\nx = {i}\n"
        assert nb.cells[2].outputs[0].text == f"{i * i}\n"
        timing = nb.cells[2].metadata["execution"]
        windows.append((datetime.strptime(timing["iopub.execute_input"], KERNEL_DATE),
                        datetime.strptime(timing["shell.execute_reply"], KERNEL_DATE)))
    assert _most_at_once(windows) <= 4
    saved = json.loads(env.stack.read_output(result["result_uri"]))
    assert saved["total"] == 20 and len(saved["runs"]) == 20
    assert_nothing_running(env)


def test_a_batch_with_one_failing_set_fails_and_names_it(local_env):
    env = local_env("studio-space", max_concurrent_runs=3)
    path = write_notebook(env.root, "inverse.ipynb", "x = 1", "print(1 / x)", tags={0: ["parameters"]})
    execution = env.run({"notebook": path, "parameter_sets": [{"x": 1}, {"x": 0}, {"x": 4}],
                         "max_concurrency": 3}, timeout=300)

    assert execution.status == "FAILED"
    assert execution.error == "BatchFailed"
    failing = f"{execution.arn.rsplit(':', 1)[-1]}-1"
    assert execution.cause.startswith("1 of 3 runs failed (tolerated: 0%): ")
    assert f"run 1 ({failing}) FAILED: CellExecutionError: Cell 3" in execution.cause  # papermill numbers cells from 1
    assert "ZeroDivisionError" in execution.cause
    uri = execution.cause.rsplit("batch result: ", 1)[1]
    saved = json.loads(env.stack.read_output(uri))
    assert [r["status"] for r in saved["runs"]] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert saved["runs"][1]["error"] == "CellExecutionError"
    # The failing child still left its executed notebook, with the error marked.
    child = env.stack.sfn.describe_execution(executionArn=execution.arn.rsplit(":", 1)[0] + f":{failing}")
    assert child["status"] == "FAILED" and "runs/" + failing in child["cause"]
    assert_nothing_running(env)


def test_tolerated_failure_percentage_lets_the_batch_succeed_and_still_lists_the_failure(local_env):
    env = local_env("studio-space", max_concurrent_runs=2)
    path = write_notebook(env.root, "inverse.ipynb", "x = 1", "print(1 / x)", tags={0: ["parameters"]})
    execution = env.run({"notebook": path, "parameter_sets": [{"x": 0}, {"x": 2}],
                         "tolerated_failure_percentage": 50}, timeout=300)

    assert execution.succeeded, (execution.error, execution.cause)
    assert (execution.output["succeeded"], execution.output["failed"]) == (1, 1)
    assert execution.output["runs"][0]["error"] == "CellExecutionError"


def test_an_invalid_set_fails_the_batch_before_anything_starts(local_env):
    env = local_env("studio-space")
    path = write_notebook(env.root, "n.ipynb", "1")
    execution = env.run({"notebook": path, "parameter_sets": [{"ok": 1}, {"not an identifier": 2}]}, timeout=60)

    assert execution.error == "PayloadInvalid"
    assert "run 1: " in execution.cause and "'not an identifier'" in execution.cause
    assert [e for e in env.stack.sfn.list_executions(stateMachineArn=env.stack.state_machine_arn)["executions"]
            if e["executionArn"] != execution.arn] == []


def test_cli_parameter_sets_write_one_notebook_per_set_and_exit_1_naming_the_failing_set(tmp_path, capsys):
    from studiorunner_cli.main import main

    home = tmp_path / "home"
    write_notebook(home, "inverse.ipynb", "x = 1", "print(1 / x)", tags={0: ["parameters"]})
    sets = tmp_path / "sets.yaml"
    sets.write_text("- x: 2\n- x: 0\n")
    out = tmp_path / "out"
    code = main(["run", str(home / "inverse.ipynb"), "--parameter-sets", str(sets), "--max-concurrency", "2",
                 "--local", "--root", str(home), "-o", str(out), "--html"])

    err = capsys.readouterr().err
    assert code == 1, err
    assert "1 of 2 runs failed" in err
    assert "set 1 (" in err and "CellExecutionError" in err and "set 0 (" not in err
    assert sorted(p.name for p in out.iterdir()) == ["inverse-0.html", "inverse-0.ipynb", "inverse-1.html",
                                                     "inverse-1.ipynb"]
    assert "ZeroDivisionError" in (out / "inverse-1.html").read_text()
    first = json.loads((out / "inverse-0.ipynb").read_text())
    assert stream_text_of(first["cells"][2]) == "0.5\n"


def stream_text_of(cell: dict) -> str:
    return "".join("".join(o["text"]) for o in cell["outputs"] if o.get("output_type") == "stream")
