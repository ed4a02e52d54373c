"""``studio-runner lab --local`` in a process of its own, for the REST and browser tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from e2e_support import REPO

URL = re.compile(r"(http://127\.0\.0\.1:\d+/lab\?token=([0-9a-f]+))")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lab_env(tmp: Path) -> dict[str, str]:
    """The command as a person runs it, in folders of the test's own (cache, Jupyter's dirs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_RUNNER_", "POWERTOOLS_", "JUPYTER"))}
    env["PYTHONPATH"] = str(REPO)
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    for name in ("config", "data", "runtime"):
        (tmp / "jupyter" / name).mkdir(parents=True, exist_ok=True)
        env[f"JUPYTER_{name.upper()}_DIR"] = str(tmp / "jupyter" / name)
    (tmp / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp / "tmp")
    return env


class Lab:
    """``studio-runner lab --local --root ROOT --no-browser``: its URL, token, output, and a REST session."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root, self.tmp, self.env = root, tmp, lab_env(tmp)
        self.port = free_port()
        self.lines: list[str] = []
        self.url = self.token = ""
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Lab:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "studiorunner_cli", "lab", "--local", "--root", str(self.root),
             "--port", str(self.port), "--no-browser"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not self.token:
            if self.proc.poll() is not None:
                raise RuntimeError("studio-runner lab ended:\n" + "".join(self.lines))
            time.sleep(0.2)
        if not self.token:
            self.stop()
            raise RuntimeError("no JupyterLab URL printed:\n" + "".join(self.lines))
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = f"token {self.token}"
        while time.monotonic() < deadline:  # the URL is printed a moment before the server answers
            try:
                if self.session.get(f"{self.base}/api/status", timeout=5).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            match = URL.search(line)
            if match and not self.token:
                self.url, self.token = match.group(1), match.group(2)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    # -- jupyter-scheduler's REST API ---------------------------------------------------
    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.base}/scheduler/{path}", timeout=60, **kwargs)

    def create_job(self, notebook: str, **fields) -> str:
        body = {"name": Path(notebook).stem, "input_uri": notebook, "runtime_environment_name": "local",
                "output_formats": ["ipynb"], **fields}
        answer = self.api("POST", "jobs", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["job_id"]

    def job(self, job_id: str) -> dict:
        answer = self.api("GET", f"jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait(self, job_id: str, *statuses: str, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} (wanted {statuses})")
            time.sleep(0.5)

    def runs(self):
        """The lab's local stack as the CLI reaches it (its state file), to look behind the API."""
        import json

        import boto3

        from studiorunner_cli.runs import Runs

        # one state file per local stack (by root folder): the lab's is the only one here
        (state,) = (self.tmp / "cache" / "studio-runner" / "local").glob("*.json")
        info = json.loads(state.read_text())
        kwargs = dict(endpoint_url=info["endpoint"], region_name=info["region"],
                      aws_access_key_id="testing", aws_secret_access_key="testing")
        return Runs(boto3.client("stepfunctions", **kwargs), boto3.client("s3", **kwargs),
                    state_machine_arn=info["state_machine_arn"], bucket=info["bucket"])

    def wait_for_a_running_cell(self, job_id: str, timeout: float = 240) -> None:
        """Until the run's first cell is running (its progress.json says so)."""
        runs = self.runs()
        deadline = time.monotonic() + timeout
        while not (runs.progress(runs.describe(job_id)) or {}).get("current"):
            if time.monotonic() > deadline:
                raise AssertionError(f"run {job_id} has no running cell")
            time.sleep(0.5)

    def jobs(self, **query) -> list[dict]:
        answer = self.api("GET", "jobs", params=query)
        assert answer.status_code == 200, answer.text
        return answer.json()["jobs"]
