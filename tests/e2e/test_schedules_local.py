"""``studio-runner schedule …`` against a real ``studio-runner local up``: the verbs, a
``--rate "1 minute"`` schedule that fires a real local run (found by ``list --schedule``),
and the usage errors, each exit 2 with nothing created."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from e2e_support import REPO, write_notebook

from studiorunner_cli.main import main


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_RUNNER_", "POWERTOOLS_"))}
    env["PYTHONPATH"] = str(REPO)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


@pytest.fixture
def local_up(tmp_path, monkeypatch):
    """A `studio-runner local up` in a process of its own, serving tmp_path/home; the CLI verbs
    then run in this process (XDG_CACHE_HOME points both at the same state file)."""
    home = tmp_path / "home"
    home.mkdir()
    env = _env(tmp_path)
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "studiorunner_cli", "local", "up", "--root", str(home)],
                               env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home)
    stacks = tmp_path / "cache" / "studio-runner" / "local"  # one file per local up (by its root)
    deadline = time.monotonic() + 120
    while not list(stacks.glob("*.json")):
        assert process.poll() is None, (tmp_path / "up.log").read_text()
        assert time.monotonic() < deadline, "local up did not come up"
        time.sleep(0.2)
    monkeypatch.setenv("XDG_CACHE_HOME", env["XDG_CACHE_HOME"])
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    try:
        yield home
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _until(predicate, timeout: float = 180.0, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out")


def test_create_list_pause_resume_update_run_now_and_delete_against_local_up(local_up, capsys, tmp_path):
    notebook = tmp_path / write_notebook(tmp_path, "daily.ipynb", "who = 'x'", "print('hello', who)",
                                         tags={0: ["parameters"]})

    code, out, err = _cli(capsys, "schedule", "create", "daily", str(notebook), "--cron", "0 6 * * ? *",
                          "--timezone", "Europe/Paris", "-p", "who", "the schedule", "--local")
    assert code == 0, err
    assert "Created schedule daily: cron(0 6 * * ? *) (Europe/Paris)" in out

    code, out, err = _cli(capsys, "schedule", "list", "--local")
    assert code == 0, err
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "EXPRESSION", "TIME"]
    assert row.startswith("daily") and "enabled" in row and "Europe/Paris" in row and row.rstrip().endswith("cli")
    assert row.count("06:00") == 3  # the next three fire times, in the schedule's zone

    code, out, err = _cli(capsys, "schedule", "show", "daily", "--local")
    assert code == 0, err
    assert "a copy uploaded when the schedule was created" in out
    assert '"who": "the schedule"' in out and "overlap      skip" in out

    assert _cli(capsys, "schedule", "pause", "daily", "--local")[0] == 0
    assert "paused" in _cli(capsys, "schedule", "list", "--local")[1]
    assert _cli(capsys, "schedule", "resume", "daily", "--local")[0] == 0
    assert "enabled" in _cli(capsys, "schedule", "list", "--local")[1]

    code, out, err = _cli(capsys, "schedule", "update", "daily", "--cron", "30 7 ? * MON-FRI *", "--overlap", "allow",
                          "--local")
    assert code == 0, err
    code, out, _ = _cli(capsys, "schedule", "show", "daily", "--local")
    assert "cron(30 7 ? * MON-FRI *)" in out and "overlap      allow" in out and '"who": "the schedule"' in out

    code, out, err = _cli(capsys, "schedule", "run", "daily", "--local")
    assert code == 0, err
    run_id = out.strip()
    assert run_id.startswith("daily-")
    _until(lambda: "SUCCEEDED" in _cli(capsys, "list", "--schedule", "daily", "--local")[1])
    code, out, _ = _cli(capsys, "list", "--schedule", "daily", "--local")
    assert run_id in out
    code, out, _ = _cli(capsys, "download", run_id, "-o", str(tmp_path / "out.ipynb"), "--local")
    assert "hello the schedule" in (tmp_path / "out.ipynb").read_text()

    assert _cli(capsys, "schedule", "delete", "daily", "--local")[0] == 0
    code, out, err = _cli(capsys, "schedule", "list", "--local")
    assert "daily" not in out and "no schedules" in err
    assert run_id in _cli(capsys, "list", "--schedule", "daily", "--local")[1]  # its runs stay


def test_a_rate_schedule_fires_a_real_local_run_named_for_it(local_up, capsys, tmp_path):
    notebook = tmp_path / write_notebook(tmp_path, "tick.ipynb", "print('tick')")
    code, _, err = _cli(capsys, "schedule", "create", "tick", str(notebook), "--rate", "1 minute", "--local")
    assert code == 0, err
    # Scheduler starts a rate schedule without a start date at once; local up does the same.
    rows = _until(lambda: [line for line in _cli(capsys, "list", "--schedule", "tick", "--local")[1].splitlines()
                           if line.startswith("tick-") and "SUCCEEDED" in line])
    run_id = rows[0].split()[0]
    assert run_id.startswith("tick-") and "-" not in run_id[len("tick-"):]
    code, out, _ = _cli(capsys, "schedule", "show", "tick", "--local")
    assert run_id in out
    _cli(capsys, "schedule", "delete", "tick", "--local")


BAD_INPUT = [
    (["schedule", "show", "nope"], "no schedule named 'nope'"),
    (["schedule", "pause", "nope"], "no schedule named 'nope'"),
    (["schedule", "create", "bad", "NB", "--cron", "0 6 * * * *"], "question mark"),
    (["schedule", "create", "bad", "NB", "--rate", "5 minute"], "5 minutes"),
    (["schedule", "create", "bad", "NB", "--at", "next tuesday"], "date and time"),
    (["schedule", "create", "bad", "NB", "--cron", "0 6 * * ? *", "--timezone", "Mars/Olympus"], "IANA time zone"),
    (["schedule", "create", "bad", "--cron", "0 6 * * ? *", "--input", "PAYLOAD"], "PayloadInvalid"),
    (["schedule", "create", "bad", "NB", "--cron", "0 6 * * ? *", "--start", "2031-01-02T00:00",
      "--end", "2031-01-01T00:00"], "not after the start"),
    (["schedule", "create", "taken", "NB", "--cron", "0 6 * * ? *"], "exists already"),
    (["schedule", "update", "taken", "--timezone", "Nowhere/Town"], "IANA time zone"),
]


def test_bad_input_is_a_usage_error_and_creates_or_changes_nothing(local_up, capsys, tmp_path):
    notebook = tmp_path / write_notebook(tmp_path, "n.ipynb", "1")
    (tmp_path / "payload.json").write_text(json.dumps({"notebok": "n.ipynb"}))
    assert _cli(capsys, "schedule", "create", "taken", str(notebook), "--rate", "1 day", "--local")[0] == 0
    before = _cli(capsys, "schedule", "show", "taken", "--local")[1].split("recent runs")[0]
    for args, message in BAD_INPUT:
        args = [str(notebook) if a == "NB" else str(tmp_path / "payload.json") if a == "PAYLOAD" else a for a in args]
        code, out, err = _cli(capsys, *args, "--local")
        assert code == 2, (args, out, err)
        assert message in err and len(err.strip().splitlines()) == 1, (args, err)
        listed = _cli(capsys, "schedule", "list", "--local")[1]
        assert [line.split()[0] for line in listed.splitlines()[1:]] == ["taken"], args
    assert _cli(capsys, "schedule", "show", "taken", "--local")[1].split("recent runs")[0] == before
    assert "uploads/schedules/bad" not in json.dumps(before)


def test_local_without_local_up_is_a_usage_error_that_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    notebook = tmp_path / write_notebook(tmp_path, "n.ipynb", "1")
    code, _, err = _cli(capsys, "schedule", "create", "x", str(notebook), "--rate", "1 day", "--local")
    assert code == 2
    assert "no local stack is up" in err and "studio-runner local up" in err
