"""``status``, ``watch``, ``logs``, ``stop``, ``download`` and ``list``: the same against AWS and locally."""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from studiorunner_cli.display import ProgressPrinter, duration_text, follow
from studiorunner_cli.parameters import UsageError
from studiorunner_cli.runs import DEFAULT_STACK, HELD_WORDS, RunInfo, Runs, RunsError, error_text, from_stack
from studiorunner_cli.verb import Verb, Where, add_where


@dataclass(frozen=True)
class RunRef:
    """``status``, ``watch``, ``logs``, ``stop``: one run, somewhere."""

    run: str
    where: Where = field(default_factory=Where)


@dataclass(frozen=True)
class DownloadOptions:
    run: str
    output: str | None = None
    where: Where = field(default_factory=Where)


@dataclass(frozen=True)
class ListOptions:
    target: str | None = None
    status: str | None = None
    since: str | None = None
    notebook: str | None = None
    max: int = 20
    schedule: str | None = None
    where: Where = field(default_factory=Where)

_AGE = re.compile(r"^(\d+)([mhd])$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def check_since(since: str | None) -> datetime | None:
    """``--since``: an ISO date/time (UTC unless it says otherwise) or an age (30m, 12h, 7d)."""
    if not since:
        return None
    match = _AGE.match(since.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    try:
        when = datetime.fromisoformat(since.strip())
    except ValueError:
        raise UsageError(f"--since takes an ISO date/time or an age like 30m, 12h, 7d; got {since!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def runs_for(where: Where) -> Runs:
    if where.local:
        if where.stack:
            raise UsageError("--local and --stack name two different stacks: give one")
        from studiorunner_cli.local import connect, live_stacks, stacks_dir

        runs = connect()  # the one serving this folder, else the only one up
        if runs is None:
            roots = [s["root"] for s in live_stacks()]
            if roots:
                raise RunsError(f"no local stack serves {Path.cwd()}; those up serve {', '.join(roots)}: "
                                "run this from inside one of them")
            raise RunsError(f"no local stack is up: start one with `studio-runner local up` (looked in {stacks_dir()})")
        return runs
    return from_stack(where.stack or DEFAULT_STACK, profile=where.profile, region=where.region)


def _on_runs(verb: Callable[[Any, Runs], int]) -> Callable[[Any], int]:
    """The verb, given the options and the runs where they say."""
    def run(options: Any) -> int:
        if isinstance(options, ListOptions):
            check_since(options.since)  # a usage error before any stack is reached
        return verb(options, runs_for(options.where))
    return run


def status(args: RunRef, runs: Runs) -> int:
    info = runs.describe(args.run)
    rows = [("run", info.run_id), ("status", info.shown_status), ("notebook", runs.source(info) or "-"),
            ("target", str(info.payload.get("target") or "(default)")),
            ("parameters", _params(info)),
            ("started", f"{_when(info.started)} ({duration_text(info.duration)})")]
    phase = runs.phase(info)
    if phase:
        rows.append(("now", phase))
    progress = runs.progress(info)
    if progress:
        text = f"{progress.get('cells_finished', 0)}/{progress.get('cells_total', '?')} cells finished"
        if progress.get("cells_failed"):
            text += f", {progress['cells_failed']} failed"
        current = progress.get("current")
        if current and info.status == "RUNNING":
            text += f"; Cell {current['cell'] + 1} running since {current.get('started_at')}"
        rows.append(("progress", text))
    if info.status not in ("RUNNING", "SUCCEEDED"):
        rows.append(("error", runs.in_person_words(error_text(info.error, info.cause), info)))
    uri = runs.output_uri(info)
    if info.shown_status == "SKIPPED":  # a schedule's fire that gave way: no notebook was written
        rows.append(("why", str((info.output or {}).get("reason") or "its schedule's previous run was running")))
    elif uri:
        rows.append(("notebook out", runs.in_person_words(uri, info)))
    for key, value in rows:
        print(f"{key:<13}{value}")
    return 0


def watch(args: RunRef, runs: Runs) -> int:
    info = runs.describe(args.run)
    print(f"Watching {info.run_id} ({info.notebook or 'commands'}), {info.status}", flush=True)
    try:
        info = follow(runs, args.run, ProgressPrinter(), poll=2.0 if not args.where.local else 0.5)
    except KeyboardInterrupt:
        print(f"\nStopped watching; the run goes on (studio-runner stop {info.run_id} to stop it).", file=sys.stderr)
        return 130
    if info.status == "SUCCEEDED":
        print(f"SUCCEEDED in {duration_text(info.duration)}; notebook: {runs.in_person_words(runs.output_uri(info) or '-', info)}")
        return 0
    why = runs.in_person_words(error_text(info.error, info.cause), info)
    print(f"{info.status} after {duration_text(info.duration)}: {why}", file=sys.stderr)
    return 1


def logs_text(runs: Runs, info: RunInfo) -> str:
    """The cells' outputs as text (and the commands' log), from the executed notebook."""
    import nbformat

    parts: list[str] = []
    uri = runs.output_uri(info)
    body = runs.get_uri(uri) if uri else None
    if body is not None:
        nb = nbformat.reads(body.decode("utf-8"), as_version=4)
        # Cells named as papermill and errors name them: the position in the notebook as run,
        # from 1, before the error banner was inserted (banner cells are not counted).
        cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
        for index, cell in enumerate(cells):
            if cell.get("cell_type") != "code":
                continue
            pm = cell.metadata.get("papermill", {})
            header = f"── Cell {index + 1} [{pm.get('status', '-')}"
            if isinstance(pm.get("duration"), (int, float)):
                header += f", {pm['duration']:.2f}s"
            parts.append(header + "]\n")
            for output in cell.get("outputs", []):
                kind = output.get("output_type")
                if kind == "stream":
                    parts.append(output.get("text", ""))
                elif kind == "error":
                    parts.append(_ANSI.sub("", "\n".join(output.get("traceback") or [f"{output.get('ename')}: {output.get('evalue')}"])) + "\n")
                else:
                    text = output.get("data", {}).get("text/plain")
                    if text:
                        parts.append(text + "\n")
    log = runs.get_uri(f"s3://{runs.bucket}/runs/{info.run_id}/commands.log")
    if log is not None:
        parts.append("── commands.log\n" + log.decode("utf-8", "replace"))
    text = "".join(parts)
    return text if text.endswith("\n") or not text else text + "\n"


def logs(args: RunRef, runs: Runs) -> int:
    info = runs.describe(args.run)
    text = logs_text(runs, info)
    if not text:
        print(f"{info.run_id}: no output yet", file=sys.stderr)
        return 0 if info.status in ("RUNNING", "SUCCEEDED") else 1
    sys.stdout.write(text)
    return 0


def stop(args: RunRef, runs: Runs) -> int:
    info = runs.describe(args.run)
    if info.status != "RUNNING":
        print(f"{info.run_id} is not running ({info.status})", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a stop half-done is worse than a slow one
    runs.stop(info.run_id)
    if args.where.local:
        # The local stack interrupts the running cell and cleans up at once: say when it has.
        deadline = time.monotonic() + 120
        while info.status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.25)
            info = runs.describe(info.run_id)
        if info.status != "RUNNING":
            print(f"Stopped {info.run_id} ({info.status}); its kernel and session are removed.")
            return 0
    print(f"Stopped {info.run_id}; what it started is cleaned up as after any aborted run.")
    return 0


def download(args: DownloadOptions, runs: Runs) -> int:
    from studiorunner_cli.outputs import write_outputs

    info = runs.describe(args.run)
    written = write_outputs(runs, info, args.output, None)
    if not written:
        print(f"{info.run_id} has no output notebook ({info.status})", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def listing(args: ListOptions, runs: Runs) -> int:
    since = check_since(args.since)
    rows = []
    schedule = args.schedule
    filtered = args.target or args.notebook or since or schedule
    for info in runs.list(status=args.status, limit=max(args.max, 1) * (5 if filtered else 1)):
        if since and info.started and info.started < since:
            continue
        if args.target and info.payload.get("target") != args.target:
            continue
        source = runs.source(info)
        if args.notebook and not _matches(info.notebook, source, args.notebook):
            continue
        if schedule:
            from studiorunner_cli.schedules.service import is_run_of

            if not is_run_of(info.run_id, schedule):
                continue
        name = info.notebook.rsplit("/", 1)[-1] if info.notebook else "(commands)"
        shown = info.shown_status
        if shown == "RUNNING" and HELD_WORDS in (runs.phase(info) or ""):
            shown = "HELD"  # failed, its kernel kept for `studio-runner resume`
        rows.append((info.run_id, shown, _when(info.started), duration_text(info.duration),
                     name, _home(source) if source else "-", _params(info)))
        if len(rows) >= args.max:
            break
    if not rows:
        print("no runs", file=sys.stderr)
        return 0
    header = ("RUN", "STATUS", "STARTED (UTC)", "DURATION", "NOTEBOOK", "SOURCE", "PARAMETERS")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(6)]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(widths[i]) for i, v in enumerate(row[:6])) + "  " + row[6])
    return 0


def _matches(notebook: str | None, source: str | None, wanted: str) -> bool:
    """``--notebook``: a name (``report`` or ``report.ipynb``) matches the notebook's file name; a
    path matches the notebook's path, its end, or (a local file) the file it ran from."""
    if not notebook:
        return False
    name = notebook.rsplit("/", 1)[-1]
    if "/" not in wanted and "\\" not in wanted:
        return wanted in (name, Path(name).stem)
    local = str(Path(wanted).expanduser().resolve())
    return wanted in (notebook, source) or local == source or notebook.endswith("/" + wanted.removeprefix("./"))


def _home(path: str) -> str:
    home = str(Path.home())
    return "~" + path[len(home):] if path.startswith(home + "/") else path


def _when(when: Any) -> str:
    if not isinstance(when, datetime):
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _params(info: RunInfo) -> str:
    import json

    params = info.payload.get("parameters") or {}
    text = " ".join(f"{k}={json.dumps(v)}" for k, v in params.items()) if isinstance(params, dict) else "-"
    return text if len(text) <= 60 else text[:59] + "…"


def _run_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="the run id (the execution's name) or its ARN")
    add_where(parser)


