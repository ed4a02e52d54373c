"""The local stack behind ``--local``: embedded in this process, or long-lived (``local up``).

Embedded (``run --local`` of a notebook no ``local up`` serves): a Studio stand-in serving the
notebook's folder and the state machine in moto start with the command and stop with it, as
``make demo`` does; the executed notebook is copied out before they go. Long-lived:
``studio-runner local up --root DIR`` keeps one serving DIR and answers the AWS APIs on
127.0.0.1; ``run --local`` of a notebook under DIR runs there, in place, and ``list``,
``status``, ``download`` and ``stop --local`` reach it from DIR (or, if it is the only one up,
from anywhere). Each writes where to reach it in ``~/.cache/studio-runner/local/<hash of
DIR>.json`` (no token or secret in it).

Everything a local run does stays inside this machine: the stand-in and moto listen on
127.0.0.1 only, and the state machine cannot send anything outside the process's mocks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studiorunner_cli.parameters import UsageError
from studiorunner_cli.runs import Runs
from studiorunner_cli.verb import TARGET_TYPES, Verb


@dataclass(frozen=True)
class LocalOptions:
    """``studio-runner local up|serve``."""

    local_verb: str
    root: str = "."
    target: str = "studio-space"
    port: int = 0


def _arguments(local: argparse.ArgumentParser) -> None:
    sub = local.add_subparsers(dest="local_verb", required=True, parser_class=type(local))
    up = sub.add_parser("up", help="keep a local stack up (Ctrl-C to stop)")
    up.add_argument("--root", default=".", help="the folder the stand-in serves as home (default: .)")
    up.add_argument("--target", choices=TARGET_TYPES, default="studio-space")
    up.add_argument("--port", type=int, default=0, help="port for the AWS APIs on 127.0.0.1 (default: any free one)")
    serve = sub.add_parser("serve", help="only the Studio stand-in, to poke at with a browser or the AWS CLI")
    serve.add_argument("--root", default=".", help="the folder the stand-in serves as home (default: .)")
    serve.add_argument("--target", choices=TARGET_TYPES, default="studio-space")
    serve.add_argument("--port", type=int, default=8890, help="the stand-in's port on 127.0.0.1 (default: 8890)")


def local(options: LocalOptions) -> int:
    root = Path(options.root).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"--root {options.root}: no such folder")
    if options.local_verb == "serve":
        require_local_extra()
        from localstudio.standin import serve

        serve(root, options.target, options.port)
        return 0
    return up(root=root, flavor=options.target, port=options.port)


#: What ``--local`` imports of the ``[local]`` extra (top-level modules); ``local up`` also serves
#: the AWS APIs over HTTP with moto's server (Flask).
LOCAL_EXTRA = ("moto", "jupyter_server", "ipykernel", "aws_lambda_powertools", "aws_xray_sdk")
SERVER_EXTRA = ("flask", "flask_cors")


def require_local_extra(*, server: bool = False) -> None:
    """A usage error, before anything starts, when the ``[local]`` extra is not installed (or its
    moto is not one the local stack was tested with)."""
    import importlib.util

    missing = [name for name in LOCAL_EXTRA + (SERVER_EXTRA if server else ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"--local needs the [local] extra (missing: {', '.join(missing)}): "
                         "pip install 'studio-runner[local]'")
    from localstudio.moto_shims import MotoVersionUnsupported, check_moto_version

    try:
        check_moto_version()
    except MotoVersionUnsupported as exc:
        raise UsageError(str(exc)) from None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "studio-runner"


def stacks_dir() -> Path:
    """Where each ``local up`` says how to reach it: one file per root folder (no token or secret)."""
    return cache_dir() / "local"


def _state_path(root: Path) -> Path:
    return stacks_dir() / f"{hashlib.sha256(str(root).encode()).hexdigest()[:16]}.json"


def live_stacks() -> list[dict[str, Any]]:
    """Every ``local up`` that is up (its state file, its process alive)."""
    found = []
    for path in sorted(stacks_dir().glob("*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("root") and _pid_alive(int(info.get("pid", 0))):
            found.append({**info, "file": str(path)})
    return found


def find_stack(path: Path | None = None, *, or_the_only_one: bool = False) -> dict[str, Any] | None:
    """The ``local up`` whose root folder holds ``path`` (default: the current folder), the deepest
    if several do; with ``or_the_only_one``, else the one stack up if there is exactly one."""
    path = (path or Path.cwd()).resolve()
    stacks = live_stacks()
    holding = [s for s in stacks if path == Path(s["root"]) or Path(s["root"]) in path.parents]
    if holding:
        return max(holding, key=lambda s: len(Path(s["root"]).parts))
    return stacks[0] if or_the_only_one and len(stacks) == 1 else None


def state_file(for_path: Path | None = None) -> Path:
    """The state file of the stack ``find_stack(for_path, or_the_only_one=True)`` finds, else the
    folder where stacks' files are (for messages: "looked for …")."""
    info = find_stack(for_path, or_the_only_one=True)
    return Path(info["file"]) if info else stacks_dir()


