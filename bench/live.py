"""``live``: 2,000 trivial cells with live saving to S3 — does the cost per cell stay flat?

Method. What a RunCells invocation does, in this process: the output notebook is
prepared as StartKernel prepares it (papermill metadata, every cell pending) and saved
to S3 (moto, in process) once; then ``CellExecutor`` runs the cells on a stand-in kernel
with the RunCells callbacks — ``mark_cell_started`` / ``mark_cell_finished`` and
``ThrottledSaver.save_if_due`` after every cell. Each cell's end is time-stamped; ms per
cell over the first 100 cells (from the first send) and over the last 100 are compared.
nbclient (no saving: it has none) runs the same 2,000 cells in the same run. papermill,
whose per-cell cost grows because it rewrites the notebook at every cell start and end,
runs ``--papermill-cells`` cells (default 500) in a subprocess; its per-cell figures
come from the ``end_time`` it records in each cell.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import nbformat

from localstudio.standin import StandIn

from .common import (
    BenchResult,
    OurKernel,
    Row,
    cpu_seconds,
    kernel_pids_of,
    median,
    nbclient_kernel,
    timed_command,
    trivial_notebook,
    write_notebook,
)

WINDOW = 100
WIDE_WINDOW = 500  # several saves fall in it: the amortised cost
BUCKET = "bench-live"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--live-cells", type=int, default=2000, help="cells for ours and nbclient (default 2000)")
    parser.add_argument("--live-repeat", type=int, default=2, help="runs of ours (default 2; median reported)")
    parser.add_argument("--papermill-cells", type=int, default=500,
                        help="cells for papermill, 0 to skip it (default 500)")


def _first_last(started: float, ends: list[float], window: int = WINDOW) -> tuple[float, float]:
    first = (ends[window - 1] - started) / window * 1000
    last = (ends[-1] - ends[-window - 1]) / window * 1000
    return first, last


def _overlap(spans: list[tuple[float, float]], window: tuple[float, float]) -> float:
    """Seconds of ``spans`` inside ``window``."""
    return sum(max(0.0, min(b, window[1]) - max(a, window[0])) for a, b in spans)


def _median_interval(started: float, ends: list[float]) -> float:
    """The median gap between consecutive cell ends, ms: robust to a save or a burst of load."""
    import statistics

    points = [started, *ends]
    return statistics.median(b - a for a, b in zip(points, points[1:], strict=False)) * 1000


def _ours(standin: StandIn, cells: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from studiorunner import notebook as nbtools
    from studiorunner.store import S3NotebookStore, ThrottledSaver

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    with mock.patch.dict(os.environ, env), mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        store = S3NotebookStore(s3)
        uri = f"s3://{BUCKET}/runs/bench/live.ipynb"
        write_seconds: list[float] = []
        real_write = store.write

        save_spans: list[tuple[float, float]] = []

        def timed_write(where: str, nb: Any) -> None:
            t = time.perf_counter()
            real_write(where, nb)
            save_spans.append((t, time.perf_counter()))
            write_seconds.append(time.perf_counter() - t)

        store.write = timed_write  # type: ignore[method-assign]
        nb = trivial_notebook(cells)
        nbtools.prepare_for_run(nb, run_id="bench", input_path="live.ipynb", output_uri=uri,
                                parameters={}, kernel_name="python3")
        saver = ThrottledSaver(store, uri)
        saver.flush(nb)  # StartKernel's save at run start
        ends: list[float] = []
        cpu_ends: list[float] = []

        def on_start(index: int, cell: Any) -> None:
            pass  # the executor marks the cell (notebook.mark_cell_started) before calling this

        def on_end(index: int, cell: Any, status: str) -> None:
            saver.save_if_due(nb)
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())
            if len(ends) in marks:  # the server's and kernel's CPU at the window edges (psutil: ~0.1 ms)
                other_cpu[len(ends)] = cpu_seconds(others)

        with OurKernel(standin.jupyter_url, standin.token) as kernel:
            others = [standin.pid, *kernel_pids_of(standin.pid)]
            marks = {WINDOW, WIDE_WINDOW, cells - WIDE_WINDOW, cells - WINDOW, cells}
            other_cpu: dict[int, float] = {0: cpu_seconds(others)}
            executor = kernel.executor(nb, on_cell_start=on_start, on_cell_end=on_end)
            from studiorunner.execution.executor import Cursor

            started, cpu_started = time.perf_counter(), time.process_time()
            cursor = executor.run(Cursor(), deadline=time.monotonic() + 600)
            elapsed = time.perf_counter() - started
        if not cursor.done or len(ends) != cells:
            raise RuntimeError(f"live run ended early: {cursor.to_dict()}")
        saver.flush(nb)  # RunCells' save at the end (not timed)
        saved = nbformat.reads(s3.get_object(Bucket=BUCKET, Key="runs/bench/live.ipynb")["Body"].read().decode(),
                               as_version=4)
        finished = sum(1 for c in saved.cells if c.metadata.get("papermill", {}).get("status") == "completed")
        size = len(s3.get_object(Bucket=BUCKET, Key="runs/bench/live.ipynb")["Body"].read())
    windows = {}
    for w in (WINDOW, WIDE_WINDOW):
        first_span, last_span = (started, ends[w - 1]), (ends[-w - 1], ends[-1])
        windows[w] = {
            "first_ms": (first_span[1] - first_span[0]) / w * 1000,
            "last_ms": (last_span[1] - last_span[0]) / w * 1000,
            "first_cpu_ms": (cpu_ends[w - 1] - cpu_started) / w * 1000,
            "last_cpu_ms": (cpu_ends[-1] - cpu_ends[-w - 1]) / w * 1000,
            "first_saving_ms": _overlap(save_spans, first_span) / w * 1000,
            "last_saving_ms": _overlap(save_spans, last_span) / w * 1000,
            "first_server_kernel_cpu_ms": (other_cpu[w] - other_cpu[0]) / w * 1000,
            "last_server_kernel_cpu_ms": (other_cpu[cells] - other_cpu[cells - w]) / w * 1000,
            "first_median_gap_ms": _median_interval(started, ends[:w]),
            "last_median_gap_ms": _median_interval(ends[-w - 1], ends[-w:]),
        }
    return {"ms_per_cell": elapsed / cells * 1000, "windows": windows,
            "saves": saver.saves, "save_seconds": write_seconds, "notebook_bytes": size,
            "cells_completed_in_s3": finished}


def _nbclient(cells: int) -> dict[str, Any]:
    with nbclient_kernel() as execute:
        ends: list[float] = []
        started = time.perf_counter()
        elapsed = execute(trivial_notebook(cells), ends)
    first, last = _first_last(started, ends)
    return {"ms_per_cell": elapsed / cells * 1000, "first_ms": first, "last_ms": last}


def _papermill(cells: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-live-pm-") as tmp:
        source = write_notebook(trivial_notebook(cells), Path(tmp) / "in.ipynb")
        out = Path(tmp) / "out.ipynb"
        wall, _ = timed_command([sys.executable, "-m", "papermill", "--no-progress-bar", str(source), str(out)],
                                cwd=Path(tmp), timeout=600)
        nb = nbformat.read(str(out), as_version=4)
    times = [c.metadata["papermill"] for c in nb.cells]
    start = datetime.fromisoformat(times[0]["start_time"]).timestamp()
    ends = [datetime.fromisoformat(t["end_time"]).timestamp() for t in times]
    first, last = _first_last(start, ends)
    return {"ms_per_cell": (ends[-1] - start) / cells * 1000, "first_ms": first, "last_ms": last,
            "process_wall_s": wall}


def run(args: argparse.Namespace) -> BenchResult:
    result = BenchResult("live")
    n = args.live_cells
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, \
            StandIn(root=Path(tmp), flavor="jupyter") as standin:
        for _ in range(args.live_repeat):
            runs.append(_ours(standin, n))
    peer = _nbclient(n)
    pm = _papermill(args.papermill_cells) if args.papermill_cells > 0 else None

    def ratio(w: int, key: str) -> float:
        return median([r["windows"][w][f"last_{key}"] / r["windows"][w][f"first_{key}"] for r in runs])

    def both(w: int, key: str, fmt: str = ".2f") -> str:
        return "; ".join(f"{r['windows'][w][f'first_{key}']:{fmt}} -> {r['windows'][w][f'last_{key}']:{fmt}}"
                         for r in runs)

    growth = ratio(WINDOW, "ms")
    saves = ", ".join(f"{r['saves']} saves (max {max(r['save_seconds']) * 1000:.0f} ms)" for r in runs)
    result.rows += [
        Row(f"wall ms/cell, last {WINDOW} / first {WINDOW} of {n}, live saving", growth, "x",
            target="<= 1.2x", met=growth <= 1.2,
            note=f"first -> last ms per cell, each run: {both(WINDOW, 'ms')}; {saves}; "
                 f"output notebook {runs[0]['notebook_bytes'] / 1e6:.2f} MB"),
        Row(f"  same, last {WIDE_WINDOW} / first {WIDE_WINDOW}", ratio(WIDE_WINDOW, "ms"), "x",
            note=f"each run: {both(WIDE_WINDOW, 'ms')} ms; of which saving: {both(WIDE_WINDOW, 'saving_ms')} ms"),
        Row(f"  client CPU ms/cell, last {WINDOW} / first {WINDOW}", ratio(WINDOW, "cpu_ms"), "x",
            note=f"each run: {both(WINDOW, 'cpu_ms')} ms (our process only: executor, marks, saves)"),
        Row(f"  client CPU ms/cell, last {WIDE_WINDOW} / first {WIDE_WINDOW}", ratio(WIDE_WINDOW, "cpu_ms"), "x",
            note=f"each run: {both(WIDE_WINDOW, 'cpu_ms')} ms"),
        Row(f"  jupyter_server + kernel CPU ms/cell, last {WIDE_WINDOW} / first {WIDE_WINDOW}",
            ratio(WIDE_WINDOW, "server_kernel_cpu_ms"), "x",
            note=f"each run: {both(WIDE_WINDOW, 'server_kernel_cpu_ms')} ms"),
        Row(f"  nbclient, same {n} cells (no saving), last/first {WINDOW}", peer["last_ms"] / peer["first_ms"], "x",
            note=f"first {peer['first_ms']:.2f} ms, last {peer['last_ms']:.2f} ms: how much load alone moves "
                 "a 100-cell window on this machine"),
    ]
    if pm:
        result.rows.append(Row(f"  papermill, {args.papermill_cells} cells, last/first {WINDOW}",
                               pm["last_ms"] / pm["first_ms"], "x",
                               note=f"first {pm['first_ms']:.1f} ms, last {pm['last_ms']:.1f} ms "
                                    f"(whole process {pm['process_wall_s']:.1f} s)"))
    ours_ms = median([r["ms_per_cell"] for r in runs])
    result.rows.append(Row(f"ms per cell, {n} cells, live saving on", ours_ms, "ms", "nbclient", peer["ms_per_cell"]))
    if pm:
        result.rows.append(Row(f"  papermill, {args.papermill_cells} cells (saves every cell)", pm["ms_per_cell"], "ms",
                               "nbclient", peer["ms_per_cell"]))
    result.details = {"ours": runs, "nbclient": peer, "papermill": pm, "window": WINDOW, "wide_window": WIDE_WINDOW}
    return result
