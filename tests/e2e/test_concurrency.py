"""A limit of concurrent runs per target (issue 11.1), through the local state machine.

The semaphore is DynamoDB (moto) + the AcquireSlot step + a Wait loop in runner.asl.json.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

from e2e_support import assert_nothing_running, write_notebook

from localstudio.local_stack import SLOTS_TABLE, TARGET_NAME, FakeLambdaContext

KERNEL_DATE = "%Y-%m-%dT%H:%M:%S.%fZ"


def _slot_item(env) -> dict:
    import boto3

    item = boto3.client("dynamodb", region_name="us-east-1").get_item(
        TableName=SLOTS_TABLE, Key={"target": {"S": TARGET_NAME}}, ConsistentRead=True).get("Item") or {}
    return {"running": int(item["running"]["N"]) if "running" in item else 0,
            "holders": sorted(k for k in item if k not in ("target", "running"))}


def _wait_for(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _kernel_window(nb) -> tuple[datetime, datetime]:
    """When the kernel began the first cell and finished the last one (the kernel's own dates)."""
    timings = [c.metadata["execution"] for c in nb.cells if c.cell_type == "code" and "execution" in c.metadata]
    return (datetime.strptime(timings[0]["iopub.execute_input"], KERNEL_DATE),
            datetime.strptime(timings[-1]["shell.execute_reply"], KERNEL_DATE))


def _slot_states(env, arn) -> list[dict]:
    """Every $.slot AcquireSlot returned during the execution, in order."""
    events = env.stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    states = []
    for event in events:
        done = event.get("stateExitedEventDetails")
        if done and done["name"] == "AcquireSlot":
            states.append(json.loads(done["output"])["slot"])
    return states


def test_five_runs_on_a_one_slot_target_run_one_at_a_time(local_env):
    env = local_env("studio-space", max_concurrent_runs=1)
    path = write_notebook(env.root, "n.ipynb", "import time\ntime.sleep(0.2)", "print(run)",
                          tags={0: ["parameters"]})
    arns = [env.stack.start({"notebook": path, "parameters": {"run": i}}) for i in range(5)]
    executions = [env.stack.wait(arn, timeout=120) for arn in arns]

    for execution in executions:
        assert execution.succeeded, (execution.error, execution.cause)
    windows = sorted(_kernel_window(env.output(e)) for e in executions)
    for (_, end), (next_start, _) in zip(windows, windows[1:], strict=False):
        assert end <= next_start, f"two runs overlapped on a one-slot target: {windows}"
    # The queue is visible in the state for `status`/`watch`: some run waited, and said so.
    waits = [s for arn in arns for s in _slot_states(env, arn) if s["status"] == "waiting"]
    assert waits and all(s["message"].startswith("waiting for a slot on local") for s in waits)
    assert all(_slot_states(env, arn)[-1]["status"] == "acquired" for arn in arns)
    assert _slot_item(env) == {"running": 0, "holders": []}
    assert_nothing_running(env)


def test_a_failed_run_frees_its_slot(local_env):
    env = local_env("studio-space", max_concurrent_runs=1)
    failing = env.run({"notebook": write_notebook(env.root, "bad.ipynb", "1/0")})
    assert failing.error == "CellExecutionError"
    assert _slot_item(env) == {"running": 0, "holders": []}
    ok = env.run({"notebook": write_notebook(env.root, "ok.ipynb", "1")}, timeout=30)
    assert ok.succeeded, (ok.error, ok.cause)
    assert ok.output["cleanup"]["actions"][-1] == "released the run's slot on target local"


def test_a_full_target_past_queue_seconds_is_target_busy(local_env):
    env = local_env("studio-space", max_concurrent_runs=1)
    long = env.stack.start({"notebook": write_notebook(env.root, "long.ipynb", "import time\ntime.sleep(4)")})
    assert _wait_for(lambda: _slot_item(env)["running"] == 1)
    queued = env.stack.run({"notebook": write_notebook(env.root, "q.ipynb", "1"), "timeouts": {"queue_seconds": 1}},
                           timeout=60)
    assert queued.error == "TargetBusy"
    assert "Target 'local' had no free slot" in queued.cause and "max_concurrent_runs=1" in queued.cause
    assert long.rsplit(":", 1)[-1] in queued.cause  # names the run holding the slot
    assert env.stack.wait(long, timeout=60).succeeded
    assert _slot_item(env) == {"running": 0, "holders": []}


def test_an_aborted_run_frees_its_slot_through_execution_ended(local_env):
    from studiorunner.steps import execution_ended

    env = local_env("studio-space", max_concurrent_runs=1, run_cells_budget=2)
    arn = env.stack.start({"notebook": write_notebook(env.root, "long.ipynb", "import time\ntime.sleep(60)")})
    assert _wait_for(lambda: any(k["execution_state"] == "busy" for k in env.standin.state()["kernels"]))
    assert _slot_item(env)["holders"] == [arn]
    env.stack.sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
    assert _wait_for(lambda: env.stack.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED", timeout=40)
    assert _slot_item(env)["holders"] == [arn], "an aborted run never reaches Cleanup"

    event = {"detail": {"executionArn": arn, "status": "ABORTED"}}
    result = execution_ended.handler(event, FakeLambdaContext("studio-runner-execution-ended", 60))

    assert result["slot"] == "released the run's slot on target local"
    assert _slot_item(env) == {"running": 0, "holders": []}
    assert _wait_for(lambda: env.running()["kernels"] == [], timeout=10)


def test_a_slot_held_by_an_execution_no_longer_running_is_reclaimed(local_env):
    env = local_env("studio-space", max_concurrent_runs=1, run_cells_budget=2)
    arn = env.stack.start({"notebook": write_notebook(env.root, "long.ipynb", "import time\ntime.sleep(60)")})
    assert _wait_for(lambda: _slot_item(env)["holders"] == [arn])
    env.stack.sfn.stop_execution(executionArn=arn)
    assert _wait_for(lambda: env.stack.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED", timeout=40)
    # No ExecutionEnded (a lost event): the next run finds the holder gone and takes the slot.
    nxt = env.run({"notebook": write_notebook(env.root, "next.ipynb", "1")}, timeout=60)
    assert nxt.succeeded, (nxt.error, nxt.cause)
    assert _slot_item(env) == {"running": 0, "holders": []}


def test_runs_waiting_for_a_slot_keep_the_app_one_start_for_six_runs(local_env) -> None:
    # Issue 21.1: the last run out of a wave must not stop the app while the next runs wait
    # for a slot on the same target: an app start costs minutes (10-30 outside the warm pool).
    env = local_env("studio-space", app_initially="absent", faults={"app_start_seconds": 3.0},
                    max_concurrent_runs=2)
    paths = [write_notebook(env.root, f"wave-{i}.ipynb", "import time; time.sleep(1)", f"print({i})")
             for i in range(6)]
    arns = [env.stack.start({"notebook": path}) for path in paths]
    executions = [env.stack.wait(arn, timeout=300) for arn in arns]

    assert all(e.succeeded for e in executions), [(e.error, e.cause) for e in executions]
    starts = [a for a in env.standin.state()["apps"] if a["app_type"] == "JupyterLab"]
    assert len(starts) == 1, starts  # one app start for the six runs
    assert _wait_for(lambda: env.running()["apps"] == [], timeout=30), [e.output["cleanup"] for e in executions]
    deleted = [e for e in executions if any("deleted JupyterLab app" in a for a in e.output["cleanup"]["actions"])]
    assert len(deleted) == 1, [e.output["cleanup"] for e in executions]
    assert_nothing_running(env)
