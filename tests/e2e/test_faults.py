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
import os
import signal
from pathlib import Path
from typing import Iterator

import nbformat
import pytest

from e2e_support import Env, assert_nothing_running, write_notebook
from localstudio.local_stack import BUCKET, LocalStack
from localstudio.standin import StandIn

PREPARE_ONLY = ["studio-runner-prepare", "studio-runner-cleanup"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("faults-home")
    with StandIn(root=root, flavor="studio-space") as standin, LocalStack(standin, wait_scale=0.05) as stack:
        yield Env(standin, stack, root)


def _no_stack_trace(cause: str) -> None:
    assert "Traceback" not in cause and "stackTrace" not in cause and 'File "' not in cause, cause


# ---- Cleanup that crashes or lies -----------------------------------------------------------


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


def test_target_failed_names_no_notebook(local_env) -> None:
    env = local_env("studio-space", app_initially="absent", faults={"app_fails": True, "app_start_seconds": 0.2})
    execution = env.run({"notebook": write_notebook(env.root, "n.ipynb", "1")})

    assert execution.error == "TargetFailed"
    assert "s3://" not in execution.cause, execution.cause
    assert env.running()["apps"] == []


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
