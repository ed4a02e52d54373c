"""Notebook Jobs in JupyterLab, run by Studio Runner: jupyter-scheduler's own REST API
(/scheduler/…) against ``studio-runner lab --local``: a real JupyterLab with the backend, the
local stack (stand-in + the state machine in moto) behind it, in processes of their own."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from e2e_support import write_notebook
from jupyterlab_support import Lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("home")
    write_notebook(root, "report.ipynb", "who = 'nobody'", "print('hello', who)\nwho", tags={0: ["parameters"]})
    write_notebook(root, "broken.ipynb", "x = 1", "1 / 0", "print('never')")
    write_notebook(root, "slow.ipynb", "import time\nprint('started', flush=True)\ntime.sleep(600)")
    (root / "data.txt").write_text("not a notebook\n")
    with Lab(root, tmp_path_factory.mktemp("lab")) as running:
        yield running


def test_lab_prints_jupyterlabs_url_with_its_token_and_offers_the_local_target(lab: Lab) -> None:
    assert lab.url.startswith(f"http://127.0.0.1:{lab.port}/lab?token=")
    environments = lab.api("GET", "runtime_environments").json()
    assert [e["name"] for e in environments] == ["local"]
    assert [f["name"] for f in environments[0]["output_formats"]] == ["ipynb", "html"]
    features = lab.api("GET", "config").json()["supported_features"]
    assert features["stop_job"] and features["delete_job"] and features["parameters"]


def test_a_job_runs_to_completed_and_its_files_download(lab: Lab) -> None:
    job_id = lab.create_job("report.ipynb", name="Weekly report", parameters={"who": "Ada", "n": "3"},
                            output_formats=["ipynb", "html"])
    job = lab.wait(job_id, "COMPLETED", "FAILED", "STOPPED")

    assert job["status"] == "COMPLETED", job.get("status_message")
    assert job["name"] == "Weekly report" and job["input_filename"] == "report.ipynb"
    assert job["parameters"] == {"who": "Ada", "n": "3"}
    assert job["start_time"] <= job["end_time"] and job["runtime_environment_name"] == "local"
    assert not job["downloaded"]
    listed = {j["job_id"]: j for j in lab.jobs()}
    assert listed[job_id]["status"] == "COMPLETED"

    assert lab.api("GET", f"jobs/{job_id}/download_files").status_code == 204
    job = lab.job(job_id)
    assert job["downloaded"]
    paths = {f["file_format"]: f["file_path"] for f in job["job_files"]}
    assert set(paths) == {"ipynb", "html", "input"}
    assert all(p.startswith(f"jobs/{job_id}/") for p in paths.values())
    executed = nbformat.read(lab.root / paths["ipynb"], as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "who = \"Ada\"" in injected[0].source and "n = 3" in injected[0].source  # typed as `run -p` types them
    printed = [o for c in executed.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    assert printed[0]["text"] == "hello Ada\n"
    assert "hello Ada" in (lab.root / paths["html"]).read_text()
    assert nbformat.read(lab.root / paths["input"], as_version=4).cells[1].source.startswith("print('hello', who)")


def test_a_failing_notebook_ends_failed_with_its_error(lab: Lab) -> None:
    job_id = lab.create_job("broken.ipynb")
    job = lab.wait(job_id, "COMPLETED", "FAILED", "STOPPED")

    assert job["status"] == "FAILED"
    message = job["status_message"]
    assert message.startswith("CellExecutionError: ") and "ZeroDivisionError" in message, message
    assert "Traceback" not in message
    assert lab.api("GET", f"jobs/{job_id}/download_files").status_code == 204
    executed = nbformat.read(lab.root / lab.job(job_id)["job_files"][0]["file_path"], as_version=4)
    assert any(o.get("ename") == "ZeroDivisionError" for c in executed.cells for o in c.get("outputs", []))


def test_a_job_is_stopped(lab: Lab) -> None:
    job_id = lab.create_job("slow.ipynb")
    assert lab.job(job_id)["status"] == "IN_PROGRESS"
    lab.wait_for_a_running_cell(job_id)  # (a stop in the run's first 0.3 s ends it FAILED on the local stack: see notes)

    assert lab.api("PATCH", f"jobs/{job_id}", json={"status": "STOPPED"}).status_code == 204
    job = lab.wait(job_id, "STOPPED", "COMPLETED", "FAILED", timeout=120)
    assert job["status"] == "STOPPED"
    assert job["end_time"] and job["status_message"].startswith("Stopped")
    again = lab.api("PATCH", f"jobs/{job_id}", json={"status": "STOPPED"})
    assert again.json()["message"] == f"{job_id} is not running (ABORTED)"


def test_a_run_started_by_the_cli_appears_in_the_list(lab: Lab) -> None:
    done = subprocess.run([sys.executable, "-m", "studiorunner_cli", "run", "--local", "report.ipynb", "-p", "who", "CLI"],
                          cwd=lab.root, env=lab.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]  # without --wait: the run id (the lab's stack is up)

    job = lab.wait(run_id, "COMPLETED", "FAILED")
    assert job["status"] == "COMPLETED"
    assert job["name"] == "report" and job["parameters"] == {"who": "CLI"}
    assert run_id in [j["job_id"] for j in lab.jobs(status="COMPLETED")]


def test_delete_stops_a_running_job_and_takes_it_off_the_list(lab: Lab) -> None:
    job_id = lab.create_job("slow.ipynb")
    lab.wait_for_a_running_cell(job_id)
    assert lab.api("DELETE", f"jobs/{job_id}").status_code == 204
    assert job_id not in [j["job_id"] for j in lab.jobs()]
    job = lab.wait(job_id, "STOPPED", "FAILED", "COMPLETED", timeout=120)
    assert job["status"] == "STOPPED", job["status_message"]  # stopped, not left running


@pytest.mark.parametrize(("body", "cli_args"), [
    ({"input_uri": "data.txt"}, ["data.txt"]),
    ({"input_uri": "nothing.ipynb"}, ["nothing.ipynb"]),
    ({"input_uri": "report.ipynb", "parameters": {"run date": "2026-12-01"}}, ["report.ipynb", "-p", "run date", "2026-12-01"]),
])
def test_a_refused_job_says_what_the_cli_says_in_one_line(lab: Lab, body: dict, cli_args: list[str]) -> None:
    answer = lab.api("POST", "jobs", json={"name": "x", "runtime_environment_name": "local", **body})
    cli = subprocess.run([sys.executable, "-m", "studiorunner_cli", "run", "--local", *cli_args],
                         cwd=lab.root, env=lab.env, capture_output=True, text=True, timeout=120)

    assert cli.returncode == 2
    said = cli.stderr.strip().splitlines()[-1]
    assert said.startswith("studio-runner: error: ")
    reply = answer.json()
    assert reply["message"] == said[len("studio-runner: error: "):]
    assert "Traceback" not in answer.text and not reply.get("traceback")
    assert "Traceback" not in "".join(lab.lines[-40:])  # nor in JupyterLab's log for a refused job


def test_the_served_folder_keeps_only_the_persons_files_and_downloads(lab: Lab) -> None:
    leftovers = sorted(p.name for p in Path(lab.root).iterdir())
    assert set(leftovers) <= {"report.ipynb", "broken.ipynb", "slow.ipynb", "data.txt", "jobs", "studio-runner",
                              ".ipynb_checkpoints"}, leftovers


# -- job definitions are the run-time schedules (studiorunner_cli.schedules) ------------------
def _cli_out(lab: Lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studiorunner_cli", *args], cwd=lab.root, env=lab.env,
                          capture_output=True, text=True, timeout=120)


def test_a_job_definition_fires_a_run_that_appears_in_the_list(lab: Lab) -> None:
    answer = lab.api("POST", "job_definitions", json={
        "name": "every-minute", "input_uri": "report.ipynb", "runtime_environment_name": "local",
        "output_formats": ["ipynb"], "parameters": {"who": "the schedule"}, "schedule": "* * * * *", "timezone": "UTC"})
    assert answer.status_code == 200, answer.text
    definition_id = answer.json()["job_definition_id"]
    try:
        definition = lab.api("GET", f"job_definitions/{definition_id}").json()
        assert definition["name"] == "every-minute" and definition["active"] is True
        assert definition["schedule"] == "* * * * *" and definition["input_filename"] == "report.ipynb"
        assert "cron(* * * * ? *)" in _cli_out(lab, "schedule", "show", "every-minute", "--local").stdout

        deadline = time.monotonic() + 150  # the next minute, as EventBridge Scheduler would fire it
        while not (fired := lab.jobs(job_definition_id=definition_id)):
            assert time.monotonic() < deadline, "the schedule did not fire"
            time.sleep(1)
        assert lab.api("PATCH", f"job_definitions/{definition_id}", json={"active": False}).status_code == 204
        assert lab.api("GET", f"job_definitions/{definition_id}").json()["active"] is False
        job = lab.wait(fired[-1]["job_id"], "COMPLETED", "FAILED", "STOPPED")
        assert job["status"] == "COMPLETED", job.get("status_message")
        assert job["job_definition_id"] == definition_id and job["parameters"] == {"who": "the schedule"}
        assert job["job_id"] in [j["job_id"] for j in lab.jobs()]
    finally:
        assert lab.api("DELETE", f"job_definitions/{definition_id}").status_code == 204
    listed = lab.api("GET", "job_definitions").json()["job_definitions"]
    assert definition_id not in [d["job_definition_id"] for d in listed]


def test_a_job_definition_is_edited_resumed_and_run_now(lab: Lab) -> None:
    answer = lab.api("POST", "job_definitions", json={
        "name": "weekdays", "input_uri": "report.ipynb", "runtime_environment_name": "local",
        "output_formats": ["ipynb", "html"], "schedule": "0 6 * * 1-5", "timezone": "Europe/Paris"})
    assert answer.status_code == 200, answer.text
    definition_id = answer.json()["job_definition_id"]
    try:
        shown = _cli_out(lab, "schedule", "show", "weekdays", "--local").stdout
        assert "cron(0 6 ? * MON-FRI *)" in shown and "Europe/Paris" in shown, shown  # Unix 1-5 = MON-FRI
        edited = lab.api("PATCH", f"job_definitions/{definition_id}",
                         json={"schedule": "30 7 * * 0", "timezone": "UTC", "input_uri": "report.ipynb"})
        assert edited.status_code == 204, edited.text
        definition = lab.api("GET", f"job_definitions/{definition_id}").json()
        assert (definition["schedule"], definition["timezone"]) == ("30 7 * * SUN", "UTC")
        assert definition["output_formats"] == ["ipynb", "html"]
        assert "cron(30 7 ? * SUN *)" in _cli_out(lab, "schedule", "show", "weekdays", "--local").stdout
        assert lab.api("PATCH", f"job_definitions/{definition_id}", json={"active": False}).status_code == 204
        assert lab.api("PATCH", f"job_definitions/{definition_id}", json={"active": True}).status_code == 204
        assert lab.api("GET", f"job_definitions/{definition_id}").json()["active"] is True

        started = lab.api("POST", f"job_definitions/{definition_id}/jobs", json={})
        assert started.status_code == 200, started.text
        job = lab.wait(started.json()["job_id"], "COMPLETED", "FAILED", "STOPPED")
        assert job["status"] == "COMPLETED" and job["job_definition_id"] == definition_id
        assert job["job_id"].startswith("weekdays-") and job["output_formats"] == ["ipynb", "html"]
    finally:
        lab.api("DELETE", f"job_definitions/{definition_id}")


@pytest.mark.parametrize(("fields", "cli_args"), [
    ({"name": "Weekly report", "schedule": "0 6 * * 1"}, ["Weekly report", "report.ipynb", "--cron", "0 6 ? * 2 *"]),
])
def test_a_schedule_name_it_cannot_take_is_the_clis_message(lab: Lab, fields: dict, cli_args: list[str]) -> None:
    answer = lab.api("POST", "job_definitions", json={"input_uri": "report.ipynb", "runtime_environment_name": "local",
                                                      **fields})
    cli = _cli_out(lab, "schedule", "create", *cli_args, "--local")
    assert cli.returncode == 2
    said = cli.stderr.strip().splitlines()[-1]
    assert answer.json()["message"] == said[len("studio-runner: error: "):]


def test_a_cron_eventbridge_cannot_say_is_refused_with_why(lab: Lab) -> None:
    answer = lab.api("POST", "job_definitions", json={
        "name": "either-day", "input_uri": "report.ipynb", "runtime_environment_name": "local",
        "schedule": "0 6 1 * 1", "timezone": "UTC"})
    assert "cron runs it on either, and EventBridge Scheduler cannot" in answer.json()["message"]
    assert "either-day" not in _cli_out(lab, "schedule", "list", "--local").stdout  # nothing created


def test_enable_writes_the_one_configuration_and_jupyter_uses_it(tmp_path: Path) -> None:
    """``python -m studiorunner_jupyterlab enable`` (what the Studio lifecycle configuration runs)
    writes the backend into the user's jupyter_server_config.json, keeping what else is there,
    and a jupyter_server started afterwards serves Studio Runner's targets."""
    import requests
    from jupyterlab_support import free_port, lab_env

    env = lab_env(tmp_path)
    env["JUPYTER_PREFER_ENV_PATH"] = "0"  # as in SageMaker Distribution's base conda environment: the user's config last
    user_config = Path(env["JUPYTER_CONFIG_DIR"]) / "jupyter_server_config.json"
    user_config.write_text(json.dumps({"ServerApp": {"iopub_data_rate_limit": 10000000}}))
    enabled = subprocess.run([sys.executable, "-m", "studiorunner_jupyterlab", "enable", "--stack", "StudioRunner",
                              "--target", "analytics-space", "--target", "lab",
                              "--target-space", "analytics-space=d-abc123/analytics"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert enabled.returncode == 0, enabled.stderr
    written = json.loads(user_config.read_text())
    assert written["ServerApp"] == {"iopub_data_rate_limit": 10000000}  # what the person had stays
    assert written["StudioRunnerScheduler"] == {"stack": "StudioRunner", "targets": ["analytics-space", "lab"],
                                                "target_spaces": {"analytics-space": "d-abc123/analytics"}}

    port, token = free_port(), "t0ken-for-this-test"
    server = subprocess.Popen([sys.executable, "-m", "jupyter_server", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
                               "--ServerApp.open_browser=False", "--allow-root"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"token {token}"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = session.get(f"http://127.0.0.1:{port}/scheduler/runtime_environments", timeout=5)
                if answer.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "jupyter_server did not come up"
            time.sleep(0.3)
        assert [e["name"] for e in answer.json()] == ["analytics-space", "lab"]  # ours, not jupyter-scheduler's conda ones
    finally:
        server.terminate()
        server.wait(30)


def test_enable_says_so_when_another_config_still_decides_the_backend(tmp_path: Path) -> None:
    from jupyterlab_support import lab_env

    env = lab_env(tmp_path)
    image = tmp_path / "image-config"
    image.mkdir()
    (image / "jupyter_server_config.py").write_text(
        'c.SchedulerApp.scheduler_class = "jupyter_scheduler.scheduler.Scheduler"\n')
    env["JUPYTER_CONFIG_PATH"] = str(image)  # read after the user's config: it decides
    enabled = subprocess.run([sys.executable, "-m", "studiorunner_jupyterlab", "enable"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert enabled.returncode == 1
    assert f"Jupyter will still use jupyter_scheduler.scheduler.Scheduler: {image / 'jupyter_server_config.py'}" \
        in enabled.stderr


def _jupyterlab_serving(root: Path) -> list[int]:
    """Pids of JupyterLab servers serving ``root`` (from /proc: the `lab` process may be gone)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"jupyterlab" in args and f"--ServerApp.root_dir={root}".encode() in args:
            pids.append(int(cmdline.parent.name))
    return pids


def test_runs_made_while_jupyterlab_was_closed_are_in_its_list(tmp_path: Path) -> None:
    """A `local up` stack runs a notebook with no JupyterLab open; `lab --local` opened afterwards
    (on that stack) lists the run, completed, with its files to download."""
    root = tmp_path / "home"
    write_notebook(root, "nightly.ipynb", "print('ran at night')")
    lab = Lab(root, tmp_path / "lab")
    up = subprocess.Popen([sys.executable, "-m", "studiorunner_cli", "local", "up", "--root", str(root)],
                          env=lab.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    try:
        stacks = tmp_path / "lab" / "cache" / "studio-runner" / "local"
        deadline = time.monotonic() + 120
        while not list(stacks.glob("*.json")):
            assert up.poll() is None and time.monotonic() < deadline, "local up did not come up"
            time.sleep(0.3)
        done = subprocess.run([sys.executable, "-m", "studiorunner_cli", "run", "--local", "nightly.ipynb", "--wait"],
                              cwd=root, env=lab.env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        run_id = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("Run "))

        with lab:  # JupyterLab opened only now
            assert any("Using the local stack already up" in line for line in lab.lines)
            job = lab.job(run_id)
            assert job["status"] == "COMPLETED" and job["name"] == "nightly"
            assert lab.api("GET", f"jobs/{run_id}/download_files").status_code == 204
            assert lab.job(run_id)["downloaded"]
        # SIGTERM to `lab` stops its JupyterLab too (it was left running on its own, one per test run)
        deadline = time.monotonic() + 60
        while _jupyterlab_serving(root) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _jupyterlab_serving(root), "JupyterLab still runs after `studio-runner lab` was stopped"
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(120)
