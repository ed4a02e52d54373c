"""``studio-runner run``: check everything that can be checked, start the run, follow it, fetch its output."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studiorunner_cli.parameters import UsageError, collect
from studiorunner_cli.recovery import add_run_flags, apply_run_flags
from studiorunner_cli.verb import TARGET_TYPES, Verb, Where, add_where

LOCAL_ONLY = ("root", "budget", "jupyter")


class Terminated(BaseException):
    """SIGTERM: stop as cleanly as after Ctrl-C."""


@dataclass(frozen=True)
class RunOptions:
    """``studio-runner run``'s flags, typed (field names are the flags' ``dest``)."""

    notebook: str | None = None
    output_path: str | None = None  # papermill's positional OUTPUT_PATH (same as -o, implies --wait)
    parameters: tuple[tuple[str, str], ...] = ()
    parameters_raw: tuple[tuple[str, str], ...] = ()
    parameters_file: tuple[str, ...] = ()
    parameters_yaml: tuple[str, ...] = ()
    target: str | None = None
    commands: tuple[str, ...] = ()
    wait: bool = False
    output: str | None = None
    log_output: bool = False
    html: bool = False
    report: bool = False
    input: str | None = None
    remote: bool = False
    kernel: str | None = None
    language: str | None = None
    cell_timeout: float | None = None
    run_timeout: float | None = None
    start_timeout: float | None = None
    allow_errors: bool = False
    parameter_sets: str | None = None
    max_concurrency: int | None = None
    root: str | None = None
    budget: float | None = None
    jupyter: str | None = None
    retries: int | None = None  # recovery.add_run_flags
    retry_interval: str | None = None
    hold: str | None = None
    cwd: str | None = None
    prepare_only: bool = False
    help_notebook: bool = False
    where: Where = field(default_factory=Where)


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """The ``run`` verb's flags (one place, so other options can extend it)."""
    run.add_argument("notebook", nargs="?", help="a local .ipynb (uploaded), an s3:// URI, or with --remote a path in the target")
    run.add_argument("output_path", nargs="?", metavar="OUT",
                     help="write the executed notebook here, as papermill's OUTPUT_PATH (same as -o; implies --wait)")
    run.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="a parameter, typed as papermill types it (True/False/None, int, float, else text)")
    run.add_argument("-r", "--parameters-raw", "--parameters_raw", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="a parameter kept as a string")
    run.add_argument("-f", "--parameters-file", "--parameters_file", action="append", default=[], metavar="FILE",
                     help="parameters from a YAML file (dates stay strings, as in papermill)")
    run.add_argument("-y", "--parameters-yaml", "--parameters_yaml", action="append", default=[], metavar="YAML",
                     help="parameters as YAML text")
    run.add_argument("--target", help="a configured target (local: what the stand-in plays: " + ", ".join(TARGET_TYPES) + ")")
    run.add_argument("--command", action="append", default=[], dest="commands", metavar="CMD",
                     help="a shell command to run in a Jupyter terminal first (repeatable)")
    run.add_argument("--wait", action="store_true", help="follow the run until it ends (always, with an embedded local stack)")
    run.add_argument("-o", "--output", help="write the executed notebook here (a file, or a folder to write into)")
    run.add_argument("--log-output", action="store_true", help="print the cells' outputs when the run ends")
    run.add_argument("--html", action="store_true", help="also render the executed notebook as HTML")
    run.add_argument("--report", "--report-mode", action="store_true",
                     help="the HTML page as a report: no code, no injected-parameters cell (implies --html; "
                          "payload \"html_report\": true)")
    run.add_argument("--input", help="a payload JSON file, as `aws stepfunctions start-execution` takes it")
    run.add_argument("--remote", action="store_true", help="NOTEBOOK is a path in the target's file tree")
    run.add_argument("-k", "--kernel", help="kernel name (default: the notebook's)")
    run.add_argument("-l", "--language", help="the language parameters are written in, over the notebook's "
                     "(papermill's flag; payload kernel.language)")
    run.add_argument("--cell-timeout", "--execution-timeout", type=float, metavar="SECONDS",
                     help="fail a cell that runs longer (papermill's --execution-timeout)")
    run.add_argument("--start-timeout", "--start_timeout", type=float, metavar="SECONDS",
                     help="wait this long for the target and the kernel to start (papermill's flag; default 2400)")
    run.add_argument("--cwd", metavar="DIR", help="the kernel's working folder (default: the notebook's): with --local "
                     "a folder under the served root, else a path in the target's tree")
    run.add_argument("--prepare-only", action="store_true",
                     help="write the notebook with its parameters injected, without running it (papermill's flag)")
    run.add_argument("--help-notebook", action="store_true",
                     help="show the notebook's parameters and exit (as `studio-runner inspect NOTEBOOK`)")
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
    add_run_flags(run)
    add_where(run)


