"""``studio-runner local up``: a long-lived local stack in a process of its own, used by other
``studio-runner … --local`` commands (real stand-in, the state machine in moto, moto's HTTP server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from e2e_support import REPO, write_notebook


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_RUNNER_", "POWERTOOLS_"))}
    env["PYTHONPATH"] = str(REPO)  # as if installed: the command works from any folder
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def cli(tmp_path: Path, *args: str, cwd: Path | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studiorunner_cli", *args], cwd=cwd or tmp_path,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=timeout)


@dataclass
class Up:
    root: Path
    info: dict
    proc: subprocess.Popen

    def standin_state(self) -> dict:
        with urllib.request.urlopen(self.info["standin_url"] + "/_standin/state", timeout=10) as answer:
            return json.loads(answer.read())


@pytest.fixture
def local_up(tmp_path: Path) -> Iterator[Up]:
    root = tmp_path / "project"
    root.mkdir()
    state = tmp_path / "cache" / "studio-runner" / "local.json"
    proc = subprocess.Popen([sys.executable, "-m", "studiorunner_cli", "local", "up", "--root", str(root)],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not state.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.poll() is not None else ""
            time.sleep(0.2)
        yield Up(root, json.loads(state.read_text()), proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_for(predicate, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_stop_on_a_local_up_stack_interrupts_the_running_cell_at_once_and_cleans_up(local_up, tmp_path):
    """Issue 20 fault 3: the stop used to let the running cell (and the next ones) run to the
    end, a raise after it ended the run FAILED with a raw Lambda trace, and Cleanup never ran."""
    write_notebook(local_up.root, "long.ipynb", "import os\nprint('kernel pid', os.getpid(), flush=True)",
                   "import time\nprint('sleeping', flush=True)\ntime.sleep(600)",
                   "raise ValueError('after the stop')", "print('never')")
    started = cli(tmp_path, "run", "--local", str(local_up.root / "long.ipynb"))
    assert started.returncode == 0, started.stdout + started.stderr
    run_id = started.stdout.strip().splitlines()[-1]

    def running_cell() -> bool:
        status = cli(tmp_path, "status", run_id, "--local")
        return "running since" in status.stdout

    _wait_for(running_cell, "the long cell never started")
    stopped = cli(tmp_path, "stop", run_id, "--local", timeout=200)

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"Stopped {run_id} (ABORTED)" in stopped.stdout
    status = cli(tmp_path, "status", run_id, "--local")
    assert "ABORTED" in status.stdout and "errorType" not in status.stdout + status.stderr
    state = local_up.standin_state()
    assert state["kernels"] == [] and state["sessions"] == [], state
    out = tmp_path / "partial.ipynb"
    assert cli(tmp_path, "download", run_id, "--local", "-o", str(out)).returncode == 0
    nb = nbformat.read(out, as_version=4)
    first, sleeping, raising, never = [c for c in nb.cells if c.cell_type == "code"]
    pid = int(first.outputs[0]["text"].split()[-1])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the run's kernel is gone
    assert "sleeping\n" in [o.get("text") for o in sleeping.outputs if o.get("output_type") == "stream"]
    assert raising.execution_count is None and never.execution_count is None, "cells ran after the stop"
