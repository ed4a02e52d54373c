"""Recovering from a failed run: ``run --retries N --hold 2h``, the ``rerun`` and ``resume`` verbs.

    studio-runner rerun RUN [-p NAME VALUE]… [-r NAME VALUE]… [-f FILE] [-y YAML] [--wait] [-o OUT]
    studio-runner resume RUN [--notebook FIXED.ipynb] [--from CELL] [--wait] [-o OUT]

A rerun is a new run with its source's payload (parameters overridable), named
``<source>-rerun<N>``; it works for any run that has ended. A resume carries on a run whose
kernel is held (``run --hold``) in that very kernel, from the failed cell (or ``--from``),
with the cells of ``--notebook`` from there on; it is named ``<source>-resume<N>``. Retries and the kernel hold are
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
    is a first attempt of its own), a schedule's marker (it is not one of the schedule's runs) and a
    resume's (a rerun runs the whole notebook)."""
    payload = {k: v for k, v in source_payload.items() if k not in ("attempt", "schedule", "resume")}
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


# ---- resume ---------------------------------------------------------------------------------

_RESUME_SUFFIX = re.compile(r"-(rerun|resume)\d+$")


@dataclass(frozen=True)
class ResumeOptions:
    run: str
    notebook: str | None = None
    from_cell: int | None = None
    wait: bool = False
    output: str | None = None
    where: Where = field(default_factory=Where)


def _resume_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="a failed run whose kernel is held (run with --hold)")
    parser.add_argument("--notebook", metavar="FIXED.ipynb",
                        help="take the cells from the resume point on from this notebook (the fixed cell)")
    parser.add_argument("--from", dest="from_cell", type=int, metavar="CELL",
                        help="the cell to resume from, numbered as the run's error names it (Cell N: its "
                             "position in the notebook, from 1; default: the cell that failed)")
    parser.add_argument("--wait", action="store_true", help="follow the resumed run until it ends")
    parser.add_argument("-o", "--output", help="with --wait: write the executed notebook here")
    add_where(parser)


def resume_name(source: str, n: int) -> str:
    suffix = f"-resume{n}"
    return source[: 80 - len(suffix)].rstrip("-_") + suffix


def _code_cells(nb: Any) -> int:
    from studiorunner.recovery import _numbered_code_cells

    return len(_numbered_code_cells(nb))


def check_resume(runs: Any, options: ResumeOptions, now: float) -> tuple[dict[str, Any], Any]:
    """Every check the CLI can make before anything starts: the payload of the resume and the
    edited notebook to upload (or None). RunsError (exit 1) for a run that cannot be resumed,
    UsageError (exit 2) for a bad ``--notebook``/``--from``. The state machine checks again."""
    import json
    from datetime import UTC, datetime
    from pathlib import Path

    import nbformat

    from studiorunner_cli.runs import RunsError

    if options.from_cell is not None and options.from_cell < 1:
        raise UsageError(f"--from takes a code cell's number, from 1; got {options.from_cell}")
    edited = None
    if options.notebook:
        path = Path(options.notebook).expanduser()
        if not path.is_file():
            raise UsageError(f"no such notebook: {options.notebook}")
        try:
            edited = nbformat.read(path, as_version=4)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same usage error
            raise UsageError(f"{options.notebook} is not a notebook: {type(exc).__name__}") from None
    source = runs.describe(options.run)
    if source.status == "SUCCEEDED":
        raise RunsError(f"run {source.run_id} succeeded: there is nothing to resume")
    raw = runs.get(f"runs/{source.run_id}/hold.json")
    if raw is None:
        raise RunsError(f"run {source.run_id}'s kernel is not held (run it with --hold to resume it; "
                        f"or start it again: studio-runner rerun {source.run_id})")
    record = json.loads(raw)
    ended = runs.get(f"runs/{source.run_id}/hold-ended.json")
    until = datetime.fromtimestamp(float(record["until"]), UTC)
    if ended is not None or source.status != "RUNNING" or now >= float(record["until"]):
        by = json.loads(ended).get("by") if ended else None
        why = (f"was resumed by {by}" if by and by not in ("expiry", "stop") else
               "was stopped" if by == "stop" else f"expired at {until:%Y-%m-%d %H:%M:%S} UTC")
        raise RunsError(f"run {source.run_id}'s hold {why}: its kernel is gone "
                        f"(start it again: studio-runner rerun {source.run_id})")
    held = runs.get_uri(record["output_uri"])
    if held is not None:
        from studiorunner.errors import PayloadInvalid
        from studiorunner.recovery import resume_point

        try:
            start, _, before = resume_point(nbformat.reads(held.decode(), as_version=4), options.from_cell,
                                            source_run=source.run_id)
        except PayloadInvalid as exc:
            raise UsageError(str(exc)) from None
        if edited is not None and _code_cells(edited) <= before:
            raise UsageError(f"{options.notebook} has {_code_cells(edited)} code cells: it cannot resume from "
                             f"cell {start} (code cell {before + 1})")
    payload = rerun_payload(source.payload, {})
    payload.pop("retry", None)  # another attempt of a resume would find the hold taken: never retried
    payload["resume"] = {"run_id": source.run_id, **({"from_cell": options.from_cell} if options.from_cell else {})}
    return payload, (path if edited is not None else None)


def resume(options: ResumeOptions) -> int:
    import time

    from studiorunner_cli.verbs import runs_for

    if options.output and not options.wait:
        raise UsageError("-o needs --wait (or download the notebook later: studio-runner download RUN -o OUT)")
    runs = runs_for(options.where)
    payload, upload = check_resume(runs, options, time.time())
    source = payload["resume"]["run_id"]
    base = _RESUME_SUFFIX.sub("", source)

    def name_for(n: int) -> str:
        name = resume_name(base, n)
        if upload is not None:  # uploaded under the name it is tried with (a retry overwrites it)
            payload["resume"]["notebook_s3"] = runs.put(f"uploads/{name}/{upload.name}", upload.read_bytes())
        return name

    name = start_named(runs, payload, name_for)
    return follow_started(runs, name, wait=options.wait, output=options.output, started_from=f"resume of {source}")


RESUME = Verb("resume", "carry on a failed run in its held kernel, from the failed cell",
              _resume_arguments, ResumeOptions, resume)
