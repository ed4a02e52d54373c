"""``python -m bench.commandlog``: peak memory of RunCommands' ``commands.log`` for a command
printing 100 MB, before (the whole log in a ``StringIO``, then one PutObject) and after (the
log streamed to S3 as a multipart upload, issue 21.3).

    .venv/bin/python -m bench.commandlog --mb 100
    .venv/bin/python -m bench.commandlog --mb 100 --unicode   # one non-ASCII character per line

Each variant runs in a fresh interpreter (``python -m bench.commandlog --worker before|after``)
against one moto S3 server in a process of its own (so the stored object is not counted): the
output goes through the same path as RunCommands' — ``terminal.commands._RedactedLines``
(whole lines, redacted) into the log sink, in 64 KiB chunks as a terminal WebSocket delivers
them — then to S3 through boto3. Reported per variant: the Python heap's peak during the log
(``tracemalloc``), the process's peak RSS (``ru_maxrss``) and its growth over the RSS after
imports, the bytes stored. No peer: the figure is before/after on the same machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "bench-commandlog"
MIB = 1024 * 1024


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _chunks(total_bytes: int, unicode: bool):
    """Terminal output: numbered 1 KiB lines, delivered in 64 KiB chunks that cut lines anywhere."""
    filler = ("é" if unicode else "x") * 1000
    pending, sent, number = [], 0, 0
    while sent < total_bytes:
        line = f"{number:010d} {filler}\n"
        pending.append(line)
        sent += len(line.encode())
        number += 1
        if len(pending) == 64:
            yield "".join(pending)
            pending = []
    if pending:
        yield "".join(pending)


def worker(variant: str, endpoint: str, mb: int, unicode: bool) -> dict:
    sys.path.insert(0, str(ROOT / "lambdas"))
    import boto3

    from studiorunner.store import S3NotebookStore, open_text_upload
    from studiorunner.terminal.commands import _RedactedLines

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="x", aws_secret_access_key="x")
    store = S3NotebookStore(s3)
    uri = f"s3://{BUCKET}/{variant}-{os.getpid()}/commands.log"
    s3.head_bucket(Bucket=BUCKET)  # connection and botocore loaded before the baseline
    baseline = _rss_mib()
    started = time.perf_counter()
    tracemalloc.start()
    if variant == "before":  # run/run_commands.py before issue 21.3
        text = io.StringIO()
        lines = _RedactedLines(text)
        for chunk in _chunks(mb * MIB, unicode):
            lines.write(chunk)
        lines.finish()
        store.write_bytes(uri, text.getvalue().encode(), content_type="text/plain; charset=utf-8")
    else:
        sink = open_text_upload(store, uri, content_type="text/plain; charset=utf-8")
        lines = _RedactedLines(sink)
        for chunk in _chunks(mb * MIB, unicode):
            lines.write(chunk)
        lines.finish()
        sink.close()
    _, heap_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    seconds = time.perf_counter() - started
    size = s3.head_object(Bucket=BUCKET, Key=uri.split("/", 3)[3])["ContentLength"]
    peak = _rss_mib()
    return {"variant": variant, "heap_peak_mib": heap_peak / MIB, "rss_peak_mib": peak,
            "rss_growth_mib": peak - baseline, "stored_mib": size / MIB, "seconds": seconds}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.commandlog", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100, help="MiB the command prints (default 100)")
    parser.add_argument("--unicode", action="store_true", help="one non-ASCII character per output line")
    parser.add_argument("--worker", choices=["before", "after"], help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.endpoint, args.mb, args.unicode)))
        return

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom moto.server import ThreadedMotoServer\n"
         f"s = ThreadedMotoServer(ip_address='127.0.0.1', port={port}); s.start()\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
        for _ in range(100):
            try:
                s3.create_bucket(Bucket=BUCKET)
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                time.sleep(0.1)
        results = []
        for variant in ("before", "after"):
            extra = ["--unicode"] if args.unicode else []
            out = subprocess.run([sys.executable, "-m", "bench.commandlog", "--worker", variant, "--endpoint", endpoint,
                                  "--mb", str(args.mb), *extra], cwd=ROOT, capture_output=True, text=True, check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.terminate()
        server.wait(10)
    print(f"commands.log of a command printing {args.mb} MiB{' (non-ASCII)' if args.unicode else ''}:")
    print(f"{'':8} {'heap peak':>10} {'RSS peak':>10} {'RSS growth':>11} {'stored':>8} {'seconds':>8}")
    for r in results:
        print(f"{r['variant']:8} {r['heap_peak_mib']:8.1f} M {r['rss_peak_mib']:8.1f} M {r['rss_growth_mib']:9.1f} M "
              f"{r['stored_mib']:6.1f} M {r['seconds']:8.2f}")
    before, after = results
    print(f"heap peak after/before: {after['heap_peak_mib'] / before['heap_peak_mib']:.3f}")


if __name__ == "__main__":
    main()
