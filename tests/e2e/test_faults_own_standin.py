"""Issue 9, end to end: the faults that need a stand-in of their own (one that is killed, one
whose app fails or starts absent). Kept apart from test_faults.py, whose module-wide local
stack would share moto's state with a second one."""

from __future__ import annotations

import os
import signal

from e2e_support import assert_nothing_running, write_notebook


def _no_stack_trace(cause: str) -> None:
    assert "Traceback" not in cause and "stackTrace" not in cause and 'File "' not in cause, cause


def test_jupyter_server_killed_mid_run_keeps_kernel_died_and_cleanup_does_not_crash(local_env, tmp_path):
    env = local_env("studio-space")
    pid_file = tmp_path / "kernel.pid"
    path = write_notebook(
        env.root, "killer.ipynb",
        "print('before', flush=True)",
        f"import os, signal\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "os.kill(os.getppid(), signal.SIGKILL)  # the Jupyter server (and with it Studio's API) dies\n"
        "import time; time.sleep(30)",
        "print('never')",
    )
    try:
        execution = env.run({"notebook": path}, timeout=120)
    finally:
        if pid_file.exists():  # an orphaned kernel must not outlive the test
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass

    assert execution.status == "FAILED"
    assert execution.error == "KernelDied", (execution.error, execution.cause)  # the run's first error
    _no_stack_trace(execution.cause)
    assert "cleanup also failed" in execution.cause  # it says what it could not do
    nb = env.output(execution)  # the cause still names the executed notebook, and it is there
    assert nb.metadata.studio_runner["status"] == "failed"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].outputs[0].text == "before\n"


def test_target_failed_names_no_notebook(local_env) -> None:
    env = local_env("studio-space", app_initially="absent", faults={"app_fails": True, "app_start_seconds": 0.2})
    execution = env.run({"notebook": write_notebook(env.root, "n.ipynb", "1")})

    assert execution.error == "TargetFailed"
    assert "s3://" not in execution.cause, execution.cause
    assert env.running()["apps"] == []


def test_the_last_run_out_stops_the_app_an_earlier_run_started(local_env) -> None:
    import time

    env = local_env("studio-space", app_initially="absent", faults={"app_start_seconds": 0.3}, max_concurrent_runs=2)
    flag_b, flag_a_done = env.root / "b-started", env.root / "a-done"
    first = write_notebook(env.root, "first.ipynb",
                           f"import pathlib, time\nwhile not pathlib.Path({str(flag_b)!r}).exists(): time.sleep(0.1)")
    second = write_notebook(env.root, "second.ipynb",
                            f"import pathlib, time\npathlib.Path({str(flag_b)!r}).touch()\n"
                            f"while not pathlib.Path({str(flag_a_done)!r}).exists(): time.sleep(0.1)")
    arn_a = env.stack.start({"notebook": first})
    deadline = time.monotonic() + 60
    while not env.standin.state()["kernels"] and time.monotonic() < deadline:  # A started the app and a kernel
        time.sleep(0.2)
    arn_b = env.stack.start({"notebook": second})

    a = env.stack.wait(arn_a, timeout=120)
    assert a.succeeded, (a.error, a.cause)
    assert any("other kernel" in k for k in a.output["cleanup"]["kept"]), a.output["cleanup"]  # B's kernel
    flag_a_done.touch()
    b = env.stack.wait(arn_b, timeout=120)

    assert b.succeeded, (b.error, b.cause)
    assert any("deleted JupyterLab app" in x for x in b.output["cleanup"]["actions"]), b.output["cleanup"]
    deadline = time.monotonic() + 10
    while env.running()["apps"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert env.running()["apps"] == []
    assert_nothing_running(env)


def test_nothing_of_a_run_is_kept_in_the_persons_trash_and_uploads_are_removed(local_env) -> None:
    # The stand-in deletes to the trash of its home, as jupyter_server does by default and
    # Studio does: whatever the contents API deletes lands in ~/.local/share/Trash.
    env = local_env("studio-space")
    marker = "output-that-must-not-be-kept-" * 20
    from_tree = write_notebook(env.root, "tree.ipynb", f"print({marker!r})")
    uploaded = write_notebook(env.root, "staging/uploaded.ipynb", f"print({marker!r})")
    uri = env.stack.put_object("inputs/uploaded.ipynb", (env.root / uploaded).read_bytes())
    (env.root / uploaded).unlink()

    for payload in ({"notebook": from_tree}, {"notebook_s3": uri}):
        execution = env.run(payload)
        assert execution.succeeded, (execution.error, execution.cause)
        assert marker in env.output(execution).cells[0].outputs[0].text

    trash = env.root / ".local" / "share" / "Trash"
    kept = {str(p.relative_to(trash)): p.read_bytes() for p in trash.rglob("*") if p.is_file()} \
        if trash.exists() else {}
    assert not [name for name, data in kept.items() if data and not name.endswith(".trashinfo")], kept
    assert not any(marker.encode() in data for data in kept.values())
    assert not (env.root / "studio-runner").exists()  # no journal folder, no uploads folder
    assert_nothing_running(env)


def test_the_output_bucket_gone_mid_run_is_output_unwritable_with_the_notebook_in_the_tree(local_env) -> None:
    import time

    import nbformat

    env = local_env("studio-space")
    flag, running = env.root / "bucket-gone", env.root / "cells-running"
    path = write_notebook(
        env.root, "reports/gone.ipynb",
        f"import pathlib\npathlib.Path({str(running)!r}).touch()\nprint('first')",
        f"import pathlib, time\nwhile not pathlib.Path({str(flag)!r}).exists(): time.sleep(0.1)\nprint('second')",
        "print('third')",
    )
    arn = env.stack.start({"notebook": path})
    deadline = time.monotonic() + 120
    while not running.exists() and time.monotonic() < deadline:  # RunCells has read the notebook
        time.sleep(0.1)
    s3 = env.stack.s3  # the output bucket goes, as if deleted by someone mid-run
    bucket = s3.list_buckets()["Buckets"][0]["Name"]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)
    flag.touch()
    execution = env.stack.wait(arn, timeout=180)

    assert execution.status == "FAILED"
    assert execution.error == "OutputUnwritable", (execution.error, execution.cause)
    assert "NoSuchBucket" in execution.cause and "reports/gone.output.ipynb" in execution.cause, execution.cause
    assert "Traceback" not in execution.cause
    nb = nbformat.read(env.root / "reports" / "gone.output.ipynb", as_version=4)  # every cell's output kept
    assert [c.outputs[0].text for c in nb.cells] == ["first\n", "second\n", "third\n"]
    result = _cleanup_result(env, arn)  # a failed execution's result is Cleanup's output, in its history
    assert result["cells_executed"] == 3 and result["output_notebook"] is None, result
    assert_nothing_running(env)


def _cleanup_result(env, arn: str) -> dict:
    import json

    events = env.stack.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    for event in reversed(events):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "Cleanup":
            return json.loads(details["output"])["outcome"]["result"]
    raise AssertionError("no Cleanup in the history")
