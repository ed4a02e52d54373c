"""``studio-runner``: run notebooks through the Studio Runner state machine, on AWS or locally.

    studio-runner run NOTEBOOK [-p NAME VALUE]… [-r NAME VALUE]… [-f params.yaml] [--target T]
                      [--command CMD]… [--wait] [-o OUT] [--log-output] [--html] [--local]
    studio-runner status RUN | watch RUN | logs RUN | stop RUN | download RUN [-o OUT]
    studio-runner list [--target T] [--status S] [--since WHEN] [--notebook NAME]
    studio-runner local up [--root DIR]

Exit status: 0 success; 1 the run (or the command) failed, its error printed once;
2 a usage error, found before anything starts; 130 after Ctrl-C (143 after SIGTERM).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studiorunner_cli.parameters import UsageError

TARGET_TYPES = ("studio-space", "studio-classic", "notebook-instance", "jupyter")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 already; keep its one-line message
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _where(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the runs are")
    group.add_argument("--local", action="store_true",
                       help="the local stack: a `local up` one if running, else one embedded in this command")
    group.add_argument("--stack", default=None, help="the deployed stack's name (default: StudioRunner)")
    group.add_argument("--profile", help="AWS profile (default: the usual credentials)")
    group.add_argument("--region", help="AWS region (default: the profile's)")


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The ``run`` verb's flags (kept in one place so other verbs/options can extend it)."""
    run.add_argument("notebook", nargs="?", help="a local .ipynb (uploaded), an s3:// URI, or with --remote a path in the target")
    run.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a parameter, typed as papermill types it (True/False/None, int, float, else text)")
    run.add_argument("-r", "--parameters-raw", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a parameter kept as a string")
    run.add_argument("-f", "--parameters-file", action="append", default=[], metavar="FILE", help="parameters from a YAML file")
    run.add_argument("-y", "--parameters-yaml", action="append", default=[], metavar="YAML", help="parameters as YAML text")
    run.add_argument("--target", help="a configured target (local: what the stand-in plays: " + ", ".join(TARGET_TYPES) + ")")
    run.add_argument("--command", action="append", default=[], dest="commands", metavar="CMD",
                     help="a shell command to run in a Jupyter terminal first (repeatable)")
    run.add_argument("--wait", action="store_true", help="follow the run until it ends (always, with an embedded local stack)")
    run.add_argument("-o", "--output", help="write the executed notebook here (a file, or a folder to write into)")
    run.add_argument("--log-output", action="store_true", help="print the cells' outputs when the run ends")
    run.add_argument("--html", action="store_true", help="also render the executed notebook as HTML")
    run.add_argument("--input", help="a payload JSON file, as `aws stepfunctions start-execution` takes it")
    run.add_argument("--remote", action="store_true", help="NOTEBOOK is a path in the target's file tree")
    run.add_argument("--kernel", help="kernel name (default: the notebook's)")
    run.add_argument("--cell-timeout", type=float, metavar="SECONDS")
    run.add_argument("--run-timeout", type=float, metavar="SECONDS")
    run.add_argument("--allow-errors", action="store_true", help="carry on past cell errors")
    run.add_argument("--parameter-sets", metavar="FILE",
                     help="a JSON or YAML list of parameter objects: one run per set (a batch); "
                          "-o is then a folder with one executed notebook per set")
    run.add_argument("--max-concurrency", type=int, metavar="N",
                     help="with --parameter-sets: at most N runs at once (each target's own limit still holds)")
    local = run.add_argument_group("local stack only")
    local.add_argument("--root", help="the folder the stand-in serves as home (default: the notebook's folder)")
    local.add_argument("--budget", type=float, help="seconds per RunCells invocation (default: a Lambda's 900 s)")
    local.add_argument("--jupyter", metavar="URL",
                       help="run on the Jupyter server at URL instead of a stand-in (token: $JUPYTER_TOKEN)")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="studio-runner", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="verb", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="start a run (and follow it with --wait)")
    add_run_arguments(run)
    _where(run)
    for verb, text in (("status", "how a run stands"), ("watch", "follow a run live"), ("logs", "the cells' outputs as text"),
                       ("stop", "stop a run (it is then cleaned up as any aborted run)")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("run", help="the run id (the execution's name) or its ARN")
        _where(p)
    download = sub.add_parser("download", help="the executed notebook (and commands.log, HTML)")
    download.add_argument("run")
    download.add_argument("-o", "--output", help="a file, or a folder to write into (default: ./<run id>.ipynb)")
    _where(download)
    listing = sub.add_parser("list", help="past and running runs, newest first")
    listing.add_argument("--target")
    listing.add_argument("--status", type=str.upper, choices=("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"))
    listing.add_argument("--since", help="an ISO date/time, or an age: 30m, 12h, 7d")
    listing.add_argument("--notebook", help="only runs of this notebook (path or name)")
    listing.add_argument("--max", type=int, default=20, help="at most this many (default 20)")
    _where(listing)
    local = sub.add_parser("local", help="a long-lived local stack")
    local_sub = local.add_subparsers(dest="local_verb", required=True, parser_class=_Parser)
    up = local_sub.add_parser("up", help="keep a local stack up (Ctrl-C to stop)")
    up.add_argument("--root", default=".", help="the folder the stand-in serves as home (default: .)")
    up.add_argument("--target", choices=TARGET_TYPES, default="studio-space")
    up.add_argument("--port", type=int, default=0, help="port for the AWS APIs on 127.0.0.1 (default: any free one)")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.verb == "run":
            from studiorunner_cli.run import check_run_args, run

            plan = check_run_args(args)  # every usage error before anything starts
            return run(args, plan)
        if args.verb == "local":
            from studiorunner_cli.local import up

            root = Path(args.root).expanduser().resolve()
            if not root.is_dir():
                raise UsageError(f"--root {args.root}: no such folder")
            return up(root=root, flavor=args.target, port=args.port)
        from studiorunner_cli import verbs

        if args.verb == "list":
            verbs.check_since(args.since)
        return verbs.dispatch(args)
    except UsageError as exc:
        print(f"studio-runner: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - one line, no traceback, for anything unforeseen
        from studiorunner_cli.runs import RunsError

        if isinstance(exc, RunsError):
            print(f"studio-runner: {exc}", file=sys.stderr)
        else:
            print(f"studio-runner: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
