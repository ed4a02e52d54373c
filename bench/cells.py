"""``cells``: ms per trivial cell, our kernel client over the stand-in's WebSocket vs nbclient.

Method. Both sides get a started, ready kernel and one warm-up cell before the clock
starts, so kernel start-up is excluded from both:

* ours: a kernel POSTed to the stand-in (``jupyter`` flavor, token auth), guarded as
  StartKernel guards it, one ``KernelChannel`` (the WebSocket, as RunCells opens it) and
  ``CellExecutor.run`` over the notebook as RunCells runs it (one cell at a time), timed
  from the first send to the last cell's end;
* nbclient: ``NotebookClient(nb, kernel_name="python3")`` with its kernel set up
  (``async_setup_kernel``, which waits for ``kernel_info``), then its own
  ``async_execute_cell`` for every cell, in order — what ``execute()`` does between
  start-up and shutdown. nbclient talks ZMQ straight to the kernel; we go through
  jupyter_server's WebSocket bridge, as we must in Studio;
* nbclient over the WebSocket — the peer that takes our path: the same ``NotebookClient``
  calls with jupyter_server's own ``GatewayKernelManager``/``GatewayKernelClient``
  (REST to start the kernel, then ``/api/kernels/{id}/channels``) against the same
  stand-in, a kernel of its own beside ours (:func:`bench.common.nbclient_gateway_kernel`).

A third side is nbclient with an on-disk IPython history: nbclient starts its kernel with
``--HistoryManager.hist_file=:memory:``, while a kernel started by jupyter_server (the
stand-in's, Studio's) writes every cell to ``history.sqlite`` — about 1 ms of kernel CPU
per cell that is not the client's doing. The sides alternate, repetition by repetition,
so a burst of load from elsewhere hits all of them; each figure is the median of the
repetitions. CPU time per cell (psutil, user + system) of each process — client,
jupyter_server, kernel — is recorded too: on a loaded 2-core machine it decides the wall
time more than latency does. Then, once each and on fewer cells,
the same executor pipelined (opt-in: windows 2, ``PIPELINE_WINDOW``, 8) and with the
transport fixes taken away, to show what they are worth: no pipelining without TCP_QUICKACK
(the naive client), pipelining without TCP_QUICKACK.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

from localstudio.standin import StandIn
from studiorunner.execution.options import PIPELINE_WINDOW
from studiorunner.jupyter.connection import KernelChannel

from .common import (
    BenchResult,
    OurKernel,
    Row,
    cpu_seconds,
    kernel_pids_of,
    median,
    nbclient_gateway_kernel,
    nbclient_kernel,
    trivial_notebook,
)


def no_quickack_channel(url: str, **kw: object) -> KernelChannel:
    """Our channel without the TCP_QUICKACK re-arm after each receive (TCP_NODELAY stays)."""
    return KernelChannel.open(url, quickack=False, **kw)  # type: ignore[arg-type]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cells", type=int, default=500, help="trivial cells per repetition (default 500)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each side (default 3)")
    parser.add_argument("--variant-cells", type=int, default=100,
                        help="cells for the no-pipelining / no-QUICKACK variants (default 100)")


def run(args: argparse.Namespace) -> BenchResult:
    result = BenchResult("cells")
    n = args.cells
    wall: dict[str, list[float]] = {"ours": [], "nbclient_ws": [], "nbclient": [], "nbclient_disk_history": []}
    cpu: dict[str, list[dict[str, float]]] = {k: [] for k in wall}
    variants: dict[str, float] = {}
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cells-"))
        standin = stack.enter_context(StandIn(root=Path(tmp), flavor="jupyter"))
        ours = stack.enter_context(OurKernel(standin.jupyter_url, standin.token))
        our_kernel = kernel_pids_of(standin.pid)
        nbclient_ws = stack.enter_context(nbclient_gateway_kernel(standin.jupyter_url, standin.token))
        ws_kernel = [pid for pid in kernel_pids_of(standin.pid) if pid not in our_kernel]
        nbclient_default = stack.enter_context(nbclient_kernel())
        nbclient_disk = stack.enter_context(nbclient_kernel(history_file=str(Path(tmp) / "history.sqlite")))
        me = os.getpid()
        processes = {
            "ours": {"client": [me], "server": [standin.pid], "kernel": our_kernel},
            "nbclient_ws": {"client": [me], "server": [standin.pid], "kernel": ws_kernel},
            "nbclient": {"client": [me], "kernel": [nbclient_default.kernel_pid]},
            "nbclient_disk_history": {"client": [me], "kernel": [nbclient_disk.kernel_pid]},
        }
        sides = {"ours": ours.run, "nbclient_ws": nbclient_ws, "nbclient": nbclient_default,
                 "nbclient_disk_history": nbclient_disk}
        for _ in range(args.repeat):
            for side, execute in sides.items():  # alternate, so load from elsewhere hits all sides
                before = {part: cpu_seconds(pids) for part, pids in processes[side].items()}
                wall[side].append(execute(trivial_notebook(n)) / n * 1000)
                cpu[side].append({part: (cpu_seconds(pids) - before[part]) / n * 1000
                                  for part, pids in processes[side].items()})
        if args.variant_cells > 0:
            m = args.variant_cells
            # The shipped default is one cell at a time; the opt-in pipelined mode (the kernel
            # guarded, execution/guard.py) at its window and two others shows what it would buy.
            for window in sorted({2, PIPELINE_WINDOW, 8}):
                what = f"pipelined (window={window}, opt-in)"
                variants[f"ours, {what}"] = ours.run(trivial_notebook(m), window=window) / m * 1000
            ours.reopen(no_quickack_channel)
            variants["ours, no pipelining, no TCP_QUICKACK (naive)"] = \
                ours.run(trivial_notebook(m), window=1) / m * 1000
            variants["ours, pipelined, no TCP_QUICKACK"] = \
                ours.run(trivial_notebook(m), window=PIPELINE_WINDOW) / m * 1000
            ours.reopen()
            # nbclient in the same stretch of time, as the yardstick for the variants
            variants["nbclient"] = nbclient_default(trivial_notebook(m)) / m * 1000
            variants["nbclient over the WebSocket"] = nbclient_ws(trivial_notebook(m)) / m * 1000

    med = {side: median(values) for side, values in wall.items()}
    cpu_med = {side: {part: median([c[part] for c in cpu[side]]) for part in cpu[side][0]} for side in cpu}
    ours_med, peer_med, ws_med = med["ours"], med["nbclient"], med["nbclient_ws"]
    result.rows.append(Row(
        f"ms per trivial cell ({n} cells, median of {args.repeat}), same transport", ours_med, "ms",
        "nbclient-ws", ws_med, "<= 1.0x", ours_med <= ws_med,
        note="nbclient with jupyter_server's GatewayKernelManager/GatewayKernelClient: the same REST + "
             "WebSocket path to a kernel of the same server"
             + ("" if ours_med <= ws_med else f"; ours is {ours_med / ws_med:.2f}x ({ours_med - ws_med:+.2f} ms per cell)")))
    result.rows.append(Row(
        f"ms per trivial cell ({n} cells, median of {args.repeat}), vs ZMQ", ours_med, "ms",
        "nbclient", peer_med, "<= 1.0x", ours_med <= peer_med,
        note="" if ours_med <= peer_med else
        f"ours is {ours_med / peer_med:.2f}x nbclient ({ours_med - peer_med:+.2f} ms per cell)"))
    result.rows.append(Row(
        "  same, vs nbclient with on-disk kernel history", ours_med, "ms",
        "nbclient+hist", med["nbclient_disk_history"],
        note="nbclient starts its kernel with HistoryManager.hist_file=:memory:; a kernel started by "
             "jupyter_server (ours, Studio's) writes every cell to history.sqlite"))
    cpu_total = {side: sum(parts.values()) for side, parts in cpu_med.items()}
    result.rows.append(Row(
        "CPU ms per cell, all processes", cpu_total["ours"], "ms", "nbclient", cpu_total["nbclient"],
        note="ours " + ", ".join(f"{k} {v:.2f}" for k, v in cpu_med["ours"].items())
             + "; nbclient-ws " + ", ".join(f"{k} {v:.2f}" for k, v in cpu_med["nbclient_ws"].items())
             + "; nbclient " + ", ".join(f"{k} {v:.2f}" for k, v in cpu_med["nbclient"].items())
             + "; nbclient+hist " + ", ".join(f"{k} {v:.2f}" for k, v in cpu_med["nbclient_disk_history"].items())))
    for name, value in variants.items():
        if name.startswith("nbclient"):
            continue
        result.rows.append(Row(f"{name}, {args.variant_cells} cells", value, "ms", "nbclient", variants["nbclient"]))
    result.details = {"cells": n, "wall_ms_per_cell": wall, "cpu_ms_per_cell": cpu,
                      "cpu_ms_per_cell_median": cpu_med, "variants_ms": variants,
                      "variant_cells": args.variant_cells}
    return result
