"""``run``: the whole ``python -m localstudio run`` of a 3-cell notebook vs ``papermill`` on it.

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

from .common import BenchResult, Row, code_notebook, median, timed_command, worker, write_notebook

CELLS = ["import math\nx = math.sqrt(2)", "y = [i * i for i in range(1000)]", "print(x, sum(y))"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-repeat", type=int, default=2, help="runs of each command (default 2)")


def run(args: argparse.Namespace) -> BenchResult:
    result = BenchResult("run")
    ours: list[float] = []
    peer: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        root = Path(tmp)
        source = write_notebook(code_notebook(CELLS), root / "three.ipynb")
        for i in range(args.run_repeat):
            seconds, proc = timed_command(
                [sys.executable, "-m", "localstudio", "run", "three.ipynb", "--root", str(root),
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
    return result
