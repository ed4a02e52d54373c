"""Issue 9, end to end: every fault ends well — nothing leaks, Cleanup never crashes, every
error has its name, bad input is refused before anything starts.

Each test goes through the real state machine (moto's interpreter executing
``statemachine/runner.asl.json``) against the Studio stand-in and asserts what a user sees
(the execution's error and cause, the result, the notebook) and what is left running.
One stand-in is shared by the module; tests that break the stand-in or need the app absent
start their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from e2e_support import Env, assert_nothing_running, write_notebook

from localstudio.local_stack import LocalStack
from localstudio.standin import StandIn

PREPARE_ONLY = ["studio-runner-prepare", "studio-runner-cleanup"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("faults-home")
    with StandIn(root=root, flavor="studio-space") as standin, LocalStack(standin, wait_scale=0.05) as stack:
        yield Env(standin, stack, root)


# ---- Cleanup that crashes or lies -----------------------------------------------------------


def test_write_back_into_a_folder_is_write_back_failed_not_cleanup_failed(env: Env) -> None:
    path = write_notebook(env.root, "wb/folder.ipynb", "print('fine')")
    (env.root / "wb" / "folder.output.ipynb").mkdir()  # where write_back would put its notebook

    execution = env.run({"notebook": path, "write_back": True})

    assert execution.status == "FAILED"
    assert execution.error == "WriteBackFailed", (execution.error, execution.cause)
    assert "wb/folder.output.ipynb" in execution.cause and "Every cell ran" in execution.cause
    nb = env.output(execution)  # the executed notebook is still in S3, complete
    assert nb.metadata.studio_runner["status"] == "succeeded"
    assert_nothing_running(env)


def test_a_failure_before_the_output_exists_names_no_notebook(env: Env) -> None:
    execution = env.run({"notebook": "nowhere/missing.ipynb"})

    assert execution.error == "NotebookNotFound"
    assert "s3://" not in execution.cause, execution.cause


# ---- Errors with their proper name ----------------------------------------------------------


NOT_NOTEBOOKS = {
    "not-json": (b"this is not JSON", "not JSON|does not appear to be JSON"),
    "nbformat-5": (json.dumps({"nbformat": 5, "nbformat_minor": 0, "metadata": {}, "cells": []}).encode(),
                   "nbformat|version"),
}


@pytest.mark.parametrize("kind", sorted(NOT_NOTEBOOKS))
def test_a_file_in_the_tree_that_is_not_a_notebook_is_notebook_invalid(env: Env, kind: str) -> None:
    body, reason = NOT_NOTEBOOKS[kind]
    (env.root / f"{kind}.ipynb").write_bytes(body)

    execution = env.run({"notebook": f"{kind}.ipynb"})

    assert execution.error == "NotebookInvalid", (execution.error, execution.cause)
    assert f"{kind}.ipynb" in execution.cause
    assert any(r in execution.cause for r in reason.split("|")), execution.cause
    assert_nothing_running(env)


@pytest.mark.parametrize("kind", sorted(NOT_NOTEBOOKS))
def test_an_s3_object_that_is_not_a_notebook_is_notebook_invalid_in_prepare(env: Env, kind: str) -> None:
    uri = env.stack.put_object(f"inputs/{kind}.ipynb", NOT_NOTEBOOKS[kind][0])

    execution = env.run({"notebook_s3": uri})

    assert execution.error == "NotebookInvalid", (execution.error, execution.cause)
    assert uri in execution.cause
    assert execution.invocations == PREPARE_ONLY


# ---- Bad input refused before anything starts -------------------------------------------------


@pytest.mark.parametrize("payload, expected", [
    ({"notebook": "x.ipynb", "parameters": {"name": "\ud800"}}, "U+D800"),
    ({"commands": ["echo a\u0000b"]}, "NUL"),
])
def test_values_that_cannot_travel_are_payload_invalid_in_prepare(env: Env, payload, expected) -> None:
    execution = env.run(payload)

    assert execution.error == "PayloadInvalid", (execution.error, execution.cause)
    assert expected in execution.cause
    assert execution.invocations == PREPARE_ONLY  # nothing started


def test_a_payload_too_large_for_a_state_is_payload_invalid_naming_the_limit(env: Env) -> None:
    path = write_notebook(env.root, "many.ipynb", "1")
    parameters = {f"p{i}": i for i in range(10_000)}  # ~148 KB, in every state of the execution

    execution = env.run({"notebook": path, "parameters": parameters})

    assert execution.error == "PayloadInvalid", (execution.error, execution.cause)
    assert "256 KiB" in execution.cause and "64 KiB" in execution.cause
    assert len(execution.cause) < 1000
    assert execution.invocations == PREPARE_ONLY


# ---- Leaks: everything a step creates is recorded before anything can fail ----------------------


def test_a_failure_right_after_the_session_is_created_leaves_nothing_running(env: Env) -> None:
    path = write_notebook(env.root, "leak/after_session.ipynb", "1")
    # the first look at the new kernel (GET api/kernels/<id>) fails: in the old StartKernel
    # that was in the invocation that created the session, whose ids then never reached the state
    env.standin.set_faults(http_errors=[{"path_regex": r"/api/kernels/[0-9a-f-]+$", "method": "GET",
                                         "status": 500, "count": 1}])
    try:
        execution = env.run({"notebook": path})
    finally:
        env.standin.set_faults(http_errors=[])

    assert execution.status == "FAILED"
    assert execution.error == "JupyterHTTPError", (execution.error, execution.cause)
    assert_nothing_running(env)


def test_cleanup_finds_a_session_whose_id_never_reached_the_state_by_the_runs_marker(env: Env) -> None:
    """An execution aborted (or a StartKernel crashed) inside create_session: the state has the
    run but no kernel; the session's name carries the run id, and Cleanup removes it — and
    nothing else, not a person's session on the notebook itself."""
    from localstudio.local_stack import FakeLambdaContext
    from studiorunner.jupyter.http import JupyterHTTP
    from studiorunner.jupyter.rest import JupyterClient
    from studiorunner.run.start_kernel import run_session_path
    from studiorunner.steps import cleanup, prepare

    path = write_notebook(env.root, "leak/aborted.ipynb", "1")
    run = prepare.handler({"payload": {"notebook": path}, "execution": "aborted-in-start-kernel"},
                          FakeLambdaContext("studio-runner-prepare", 60))
    client = JupyterClient(JupyterHTTP(env.standin.jupyter_url, token=env.standin.token))
    person = client.create_session(path, kernel_name="python3")  # someone has the notebook open
    leaked = client.create_session(run_session_path(path, run["run_id"]), kernel_name="python3")
    try:
        state = {"run": run, "target": {"status": "ready"},
                 "error": {"Error": "ExecutionAborted", "Cause": "aborted mid-StartKernel"}}
        outcome = cleanup.handler(state, FakeLambdaContext("studio-runner-cleanup", 60))

        sessions = {s["id"] for s in env.running()["sessions"]}
        assert leaked["id"] not in sessions, outcome
        assert person["id"] in sessions  # never touch what is not ours
        assert "deleted session and its kernel" in outcome["result"]["cleanup"]["actions"]
    finally:
        client.delete_session(person["id"])
        client.delete_session(leaked["id"])
    assert_nothing_running(env)


