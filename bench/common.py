"""What the benchmarks share: results, the table, JSON output, notebooks, a kernel on the stand-in.

Every figure that has a peer is a ratio measured in the same run on the same machine
(``Row.ratio`` = ours / peer; lower is better for times, higher for throughput).
Nothing here asserts a timing: a missed target is reported, not raised.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_notebook

import localstudio  # noqa: F401  (puts lambdas/ on sys.path)
from studiorunner.execution import guard
from studiorunner.execution.cursor import Cursor
from studiorunner.execution.executor import CellExecutor
from studiorunner.execution.options import ExecutorOptions, KernelControl
from studiorunner.jupyter.connection import KernelChannel
from studiorunner.jupyter.http import JupyterHTTP
from studiorunner.jupyter.kernel_protocol import new_session_id
from studiorunner.jupyter.rest import JupyterClient

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


@dataclass
class Row:
    """One line of the table."""

    measure: str
    ours: float | None
    unit: str
    peer: str | None = None
    peer_value: float | None = None
    target: str | None = None  # e.g. "<= 1.0x", ">= 10 MB/s"
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.peer_value:
            return None
        return self.ours / self.peer_value


@dataclass
class BenchResult:
    name: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for row, out in zip(self.rows, data["rows"], strict=False):
            out["ratio"] = row.ratio
        return data


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, Any]:
    """Enough about the machine to read the figures: cores, load, versions."""
    import ipykernel
    import jupyter_server
    import nbclient
    import websocket

    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "jupyter_server": jupyter_server.__version__,
        "ipykernel": ipykernel.__version__,
        "nbclient": nbclient.__version__,
        "websocket-client": websocket.__version__,
    }
    try:
        import papermill

        info["papermill"] = papermill.__version__
    except ImportError:
        pass
    return info


# ---- notebooks -----------------------------------------------------------------------

def code_notebook(sources: list[str]) -> NotebookNode:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def trivial_notebook(cells: int) -> NotebookNode:
    return code_notebook(["x = 1"] * cells)


def write_notebook(nb: NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def stream_text(cell: NotebookNode, name: str = "stdout") -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


# ---- our client on a kernel of the stand-in -------------------------------------------

class OurKernel:
    """A kernel started over REST on a Jupyter server, and one WebSocket to it.

    What a RunCells invocation holds, minus the login: the kernel guarded as StartKernel
    guards it (execution/guard.py) and ``run`` executes a notebook with :class:`CellExecutor`
    as RunCells does (one cell at a time unless ``window`` says) and returns the seconds it took. ``channel_factory`` lets a
    benchmark swap the transport (e.g. without TCP_QUICKACK) to show what it is worth.
    """

    def __init__(self, base_url: str, token: str,
                 channel_factory: Callable[..., KernelChannel] = KernelChannel.open) -> None:
        self.jupyter = JupyterClient(JupyterHTTP(base_url, token=token))
        self.channel_factory = channel_factory
        self.kernel_id = ""
        self.session = new_session_id()
        self.channel: KernelChannel | None = None

    def __enter__(self) -> OurKernel:
        self.kernel_id = self.jupyter.create_kernel("python3")["id"]
        try:
            self.reopen()
            assert self.channel is not None
            if not guard.install(self.channel, run_session=self.session):
                raise RuntimeError("the pipelining guard could not be installed in the kernel")
            self.run(code_notebook(["pass"]))  # the kernel answers: start-up is over
        except BaseException:
            self.jupyter.delete_kernel(self.kernel_id)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.channel is not None:
            self.channel.close()
        self.jupyter.delete_kernel(self.kernel_id)

    def reopen(self, factory: Callable[..., KernelChannel] | None = None) -> None:
        if self.channel is not None:
            self.channel.close()
        ws = self.jupyter.channels(self.kernel_id, self.session)
        self.channel = (factory or self.channel_factory)(ws.url, headers=ws.headers)

    def executor(self, nb: NotebookNode, **kw: Any) -> CellExecutor:
        assert self.channel is not None
        kid = self.kernel_id
        hooks = {k: kw.pop(k) for k in ("on_cell_start", "on_cell_end") if k in kw}
        return CellExecutor(
            self.channel, nb, session=self.session,
            kernel=KernelControl(interrupt=lambda: self.jupyter.interrupt_kernel(kid),
                                 state=lambda: self.jupyter.kernel_state(kid)),
            options=ExecutorOptions(**kw), **hooks)

    def run(self, nb: NotebookNode, timeout: float = 600.0, **kw: Any) -> float:
        """Execute every cell of ``nb``; the seconds from the first send to the last cell's end."""
        executor = self.executor(nb, **kw)
        started = time.perf_counter()
        cursor = executor.run(Cursor(), deadline=time.monotonic() + timeout)
        elapsed = time.perf_counter() - started
        if not cursor.done:
            raise RuntimeError(f"our executor did not finish {len(nb.cells)} cells within {timeout:g} s")
        return elapsed


