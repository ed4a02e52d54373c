"""``python -m localstudio``: run a notebook through the state machine against the local stand-in.

    python -m localstudio run NOTEBOOK [-p NAME=VALUE]... [-o OUTPUT] [--target TYPE] [--root DIR]
    python -m localstudio run --input payload.json
    python -m localstudio serve [--root DIR] [--target TYPE] [--port N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

TARGET_TYPES = ("studio-space", "studio-classic", "notebook-instance", "jupyter")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m localstudio", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a notebook (or commands) through the local state machine")
    run.add_argument("notebook", nargs="?", help="the notebook to run (a path; uploaded if outside --root)")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                     help="a parameter; VALUE is JSON where it parses as JSON, else a string")
    run.add_argument("-o", "--output", help="where to write the executed notebook (default: build/runs/<run id>/<name>)")
    run.add_argument("--input", help="a payload JSON file, as given to `aws stepfunctions start-execution`")
    run.add_argument("--target", choices=TARGET_TYPES, default="studio-space", help="what the stand-in plays (default: studio-space)")
    run.add_argument("--root", default=".", help="the folder the stand-in serves as the user's home (default: .)")
    run.add_argument("--command", action="append", default=[], dest="commands", metavar="SHELL",
                     help="a shell command to run in a Jupyter terminal before the notebook")
    run.add_argument("--cell-timeout", type=float, help="timeouts.cell_seconds")
    run.add_argument("--allow-errors", action="store_true", help="carry on past cell errors")
    run.add_argument("--kernel", help="kernel name (default: the notebook's kernelspec)")
    run.add_argument("--budget", type=float, help="seconds per RunCells invocation (default: a Lambda's 900 s)")

    serve = sub.add_parser("serve", help="keep the Studio stand-in up for manual use")
    serve.add_argument("--root", default=".")
    serve.add_argument("--target", choices=TARGET_TYPES, default="studio-space")
    serve.add_argument("--port", type=int, default=8890)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        from localstudio.standin import serve

        serve(Path(args.root).resolve(), args.target, args.port)
        return 0
    return run(args)


def _payload(args: argparse.Namespace, root: Path) -> tuple[dict[str, Any], Path | None]:
    """The start-execution payload, and a notebook file to upload first (if outside root)."""
    from studiorunner.parameters import parse_cli_value

    upload = None
    if args.input:
        payload = json.loads(Path(args.input).read_text())
    else:
        payload = {}
        if args.notebook:
            path = Path(args.notebook).resolve()
            if not path.is_file():
                raise SystemExit(f"error: NotebookNotFound: no such file: {args.notebook}")
            try:
                payload["notebook"] = path.relative_to(root).as_posix()
            except ValueError:
                upload = path
                payload["notebook"] = f"studio-runner/uploads/{uuid.uuid4().hex[:8]}/{path.name}"
        params = {}
        for item in args.parameter:
            name, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"error: -p takes NAME=VALUE, got {item!r}")
            params[name] = parse_cli_value(value)
        if params:
            payload["parameters"] = params
        if args.commands:
            payload["commands"] = args.commands
        if args.cell_timeout:
            payload.setdefault("timeouts", {})["cell_seconds"] = args.cell_timeout
        if args.allow_errors:
            payload["allow_errors"] = True
        if args.kernel:
            payload["kernel"] = {"name": args.kernel}
    return payload, upload


class _Progress:
    """Prints each cell as it finishes, read from the live output notebook in S3."""

    def __init__(self, stack, uri: str | None) -> None:
        self.stack, self.uri, self.seen = stack, uri, set()
        self.last = 0.0

    def __call__(self) -> None:
        if not self.uri or time.monotonic() - self.last < 0.25:
            return
        self.last = time.monotonic()
        try:
            import nbformat

            nb = nbformat.reads(self.stack.read_output(self.uri).decode(), as_version=4)
        except Exception:
            return
        from studiorunner.notebook import code_cells_to_run

        code = [(i, nb.cells[i]) for i in code_cells_to_run(nb)]
        for n, (i, cell) in enumerate(code, 1):
            meta = cell.metadata.get("papermill", {})
            status = meta.get("status")
            if i in self.seen or status not in ("completed", "failed", "skipped", "aborted"):
                continue
            self.seen.add(i)
            duration = meta.get("duration")
            secs = f"{duration:.2f}s" if isinstance(duration, (int, float)) else "-"
            print(f"  [{n}/{len(code)}] cell {i:<3} {status:<9} {secs}", flush=True)


def run(args: argparse.Namespace) -> int:
    from localstudio.local_stack import LocalStack
    from localstudio.standin import StandIn

    root = Path(args.root).resolve()
    payload, upload = _payload(args, root)
    started = time.monotonic()
    with StandIn(root=root, flavor=args.target) as standin, LocalStack(
        standin, run_cells_budget=args.budget
    ) as stack:
        if upload is not None:
            _upload(standin, payload["notebook"], upload)
        print(f"Studio stand-in ({args.target}) serving {root}", flush=True)
        arn = stack.start(payload)
        run_id = arn.rsplit(":", 1)[-1]
        print(f"Execution {run_id} started: {json.dumps(payload)[:200]}", flush=True)
        source = payload.get("notebook") or payload.get("notebook_s3")
        uri = None
        if source:
            from studiorunner.notebook import output_key

            uri = f"s3://{os.environ['STUDIO_RUNNER_BUCKET']}/{output_key(run_id, source)}"
        execution = stack.wait(arn, on_poll=_Progress(stack, uri))
        output_uri = (execution.output or {}).get("output_notebook") or uri
        local_path = None
        if output_uri:
            try:
                body = stack.read_output(output_uri)
            except Exception:
                body = None
            if body is not None:
                local_path = Path(args.output) if args.output else Path("build/runs") / run_id / Path(output_uri).name
                local_path.parent.mkdir(parents=True, exist_ok=True)
                local_path.write_bytes(body)
    elapsed = time.monotonic() - started
    if execution.succeeded:
        out = execution.output or {}
        print(f"SUCCEEDED in {elapsed:.1f}s: {out.get('cells_executed', 0)}/{out.get('cells_total', 0)} cells executed")
        for command in out.get("commands", []):
            print(f"  $ {command['command']}  → exit {command['exit_status']}")
        if local_path:
            print(f"Executed notebook: {local_path}")
        return 0
    print(f"FAILED in {elapsed:.1f}s: {execution.error}: {execution.cause}", file=sys.stderr)
    if local_path:
        print(f"Executed notebook (with the error marked): {local_path}", file=sys.stderr)
    return 1


def _upload(standin, path_in_root: str, source: Path) -> None:
    """Put a notebook from outside --root into the stand-in's tree through the contents API."""
    from studiorunner.jupyter.http import JupyterHTTP
    from studiorunner.jupyter.rest import JupyterClient

    import nbformat

    client = JupyterClient(JupyterHTTP(standin.jupyter_url, token=standin.token))
    client.write_notebook(path_in_root, nbformat.read(source, as_version=4))
