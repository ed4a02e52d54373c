"""``--jupyter URL``: the local state machine against a Jupyter server we did not write, started
the way SageMaker Distribution starts it in a space (REAL-STUDIO L4: no token, base URL, XSRF
enforced on every non-GET request) — no stand-in (issue 8 point 2)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
from e2e_support import REPO, write_notebook

BASE = "/jupyterlab/default"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_run_on_a_plain_jupyter_server_leaves_nothing_behind(tmp_path):
    root, work = tmp_path / "server-root", tmp_path / "work"
    work.mkdir()
    write_notebook(root, "reports/hello.ipynb", "x = 6 * 7", "print('answer', x)")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ServerApp.token=", "--ServerApp.password=",
         f"--ServerApp.base_url={BASE}", "--ServerApp.allow_origin=*", "--ServerApp.ip=127.0.0.1",
         f"--port={port}", "--allow-root", "--no-browser", f"--ServerApp.root_dir={root}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}{BASE}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _get(f"{url}/api/status")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "jupyter server did not start"
                time.sleep(0.5)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_RUNNER_", "JUPYTER_TOKEN"))}
        env.update(PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path / "cache"))
        done = subprocess.run(
            [sys.executable, "-m", "studiorunner_cli", "run", "--local", "--jupyter", url, "reports/hello.ipynb", "-o", "out.ipynb"],
            cwd=work, env=env, capture_output=True, text=True, timeout=300)

        assert done.returncode == 0, done.stdout + done.stderr
        assert "Jupyter server at" in done.stdout and "Studio stand-in" not in done.stdout
        nb = nbformat.read(work / "out.ipynb", as_version=4)
        assert nb.cells[1].outputs[0]["text"] == "answer 42\n"
        assert _get(f"{url}/api/sessions") == []
        assert _get(f"{url}/api/kernels") == []
        assert _get(f"{url}/api/terminals") == []
        assert sorted(p.name for p in work.iterdir()) == ["out.ipynb"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
