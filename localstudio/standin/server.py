"""The stand-in's server process: jupyter_server + ipykernel + the Studio extension.

Run as ``python -m localstudio.standin --flavor F --root DIR --port N --config-json JSON``
with the Jupyter token in ``JUPYTER_TOKEN`` (kept off the command line, where ``ps``
would show it). ``StandIn`` in process.py starts this; people use ``serve``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
from collections.abc import Iterable
from typing import Any

from .world import FLAVORS, Faults

CONFIG_KEYS = {
    "faults",
    "app_initially",
    "instance_initially",
    "iopub_data_rate_limit",
    "iopub_msg_rate_limit",
    "parent_pid",
    "legacy",
    "trash",
    "extensions",
}

def _server_argv(flavor: str, root: str, port: int, config: dict[str, Any]) -> list[str]:
    from .shared import BASE_URLS

    argv = [
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.base_url={BASE_URLS[flavor]}",
        # A killed kernel is noticed (and restarted, as Jupyter does) within a second
        # instead of three, so fault tests stay quick.
        "--KernelRestarter.time_to_dead=1.0",
        # As SageMaker Distribution starts it (REAL-STUDIO L4).
        "--ServerApp.allow_origin=*",
        # The user's shell, but not a login shell (jupyter_server's default when not on a tty):
        # /etc/profile would reset PATH, and the terminal must keep the python the kernels run on
        # that the stand-in put first on PATH, as a Studio terminal has its image's python.
        "--ServerApp.terminado_settings=" + json.dumps({"shell_command": [os.environ.get("SHELL") or "/bin/sh"]}),
        *(f"--ServerApp.jpserver_extensions={name}={enabled}"
          for name, enabled in _only_terminals(config.get("extensions") or ()).items()),
    ]
    if _ipc_fits(os.environ.get("JUPYTER_RUNTIME_DIR", "")):
        # Kernels talk to the server over Unix sockets in the stand-in's runtime folder, not TCP:
        # jupyter_client picks a kernel's TCP ports by probing free ones and the kernel binds them
        # a second later, so with several servers starting kernels at once (the test suite's
        # workers) another process can take a port first and the kernel dies at start. Invisible
        # to clients, which reach kernels only through the server's WebSocket, as in Studio.
        argv.append("--KernelManager.transport=ipc")
    if config.get("trash") is False:
        argv.append("--FileContentsManager.delete_to_trash=False")
    for key in ("iopub_data_rate_limit", "iopub_msg_rate_limit"):
        if config.get(key) is not None:
            argv.append(f"--ZMQChannelsWebsocketConnection.{key}={float(config[key])}")
    return argv


#: The one server extension the stand-in loads: Studio's terminals. Whatever else is installed
#: beside jupyter_server (JupyterLab, jupyter-lsp, jupyter-scheduler…) is not part of what a run
#: talks to, and some write into the served folder, the stand-in's HOME (jupyter-lsp runs
#: ``npm prefix --global``, leaving ``.npm/_logs`` there).
KEEP_EXTENSIONS = ("jupyter_server_terminals",)


def _only_terminals(extra: Iterable[str] = ()) -> dict[str, bool]:
    """``jpserver_extensions`` that turns off every enabled server extension but the terminals'
    and ``extra`` (the config's ``extensions``, ``StandIn(extensions=...)``) (given on the
    command line, it wins over the ``jupyter_server_config.d`` files that enable them)."""
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager

    found = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()
    keep = {*KEEP_EXTENSIONS, *extra}
    return {name: name in keep for name in {*found, *keep}}


#: A Unix socket's path holds at most 107 bytes; a kernel's are ``<runtime dir>/kernel-<uuid>-ipc-<n>``.
_SOCKET_PATH_MAX = 107


def _ipc_fits(runtime_dir: str) -> bool:
    """Whether the kernels' Unix sockets fit under ``runtime_dir`` (else they use TCP)."""
    return bool(runtime_dir) and len(os.fsencode(runtime_dir)) + len("/kernel-") + 36 + len("-ipc-") + 2 <= _SOCKET_PATH_MAX


def _watch_parent(serverapp: Any, parent_pid: int) -> None:
    """Stop the server when the process that started it is gone (no orphans after a crash)."""
    from tornado.ioloop import PeriodicCallback

    def check() -> None:
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)

    PeriodicCallback(check, 1000).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localstudio.standin", description=__doc__)
    parser.add_argument("--flavor", choices=FLAVORS, default="studio-space")
    parser.add_argument("--root", required=True, help="the user's home: Jupyter's root_dir")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config-json", default="{}", help=f"JSON object with keys {sorted(CONFIG_KEYS)}")
    args = parser.parse_args(argv)
    config = json.loads(args.config_json)
    unknown = set(config) - CONFIG_KEYS
    if unknown:
        parser.error(f"unknown --config-json keys: {sorted(unknown)}")
    faults = Faults()
    faults.update(config.get("faults") or {})
    # The token comes on stdin, never in the environment: /proc/<pid>/environ keeps a
    # process's initial environment for anyone running as the same user (a notebook).
    token = sys.stdin.readline().strip() if not sys.stdin.isatty() else ""
    os.environ["JUPYTER_TOKEN"] = token or secrets.token_hex(24)

    from jupyter_server.serverapp import ServerApp
    from tornado.netutil import bind_sockets

    from .extension import install
    from .world import HOSTS

    serverapp = ServerApp()
    # In memory only: the default writes it to the runtime dir, readable by kernels.
    serverapp.cookie_secret = secrets.token_bytes(32)
    serverapp.initialize(argv=_server_argv(args.flavor, os.path.abspath(args.root), args.port, config))
    # No jpserver-*.json / jpserver-*-open.html in the runtime dir: they hold the token, and
    # kernels can read that dir (JUPYTER_RUNTIME_DIR is in their environment).
    # (--ServerApp.no_browser_open_file would print the token into the log instead.)
    serverapp.write_server_info_file = lambda: None  # type: ignore[method-assign]
    serverapp.write_browser_open_files = lambda: None  # type: ignore[method-assign]
    # The identity provider has the token now; kernels and terminals inherit this
    # environment, and a notebook must not be able to print the server's credential.
    os.environ.pop("JUPYTER_TOKEN", None)
    install(
        serverapp,
        flavor=args.flavor,
        faults=faults,
        app_initially=config.get("app_initially", "present"),
        instance_initially=config.get("instance_initially", "InService"),
        legacy=bool(config.get("legacy")),
    )
    # The other hosts (sign-in page, the app's own host) on the same port.
    extra = []
    for address in (HOSTS["signin"], HOSTS["app"]):
        try:
            extra += bind_sockets(args.port, address)
        except OSError as e:
            print(f"The port {args.port} is already in use on {address}: {e}", file=sys.stderr, flush=True)
            sys.exit(1)
    serverapp.io_loop.add_callback(lambda: serverapp.http_server.add_sockets(extra))
    if config.get("parent_pid"):
        _watch_parent(serverapp, int(config["parent_pid"]))
    serverapp.start()
    sys.exit(0)
