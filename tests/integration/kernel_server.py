"""A real jupyter_server + ipykernel on 127.0.0.1 for the kernel-channel tests (token auth)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from studiorunner.jupyter.connection import KernelChannel
from studiorunner.jupyter.kernel_protocol import new_session_id


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class JupyterServer:
    """A started server; ``kernel()`` creates kernels that ``stop()`` shuts down."""

    proc: subprocess.Popen[bytes]
    port: int
    token: str
    root: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(method, self.base + path, headers=self.headers, timeout=30, **kw)

    def start_kernel(self) -> str:
        r = self.api("POST", "/api/kernels", json={"name": "python3"})
        r.raise_for_status()
        return r.json()["id"]

    def ws_url(self, kernel_id: str, session_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/api/kernels/{kernel_id}/channels?session_id={session_id}"

    def open(self, kernel_id: str, session_id: str | None = None) -> KernelChannel:
        return KernelChannel.open(self.ws_url(kernel_id, session_id or new_session_id()),
                                  headers=self.headers, timeout=30)

    def kernel_state(self, kernel_id: str) -> str:
        r = self.api("GET", f"/api/kernels/{kernel_id}")
        if r.status_code == 404:
            return "missing"
        r.raise_for_status()
        return r.json()["execution_state"]

    def interrupt(self, kernel_id: str) -> None:
        self.api("POST", f"/api/kernels/{kernel_id}/interrupt").raise_for_status()

    def shutdown_kernel(self, kernel_id: str) -> None:
        self.api("DELETE", f"/api/kernels/{kernel_id}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(root: Path, *extra: str, state_dir: Path | None = None) -> JupyterServer:
    """Start a server serving ``root``; its log and runtime files go to ``state_dir`` (default root)."""
    port = _free_port()
    token = secrets.token_hex(16)
    state_dir = state_dir or root
    log = open(state_dir / "jupyter_server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1", f"--port={port}",
         "--allow-root", f"--ServerApp.token={token}", "--no-browser",
         f"--ServerApp.root_dir={root}", *extra],
        stdout=log, stderr=subprocess.STDOUT, cwd=root,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(state_dir / ".runtime")})
    server = JupyterServer(proc=proc, port=port, token=token, root=root)
    deadline = time.monotonic() + 90  # a hang guard: under a loaded machine (2 cores, several workers) a start took over 30 s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter_server exited: see {state_dir / 'jupyter_server.log'}")
        try:
            if server.api("GET", "/api/status").status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("jupyter_server did not answer /api/status within 90 s")
