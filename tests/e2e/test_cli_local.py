"""``studio-runner run --local`` end to end: a real
stand-in, the state machine in moto, the CLI in a process of its own where it matters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from e2e_support import REPO, write_notebook


def _env(tmp_path: Path, *, path: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_RUNNER_", "POWERTOOLS_"))}
    env["PYTHONPATH"] = str(REPO)  # as if installed: the command works from any folder
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")  # where the stand-in's temp folder (cookie secret) would stay behind
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    if path is not None:
        env["PATH"] = path
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "studiorunner_cli", *args]


def test_from_another_folder_with_commands_a_studio_python_and_an_output_folder(tmp_path):
    work, project = tmp_path / "work", tmp_path / "project"
    write_notebook(project, "report.ipynb", "print('hello from', __import__('os').getcwd().rsplit('/', 1)[-1])")
    work.mkdir()
    # PATH without the venv: a Studio terminal has the image's python, the stand-in's must have ours.
    bare = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if Path(p).resolve() != Path(sys.executable).parent.resolve())
    done = subprocess.run(
        _cli("run", "--local", "../project/report.ipynb", "-o", "out/", "--html", "--command", "echo from the terminal",
             "--command", "python -c 'import sys; print(\"python is\", sys.executable)'"),
        cwd=work, env=_env(tmp_path, path=bare), capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    assert sorted(p.name for p in (work / "out").iterdir()) == ["commands.log", "report.html", "report.ipynb"]
    assert "hello from project" in (work / "out" / "report.html").read_text()
    assert "from the terminal" in (work / "out" / "commands.log").read_text()
    assert "| from the terminal" in done.stdout  # the commands' output is shown
    log = (work / "out" / "commands.log").read_text()
    venv_bin = Path(sys.executable).parent
    assert f"python is {venv_bin}" in log.replace(str(venv_bin.resolve()), str(venv_bin)), log
    nb = nbformat.read(work / "out" / "report.ipynb", as_version=4)
    assert nb.cells[0].outputs[0]["text"] == "hello from project\n"  # relative paths: the notebook's own folder
    assert "Cell 1    completed" in done.stdout  # numbered as papermill numbers cells, from 1
    # the notebook's folder is the stand-in's home: the run leaves nothing of its own in it
    assert sorted(p.name for p in project.iterdir()) == ["report.ipynb"]


def test_a_bad_payload_is_a_usage_error_named_once(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "payload.json").write_text(json.dumps({"notebook": 42}))
    started = time.monotonic()
    done = subprocess.run(_cli("run", "--local", "--input", "payload.json"), cwd=work,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("PayloadInvalid") == 1 and "AttributeError" not in done.stderr
    assert "Traceback" not in done.stderr
    assert time.monotonic() - started < 30
    assert list(work.iterdir()) == [work / "payload.json"]


def test_the_local_stack_has_no_wall_clock_limit_of_its_own(local_env, monkeypatch):
    """The old ``wait`` stopped any run after 600 s (10 min): here every poll moves a fake clock
    on by 120 s, so a 3 s cell lasts "an hour" for the stack; the run must still finish."""
    import localstudio.local_stack as local_stack

    env = local_env("studio-space", run_cells_budget=1)
    path = write_notebook(env.root, "slow.ipynb", "import time\ntime.sleep(3)\nprint('done')")
    fake = {"now": time.monotonic(), "polls": 0}

    class _Clock:
        @staticmethod
        def monotonic() -> float:
            fake["now"] += 120.0
            return fake["now"]

        @staticmethod
        def sleep(seconds: float) -> None:
            fake["polls"] += 1
            fake["now"] += 120.0
            time.sleep(seconds)

        time = staticmethod(time.time)

    arn = env.stack.start({"notebook": path})
    monkeypatch.setattr(local_stack, "time", _Clock)
    execution = env.stack.wait(arn)
    monkeypatch.undo()
    assert execution.succeeded, execution.cause
    assert fake["polls"] * 120 > 600, "the run did not outlast the old limit on the fake clock"


def test_no_request_of_a_local_run_leaves_the_process_after_the_stack_closes(tmp_path, monkeypatch):
    """Closing the stack mid-run (the CLI tearing down) used to leave moto's interpreter thread
    running without its mock: its next Lambda invocation, state included, went to
    http://localhost:5000. Now the run is stopped and its thread joined before the mocks go."""
    import botocore.httpsession

    from localstudio.local_stack import LocalStack
    from localstudio.standin import StandIn

    sent: list[str] = []
    real_send = botocore.httpsession.URLLib3Session.send

    def send(self, request):
        sent.append(request.url)
        return real_send(self, request)

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", send)
    root = tmp_path / "home"
    write_notebook(root, "long.ipynb", "import time\nfor i in range(60):\n    time.sleep(0.5)")
    with StandIn(root=root, flavor="studio-space") as standin:
        with LocalStack(standin, run_cells_budget=1) as stack:
            arn = stack.start({"notebook": "long.ipynb"})
            deadline = time.monotonic() + 120
            while "studio-runner-run-cells" not in stack.invocations:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        from moto.stepfunctions.parser.utils import TMP_THREADS

        assert not [t for t in TMP_THREADS if t.is_alive()], "an execution outlived the local stack"
        time.sleep(3)  # what a leftover thread would send, it would send now (RunCells budget 1 s)
    assert [url for url in sent if "localhost:5000" in url or "amazonaws.com" in url] == []
    assert arn


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143)])  # Ctrl-C takes the same path (130)
def test_a_signal_mid_run_stops_it_cleans_up_and_keeps_the_partial_notebook(tmp_path, sig, code):
    # The stop does not wait for the running cell (two minutes) to end: the cleanup removes the
    # run's kernel at once, as ExecutionEnded does on AWS, and the next cell never runs.
    work = tmp_path / "work"
    write_notebook(work, "long.ipynb", "import os\nprint('kernel pid', os.getpid(), flush=True)",
                   "import time\nprint('sleeping', flush=True)\ntime.sleep(120)", "print('never')")
    proc = subprocess.Popen(_cli("run", "--local", "long.ipynb", "-o", "out/"), cwd=work, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read() -> None:
        for line in iter(proc.stdout.readline, ""):
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 200
        while not any("Cell 2" in line and "running" in line for line in lines):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        proc.send_signal(sig)
        stderr = proc.stderr.read()
        assert proc.wait(timeout=60) == code, "".join(lines) + stderr
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)

    assert "Stopping run long-" in stderr and "deleted session and its kernel" in stderr, stderr
    assert "Traceback" not in stderr
    nb = nbformat.read(work / "out" / "long.ipynb", as_version=4)
    first, sleeping, never = [c for c in nb.cells if c.cell_type == "code"]
    pid = int(first.outputs[0]["text"].split()[-1])
    assert not _pid_alive(pid), "the run's kernel is still running"
    assert "sleeping\n" in [o.get("text") for o in sleeping.outputs if o.get("output_type") == "stream"]
    assert never.outputs == [] and never.execution_count is None, "the next cell ran after the stop"
    assert nb.metadata["studio_runner"]["status"] == "failed"
    # nothing left in the user's folder: no journal folder, no trash, no checkpoints
    assert sorted(p.name for p in work.iterdir()) == ["long.ipynb", "out"]
    assert list((tmp_path / "tmp").iterdir()) == [], "the stand-in's temp folder was left behind"


