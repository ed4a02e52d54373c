"""``output``: one cell printing 50 MiB — throughput and the client's peak RSS, vs nbclient.

Method. The stand-in runs with its iopub rate limits raised (jupyter_server's defaults,
1 MB/s and 1000 msg/s, which Studio keeps unless an admin changes them, would drop
most of the output: our recorder flags that as ``output_truncated`` in the cell).
Each client runs in its own fresh interpreter (``bench.worker``) with a kernel already
started and warmed up; the clock covers the cell only: from our first send to the
cell's end. Memory is the worker's own ``ru_maxrss`` (peak RSS) — with, for context,
its RSS just before the cell (the interpreter, imports, the open socket). Bytes
received are counted in the recorded notebook output, against the bytes printed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from localstudio.standin import StandIn

from .common import BenchResult, Row, worker

MIB = 1024 * 1024
LINE = 1024  # bytes per printed line, newline included


def cell_source(mib: int) -> str:
    lines = mib * MIB // LINE
    return ("import sys\n"
            f"chunk = 'x' * {LINE - 1} + '\\n'\n"
            f"for _ in range({lines}):\n"
            "    sys.stdout.write(chunk)\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mib", type=int, default=50, help="MiB the output cell prints (default 50)")
    parser.add_argument("--no-nbclient", action="store_true", help="skip the nbclient comparison")


def _rows(figures: dict, printed: int) -> tuple[float, float, float, float]:
    mibps = printed / MIB / figures["seconds"]
    peak = figures["peak_kib"] / 1024
    before = figures["rss_before_kib"] / 1024
    received = figures["stdout_chars"] / printed * 100
    return mibps, peak, before, received


def run(args: argparse.Namespace) -> BenchResult:
    result = BenchResult("output")
    printed = args.mib * MIB // LINE * LINE
    code = cell_source(args.mib)
    with tempfile.TemporaryDirectory(prefix="bench-output-") as tmp, \
            StandIn(root=Path(tmp), flavor="jupyter", iopub_data_rate_limit=1e12,
                    iopub_msg_rate_limit=1e9) as standin:
        ours = worker({"mode": "output-ours", "base_url": standin.jupyter_url, "token": standin.token,
                       "code": code})
    peer = None
    if not args.no_nbclient:
        peer = worker({"mode": "output-nbclient", "code": code})

    mibps, peak, before, received = _rows(ours, printed)
    p_mibps = p_peak = p_before = p_received = None
    if peer:
        p_mibps, p_peak, p_before, p_received = _rows(peer, printed)
    result.rows += [
        Row(f"throughput, one cell printing {args.mib} MiB", mibps, "MiB/s", "nbclient" if peer else None,
            p_mibps, ">= 10 MiB/s", mibps >= 10,
            note=f"ours {ours['seconds']:.2f} s" + (f", nbclient {peer['seconds']:.2f} s" if peer else "")),
        Row("client peak RSS (ru_maxrss)", peak, "MiB", "nbclient" if peer else None, p_peak,
            "< 200 MiB", peak < 200,
            note=f"RSS before the cell: ours {before:.0f} MiB" + (f", nbclient {p_before:.0f} MiB" if peer else "")
            + f"; the kernel sent the output in {ours['stream_messages']} stream message(s), the largest "
              f"{ours['largest_stream_message_bytes'] / MIB:.1f} MiB"),
        Row("output received / printed", received, "%", "nbclient" if peer else None, p_received,
            "100 %", ours["stdout_chars"] == printed and not ours["truncated_flag"],
            note=(ours["stderr"] or "") if ours["stdout_chars"] != printed else ""),
    ]
    result.details = {"printed_bytes": printed, "ours": ours, "nbclient": peer,
                      "iopub_limits": {"data_rate": 1e12, "msg_rate": 1e9}}
    return result
