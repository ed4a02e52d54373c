"""``run``: the whole ``studio-runner run --local`` of a 3-cell notebook vs ``papermill`` on it.

Method. Both are timed as a user meets them: a fresh process from the shell to exit
(wall time, median of ``--run-repeat``, alternating). Ours starts the stand-in (a
jupyter_server), moto (S3, Secrets Manager, Step Functions' interpreter), runs the
real state machine (Prepare, StartTarget, StartKernel with its Wait loop, RunCells,
Cleanup) and writes the output notebook; papermill starts a kernel over ZMQ and writes
the notebook. So the ratio is mostly fixed costs: what each part costs is measured once
more in a worker process with a stopwatch on each part (imports, stand-in start, moto
set-up, each Lambda step, the interpreter's own time between steps, teardown).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from .common import BenchResult, Row, code_notebook, median, timed_command, trivial_notebook, worker, write_notebook

CELLS = ["import math\nx = math.sqrt(2)", "y = [i * i for i in range(1000)]", "print(x, sum(y))"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-repeat", type=int, default=2, help="runs of each command (default 2)")
    parser.add_argument("--run-cells", type=int, default=1000,
                        help="cells of the whole-process run vs nbclient's jupyter-execute (default 1000; 0 skips it)")


def run(args: argparse.Namespace) -> BenchResult:
    result = BenchResult("run")
    ours: list[float] = []
    peer: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        root = Path(tmp)
        source = write_notebook(code_notebook(CELLS), root / "three.ipynb")
        for i in range(args.run_repeat):
            seconds, proc = timed_command(
                [sys.executable, "-m", "studiorunner_cli", "run", "--local", "three.ipynb", "--root", str(root),
                 "-o", str(root / f"ours-{i}.ipynb")], cwd=root)
            ours.append(seconds)
            seconds, _ = timed_command(
                [sys.executable, "-m", "papermill", "--no-progress-bar", str(source),
                 str(root / f"papermill-{i}.ipynb")], cwd=root)
            peer.append(seconds)
        started = time.perf_counter()
        phases = worker({"mode": "phases", "root": str(root), "notebook": "three.ipynb"})
        phases["process_wall"] = time.perf_counter() - started

    ours_med, peer_med = median(ours), median(peer)
    result.rows.append(Row(f"wall time, 3-cell notebook, fresh process (median of {args.run_repeat})",
                           ours_med, "s", "papermill", peer_med))
    steps = phases["steps"]
    in_steps = sum(steps.values())
    interpreter = phases["execution"] - in_steps
    parts = [
        ("  python start-up + imports", phases["process_wall"] - phases["total_in_process"] + phases["imports"]),
        ("  stand-in start (jupyter_server)", phases["standin_start"]),
        ("  moto set-up (S3, Secrets Manager, state machine)", phases["local_stack_setup"]),
        ("  state machine: Lambda steps", in_steps),
        ("  state machine: interpreter + Wait states between steps", interpreter),
        ("  teardown (moto, stand-in stop)", phases["local_stack_teardown"] + phases["standin_stop"]),
    ]
    for name, seconds in parts:
        result.rows.append(Row(name, seconds, "s"))
    calls = phases["step_calls"]
    result.rows.append(Row(
        "    of which StartKernel / RunCells", steps.get("StartKernel", 0.0), "s",
        note=f"RunCells {steps.get('RunCells', 0.0):.2f} s; steps (calls): "
             + ", ".join(f"{k} {v:.2f} s ({calls.get(k, 0)})" for k, v in steps.items())))
    result.details = {"ours_s": ours, "papermill_s": peer, "phases": phases, "cells": CELLS}
    if args.run_cells:
        _many_cells(args, result)
    _progress_cost(result)
    return result


def _many_cells(args: argparse.Namespace, result: BenchResult) -> None:
    """A local run of N trivial cells, whole process (``studio-runner run --local``, which
    follows progress.json) vs nbclient's whole process (``jupyter-execute``), fresh processes,
    alternating, median of ``--run-repeat``."""
    ours: list[float] = []
    peer: list[float] = []
    execute = str(Path(sys.executable).parent / "jupyter-execute")
    with tempfile.TemporaryDirectory(prefix="bench-run-many-") as tmp:
        root = Path(tmp)
        write_notebook(trivial_notebook(args.run_cells), root / "many.ipynb")
        for i in range(args.run_repeat):
            seconds, _ = timed_command([sys.executable, "-m", "studiorunner_cli", "run", "--local", "many.ipynb",
                                        "--root", str(root), "-o", str(root / f"ours-{i}.ipynb")], cwd=root, timeout=900)
            ours.append(seconds)
            seconds, _ = timed_command([execute, "many.ipynb", f"--output=nbclient-{i}"], cwd=root, timeout=900)
            peer.append(seconds)
    ratio = median(ours) / median(peer)
    result.rows.append(Row(f"wall time, {args.run_cells} trivial cells, whole process (median of {args.run_repeat})",
                           median(ours), "s", "jupyter-execute", median(peer), target="<= 1.5x", met=ratio <= 1.5))
    result.details.update({"many_cells": args.run_cells, "many_ours_s": ours, "many_nbclient_s": peer})


def _progress_cost(result: BenchResult, cells: int = 20000) -> None:
    """What progress.json costs per cell: the reporter's two callbacks per cell, writing to a
    store that takes as long as a small S3 PUT to moto in process (measured once here)."""
    import boto3
    from moto import mock_aws
    from nbformat.v4 import new_code_cell, new_output

    from studiorunner.progress import ProgressReporter

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bench-progress")

        def write(uri: str, data: bytes) -> None:
            s3.put_object(Bucket="bench-progress", Key="runs/x/progress.json", Body=data)

        reporter = ProgressReporter(write, "s3://bench-progress/runs/x/progress.json", run_id="x", cells_total=cells)
        cell = new_code_cell("x = 1", outputs=[new_output("stream", name="stdout", text="line\n" * 3)])
        started = time.perf_counter()
        for index in range(cells):
            reporter.cell_started(index, cell)
            reporter.cell_finished(index, cell, "completed")
        elapsed = time.perf_counter() - started
    result.rows.append(Row(f"progress.json: cost per cell ({cells} cells, {reporter.writes} writes)",
                           elapsed / cells * 1e6, "us", note="callbacks + throttled PUT to moto S3"))