def test_a_kernel_that_dies_at_start_leaves_no_session(env: Env) -> None:
    # a kernelspec in the stand-in server's own JUPYTER_DATA_DIR (its kernelspecs are re-read per request)
    spec_dir = env.standin._tmp / "data" / "kernels" / "dies-at-start"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": ["/bin/sh", "-c", "exit 3", "{connection_file}"], "display_name": "Dies at start",
        "language": "python"}))
    path = write_notebook(env.root, "leak/dies.ipynb", "1", kernel="dies-at-start")

    execution = env.run({"notebook": path, "timeouts": {"start_seconds": 60}})

    assert execution.status == "FAILED"
    assert execution.error in ("KernelDied", "KernelNotReady"), (execution.error, execution.cause)
    assert_nothing_running(env)


# ---- Transient trouble is ridden out -------------------------------------------------------


def test_a_transient_503_on_a_post_is_ridden_out_by_the_state_machine(env: Env) -> None:
    # a POST is never replayed by the HTTP client (not idempotent): the step fails with
    # JupyterUnavailable and the state machine's Retry runs StartKernel again
    path = write_notebook(env.root, "transient/post503.ipynb", "print('through')")
    env.standin.set_faults(http_errors=[{"path_regex": r"/api/sessions$", "method": "POST", "status": 503,
                                         "count": 1}])
    try:
        execution = env.run({"notebook": path})
    finally:
        env.standin.set_faults(http_errors=[])

    assert execution.succeeded, (execution.error, execution.cause)
    assert execution.invocations.count("studio-runner-start-kernel") >= 3  # failed once, retried, probed
    assert_nothing_running(env)


