"""``studio-runner``: run notebooks through the Studio Runner state machine, on AWS or locally.

    studio-runner run NOTEBOOK [OUT] [-p NAME VALUE]… [-r NAME VALUE]… [-f params.yaml] [--target T]
                      [--command CMD]… [--wait] [-o OUT] [--log-output] [--html] [--report] [--local]
    studio-runner inspect NOTEBOOK
    studio-runner status RUN | watch RUN | logs RUN | stop RUN | download RUN [-o OUT]
    studio-runner list [--target T] [--status S] [--since WHEN] [--notebook NAME]
    studio-runner local up [--root DIR]
    studio-runner schedule create NAME NOTEBOOK (--cron EXPR | --rate EXPR | --at ISO) […]
    studio-runner schedule list | show NAME | pause NAME | resume NAME | update NAME […] | delete NAME | run NAME
    studio-runner lab [--local] [--root DIR] [--port N] [--no-browser]

Exit status: 0 success; 1 the run (or the command) failed, its error printed once;
2 a usage error, found before anything starts; 130 after Ctrl-C (143 after SIGTERM).
"""

from __future__ import annotations

import argparse
import sys

from studiorunner_cli import inspection, lab, local, recovery, run, verbs
from studiorunner_cli.parameters import UsageError
from studiorunner_cli.schedules import cli as schedule
from studiorunner_cli.verb import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, Parser, Verb, options_from

#: Every verb, in the order ``--help`` lists them: one line each (see verb.py to add one).
VERBS: tuple[Verb, ...] = (
    run.VERB,
    inspection.VERB,
    verbs.STATUS,
    verbs.WATCH,
    verbs.LOGS,
    verbs.STOP,
    verbs.DOWNLOAD,
    verbs.LIST,
    local.VERB,
    schedule.VERB,
    recovery.RERUN,
    recovery.RESUME,
    lab.VERB,
)


def parser() -> argparse.ArgumentParser:
    top = Parser(prog="studio-runner", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="verb", required=True, parser_class=Parser)
    for verb in VERBS:
        verb.arguments(sub.add_parser(verb.name, help=verb.help, description=verb.help))
    return top


def main(argv: list[str] | None = None) -> int:
    # Piped into a file or a CI log, stdout is block-buffered while stderr is not: lines came
    # late, out of order with stderr's, and were lost when the process was killed (issue 17).
    if hasattr(sys.stdout, "reconfigure") and not sys.stdout.line_buffering:
        sys.stdout.reconfigure(line_buffering=True)
    args = parser().parse_args(argv)
    verb = next(v for v in VERBS if v.name == args.verb)
    try:
        return verb.run(options_from(args, verb.options))
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