def quiet_logs() -> None:
    """Failures are printed once by the CLI: keep the steps' and moto's own logs off the terminal."""
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")
    for name in ("moto", "werkzeug", "botocore", "urllib3", "websocket", "studiorunner", "localstudio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def studio_path() -> None:
    """A Studio terminal has the image's ``python`` first on PATH; the stand-in's gets ours."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def connect(for_path: Path | None = None, *, or_the_only_one: bool = True) -> Runs | None:
    """The ``local up`` stack serving ``for_path`` (default: the current folder), else (unless
    ``or_the_only_one`` is False) the one stack up, if one is; None if none."""
    info = find_stack(for_path, or_the_only_one=or_the_only_one)
    if info is None:
        return None
    import boto3

    kwargs: dict[str, Any] = dict(endpoint_url=info["endpoint"], region_name=info["region"],
                                  aws_access_key_id="testing", aws_secret_access_key="testing")
    return Runs(boto3.client("stepfunctions", **kwargs), boto3.client("s3", **kwargs),
                state_machine_arn=info["state_machine_arn"], bucket=info["bucket"], root=Path(info["root"]))


@contextmanager
def embedded(*, root: Path, flavor: str = "studio-space", budget: float | None = None,
             jupyter_url: str | None = None) -> Iterator[tuple[Runs, Any]]:
    """A stand-in (or the server at ``jupyter_url``) and the state machine, for this command only."""
    require_local_extra()
    quiet_logs()
    studio_path()
    from localstudio.local_stack import BUCKET, ExternalJupyter, LocalStack
    from localstudio.standin import StandIn

    if jupyter_url:
        # The token only from the environment, never from the command line (ps shows that).
        server: AbstractContextManager[Any] = _nullcontext(ExternalJupyter(jupyter_url.rstrip("/"), token=os.environ.get("JUPYTER_TOKEN") or None))
    else:
        server = StandIn(root=root, flavor=flavor, trash=False)  # root is the user's folder
    checkpoints = root / ".ipynb_checkpoints"
    had_checkpoints = checkpoints.exists()
    try:
        with server as standin, LocalStack(standin, run_cells_budget=budget) as stack:
            yield Runs(stack.sfn, stack.s3, state_machine_arn=stack.state_machine_arn, bucket=BUCKET,
                       stopper=stack.stop, root=root), stack
    finally:
        if not had_checkpoints and not jupyter_url:
            # jupyter_server makes it in a folder where its contents API deletes anything (the
            # run's own files): empty, and not the user's
            try:
                checkpoints.rmdir()
            except OSError:
                pass


@contextmanager
def _nullcontext(value: Any) -> Iterator[Any]:
    yield value


class _Stop(Exception):
    pass


def up(*, root: Path, flavor: str, port: int = 0, out=sys.stdout) -> int:
    """Keep a local stack up until Ctrl-C or SIGTERM; clean up after runs stopped from elsewhere."""
    with long_lived(root=root, flavor=flavor, port=port, out=out) as keep:
        if keep is None:
            return 1
        print("Use `studio-runner --local …` from any shell; Ctrl-C to stop.", file=out, flush=True)
        while keep():
            time.sleep(0.5)
    print("Local stack stopped.", file=out)
    return 0


@contextmanager
def long_lived(*, root: Path, flavor: str = "studio-space", port: int = 0,
               out=sys.stdout) -> Iterator[Callable[[], bool] | None]:
    """A local stack other commands reach (through the state file) while the block runs
    (``local up``, ``lab --local``).

    Yields ``keep``: call it every half second or so; it fires the due schedules, cleans up
    after runs stopped from another command (as the ExecutionEnded rule does on AWS) and
    returns False once Ctrl-C or SIGTERM asked to stop. Yields None (having said why) when a
    local stack is already up.
    """
    require_local_extra(server=True)
    from localstudio.local_stack import BUCKET, REGION

    path = _state_path(root)
    serving = next((s for s in live_stacks() if Path(s["root"]) == root), None)
    if serving is not None:
        print(f"studio-runner: a local stack already serves {root} (process {serving['pid']})", file=sys.stderr)
        yield None
        return

    def _term(signum, frame):
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, _term)
    try:
        with embedded(root=root, flavor=flavor) as (runs, stack):
            endpoint = stack.serve(port)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"pid": os.getpid(), "endpoint": endpoint, "region": REGION,
                                        "state_machine_arn": stack.state_machine_arn, "bucket": BUCKET,
                                        "root": str(root), "flavor": flavor,
                                        # the stand-in's API host (its control calls; no token)
                                        "standin_url": getattr(stack.standin, "base_url", None)}))
            print(f"Local stack up: {flavor} stand-in serving {root}; AWS APIs on {endpoint}", file=out, flush=True)
            handled: set[str] = set()
            # Scheduler's part: moto keeps the schedules; the due ones are fired from here.
            from localstudio.local_stack import SCHEDULE_GROUP, STACK_SCHEDULE_GROUP
            from studiorunner_cli.schedules.local_fire import LocalScheduler

            schedules = LocalScheduler(scheduler=stack.scheduler, stepfunctions=stack.sfn,
                                       groups=[STACK_SCHEDULE_GROUP, SCHEDULE_GROUP])
            stopping = False

            def keep() -> bool:
                nonlocal stopping
                if stopping:
                    return False
                try:
                    for run_id in schedules.tick():
                        print(f"Schedule fired: run {run_id}", file=out, flush=True)
                    # A stop from another command: interrupt its step and clean up, as the
                    # ExecutionEnded rule does on AWS.
                    for arn in _ended_without_cleanup(stack, handled):
                        stack.stop(arn)
                except (KeyboardInterrupt, _Stop):
                    stopping = True
                return not stopping

            try:
                yield keep
            except (KeyboardInterrupt, _Stop):
                pass
            print("Stopping the local stack (running runs are stopped and cleaned up)…", file=out, flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


def _ended_without_cleanup(stack: Any, handled: set[str]) -> list[str]:
    found = []
    for status in ("ABORTED", "TIMED_OUT"):
        try:
            page = stack.sfn.list_executions(stateMachineArn=stack.state_machine_arn, statusFilter=status)
        except Exception:  # noqa: BLE001
            continue
        for item in page.get("executions", []):
            if item["executionArn"] not in handled and not stack.handled(item["executionArn"]):
                handled.add(item["executionArn"])
                found.append(item["executionArn"])
    return found


VERB = Verb("local", "a long-lived local stack", _arguments, LocalOptions, local)