@dataclass
class Plan:
    """A checked run: where it goes and the payload (the notebook's place filled in at start)."""

    mode: str  # "aws" | "local-up" | "embedded"
    payload: dict[str, Any]
    upload: Path | None = None  # a local notebook to put in the bucket (notebook_s3)
    root: Path | None = None
    flavor: str = "studio-space"
    stem: str | None = None
    notes: list[str] = field(default_factory=list)  # warnings said before the run starts
    cwd: Path | None = None  # --local --cwd: a local folder, made relative to the served root at start


def run_verb(options: RunOptions) -> int:
    if options.help_notebook:
        from studiorunner_cli.inspection import inspect_notebook

        if not options.notebook:
            raise UsageError("--help-notebook needs the NOTEBOOK")
        return inspect_notebook(options.notebook, options.kernel, language=options.language)
    options = papermill_spellings(options)
    plan = check_run_args(options)  # every usage error before anything starts
    if options.prepare_only:
        return prepare_only(options, plan)
    return run(options, plan)


def papermill_spellings(options: RunOptions) -> RunOptions:
    """papermill's positional OUTPUT_PATH is ``-o`` (and, as papermill always waits, ``--wait``)."""
    if options.output_path is None:
        return options
    if options.output is not None:
        raise UsageError(f"the output is given twice: OUT {options.output_path!r} and -o {options.output!r}")
    return dataclasses.replace(options, output=options.output_path, output_path=None, wait=True)


VERB = Verb("run", "start a run (and follow it with --wait)", add_run_arguments, RunOptions, run_verb)