def test_no_state_outgrows_step_functions_limit_with_the_largest_payload_accepted(env: Env) -> None:
    """Parameters the notebook does not define each make a warning; thousands of them rode in
    every later state (kernel.warnings) and would end in States.DataLimitExceeded, which no
    Catch sees (moto does not enforce the limit, so the test measures the states)."""
    path = write_notebook(env.root, "many_undefined.ipynb", "a = 1", "print(len(dir()))", tags={0: ["parameters"]})
    parameters = {f"p{i}": i for i in range(4_500)}
    assert 50_000 < len(json.dumps({"notebook": path, "parameters": parameters})) < 64 * 1024

    execution = env.run({"notebook": path, "parameters": parameters})

    assert execution.succeeded, (execution.error, execution.cause)
    assert len(execution.output["warnings"]) <= 21
    assert "4480 more warning(s)" in execution.output["warnings"][-1]
    history = env.stack.sfn.get_execution_history(executionArn=execution.arn, maxResults=1000)["events"]
    sizes = [len((e.get("stateEnteredEventDetails") or e.get("stateExitedEventDetails") or {}).get(key, "")
                 .encode()) for e in history for key in ("input", "output")]
    assert max(sizes) < 256 * 1024, max(sizes)
    nb = env.output(execution)  # the notebook keeps every warning
    assert len(nb.metadata.studio_runner["warnings"]) == 4_500


def test_an_html_page_on_cleanups_login_check_is_ridden_out(env: Env) -> None:
    # Studio's proxy answers a loading or sign-in page (HTML, 200) while an app settles; the
    # last cell arms the stand-in so that Cleanup's login check (GET api/status) gets two.
    from localstudio.standin.extension import CONTROL_PATH

    knobs = {"http_errors": [{"path_regex": r"/api/status$", "method": "GET", "status": 200, "html": True,
                              "count": 2}]}
    path = write_notebook(
        env.root, "transient/html_status.ipynb", "print('done')",
        "import json, urllib.request\n"
        "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
        f"opener.open(urllib.request.Request({env.standin.base_url + CONTROL_PATH + '/faults'!r}, "
        f"data=json.dumps({knobs!r}).encode(), method='POST', headers={{'Content-Type': 'application/json'}}))")
    try:
        execution = env.run({"notebook": path})
        left = env.standin.state()["faults"]["http_errors"]
    finally:
        env.standin.set_faults(http_errors=[])

    assert [rule["count"] for rule in left] == [0]  # Cleanup did meet both HTML answers
    assert execution.succeeded, (execution.error, execution.cause)
    assert "problems" not in execution.output["cleanup"], execution.output["cleanup"]
    assert_nothing_running(env)
