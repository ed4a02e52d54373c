"""The overlap policy (issue 15.4) through the local state machine: a schedule's fire while its
previous run still runs is skipped (ends at once, SKIPPED, nothing started) or queued."""

from __future__ import annotations

import json
import time

from e2e_support import assert_nothing_running, write_notebook

from localstudio.local_stack import BUCKET
from studiorunner_cli.runs import Runs


def _states_entered(env, arn: str) -> list[str]:
    events = env.stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in events if e.get("stateEnteredEventDetails")]


def _until_in(env, arn: str, state: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if state in _states_entered(env, arn):
            return
        time.sleep(0.1)
    raise AssertionError(f"{arn} never reached {state}")


def _payload(path: str, overlap: str) -> dict:
    return {"notebook": path, "schedule": {"name": "daily", "overlap": overlap}}


def test_skip_ends_the_new_fire_at_once_as_skipped_and_starts_nothing(local_env, capsys):
    env = local_env("studio-space")
    path = write_notebook(env.root, "slow.ipynb", "import time\ntime.sleep(4)", "print('done')")
    first = env.stack.start(_payload(path, "skip"), name="daily-aaaa1111")
    _until_in(env, first, "RunCells")
    second = env.stack.start(_payload(path, "skip"), name="daily-bbbb2222")
    skipped = env.stack.wait(second, timeout=60)
    assert skipped.status == "SUCCEEDED"
    assert skipped.output["status"] == "SKIPPED" and skipped.output["previous_runs"] == ["daily-aaaa1111"]
    assert "still running" in skipped.output["reason"]
    assert "Prepare" not in _states_entered(env, second)  # nothing started: no slot, no notebook, no kernel
    assert env.stack.s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/daily-bbbb2222/").get("KeyCount", 0) == 0
    assert env.stack.wait(first, timeout=120).status == "SUCCEEDED"

    runs = Runs(env.stack.sfn, env.stack.s3, state_machine_arn=env.stack.state_machine_arn, bucket=BUCKET)
    shown = {info.run_id: info.shown_status for info in runs.list()}
    assert shown == {"daily-aaaa1111": "SUCCEEDED", "daily-bbbb2222": "SKIPPED"}
    from studiorunner_cli.verbs import RunRef, status

    status(RunRef(run="daily-bbbb2222"), runs)
    said = capsys.readouterr().out
    assert "SKIPPED" in said and "why          skipped: the previous run of schedule daily" in said
    assert "notebook out" not in said
    assert_nothing_running(env)


def test_queue_waits_for_the_previous_run_then_runs(local_env):
    env = local_env("studio-space")
    path = write_notebook(env.root, "slow.ipynb", "import time\ntime.sleep(3)", "print('done')")
    first = env.stack.start(_payload(path, "queue"), name="daily-aaaa1111")
    _until_in(env, first, "RunCells")
    second = env.stack.start(_payload(path, "queue"), name="daily-bbbb2222")
    _until_in(env, second, "WaitForPrevious")
    done_first = env.stack.wait(first, timeout=120)
    done_second = env.stack.wait(second, timeout=180)
    assert done_first.succeeded and done_second.succeeded
    assert done_second.output["status"] == "SUCCEEDED" and done_second.output["cells_executed"] == 2
    first_end = env.stack.sfn.describe_execution(executionArn=first)["stopDate"]
    history = env.stack.sfn.get_execution_history(executionArn=second, maxResults=1000)["events"]
    prepare = next(e for e in history if (e.get("stateEnteredEventDetails") or {}).get("name") == "Prepare")
    assert prepare["timestamp"] >= first_end  # its run began only once the previous one had ended
    overlap = json.loads(next(e for e in reversed(history) if (e.get("stateExitedEventDetails") or {})
                              .get("name") == "CheckOverlap")["stateExitedEventDetails"]["output"])["overlap"]
    assert overlap["decision"] == "run" and overlap["waiting_since"]
    assert_nothing_running(env)


def test_allow_runs_beside_the_previous_run(local_env):
    env = local_env("studio-space", max_concurrent_runs=2)  # room for both at once
    path = write_notebook(env.root, "slow.ipynb", "import time\ntime.sleep(3)", "print('done')")
    first = env.stack.start(_payload(path, "allow"), name="daily-aaaa1111")
    _until_in(env, first, "RunCells")
    second = env.stack.start(_payload(path, "allow"), name="daily-bbbb2222")
    assert env.stack.wait(second, timeout=120).succeeded
    assert "CheckOverlap" not in _states_entered(env, second)
    assert env.stack.wait(first, timeout=120).succeeded


def test_a_schedules_batch_checks_overlap_once_and_runs_every_set(local_env):
    """The batch is the fire: its runs (<batch>-<i>) must not give way to the batch itself."""
    env = local_env("studio-space", max_concurrent_runs=2)
    path = write_notebook(env.root, "p.ipynb", "x = 0", "print(x)", tags={0: ["parameters"]})
    payload = {"notebook": path, "parameter_sets": [{"x": 1}, {"x": 2}],
               "schedule": {"name": "daily", "overlap": "skip"}}
    batch = env.stack.wait(env.stack.start(payload, name="daily-aaaa1111"), timeout=240)
    assert batch.status == "SUCCEEDED", (batch.error, batch.cause)
    runs = batch.output["runs"]
    assert [r["status"] for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
    assert all((r.get("output") or {}).get("cells_executed") == 3 for r in runs), runs  # with the injected one