def _read_input(name: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(name).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --input {name}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"--input {name} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"--input {name} must hold a JSON object (the payload)")
    return data


def check_run_args(args: RunOptions) -> Plan:
    """Every usage error, before anything starts (no AWS call, no server)."""
    given = [f"--{name}" for name in LOCAL_ONLY if getattr(args, name, None) is not None]
    if given and not args.where.local:
        raise UsageError(f"{', '.join(given)} only apply with --local")
    if args.where.local and args.where.stack:
        raise UsageError("--local and --stack name two different stacks: give one")
    has_params = args.parameters or args.parameters_raw or args.parameters_file or args.parameters_yaml
    if args.input and (args.notebook or has_params or args.commands):
        raise UsageError("--input is the whole payload: put the notebook, parameters and commands in it")
    if args.jupyter:
        if args.target not in (None, "jupyter"):
            raise UsageError("--jupyter runs on that server: --target does not apply")
        if not args.jupyter.startswith(("http://", "https://")):
            raise UsageError(f"--jupyter takes the server's base URL (http://…), got {args.jupyter!r}")
        if args.root:
            raise UsageError("--jupyter runs on that server's files: --root does not apply")
    if args.where.local and args.target and args.target not in TARGET_TYPES:
        raise UsageError(f"with --local, --target is what the stand-in plays: one of {', '.join(TARGET_TYPES)}")
    if not args.where.local and args.output and not args.wait and not args.prepare_only:
        raise UsageError("-o needs --wait (or download the notebook later: studio-runner download RUN -o OUT)")
    if args.remote and args.notebook and args.notebook.startswith("s3://"):
        raise UsageError("--remote names a path in the target, not an s3:// URI")

    payload = _read_input(args.input) if args.input else {}
    params = collect(args.parameters_file, args.parameters_yaml, args.parameters, args.parameters_raw)
    mode = "aws"
    if args.where.local:
        mode = "embedded" if (args.jupyter or args.root or args.budget or args.target) else "local-up"
    plan = Plan(mode=mode, payload=payload, flavor="jupyter" if args.jupyter else (args.target if args.where.local and args.target else "studio-space"))

    if args.notebook:
        nb = args.notebook
        if nb.startswith("s3://"):
            payload["notebook_s3"] = nb
        elif args.remote or args.jupyter:
            payload["notebook"] = nb
        else:
            path = Path(nb).expanduser()
            path = path if path.is_absolute() else Path.cwd() / path
            if not path.is_file():
                raise UsageError(f"no such notebook: {nb}")
            if path.suffix.lower() != ".ipynb":
                raise UsageError(f"{nb} is not a .ipynb file")
            plan.upload = path.resolve()
        plan.stem = nb
    elif not args.input and not args.commands:
        raise UsageError("give a NOTEBOOK, a --command, or an --input payload")
    if args.root:
        plan.root = Path(args.root).expanduser().resolve()
        if not plan.root.is_dir():
            raise UsageError(f"--root {args.root}: no such folder")

    if params:
        payload["parameters"] = {**payload.get("parameters", {}), **params}
    if args.commands:
        payload["commands"] = list(args.commands)
    if args.target and not args.where.local:
        payload["target"] = args.target
    for flag, key in ((args.cell_timeout, "cell_seconds"), (args.run_timeout, "run_seconds"),
                      (args.start_timeout, "start_seconds")):
        if flag is not None:
            payload.setdefault("timeouts", {})[key] = flag
    if args.allow_errors:
        payload["allow_errors"] = True
    if args.parameter_sets:
        from studiorunner_cli.batch import load_parameter_sets

        payload["parameter_sets"] = load_parameter_sets(args.parameter_sets)
    if args.max_concurrency is not None:
        if not payload.get("parameter_sets"):
            raise UsageError("--max-concurrency applies to a batch: give --parameter-sets")
        if args.max_concurrency < 1:
            raise UsageError(f"--max-concurrency must be at least 1, got {args.max_concurrency}")
        payload["max_concurrency"] = args.max_concurrency
    if args.kernel:
        payload["kernel"] = {**payload.get("kernel", {}), "name": args.kernel}
    if args.language:
        payload["kernel"] = {**payload.get("kernel", {}), "language": args.language}
    if args.report:
        payload["html_report"] = True
    if args.html or args.report:
        formats = payload.get("output_formats", ["notebook"])
        if isinstance(formats, list) and "html" not in formats:
            formats = [*formats, "html"]
        payload["output_formats"] = formats  # a bad value in --payload is reported by _validate
    if args.output:
        from studiorunner_cli.outputs import check_writable

        check_writable(args.output)  # not after the run: the notebook would have nowhere to go
    apply_run_flags(args, payload)
    if args.cwd is not None:
        if not (args.notebook or payload.get("notebook") or payload.get("notebook_s3")):
            raise UsageError("--cwd is where the notebook's kernel runs: give a NOTEBOOK")
        if args.where.local:
            cwd = Path(args.cwd).expanduser()
            plan.cwd = (cwd if cwd.is_absolute() else Path.cwd() / cwd).resolve()
            if not plan.cwd.is_dir():
                raise UsageError(f"--cwd {args.cwd}: no such folder")
        else:
            payload["cwd"] = args.cwd
    if plan.stem is None:
        source = payload.get("notebook") or payload.get("notebook_s3")
        plan.stem = source if isinstance(source, str) else None
    _validate(payload, plan)
    if plan.upload is not None:
        plan.notes = _check_parameters(plan.upload, payload, args.kernel, args.language)
        for note in plan.notes:  # papermill prints these before it runs anything
            print(f"studio-runner: warning: {note}", file=sys.stderr, flush=True)
    return plan


def _check_parameters(notebook: Path, payload: dict[str, Any], kernel: str | None,
                      language: str | None = None) -> list[str]:
    """The parameters (each set's, for a batch) against the notebook's own language, as the run
    will inject them: a name or value it cannot take is a usage error now; the warnings it gives
    (a name its parameters cell does not define) are returned."""
    sets = [{**payload.get("parameters", {}), **s} for s in payload.get("parameter_sets") or []] \
        or [payload.get("parameters") or {}]
    if not any(sets):
        return []
    from studiorunner.errors import PayloadInvalid
    from studiorunner.translators import check_notebook_parameters

    try:  # its JSON is enough (nbformat's import would cost this check a second)
        nb = json.loads(notebook.read_text(encoding="utf-8"))
        metadata, cells = nb.get("metadata") or {}, nb.get("cells") or []
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"{notebook} is not a notebook (JSON): {exc}") from None
    notes: list[str] = []
    for index, parameters in enumerate(sets):
        try:
            _, warnings = check_notebook_parameters(
                metadata, cells, parameters, kernel_name=kernel or (payload.get("kernel") or {}).get("name"),
                language=language or (payload.get("kernel") or {}).get("language"))
        except PayloadInvalid as exc:
            where = f"set {index}: " if payload.get("parameter_sets") else ""
            raise UsageError(f"PayloadInvalid: {where}{exc.message}") from None
        notes.extend(w for w in warnings if w not in notes)
    return notes


