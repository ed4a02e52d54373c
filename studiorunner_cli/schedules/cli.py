"""``studio-runner schedule create|list|show|pause|resume|update|delete|run``: the command
line over :class:`ScheduleService` (parsing and printing only; every decision is the service's).

Exit status: 0 done; 2 a usage error decided before anything is created or changed (unknown
schedule, bad expression or time zone, invalid payload, name clash, end before start, a
``cdk.json`` schedule, ``--local`` without ``local up``); 1 the service failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studiorunner_cli.parameters import UsageError, collect
from studiorunner_cli.verb import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Parser, Verb, Where, add_where

if TYPE_CHECKING:
    from studiorunner_cli.schedules.service import ScheduleDefinition, ScheduleInfo, ScheduleService

# The service and its expressions load only once the command line is checked (verb.py).
OVERLAP_POLICIES = ("skip", "queue", "allow")


@dataclass(frozen=True)
class ScheduleOptions:
    """``studio-runner schedule VERB …``, parsed."""

    schedule_verb: str
    name: str | None = None
    notebook: str | None = None
    cron: str | None = None
    rate: str | None = None
    at: str | None = None
    timezone: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    parameters_raw: tuple[tuple[str, str], ...] = ()
    parameters_file: tuple[str, ...] = ()
    parameters_yaml: tuple[str, ...] = ()
    target: str | None = None
    kernel: str | None = None
    html: bool = False
    overlap: str | None = None
    start: str | None = None
    end: str | None = None
    flexible_window: int | None = None
    description: str | None = None
    input: str | None = None
    remote: bool = False
    where: Where = field(default_factory=Where)


def _arguments(schedule: argparse.ArgumentParser) -> None:
    """``schedule``'s verbs and their flags."""
    where = add_where
    verbs = schedule.add_subparsers(dest="schedule_verb", required=True, parser_class=Parser)
    create = verbs.add_parser("create", help="create a schedule that runs NOTEBOOK")
    create.add_argument("name")
    create.add_argument("notebook", nargs="?", help="a local .ipynb (uploaded once), an s3:// URI, "
                                                    "or with --remote a path in the target")
    _definition_flags(create, creating=True)
    where(create)
    update = verbs.add_parser("update", help="change a schedule (the flags given; the rest is kept)")
    update.add_argument("name")
    update.add_argument("notebook", nargs="?", help="a new notebook (as for create)")
    _definition_flags(update, creating=False)
    where(update)
    for verb, text in (("show", "a schedule: its payload, next fire times and recent runs"),
                       ("pause", "stop firing until resumed"), ("resume", "fire again"),
                       ("delete", "delete it (its runs stay)"),
                       ("run", "one run now, named as the schedule's runs")):
        p = verbs.add_parser(verb, help=text)
        p.add_argument("name")
        where(p)
    where(verbs.add_parser("list", help="every schedule: expression, state, next fire times, last run"))


