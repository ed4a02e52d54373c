"""``python -m localstudio``: run a notebook through the state machine against the local stand-in.

    python -m localstudio run NOTEBOOK [-p NAME=VALUE]... [-o OUTPUT] [--target TYPE] [--root DIR]
    python -m localstudio run --jupyter URL NOTEBOOK [-p NAME=VALUE]... [-o OUTPUT]
    python -m localstudio run --input payload.json
    python -m localstudio serve [--root DIR] [--target TYPE] [--port N]

``run`` is ``studio-runner run --local`` with this command's historical flags (``-p NAME=VALUE``
with JSON values); both share one implementation (studiorunner_cli).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TARGET_TYPES = ("studio-space", "studio-classic", "notebook-instance", "jupyter")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m localstudio", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a notebook (or commands) through the local state machine")
    run.add_argument("notebook", nargs="?", help="the notebook to run (a path; with --jupyter, a path in that server)")
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                     help="a parameter; VALUE is JSON where it parses as JSON, else a string")
    run.add_argument("-o", "--output", help="the executed notebook: a file, or a folder to write into")
    run.add_argument("--input", help="a payload JSON file, as given to `aws stepfunctions start-execution`")
    run.add_argument("--target", choices=TARGET_TYPES, help="what the stand-in plays (default: studio-space)")
    run.add_argument("--root", help="the folder the stand-in serves as the user's home (default: the notebook's folder)")
    run.add_argument("--jupyter", metavar="URL", help="run on the Jupyter server at URL (token: $JUPYTER_TOKEN), no stand-in")
    run.add_argument("--command", action="append", default=[], dest="commands", metavar="SHELL",
                     help="a shell command to run in a Jupyter terminal before the notebook")
    run.add_argument("--cell-timeout", type=float, help="timeouts.cell_seconds")
    run.add_argument("--run-timeout", type=float, help="timeouts.run_seconds")
    run.add_argument("--allow-errors", action="store_true", help="carry on past cell errors")
    run.add_argument("--kernel", help="kernel name (default: the notebook's kernelspec)")
    run.add_argument("--budget", type=float, help="seconds per RunCells invocation (default: a Lambda's 900 s)")
    run.add_argument("--html", action="store_true", help="also render the executed notebook as HTML")
    run.add_argument("--log-output", action="store_true", help="print the cells' outputs at the end")

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


def _cli_value(text: str):
    """A ``-p NAME=VALUE`` value: JSON where it parses as JSON, else the text (studiorunner.parameters'
    rule, kept here so a usage error is found without importing nbformat)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def run(args: argparse.Namespace) -> int:
    from studiorunner_cli.main import EXIT_USAGE
    from studiorunner_cli.parameters import UsageError
    from studiorunner_cli.run import check_run_args
    from studiorunner_cli.run import run as run_plan

    yamls = []
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"python -m localstudio: error: -p takes NAME=VALUE, got {item!r}", file=sys.stderr)
            return EXIT_USAGE
        yamls.append(json.dumps({name: _cli_value(value)}))
    shared = argparse.Namespace(
        notebook=args.notebook, parameters=[], parameters_raw=[], parameters_file=[], parameters_yaml=yamls,
        target=args.target, commands=args.commands, wait=True, output=args.output, log_output=args.log_output,
        html=args.html, input=args.input, remote=False, kernel=args.kernel, cell_timeout=args.cell_timeout,
        run_timeout=args.run_timeout, allow_errors=args.allow_errors, root=args.root, budget=args.budget,
        jupyter=args.jupyter, local=True, stack=None, profile=None, region=None,
    )
    try:
        plan = check_run_args(shared)
    except UsageError as exc:
        print(f"python -m localstudio: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    plan.mode = "embedded"  # this command always brings its own stand-in (or --jupyter server)
    try:
        return run_plan(shared, plan)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