# ---- nbclient, the peer ---------------------------------------------------------------

@contextmanager
def nbclient_kernel(history_file: str | None = None) -> Iterator[Callable[[NotebookNode], float]]:
    """An nbclient ``NotebookClient`` with its kernel started and ready (ZMQ, no server).

    nbclient starts ipykernel with ``--HistoryManager.hist_file=:memory:`` by default;
    ``history_file`` gives it an on-disk history instead, as every kernel jupyter_server
    (and so Studio) starts has: IPython then writes each cell to SQLite.

    Yields ``execute(nb) -> seconds``: the cells executed one by one through nbclient's
    own ``async_execute_cell`` — what ``NotebookClient.execute()`` does between kernel
    start-up and shutdown — timed from the first cell to the last.
    """
    import asyncio

    from nbclient import NotebookClient

    loop = asyncio.new_event_loop()
    warm_up = code_notebook(["pass"])
    options: dict[str, Any] = {"ipython_hist_file": history_file} if history_file else {}
    client = NotebookClient(warm_up, kernel_name="python3", timeout=600, **options)
    setup = client.async_setup_kernel()
    try:
        loop.run_until_complete(setup.__aenter__())
        # One cell first, so the first timed cell does not pay for IPython's first execution.
        # (nbclient stores the executed cell back into client.nb: a notebook of its own.)
        loop.run_until_complete(client.async_execute_cell(warm_up.cells[0], 0))

        def execute(notebook: NotebookNode, ends: list[float] | None = None) -> float:
            """Seconds for all cells; ``ends`` receives each cell's perf_counter() end."""
            client.nb = notebook

            async def cells() -> float:
                started = time.perf_counter()
                for index, cell in enumerate(notebook.cells):
                    await client.async_execute_cell(cell, index)
                    if ends is not None:
                        ends.append(time.perf_counter())
                return time.perf_counter() - started

            return loop.run_until_complete(cells())

        execute.kernel_pid = _nbclient_kernel_pid(client)  # type: ignore[attr-defined]
        yield execute
    finally:
        try:
            loop.run_until_complete(setup.__aexit__(None, None, None))
        finally:
            loop.close()


def _nbclient_kernel_pid(client: Any) -> int | None:
    try:
        return client.km.provisioner.process.pid
    except AttributeError:
        return None


def cpu_seconds(pids: list[int | None]) -> float:
    """User + system CPU seconds used so far by these processes (gone ones count 0)."""
    import psutil

    total = 0.0
    for pid in pids:
        if pid is None:
            continue
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def kernel_pids_of(server_pid: int | None) -> list[int]:
    """The kernels a Jupyter server started (its child processes)."""
    import psutil

    if server_pid is None:
        return []
    return [p.pid for p in psutil.Process(server_pid).children(recursive=True)]


# ---- subprocesses ---------------------------------------------------------------------

def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