def test_an_output_that_fails_after_a_local_run_keeps_the_notebook_in_the_cache(tmp_path):
    """Issue 20 fault 5: the embedded stack's S3 dies with the process, so a notebook -o cannot
    take must be written somewhere the CLI names: the run's cache folder."""
    work, project = tmp_path / "work", tmp_path / "project"
    work.mkdir()
    # the notebook itself makes -o's folder impossible mid-run: a file where the folder would go
    write_notebook(project, "nb.ipynb", f"open({str(work / 'out')!r}, 'w').write('a file')\nprint('ran')")
    done = subprocess.run(_cli("run", "--local", "../project/nb.ipynb", "-o", "out/nb-out.ipynb"), cwd=work,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SUCCEEDED" in done.stdout and "cannot write -o out/nb-out.ipynb" in done.stderr
    kept = [line.split(" at ", 1)[1] for line in done.stderr.splitlines() if "is kept at" in line]
    assert kept and Path(kept[0]).is_relative_to(tmp_path / "cache" / "studio-runner" / "runs"), done.stderr
    nb = nbformat.read(kept[0], as_version=4)
    assert nb.cells[0].outputs[0]["text"] == "ran\n"


def test_an_unwritable_output_is_refused_before_a_local_stack_starts(tmp_path):
    work = tmp_path / "work"
    write_notebook(work, "nb.ipynb", "print('never')")
    done = subprocess.run(_cli("run", "--local", "nb.ipynb", "-o", "nb.ipynb/out.ipynb"), cwd=work,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "nb.ipynb is a file, not a folder" in done.stderr and "Studio stand-in" not in done.stdout