def _definition_flags(p: argparse.ArgumentParser, *, creating: bool) -> None:
    when = p.add_mutually_exclusive_group(required=creating)
    when.add_argument("--cron", metavar="EXPR", help="Scheduler's six fields, e.g. '0 6 * * ? *'")
    when.add_argument("--rate", metavar="EXPR", help="e.g. '5 minutes', '1 day'")
    when.add_argument("--at", metavar="ISO", help="once, e.g. 2026-12-24T06:00")
    p.add_argument("--timezone", metavar="TZ", help="IANA time zone (default UTC)")
    p.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("-r", "--parameters-raw", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("-f", "--parameters-file", action="append", default=[], metavar="FILE")
    p.add_argument("-y", "--parameters-yaml", action="append", default=[], metavar="YAML")
    p.add_argument("--target", help="a configured target")
    p.add_argument("--html", action="store_true", help="each run also renders its notebook as HTML")
    p.add_argument("--overlap", choices=OVERLAP_POLICIES,
                   help="a fire while the previous run still runs: skip (default), queue or allow")
    p.add_argument("--start", metavar="ISO", help="not before (in --timezone unless it has an offset)")
    p.add_argument("--end", metavar="ISO", help="not after")
    p.add_argument("--flexible-window", type=int, metavar="MINUTES", help="Scheduler may fire up to this late")
    p.add_argument("--description", metavar="TEXT")
    p.add_argument("--input", metavar="FILE", help="the whole run payload (JSON), as `run --input` takes it")
    p.add_argument("--remote", action="store_true", help="NOTEBOOK is a path in the target's file tree")
    p.add_argument("--kernel", help="kernel name (default: the notebook's)")


# -- entry -------------------------------------------------------------------------------
def main(args: ScheduleOptions) -> int:
    from studiorunner_cli.schedules.service import ScheduleError

    try:
        return _main(args)
    except ScheduleError as exc:
        print(f"studio-runner: {'error: ' if exc.usage else ''}{exc}", file=sys.stderr)
        return EXIT_USAGE if exc.usage else EXIT_FAILED


def _main(args: ScheduleOptions) -> int:
    verb = args.schedule_verb
    if args.where.local and args.where.stack:
        raise UsageError("--local and --stack name two different stacks: give one")
    changes = _changes(args) if verb in ("create", "update") else {}  # usage errors before any call
    name = args.name or ""  # every verb but list takes NAME (the parser requires it)
    service = _service(args)
    if verb == "create":
        definition, upload = _new_definition(args, changes)
        info = service.create(definition, upload=upload)
        print(f"Created schedule {info.name}: {info.definition.expression} ({info.definition.timezone}); "
              f"next: {_times(info)}")
        return EXIT_OK
    if verb == "update":
        current = service.definition(name)
        definition, upload = _updated_definition(current, args, changes)
        info = service.update(definition, upload=upload)
        print(f"Updated schedule {info.name}: {info.definition.expression} ({info.definition.timezone}), "
              f"{info.state}; next: {_times(info)}")
        return EXIT_OK
    if verb == "list":
        return _list(service)
    if verb == "show":
        return _show(service, name)
    if verb == "pause":
        info = service.pause(name)
        print(f"Paused schedule {info.name}")
        return EXIT_OK
    if verb == "resume":
        info = service.resume(name)
        print(f"Resumed schedule {info.name}; next: {_times(info)}")
        return EXIT_OK
    if verb == "delete":
        service.delete(name)
        print(f"Deleted schedule {args.name} (its runs stay: studio-runner list --schedule {args.name})")
        return EXIT_OK
    if verb == "run":
        print(service.run_now(name))
        return EXIT_OK
    raise UsageError(f"unknown schedule verb {verb!r}")


def _service(args: ScheduleOptions) -> ScheduleService:
    where = args.where
    if where.local:
        from studiorunner_cli.schedules.setup import service_for_local

        return service_for_local()
    from studiorunner_cli.runs import DEFAULT_STACK
    from studiorunner_cli.schedules.setup import service_for_stack

    return service_for_stack(where.stack or DEFAULT_STACK, profile=where.profile, region=where.region)


# -- flags → a definition -------------------------------------------------------------------
def _changes(args: ScheduleOptions) -> dict[str, Any]:
    """What the flags say, checked as far as no AWS call is needed."""
    from studiorunner_cli.schedules.expressions import ExpressionInvalid, at, cron, rate

    changes: dict[str, Any] = {}
    try:
        if args.cron:
            changes["expression"] = cron(args.cron)
        elif args.rate:
            changes["expression"] = rate(args.rate)
        elif args.at:
            changes["expression"] = at(args.at)
    except ExpressionInvalid as exc:
        raise UsageError(str(exc)) from None
    for flag, key in (("timezone", "timezone"), ("overlap", "overlap"), ("description", "description"),
                      ("flexible_window", "flexible_window_minutes")):
        if getattr(args, flag) is not None:
            changes[key] = getattr(args, flag)
    for flag in ("start", "end"):
        value = getattr(args, flag)
        if value is not None:
            try:
                changes[flag] = datetime.fromisoformat(value)
            except ValueError:
                raise UsageError(f"--{flag} takes an ISO date/time like 2026-12-24T06:00, got {value!r}") from None
    if args.input:
        from studiorunner_cli.run import _read_input

        changes["payload"] = _read_input(args.input)
    params = collect(args.parameters_file, args.parameters_yaml, args.parameters, args.parameters_raw)
    if params:
        changes["parameters"] = params
    if args.notebook:
        nb = args.notebook
        if nb.startswith("s3://"):
            if args.remote:
                raise UsageError("--remote names a path in the target, not an s3:// URI")
            changes["source"] = ("notebook_s3", nb)
        elif args.remote:
            changes["source"] = ("notebook", nb)
        else:
            path = Path(nb).expanduser().resolve()
            if not path.is_file():
                raise UsageError(f"no such notebook: {nb} (a path in the target's tree needs --remote)")
            if path.suffix.lower() != ".ipynb":
                raise UsageError(f"{nb} is not a .ipynb file")
            changes["source"] = ("upload", path)
    for flag in ("target", "kernel"):
        if getattr(args, flag):
            changes[flag] = getattr(args, flag)
    if args.html:
        changes["html"] = True
    return changes


def _apply_payload(payload: dict[str, Any], changes: dict[str, Any]) -> tuple[dict[str, Any], Path | None]:
    payload = dict(changes.get("payload", payload))
    upload = None
    if "source" in changes:
        kind, value = changes["source"]
        payload.pop("notebook", None)
        payload.pop("notebook_s3", None)
        if kind == "upload":
            upload = value
        else:
            payload[kind] = value
    if "parameters" in changes:
        payload["parameters"] = {**payload.get("parameters", {}), **changes["parameters"]}
    if "target" in changes:
        payload["target"] = changes["target"]
    if "kernel" in changes:
        payload["kernel"] = {**payload.get("kernel", {}), "name": changes["kernel"]}
    if changes.get("html"):
        formats = payload.get("output_formats", ["notebook"])
        if isinstance(formats, list) and "html" not in formats:
            payload["output_formats"] = [*formats, "html"]
    return payload, upload


_FIELDS = ("expression", "timezone", "overlap", "description", "flexible_window_minutes", "start", "end")


def _new_definition(args: ScheduleOptions, changes: dict[str, Any]) -> tuple[ScheduleDefinition, Path | None]:
    from studiorunner_cli.schedules.service import ScheduleDefinition

    if "source" not in changes and "payload" not in changes:
        raise UsageError("give a NOTEBOOK (or an --input payload)")
    payload, upload = _apply_payload({}, changes)
    fields = {key: changes[key] for key in _FIELDS if key in changes}
    return ScheduleDefinition(name=args.name or "", payload=payload, **fields), upload


def _updated_definition(current: ScheduleDefinition, args: ScheduleOptions,
                        changes: dict[str, Any]) -> tuple[ScheduleDefinition, Path | None]:
    payload, upload = _apply_payload(current.payload, changes)
    fields = {key: changes[key] for key in _FIELDS if key in changes}
    return replace(current, payload=payload, **fields), upload


# -- printing -----------------------------------------------------------------------------------
def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _times(info: ScheduleInfo) -> str:
    if not info.definition.enabled:
        return "(paused)"
    return ", ".join(_when(t) for t in info.next_fire_times) or "(none)"


def _last(info: ScheduleInfo) -> str:
    run = info.last_run
    if run is None:
        return "-"
    started = run.started.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ") if run.started else "-"
    return f"{run.run_id} {run.status} {started}"


def _list(service: ScheduleService) -> int:
    infos = service.list()
    if not infos:
        print("no schedules (studio-runner schedule create NAME NOTEBOOK --cron '0 6 * * ? *')", file=sys.stderr)
        return EXIT_OK
    header = ("NAME", "EXPRESSION", "TIME ZONE", "STATE", "NEXT (schedule's time zone)", "LAST RUN", "BY")
    rows = [(i.name, i.definition.expression, i.definition.timezone, i.state, _times(i), _last(i), i.managed_by)
            for i in infos]
    widths = [max(len(str(r[c])) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(widths[c]) for c, v in enumerate(row)).rstrip())
    return EXIT_OK


def _show(service: ScheduleService, name: str) -> int:
    info = service.get(name)
    d = info.definition
    rows = [("schedule", info.name), ("managed by", info.managed_by + (" (cdk.json)" if info.managed_by == "stack" else "")),
            ("state", info.state), ("expression", d.expression), ("time zone", d.timezone),
            ("next", _times(info)), ("overlap", d.overlap), ("notebook", info.notebook_source)]
    if d.start:
        rows.append(("start", d.start.isoformat()))
    if d.end:
        rows.append(("end", d.end.isoformat()))
    if d.flexible_window_minutes:
        rows.append(("flexible", f"up to {d.flexible_window_minutes} min late"))
    if d.description:
        rows.append(("description", d.description))
    rows.append(("payload", json.dumps(d.payload, sort_keys=True)))
    for key, value in rows:
        print(f"{key:<13}{value}")
    runs = service.runs(name, limit=10)
    print("recent runs" + ("" if runs else ": none"))
    for run in runs:
        started = run.started.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if run.started else "-"
        print(f"  {run.run_id}  {run.status:<9}  {started}")
    return EXIT_OK


VERB = Verb("schedule", "schedules managed at run time (EventBridge Scheduler): create, list, show, pause, "
                        "resume, update, delete, run", _arguments, ScheduleOptions, main)