def _validate(payload: dict[str, Any], plan: Plan) -> None:
    """The payload's own checks (the Prepare step runs them again): a bad payload is a usage error."""
    from studiorunner.errors import PayloadInvalid
    from studiorunner.payload import validate_payload

    probe = dict(payload)
    if plan.upload is not None:
        probe["notebook_s3"] = "s3://studio-runner-check/uploads/x.ipynb"
    if "parameter_sets" in probe:
        from studiorunner_cli.batch import validate_batch

        validate_batch(probe)
        return
    try:
        validate_payload(probe)
    except PayloadInvalid as exc:
        raise UsageError(f"PayloadInvalid: {exc.message}") from None


def prepare_only(args: RunOptions, plan: Plan) -> int:
    """papermill's ``--prepare-only``: the notebook with its parameters injected, written to OUT
    without starting anything (no stack, no kernel)."""
    if plan.upload is None:
        raise UsageError("--prepare-only takes a local notebook (it injects the parameters here, running nothing)")
    if not args.output:
        raise UsageError("--prepare-only writes the prepared notebook to OUT: give it (or -o)")
    import nbformat

    from studiorunner.parameters import inject_parameters
    from studiorunner_cli.outputs import destination

    nb = nbformat.read(plan.upload, as_version=4)
    inject_parameters(nb, plan.payload.get("parameters") or {}, kernel_name=args.kernel, language=args.language)
    nb.metadata["papermill"].update(input_path=str(plan.upload), output_path=args.output)
    target = destination(args.output, plan.upload, plan.upload.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    print(f"Prepared notebook (parameters injected, not run): {target}")
    return 0


# -- running ---------------------------------------------------------------------------
def run(args: RunOptions, plan: Plan) -> int:
    from studiorunner.naming import run_name

    run_id = run_name(plan.stem, default_stem="commands" if plan.payload.get("commands") else "run")
    if plan.mode == "embedded":
        from studiorunner_cli.local import cache_dir, embedded

        if plan.upload is not None:
            # The stand-in serves the notebook's own folder (or --root): relative paths in the
            # notebook behave as in Jupyter, and nothing is copied into the user's folders.
            plan.root = plan.root or plan.upload.parent
            if _inside(plan.upload, plan.root):
                plan.payload["notebook"] = plan.upload.relative_to(plan.root).as_posix()
                plan.upload = None
        plan.root = plan.root or Path.cwd()
        _local_cwd(plan, plan.root)

        with embedded(root=plan.root, flavor=plan.flavor, budget=args.budget, jupyter_url=args.jupyter) as (runs, _):
            if args.jupyter:
                print(f"Jupyter server at {args.jupyter} (no stand-in)", flush=True)
            else:
                print(f"Studio stand-in ({plan.flavor}) serving {plan.root}", flush=True)
            return _start_and_follow(args, plan, runs, run_id, wait=True, poll=0.25,
                                     default_dir=cache_dir() / "runs" / run_id)
    if plan.mode == "local-up":
        from studiorunner_cli.local import cache_dir, connect

        # The `local up` serving the notebook's folder (or this folder), if one does: the run
        # is then the same as with a stack of its own, in place, with its folder's files.
        local_up = connect(plan.upload.parent if plan.upload is not None else None, or_the_only_one=False)
        if local_up is None:
            # No long-lived stack serves it: an embedded one for this command, as `make demo` runs.
            plan.mode = "embedded"
            return run(args, plan)
        root = local_up.root or Path.cwd()
        if plan.upload is not None:
            plan.payload["notebook"] = plan.upload.relative_to(root).as_posix()
            plan.upload = None
        _local_cwd(plan, root)
        wait = args.wait or bool(args.output)  # -o implies --wait with --local, stack of its own or not
        if wait:
            print(f"Local stack serving {root}", flush=True)
        return _start_and_follow(args, plan, local_up, run_id, wait=wait, poll=0.5,
                                 default_dir=cache_dir() / "runs" / run_id)
    from studiorunner_cli.runs import DEFAULT_STACK, from_stack

    runs = from_stack(args.where.stack or DEFAULT_STACK, profile=args.where.profile, region=args.where.region)
    return _start_and_follow(args, plan, runs, run_id, wait=args.wait, poll=1.0, default_dir=None)


def _local_cwd(plan: Plan, root: Path) -> None:
    """``--local --cwd DIR``: the folder as a path in the stand-in's tree (it serves ``root``)."""
    if plan.cwd is None:
        return
    if not _inside(plan.cwd, root.resolve()):
        raise UsageError(f"--cwd {plan.cwd} is outside the folder the local stack serves ({root})")
    plan.payload["cwd"] = plan.cwd.relative_to(root.resolve()).as_posix()  # "." for the root itself


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _start_and_follow(args, plan: Plan, runs, run_id: str, *, wait: bool, poll: float, default_dir) -> int:
    from studiorunner_cli.display import ProgressPrinter, follow

    payload = dict(plan.payload)
    if plan.upload is not None:
        from studiorunner_cli.runs import UPLOAD_PREFIX

        payload["notebook_s3"] = runs.put(f"{UPLOAD_PREFIX}/{run_id}/{plan.upload.name}", plan.upload.read_bytes(),
                                         source=plan.upload)
    started = time.monotonic()
    runs.start(payload, run_id)
    if not wait:
        print(run_id)
        return 0
    print(f"Run {run_id} started", flush=True)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        printer = ProgressPrinter(log_output=args.log_output)
        info = follow(runs, run_id, printer, poll=poll)
    except (KeyboardInterrupt, Terminated) as exc:
        return _stop(args, runs, run_id, default_dir, started, 143 if isinstance(exc, Terminated) else 130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return report(args, runs, info, default_dir, time.monotonic() - started, streamed=printer, said=plan.notes)


def _raise_terminated(signum, frame):
    raise Terminated()


def _stop(args, runs, run_id: str, default_dir, started: float, code: int) -> int:
    """Ctrl-C / SIGTERM: stop the run, let it be cleaned up, keep the partial notebook, say so."""
    from studiorunner_cli.outputs import write_or_keep

    def _still(signum, frame):
        print("  (still stopping the run and cleaning up; one moment)", file=sys.stderr, flush=True)

    old_int, old_term = signal.signal(signal.SIGINT, _still), signal.signal(signal.SIGTERM, _still)
    try:
        print(f"\nStopping run {run_id}…", file=sys.stderr, flush=True)
        result = runs.stop(run_id)
        info = runs.describe(run_id)
        if isinstance(result, dict) and result.get("cleaned"):
            done = "; ".join(result.get("cleanup", {}).get("actions", [])) or "nothing was left running"
            print(f"Stopped after {time.monotonic() - started:.1f}s and cleaned up: {done}", file=sys.stderr)
        elif isinstance(result, dict):
            print(f"Stopped after {time.monotonic() - started:.1f}s; nothing to clean up"
                  + (f" ({result['reason']})" if result.get("reason") else ""), file=sys.stderr)
        else:
            print(f"Stopped ({info.status}); the stack cleans up after it as after any aborted run", file=sys.stderr)
        written = write_or_keep(runs, info, args.output, default_dir, default_dir)[0] if default_dir or args.output else []
        if written:
            print(f"Partial notebook: {written[0]}", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
    return code


def _failing_cell_traceback(runs, info, notebooks: list[Path]) -> str | None:
    """The failing cell's traceback as papermill's PapermillExecutionError prints it, or None."""
    import nbformat

    try:
        body = notebooks[0].read_bytes() if notebooks else runs.get_uri(runs.output_uri(info) or "")
        nb = nbformat.reads(body.decode("utf-8"), as_version=4) if body else None
    except Exception:  # noqa: BLE001 - the one-line error is already printed; this is extra
        return None
    for cell in nb.cells if nb else []:
        if "papermill-error-cell-tag" in cell.metadata.get("tags", []) or cell.get("cell_type") != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors and (cell.metadata.get("papermill") or {}).get("status") == "failed":
            error = errors[-1]
            lines = error.get("traceback") or [f"{error.get('ename')}: {error.get('evalue')}"]
            return ("\n" + 75 * "-" + "\n" + f'Exception encountered at "In [{cell.get("execution_count")}]":\n'
                    + "\n".join(lines) + "\n")
    return None


def report(args, runs, info, default_dir, elapsed: float, *, streamed=None, said: list[str] | None = None) -> int:
    """How the run ended: printed once; the outputs copied where asked.

    ``streamed``: the ProgressPrinter that followed the run (with ``--log-output`` it has
    printed every output line already, unless it says it missed some). ``said``: the warnings
    printed before the run started; the run's others (a notebook in S3 or the target's tree,
    which the CLI could not read first) are printed here."""
    for warning in (info.output or {}).get("warnings") or []:
        if warning not in (said or []):
            print(f"studio-runner: warning: {warning}", file=sys.stderr)
    from studiorunner_cli.outputs import write_or_keep
    from studiorunner_cli.runs import error_text

    if args.parameter_sets:
        from studiorunner_cli.batch import batch_result, report_batch

        result = batch_result(runs, info)
        if result is not None:
            return report_batch(args, runs, info, result, default_dir, elapsed)
    written, missed = write_or_keep(runs, info, args.output, default_dir, default_dir) \
        if (default_dir or args.output) else ([], False)
    if getattr(args, "log_output", False) and (streamed is None or not streamed.log_output):
        from studiorunner_cli.verbs import logs_text

        print(logs_text(runs, info), end="")
    elif streamed is not None and streamed.log_missed:
        print(f"({streamed.log_missed} output lines were not streamed: `studio-runner logs {info.run_id}` "
              f"or the executed notebook has every line)")
    out = info.output or {}
    log = next((p for p in written if p.name == "commands.log"), None)
    if log is not None:
        lines = log.read_text(errors="replace").splitlines()
        shown = lines[-200:]
        print("Commands:" + (f" (last {len(shown)} of {len(lines)} lines)" if len(lines) > len(shown) else ""))
        for line in shown:
            print(f"  | {line}")
    if info.status == "SUCCEEDED":
        print(f"SUCCEEDED in {elapsed:.1f}s: {out.get('cells_executed', 0)}/{out.get('cells_total', 0)} cells executed")
        for command in out.get("commands", []):
            print(f"  $ {command.get('command')}  → exit {command.get('exit_status')}")
        for path in written:
            print(f"{_LABELS.get(path.suffix, 'Written')}: {path}")
        if not written and runs.output_uri(info) and not missed:
            print(f"Executed notebook: {runs.output_uri(info)}")
            if _asked_html(args):
                print(f"HTML page: {runs.output_uri(info).removesuffix('.ipynb')}.html")
        return 1 if missed else 0
    notebooks = [p for p in written if p.suffix == ".ipynb"]
    why = runs.in_person_words(error_text(info.error, info.cause), info, notebooks[0] if notebooks else None)
    print(f"{info.status} in {elapsed:.1f}s: {why}", file=sys.stderr)
    if info.error in ("CellExecutionError", "CellTimeout"):
        traceback = _failing_cell_traceback(runs, info, notebooks)
        if traceback:  # as papermill prints it, after our one line
            sys.stderr.write(traceback if sys.stderr.isatty() else _ANSI.sub("", traceback))
    if notebooks:
        print(f"Executed notebook (with the error marked): {notebooks[0]}", file=sys.stderr)
    for page in (p for p in written if p.suffix == ".html"):
        print(f"HTML page: {page}", file=sys.stderr)
    if not written and _asked_html(args) and runs.output_uri(info):
        print(f"HTML page: {runs.output_uri(info).removesuffix('.ipynb')}.html", file=sys.stderr)
    return 1


_LABELS = {".ipynb": "Executed notebook", ".html": "HTML page"}
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _asked_html(args) -> bool:
    return bool(getattr(args, "html", False) or getattr(args, "report", False))