def _download_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="the run id (the execution's name) or its ARN")
    parser.add_argument("-o", "--output", help="a file, or a folder to write into (default: ./<run id>.ipynb)")
    add_where(parser)


def _list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target")
    parser.add_argument("--status", type=str.upper, choices=("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"))
    parser.add_argument("--since", help="an ISO date/time, or an age: 30m, 12h, 7d")
    parser.add_argument("--notebook", help="only runs of this notebook (path or name)")
    parser.add_argument("--max", type=int, default=20, help="at most this many (default 20)")
    parser.add_argument("--schedule", metavar="NAME", help="only the runs of this schedule (skipped fires show SKIPPED)")
    add_where(parser)


STATUS = Verb("status", "how a run stands", _run_argument, RunRef, _on_runs(status))
WATCH = Verb("watch", "follow a run live", _run_argument, RunRef, _on_runs(watch))
LOGS = Verb("logs", "the cells' outputs as text", _run_argument, RunRef, _on_runs(logs))
STOP = Verb("stop", "stop a run (it is then cleaned up as any aborted run)", _run_argument, RunRef, _on_runs(stop))
DOWNLOAD = Verb("download", "the executed notebook (and commands.log, HTML)", _download_arguments, DownloadOptions,
                _on_runs(download))
LIST = Verb("list", "past and running runs, newest first", _list_arguments, ListOptions, _on_runs(listing))
