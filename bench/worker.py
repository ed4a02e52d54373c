"""``python -m bench.worker``: one measurement in a fresh interpreter, so its peak RSS is its own.

Reads a JSON task on stdin (it may hold the stand-in's token: stdin, unlike argv, is not
visible in ``ps``) and prints one JSON line with the figures on stdout.

Tasks:
  {"mode": "output-ours", "base_url", "token", "code"}  one cell through our client
  {"mode": "output-nbclient", "code"}                    the same cell through nbclient
  {"mode": "phases", "root", "notebook"}                 a local run, timed part by part
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

_T0 = time.perf_counter()


def _rss_kib() -> int:
    """The current resident set size (KiB)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() // 1024


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _cell_figures(cell: Any) -> dict[str, Any]:
    from bench.common import stream_text

    text = stream_text(cell, "stdout")
    meta = cell.get("metadata", {}).get("studio_runner", {})
    return {"stdout_chars": len(text), "outputs": len(cell.get("outputs", [])),
            "stderr": stream_text(cell, "stderr")[:300],
            "truncated_flag": bool(meta.get("output_truncated"))}


def output_ours(task: dict[str, Any]) -> dict[str, Any]:
    from bench.common import OurKernel, code_notebook
    from studiorunner.jupyter.connection import KernelChannel

    sizes: list[int] = []

    class SizeRecordingChannel(KernelChannel):
        """Notes the size of each stream message: how the kernel batched the output."""

        def recv(self, timeout: float) -> dict[str, Any] | None:
            msg = super().recv(timeout)
            if msg and msg.get("msg_type") == "stream":
                sizes.append(len(msg["content"].get("text", "")))
            return msg

    with OurKernel(task["base_url"], task["token"], channel_factory=SizeRecordingChannel.open) as kernel:
        nb = code_notebook([task["code"]])
        rss_before, peak_before = _rss_kib(), _peak_kib()
        seconds = kernel.run(nb, timeout=task.get("timeout", 300))
        peak = _peak_kib()
        return {"seconds": seconds, "rss_before_kib": rss_before, "peak_before_kib": peak_before,
                "peak_kib": peak, "subprotocol": kernel.channel.subprotocol if kernel.channel else None,
                "stream_messages": len(sizes), "largest_stream_message_bytes": max(sizes, default=0),
                **_cell_figures(nb.cells[0])}


def output_nbclient(task: dict[str, Any]) -> dict[str, Any]:
    from bench.common import code_notebook, nbclient_kernel

    nb = code_notebook([task["code"]])
    with nbclient_kernel() as execute:
        rss_before, peak_before = _rss_kib(), _peak_kib()
        seconds = execute(nb)
        peak = _peak_kib()
        return {"seconds": seconds, "rss_before_kib": rss_before, "peak_before_kib": peak_before,
                "peak_kib": peak, **_cell_figures(nb.cells[0])}


def phases(task: dict[str, Any]) -> dict[str, Any]:
    """What ``studio-runner run --local`` does, with a stopwatch on each part."""
    from pathlib import Path

    t_start = time.perf_counter()
    import localstudio  # noqa: F401
    import studiorunner.steps  # noqa: F401
    from localstudio.local_stack import STEPS, LocalStack
    from localstudio.standin import StandIn

    imported = time.perf_counter()
    import importlib

    step_seconds: dict[str, float] = {}
    step_calls: dict[str, int] = {}
    originals = {}
    for state, module_name in STEPS.items():
        module = importlib.import_module(f"studiorunner.steps.{module_name}")
        originals[module] = module.handler

        def timed(event: Any, context: Any, _h=module.handler, _s=state) -> Any:
            started = time.perf_counter()
            try:
                return _h(event, context)
            finally:
                step_seconds[_s] = step_seconds.get(_s, 0.0) + time.perf_counter() - started
                step_calls[_s] = step_calls.get(_s, 0) + 1

        module.handler = timed  # LocalStack looks handlers up when it starts
    root = Path(task["root"])
    out: dict[str, Any] = {}
    try:
        t = time.perf_counter()
        with StandIn(root=root, flavor=task.get("flavor", "studio-space")) as standin:
            out["standin_start"] = time.perf_counter() - t
            t = time.perf_counter()
            with LocalStack(standin) as stack:
                out["local_stack_setup"] = time.perf_counter() - t
                t = time.perf_counter()
                execution = stack.run({"notebook": task["notebook"]})
                out["execution"] = time.perf_counter() - t
                if not execution.succeeded:
                    raise RuntimeError(f"run failed: {execution.error}: {execution.cause}")
                t = time.perf_counter()
            out["local_stack_teardown"] = time.perf_counter() - t
            t = time.perf_counter()
        out["standin_stop"] = time.perf_counter() - t
    finally:
        for module, handler in originals.items():
            module.handler = handler
    out.update(imports=imported - t_start, interpreter_to_main=t_start - _T0,
               steps=step_seconds, step_calls=step_calls, total_in_process=time.perf_counter() - _T0)
    return out


MODES = {"output-ours": output_ours, "output-nbclient": output_nbclient, "phases": phases}


def main() -> None:
    task = json.loads(sys.stdin.read())
    result = MODES[task["mode"]](task)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
