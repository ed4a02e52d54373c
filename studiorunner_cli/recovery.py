"""Recovering from a failed run: ``run --retries N --hold 2h`` and the ``rerun`` verb.

    studio-runner rerun RUN [-p NAME VALUE]… [-r NAME VALUE]… [-f FILE] [-y YAML] [--wait] [-o OUT]

A rerun is a new run with its source's payload (parameters overridable), named
``<source>-rerun<N>``; it works for any run that has ended. Retries and the kernel hold are
payload keys (``retry``, ``on_failure``: ``studiorunner.recovery``); here are their flags.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from typing import Any

from studiorunner_cli.parameters import UsageError, collect
from studiorunner_cli.verb import Verb, Where, add_where

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)?\s*$", re.I)
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
#: Step Functions keeps a run's name for 90 days; a rerun of a rerun is named after the first source.
_RERUN_SUFFIX = re.compile(r"-rerun\d+$")


def seconds(text: str, flag: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d`` → seconds (a usage error otherwise)."""
    match = _DURATION.match(text or "")
    if not match:
        raise UsageError(f"{flag} takes a duration such as 90s, 15m or 2h, got {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "").lower() or None]


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """``run``'s recovery flags."""
    group = parser.add_argument_group("recovering from a failure")
    group.add_argument("--retries", type=int, metavar="N",
                       help="try the run again up to N times when it fails for a reason that is not the "
                            "notebook's (KernelDied, TargetFailed, LoginFailed…; payload retry.attempts)")
    group.add_argument("--retry-interval", metavar="DURATION",
                       help="wait this long before each retry (default 60s; payload retry.interval_seconds)")
    group.add_argument("--hold", metavar="DURATION",
                       help="when a cell fails, keep the run's kernel alive this long (e.g. 2h) for "
                            "`studio-runner resume` (payload on_failure.hold_kernel_seconds)")


def apply_run_flags(options: Any, payload: dict[str, Any]) -> None:
    """Put ``--retries``, ``--retry-interval`` and ``--hold`` into ``payload`` (validated with it)."""
    if options.retries is not None or options.retry_interval is not None:
        retry = dict(payload.get("retry") or {})
        if options.retries is not None:
            if options.retries < 0:
                raise UsageError(f"--retries must be 0 or more, got {options.retries}")
            retry["attempts"] = options.retries
        if options.retry_interval is not None:
            retry["interval_seconds"] = seconds(options.retry_interval, "--retry-interval")
        payload["retry"] = retry
    if options.hold is not None:
        payload["on_failure"] = {**(payload.get("on_failure") or {}),
                                 "hold_kernel_seconds": seconds(options.hold, "--hold")}


# ---- rerun ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RerunOptions:
    run: str
    parameters: tuple[tuple[str, str], ...] = ()
    parameters_raw: tuple[tuple[str, str], ...] = ()
    parameters_file: tuple[str, ...] = ()
    parameters_yaml: tuple[str, ...] = ()
    wait: bool = False
    output: str | None = None
    where: Where = field(default_factory=Where)


def _rerun_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="the run to run again (any run that has ended)")
    parser.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter (typed as papermill types it)")
    parser.add_argument("-r", "--parameters-raw", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="override a parameter, kept as a string")
    parser.add_argument("-f", "--parameters-file", action="append", default=[], metavar="FILE",
                        help="override parameters from a YAML file")
    parser.add_argument("-y", "--parameters-yaml", action="append", default=[], metavar="YAML",
                        help="override parameters given as YAML text")
    parser.add_argument("--wait", action="store_true", help="follow the new run until it ends")
    parser.add_argument("-o", "--output", help="with --wait: write the executed notebook here")
    add_where(parser)


def rerun_name(source: str, n: int) -> str:
    """``<source>-rerun<N>`` within 80 characters (a rerun of a rerun is named after its source)."""
    suffix = f"-rerun{n}"
    return _RERUN_SUFFIX.sub("", source)[: 80 - len(suffix)].rstrip("-_") + suffix


def rerun_payload(source_payload: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The source's payload with parameters overridden; a retry's attempt marker dropped (a rerun
    is a first attempt of its own) and a schedule's marker too (it is not one of the schedule's runs)."""
    payload = {k: v for k, v in source_payload.items() if k not in ("attempt", "schedule")}
    if overrides:
        payload["parameters"] = {**(payload.get("parameters") or {}), **overrides}
    return payload


def rerun(options: RerunOptions) -> int:
    from studiorunner.payload import validate_payload
    from studiorunner_cli.runs import RunsError
    from studiorunner_cli.verbs import runs_for

    if options.output and not options.wait:
        raise UsageError("-o needs --wait (or download the notebook later: studio-runner download RUN -o OUT)")
    overrides = collect(options.parameters_file, options.parameters_yaml, options.parameters, options.parameters_raw)
    runs = runs_for(options.where)
    source = runs.describe(options.run)
    if source.status == "RUNNING":
        raise RunsError(f"run {source.run_id} is still running: stop it first, or rerun it once it has ended")
    if "parameter_sets" in source.payload or "runs" in source.payload:
        raise RunsError(f"run {source.run_id} is a batch: rerun its child runs one by one")
    payload = rerun_payload(source.payload, overrides)
    try:
        validate_payload(payload)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    name = start_named(runs, payload, lambda n: rerun_name(source.run_id, n))
    return follow_started(runs, name, wait=options.wait, output=options.output,
                          started_from=f"rerun of {source.run_id}")


def start_named(runs: Any, payload: dict[str, Any], name_for: Any) -> str:
    """Start ``payload`` as ``name_for(1)``, else ``name_for(2)``… while the name is taken
    (Step Functions keeps an execution's name for 90 days)."""
    from botocore.exceptions import ClientError

    for n in range(1, 1000):
        name = name_for(n)
        try:
            runs.start(payload, name)
            return name
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
    raise UsageError("too many runs of that name already")


def follow_started(runs: Any, name: str, *, wait: bool, output: str | None, started_from: str) -> int:
    """Without ``wait`` print the new run's id; else follow it as ``run --wait`` does."""
    import signal
    import time

    from studiorunner_cli.display import ProgressPrinter, follow
    from studiorunner_cli.run import RunOptions, Terminated, _raise_terminated, _stop, report

    if not wait:
        print(name)
        return 0
    print(f"Run {name} started ({started_from})", flush=True)
    options, started = RunOptions(output=output, wait=True), time.monotonic()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        info = follow(runs, name, ProgressPrinter(), poll=1.0)
    except (KeyboardInterrupt, Terminated) as exc:
        return _stop(options, runs, name, None, started, 143 if isinstance(exc, Terminated) else 130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return report(options, runs, info, None, time.monotonic() - started)


RERUN = Verb("rerun", "run an ended run again, with the same payload (parameters overridable)",
             _rerun_arguments, RerunOptions, rerun)
