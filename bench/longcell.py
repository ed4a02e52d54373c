"""``longcell``: a cell that outlives several RunCells invocations — is every byte it printed kept?

Method. The real state machine runs locally (``LocalStack``, studio-space stand-in)
with ``run_cells_budget`` seconds per RunCells invocation (default 2 s, as a short
Lambda timeout would give). The notebook has a short cell, then a cell that prints
``--long-lines`` numbered lines of known content evenly over ``--long-seconds`` (default
8 s), then a short cell. Each invocation stops at its budget while the cell keeps
running; the next one reconnects with the same kernel ``session_id`` and jupyter_server
replays what was printed in between. The output notebook read back from S3 is checked:
bytes of the long cell's stdout vs bytes printed, and the lines exact and in order.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import nbformat

from localstudio.local_stack import Execution, LocalStack
from localstudio.standin import StandIn
from studiorunner.execution.executor import Cursor

from .common import BenchResult, Row, code_notebook, stream_text, write_notebook

LINE_WIDTH = 100  # bytes per printed line, newline included


def expected_lines(count: int) -> list[str]:
    return [f"{i:08d} " + "y" * (LINE_WIDTH - 10) + "\n" for i in range(count)]


def long_cell(count: int, seconds: float) -> str:
    return ("import sys, time\n"
            f"for i in range({count}):\n"
            f"    sys.stdout.write(f'{{i:08d}} ' + 'y' * {LINE_WIDTH - 10} + '\\n')\n"
            f"    if i % 50 == 49:\n"
            f"        sys.stdout.flush()\n"
            f"        time.sleep({seconds / max(1, count // 50):.4f})\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--long-seconds", type=float, default=8.0, help="how long the long cell prints (default 8)")
    parser.add_argument("--long-lines", type=int, default=20000, help="lines it prints, 100 bytes each (default 20000)")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds per RunCells invocation (default 2)")


_STRICT_FROM_DICT = Cursor.from_dict.__func__  # type: ignore[attr-defined]


def _lenient_from_dict(cls: type[Cursor], data: dict[str, Any]) -> Cursor:
    known = {f.name for f in dataclasses.fields(Cursor)}
    return _STRICT_FROM_DICT(cls, {k: v for k, v in data.items() if k in known})


def _run(nb: Any, budget: float) -> tuple[Execution, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-longcell-") as tmp:
        root = Path(tmp)
        write_notebook(nb, root / "longcell.ipynb")
        with StandIn(root=root, flavor="studio-space") as standin, \
                LocalStack(standin, run_cells_budget=budget) as stack:
            execution = stack.run({"notebook": "longcell.ipynb"}, timeout=300)
            out = None
            if execution.succeeded:
                out = nbformat.reads(stack.read_output(execution.output["output_notebook"]).decode(), as_version=4)
    return execution, out


def run(args: argparse.Namespace) -> BenchResult:
    result = BenchResult("longcell")
    lines = expected_lines(args.long_lines)
    printed = sum(len(line) for line in lines)
    nb = code_notebook(["print('before')", long_cell(args.long_lines, args.long_seconds), "print('after')"])
    shipped_error = None
    execution, out = _run(nb, args.budget)
    if not execution.succeeded and "Cursor.__init__() got an unexpected keyword" in (execution.cause or ""):
        # Known bug (reported): RunCells returns its cursor with "cells_total" added, and the
        # next invocation's Cursor.from_dict refuses the unknown key. Measure the replay
        # anyway with the key dropped, and say so in the table.
        shipped_error = f"{execution.error}: {(execution.cause or '')[:160]}"
        with mock.patch.object(Cursor, "from_dict", classmethod(_lenient_from_dict)):
            execution, out = _run(nb, args.budget)
    if not execution.succeeded:
        raise RuntimeError(f"the run failed: {execution.error}: {execution.cause}")
    text = stream_text(out.cells[1], "stdout")
    received = len(text.encode())
    exact = text == "".join(lines)
    run_cells = sum(1 for name in execution.invocations if name.endswith("run-cells"))
    cell_meta = out.cells[1].metadata
    duration = cell_meta.get("papermill", {}).get("duration")
    result.rows += [
        Row(f"output bytes received / printed ({printed / 1e6:.1f} MB over {args.long_seconds:g} s)",
            received / printed * 100, "%", target="100 %", met=exact,
            note=("every line present, in order, once" if exact else
                  f"received {received} of {printed} bytes; lines intact and in order: {exact}")
                 + ("; cell marked output_lost" if cell_meta.get("studio_runner", {}).get("output_lost") else "")),
        Row(f"RunCells invocations ({args.budget:g} s budget each)", run_cells, "",
            target=">= 3", met=run_cells >= 3,
            note=f"the long cell's recorded duration {duration:.1f} s" if isinstance(duration, (int, float)) else ""),
        Row("runs as shipped (without the bench's cursor work-around)", float(shipped_error is None), "bool",
            target="1", met=shipped_error is None, note=shipped_error or ""),
        Row("other cells' output intact", float(stream_text(out.cells[0]) == "before\n"
                                                and stream_text(out.cells[2]) == "after\n"), "bool"),
    ]
    result.details = {"shipped_error": shipped_error, "printed_bytes": printed, "received_bytes": received, "exact": exact,
                      "invocations": execution.invocations, "output": execution.output}
    return result
