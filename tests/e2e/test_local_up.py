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
    stacks = tmp_path / "cache" / "studio-runner" / "local"  # one file per local up (by its root)
    # Its output to a file, not a pipe nobody reads: a full pipe blocks `local up` mid-write, where
    # SIGTERM cannot stop it (a 120 s teardown in a full run).
    log = tmp_path / "local-up.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "studiorunner_cli", "local", "up", "--root", str(root)],
                                cwd=tmp_path, env=_env(tmp_path), stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(stacks.glob("*.json")):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        (state,) = stacks.glob("*.json")
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


READS_ITS_FOLDER = ("import os\nprint('cwd', os.path.basename(os.getcwd()))\n"
                    "print('data', open('data.txt').read())")


def test_a_local_notebook_runs_in_place_with_its_folders_files_whether_or_not_a_stack_is_up(tmp_path):
    """Issue 18 point 5: the same command used to upload the notebook (relative paths broke)
    when a `local up` happened to be running, and to run in place when none was."""
    project = tmp_path / "project"
    write_notebook(project, "reports/nb.ipynb", READS_ITS_FOLDER)
    (project / "reports" / "data.txt").write_text("beside the notebook")

    def ran(out: str) -> list[str]:
        done = cli(tmp_path, "run", "--local", "reports/nb.ipynb", "-o", str(tmp_path / out), cwd=project)
        assert done.returncode == 0, done.stdout + done.stderr
        nb = nbformat.read(tmp_path / out, as_version=4)
        return [o["text"] for o in nb.cells[0].outputs]

    alone = ran("alone.ipynb")  # no stack up: one of its own, serving the notebook's folder
    assert alone == ["cwd reports\ndata beside the notebook\n"], alone
    stacks = tmp_path / "cache" / "studio-runner" / "local"
    proc = subprocess.Popen([sys.executable, "-m", "studiorunner_cli", "local", "up", "--root", str(project)],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: list(stacks.glob("*.json")), "local up did not come up", timeout=120)
        # -o without --wait: it waits (the notebook is written), served by the stack up, in place
        assert ran("in-stack.ipynb") == alone
        listed = cli(tmp_path, "list", "--local", cwd=project)
        assert listed.returncode == 0, listed.stderr
        assert "nb.ipynb" in listed.stdout and str(project / "reports" / "nb.ipynb") in listed.stdout
        assert "s3://" not in listed.stdout and "uploads/" not in listed.stdout
        assert "nb-" in cli(tmp_path, "list", "--local", "--notebook", "nb", cwd=project).stdout
        assert "nb-" not in cli(tmp_path, "list", "--local", "--notebook", "other", cwd=project).stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)


def test_local_up_belongs_to_its_root_and_errors_name_the_persons_files(local_up, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    write_notebook(elsewhere, "away.ipynb", "print('away')")
    away = cli(tmp_path, "run", "--local", "away.ipynb", "-o", str(tmp_path / "away-out.ipynb"), cwd=elsewhere)
    assert away.returncode == 0, away.stdout + away.stderr
    assert f"Studio stand-in (studio-space) serving {elsewhere}" in away.stdout  # a stack of its own
    assert "away-" not in cli(tmp_path, "list", "--local", cwd=local_up.root).stdout  # not in the stack up

    write_notebook(local_up.root, "fails.ipynb", "raise ValueError('boom')")
    out = tmp_path / "fails-out.ipynb"
    failed = cli(tmp_path, "run", "--local", "fails.ipynb", "--wait", "-o", str(out), cwd=local_up.root)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"Local stack serving {local_up.root}" in failed.stdout
    assert "ValueError" in failed.stderr and str(out) in failed.stderr
    assert "s3://" not in failed.stdout + failed.stderr, failed.stderr
    run_id = next(w for w in failed.stdout.split() if w.startswith("fails-"))
    status = cli(tmp_path, "status", run_id, "--local", cwd=local_up.root)
    assert str(local_up.root / "fails.ipynb") in status.stdout and "s3://" not in status.stdout, status.stdout
