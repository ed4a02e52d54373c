"""``StandIn``: start, reach, poke and stop the stand-in server from Python.

The server runs in its own process (``python -m localstudio.standin``) so a test or the
local stack talks to it over real HTTP and WebSockets, exactly as the Lambdas talk to
Studio. Everything the fault knobs and ``state()`` do goes over HTTP too, so another
process that knows ``base_url`` can do the same.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from studiorunner import catalog

from .shared import BASE_URLS, CONTROL_PATH, SAGEMAKER_PATH
from .world import FLAVORS, HOSTS, IDENTITY, Faults

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0

# Talk to 127.0.0.1 directly, whatever HTTP(S)_PROXY says.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StandInError(RuntimeError):
    """The stand-in did not start, or a control call failed."""


def _free_port() -> int:
    """A port free on every address of HOSTS (the server listens on all of them)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOSTS["api"], 0))
            port = sock.getsockname()[1]
        try:
            for address in (HOSTS["signin"], HOSTS["app"]):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
                    other.bind((address, port))
        except OSError:
            continue
        return port
    raise StandInError("no port is free on all of " + ", ".join(HOSTS.values()))


class StandIn:
    """A running Studio stand-in (use as a context manager, or start()/stop())."""

    def __init__(
        self,
        root: Path | str,
        flavor: str = "studio-space",
        port: int | None = None,
        faults: dict[str, Any] | None = None,
        iopub_data_rate_limit: float | None = None,
        *,
        iopub_msg_rate_limit: float | None = None,
        app_initially: str = "present",
        instance_initially: str = "InService",
        legacy: bool = False,
        log_path: Path | str | None = None,
        trash: bool = True,
        extensions: tuple[str, ...] = (),
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {FLAVORS}, not {flavor!r}")
        Faults().update(faults or {})  # fail here, not in the subprocess, on a bad knob
        self.root = Path(root).resolve()
        self.flavor = flavor
        self.port = port
        self.faults = dict(faults or {})
        self.iopub_data_rate_limit = iopub_data_rate_limit
        self.iopub_msg_rate_limit = iopub_msg_rate_limit
        self.app_initially = app_initially
        self.instance_initially = instance_initially
        self.legacy = legacy  # studio-classic: a domain whose Classic apps still run
        # jupyter_server moves what the contents API deletes to ~/.local/share/Trash (its
        # default, and Studio's). Off for a folder of the user's own served as the home
        # (the local CLI's), where a trash folder would be left in it.
        self.trash = trash
        # Server extensions to run beside the stand-in's own (server.BUILTIN_EXTENSIONS);
        # every other one installed in the environment is off.
        self.extensions = tuple(extensions)
        self.token = secrets.token_hex(24)
        self.identity: dict[str, str] = dict(IDENTITY)
        self._log_path = Path(log_path) if log_path else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None

    # ---- addresses ------------------------------------------------------------------

    def _url(self, role: str) -> str:
        if self.port is None:
            raise StandInError("the stand-in is not started")
        return f"http://{HOSTS[role]}:{self.port}"

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT: the SageMaker API's and the control calls' host (not Jupyter's)."""
        return self._url("api")

    @property
    def app_url(self) -> str:
        """http://127.0.0.3:PORT: the space's (domain's, instance's) own host: /auth and Jupyter."""
        return self._url("app")

    @property
    def signin_url(self) -> str:
        """http://127.0.0.2:PORT: the console sign-in page's host."""
        return self._url("signin")

    @property
    def jupyter_url(self) -> str:
        """Base URL of the Jupyter server for this flavor, without a trailing slash."""
        return self.app_url + BASE_URLS[self.flavor].rstrip("/")

    @property
    def sagemaker_endpoint(self) -> str:
        """The URL for AWS_ENDPOINT_URL_SAGEMAKER."""
        return self.base_url + SAGEMAKER_PATH

    @property
    def log_path(self) -> Path | None:
        """Where the server's log (stderr) goes."""
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # ---- lifecycle ------------------------------------------------------------------

    def __enter__(self) -> StandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> StandIn:
        if self._proc is not None:
            raise StandInError("already started")
        if not self.root.is_dir():
            raise StandInError(f"root {self.root} is not a directory")
        self._tmp = Path(tempfile.mkdtemp(prefix="standin-"))
        if self._log_path is None:
            self._log_path = self._tmp / "server.log"
        fixed_port = self.port is not None
        # A free port can be taken between probing and binding: retry a chosen one.
        for attempt in range(1 if fixed_port else 3):
            if not fixed_port:
                self.port = _free_port()
            try:
                self._launch()
                return self
            except StandInError:
                self._kill()
                if fixed_port or attempt == 2 or "already in use" not in self._log_tail():
                    self._cleanup_tmp()
                    if not fixed_port:
                        self.port = None
                    raise
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        assert self._tmp is not None and self._log_path is not None
        env = dict(os.environ)
        for sub in ("config", "data", "runtime", "ipython"):
            (self._tmp / sub).mkdir(exist_ok=True)
        env.pop("JUPYTER_TOKEN", None)  # the token goes on stdin (see server.py)
        env.update(
            JUPYTER_CONFIG_DIR=str(self._tmp / "config"),
            JUPYTER_DATA_DIR=str(self._tmp / "data"),
            JUPYTER_RUNTIME_DIR=str(self._tmp / "runtime"),
            JUPYTER_PLATFORM_DIRS="1",
            IPYTHONDIR=str(self._tmp / "ipython"),
            HOME=str(self.root),  # Studio's home directory is the Jupyter root
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p),
            # A Studio terminal has the image's python on PATH; ours is the one the kernels run on,
            # whatever PATH the caller had (a user's shell need not have the venv activated).
            PATH=os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH", "")) if p),
        )
        config = {
            "faults": self.faults,
            "app_initially": self.app_initially,
            "instance_initially": self.instance_initially,
            "iopub_data_rate_limit": self.iopub_data_rate_limit,
            "iopub_msg_rate_limit": self.iopub_msg_rate_limit,
            "parent_pid": os.getpid(),
            "legacy": self.legacy,
            "trash": self.trash,
            "extensions": list(self.extensions),
        }
        cmd = [
            sys.executable, "-m", "localstudio.standin",
            "--flavor", self.flavor, "--root", str(self.root),
            "--port", str(self.port), "--config-json", json.dumps(config),
        ]
        with open(self._log_path, "ab") as log:
            self._proc = subprocess.Popen(
                cmd, cwd=self.root, env=env, stdin=subprocess.PIPE,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        assert self._proc.stdin is not None
        self._proc.stdin.write(self.token.encode() + b"\n")
        self._proc.stdin.close()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise StandInError(
                    f"the stand-in server exited with code {self._proc.returncode} while starting "
                    f"(flavor {self.flavor}, port {self.port}); its log ends:\n{self._log_tail()}"
                )
            try:
                self._control("GET", "/state", timeout=1.0)
                return
            except (OSError, StandInError):
                time.sleep(0.05)
        raise StandInError(
            f"the stand-in server did not answer within {START_TIMEOUT_SECONDS:.0f} s "
            f"(flavor {self.flavor}, port {self.port}); its log ends:\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Stop the server (it shuts its kernels and terminals down); kill what remains."""
        self._kill()
        self._cleanup_tmp()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            import psutil

            descendants = psutil.Process(proc.pid).children(recursive=True)
        except Exception:  # already gone, or psutil missing: the server's own shutdown is all we have
            descendants = []
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # jupyter_server shuts kernels down on SIGTERM
            try:
                proc.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for child in descendants:
            try:
                child.kill()
            except Exception:
                pass  # already exited

    def _cleanup_tmp(self) -> None:
        # Keep the log if the caller asked for it somewhere outside the temp dir.
        if self._tmp is not None:
            if self._log_path is not None and self._log_path.parent == self._tmp:
                self._log_path = None
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _log_tail(self, lines: int = 40) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        text = self._log_path.read_text(errors="replace").splitlines()[-lines:]
        # The server never logs the token, but make sure an error message cannot leak it.
        return "\n".join(text).replace(self.token, "<token>")

    # ---- control --------------------------------------------------------------------

    def _control(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + CONTROL_PATH + path, data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with _opener.open(request, timeout=timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            if e.code >= 500:  # the stand-in's own bug: its traceback is in its log
                detail += "\n--- stand-in log ---\n" + self._log_tail(60)
            raise StandInError(f"stand-in control {method} {path} answered {e.code}: {detail}") from None

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs now; returns all knobs. Unknown or bad knobs raise ValueError."""
        Faults().update(knobs)
        return self._control("POST", "/faults", knobs)

    def state(self) -> dict[str, Any]:
        """Snapshot: flavor, apps, kernels, sessions, terminals, notebook_instances, faults."""
        return self._control("GET", "/state")

    def idle_shutdown(self) -> bool:
        """Delete the flavor's app (stop the instance) as SageMaker's idle shutdown does (A10)."""
        return bool(self._control("POST", "/idle-shutdown", {})["stopped"])

    def kill_kernel(self, kernel_id: str) -> None:
        """SIGKILL the kernel's process (Jupyter's restarter then notices, as with a crash)."""
        self._control("POST", f"/kernels/{kernel_id}/kill", {})


def serve(root: Path | str, flavor: str = "studio-space", port: int | None = None) -> None:
    """Run a stand-in in the foreground until Ctrl-C, printing how to reach it (not the token)."""
    standin = StandIn(root=root, flavor=flavor, port=port)

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # `kill PID` stops it as cleanly as Ctrl-C

    signal.signal(signal.SIGTERM, _interrupt)
    standin.start()
    try:
        ident = standin.identity
        endpoint = standin.sagemaker_endpoint
        plays = catalog.kind(flavor).standin
        if plays.login == "presigned-notebook-instance-url":
            login = (
                f"aws sagemaker create-presigned-notebook-instance-url --endpoint-url {endpoint} "
                f"--region {ident['region']} --notebook-instance-name {ident['notebook_instance']}"
            )
        else:
            space = f" --space-name {ident['space_name']}" if plays.app_owner == "space_name" else ""
            login = (
                f"aws sagemaker create-presigned-domain-url --endpoint-url {endpoint} "
                f"--region {ident['region']} --domain-id {ident['domain_id']} "
                f"--user-profile-name {ident['user_profile']}{space}"
            )
        print(f"Studio stand-in ({flavor}) serving {standin.root}")
        print(f"  Jupyter:        {standin.jupyter_url}")
        print(f"  SageMaker API:  export AWS_ENDPOINT_URL_SAGEMAKER={endpoint}")
        if plays.login == "token":
            print("  Login:          Authorization: token <token> (the token is not printed)")
        else:
            print(f"  Login URL:      {login}")
        print(f"  State:          {standin.base_url}{CONTROL_PATH}/state")
        print(f"  Server log:     {standin.log_path}")
        print("Press Ctrl-C to stop.", flush=True)
        while standin._proc is not None and standin._proc.poll() is None:
            time.sleep(0.5)
        print("The stand-in server exited; its log ends:\n" + standin._log_tail(), file=sys.stderr)
    except KeyboardInterrupt:
        print("\nStopping the stand-in…", flush=True)
    finally:
        standin.stop()
