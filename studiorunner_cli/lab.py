"""``studio-runner lab [--local] [--root DIR] [--port N] [--no-browser]``: JupyterLab whose
Notebook Jobs run on Studio Runner (the jupyter-scheduler backend in studiorunner_jupyterlab/).

With ``--local`` this process keeps a local stack up, as ``local up`` does (so
``studio-runner run --local`` from another shell lands in the same jobs list), or uses the one a
``local up`` keeps (its runs from before JupyterLab was opened are in the list), and runs
``jupyter lab`` on the same folder as a child, which prints its URL with the token as
``jupyter lab`` always does. Without it, JupyterLab's jobs run on the deployed stack
(``--stack``, your usual AWS credentials). Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from studiorunner_cli.parameters import UsageError
from studiorunner_cli.verb import EXIT_TERMINATED, Verb, Where, add_where


@dataclass(frozen=True)
class LabOptions:
    where: Where = field(default_factory=Where)
    root: str = "."
    port: int | None = None
    no_browser: bool = False
    targets: tuple[str, ...] = ()


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=".", help="the folder JupyterLab (and the local stand-in) serves (default: .)")
    parser.add_argument("--port", type=int, help="JupyterLab's port on 127.0.0.1 (default: 8888 or the next free one)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser: only print the URL")
    parser.add_argument("--target", action="append", default=[], dest="targets",
                        help="a deployed target offered as a runtime environment (repeatable; the first is the default)")
    add_where(parser)


def jupyter_command(*, root: Path, port: int | None, open_browser: bool, scheduler: dict) -> list[str]:
    """``jupyter lab`` on ``root`` (127.0.0.1 only) with the Studio Runner backend configured."""
    from studiorunner_jupyterlab import server_config

    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.open_browser={open_browser}"]
    if port:
        command.append(f"--ServerApp.port={port}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # jupyter refuses root without it (containers)
    for section, traits in server_config(**scheduler).items():
        for trait, value in traits.items():
            if isinstance(value, (list, tuple)):
                command += [f"--{section}.{trait}={item}" for item in value]
            else:
                command.append(f"--{section}.{trait}={value}")
    return command


def _child_env() -> dict[str, str]:
    """The child imports the backend (and, in a checkout, the library beside it)."""
    import studiorunner_jupyterlab

    env = dict(os.environ)
    here = str(Path(studiorunner_jupyterlab.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def lab(options: LabOptions, out=sys.stdout) -> int:
    root = Path(options.root).expanduser().resolve()
    if not root.is_dir():
        raise UsageError(f"--root {options.root}: no such folder")
    if options.where.local and (options.where.stack or options.targets):
        raise UsageError("--local runs jobs on the local stack: --stack and --target do not apply")
    try:
        import jupyter_scheduler  # noqa: F401
        import jupyterlab  # noqa: F401
    except ImportError:
        from studiorunner_cli.runs import RunsError

        raise RunsError("lab needs JupyterLab and jupyter-scheduler: pip install 'studio-runner[jupyterlab]'") from None
    open_browser = not options.no_browser
    if not options.where.local:
        scheduler = {"stack": options.where.stack or "StudioRunner", "targets": list(options.targets)}
        scheduler.update({k: v for k, v in (("profile", options.where.profile), ("region", options.where.region)) if v})
        return _run_jupyter(jupyter_command(root=root, port=options.port, open_browser=open_browser,
                                            scheduler=scheduler), keep=lambda: True)

    from studiorunner_cli.local import find_stack, long_lived

    serving = find_stack(root)
    if serving is not None:  # a `local up` serving this folder: its runs, schedules and stand-in are the jobs here
        print(f"Using the local stack already up (its stand-in serves {serving['root']}); JupyterLab serves {root}",
              file=out, flush=True)
        return _run_jupyter(jupyter_command(root=root, port=options.port, open_browser=open_browser,
                                            scheduler={"local": True}), keep=lambda: True)

    with long_lived(root=root, out=out) as keep:
        if keep is None:
            return 1
        print("Starting JupyterLab: its Notebook Jobs run on this local stack (Ctrl-C stops both)…",
              file=out, flush=True)
        code = _run_jupyter(jupyter_command(root=root, port=options.port, open_browser=open_browser,
                                            scheduler={"local": True}), keep=keep)
    print("Stopped.", file=out)
    return code


def _run_jupyter(command: list[str], *, keep) -> int:
    """Run JupyterLab until it ends, ``keep()`` says stop, Ctrl-C or SIGTERM; then stop it (SIGTERM)."""
    # Its own session: Ctrl-C reaches this process only, which then stops JupyterLab (jupyter
    # would otherwise ask "Shutdown this Jupyter server (y/[n])?" on the terminal). So a SIGTERM
    # to this process must stop it too: by default it would end this process at once and leave
    # JupyterLab running on its own (as `lab` on a deployed stack, or on a `local up`, did).
    child = subprocess.Popen(command, env=_child_env(), start_new_session=True)
    terminated: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: terminated.append(signum))
    try:
        while child.poll() is None and keep() and not terminated:
            time.sleep(0.5)
        return EXIT_TERMINATED if terminated else (child.poll() or 0)
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


VERB = Verb("lab", "JupyterLab whose Notebook Jobs run on Studio Runner", _arguments, LabOptions, lab)