def worker(task: dict[str, Any], timeout: float = 300.0) -> dict[str, Any]:
    """Run ``bench.worker`` in a fresh interpreter (its own peak RSS); the task goes on stdin
    so a token never shows in ``ps``."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.worker"], input=json.dumps(task), capture_output=True,
        text=True, cwd=REPO_ROOT, env=python_env(), timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.worker {task.get('mode')} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def timed_command(argv: list[str], *, cwd: Path, timeout: float = 300.0) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=python_env(), capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}… exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed, proc


# ---- reporting ------------------------------------------------------------------------

def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(results: list[BenchResult]) -> str:
    header = ("bench", "measure", "ours", "unit", "peer", "peer value", "ours/peer", "target", "met")
    lines = [header]
    for result in results:
        if result.error:
            lines.append((result.name, "ERROR: " + result.error[:70], "", "", "", "", "", "", ""))
            continue
        for row in result.rows:
            met = "-" if row.met is None else ("yes" if row.met else "NO")
            ratio = row.ratio
            lines.append((result.name, row.measure, _fmt(row.ours), row.unit, row.peer or "",
                          _fmt(row.peer_value), f"{ratio:.2f}x" if ratio is not None else "",
                          row.target or "", met))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"  [{r.name}] {row.measure}: {row.note}" for r in results for row in r.rows if row.note]
    if notes:
        out += ["", "notes:"] + notes
    return "\n".join(out)


def write_json(results: list[BenchResult], info: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    body = {"machine": info, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "results": [r.to_dict() for r in results]}
    path = RESULTS_DIR / f"bench-{stamp}.json"
    path.write_text(json.dumps(body, indent=1))
    (RESULTS_DIR / "latest.json").write_text(json.dumps(body, indent=1))
    return path


# ---- nbclient through jupyter_server's WebSocket: the same-transport peer ---------------

@contextmanager
def nbclient_gateway_kernel(base_url: str, token: str) -> Iterator[Callable[[NotebookNode], float]]:
    """nbclient driving a kernel of the Jupyter server at ``base_url`` through its WebSocket:
    the path we take (REST to start the kernel, then ``/api/kernels/{id}/channels``).

    jupyter_server's own gateway client does it: ``GatewayKernelManager`` starts the kernel
    over REST, ``GatewayKernelClient`` speaks the legacy JSON protocol over one
    websocket-client socket, read by a router thread into per-channel queues. Its
    ``start_channels`` sends no credentials on the handshake (jupyter_server 2.x), so the
    client below does the same thing with the token header — nothing else differs.

    Yields ``execute(nb) -> seconds`` like :func:`nbclient_kernel`; ``execute.kernel_id``
    names the kernel on the server.
    """
    import asyncio
    from threading import Thread

    import websocket
    from jupyter_client.utils import ensure_async
    from jupyter_server.gateway.gateway_client import GatewayClient
    from jupyter_server.gateway.managers import GatewayKernelClient, GatewayKernelManager
    from jupyter_server.utils import url_escape, url_path_join
    from nbclient import NotebookClient

    class TokenGatewayKernelClient(GatewayKernelClient):
        async def start_channels(self, shell=True, iopub=True, stdin=True, hb=True, control=True):  # noqa: ANN001
            gateway = GatewayClient.instance()
            ws_url = url_path_join(gateway.ws_url or "", gateway.kernels_endpoint, url_escape(self.kernel_id),
                                   "channels")
            self.channel_socket = websocket.create_connection(
                ws_url, timeout=gateway.KERNEL_LAUNCH_TIMEOUT, enable_multithread=True,
                header={"Authorization": f"token {token}"})
            await ensure_async(super(GatewayKernelClient, self).start_channels(
                shell=shell, iopub=iopub, stdin=stdin, hb=hb, control=control))
            self.response_router = Thread(target=self._route_responses)
            self.response_router.start()

    class TokenGatewayKernelManager(GatewayKernelManager):
        def client(self, **kwargs: Any) -> TokenGatewayKernelClient:
            kwargs.update(kernel_id=self.kernel_id, parent=self, log=self.log,
                          connection_file=self.connection_file, session=self.session)
            return TokenGatewayKernelClient(**kwargs)

    gateway = GatewayClient.instance()
    gateway.url = base_url.rstrip("/")
    gateway.ws_url = gateway.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    gateway.auth_token = token
    gateway.init_connection_args()

    loop = asyncio.new_event_loop()
    warm_up = code_notebook(["pass"])
    km = TokenGatewayKernelManager(kernel_name="python3")
    client = NotebookClient(warm_up, km=km, kernel_name="python3", timeout=600)
    setup = client.async_setup_kernel()
    try:
        loop.run_until_complete(setup.__aenter__())
        loop.run_until_complete(client.async_execute_cell(warm_up.cells[0], 0))

        def execute(notebook: NotebookNode) -> float:
            client.nb = notebook

            async def cells() -> float:
                started = time.perf_counter()
                for index, cell in enumerate(notebook.cells):
                    await client.async_execute_cell(cell, index)
                return time.perf_counter() - started

            return loop.run_until_complete(cells())

        execute.kernel_id = km.kernel_id  # type: ignore[attr-defined]
        yield execute
    finally:
        try:
            loop.run_until_complete(setup.__aexit__(None, None, None))
        finally:
            loop.close()
