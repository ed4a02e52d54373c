"""``python -m studiorunner_jupyterlab enable [--stack S] [--target T]…``: write the one
configuration that makes jupyter-scheduler use Studio Runner into the user's
``jupyter_server_config.json``, which Jupyter reads after the image's own config files (so it
wins over a backend the image configured, as SageMaker Distribution configures its own), keeping
whatever else that file holds."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studiorunner_jupyterlab import server_config

FILE_NAME = "jupyter_server_config.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studiorunner_jupyterlab")
    sub = parser.add_subparsers(dest="verb", required=True)
    enable = sub.add_parser("enable", help="set the backend in the user's jupyter_server_config.json")
    enable.add_argument("--stack", default="StudioRunner")
    enable.add_argument("--region")
    enable.add_argument("--target", action="append", default=[], dest="targets",
                        help="a target offered as a runtime environment (repeatable; the first is the default)")
    enable.add_argument("--target-space", action="append", default=[], dest="target_spaces", metavar="NAME=DOMAIN/SPACE",
                        help="a studio-space target's domain and space: in that space, its target is the default")
    enable.add_argument("--config-dir", help="the Jupyter config folder (default: jupyter's user config dir)")
    args = parser.parse_args(argv)
    from jupyter_core.paths import jupyter_config_dir

    traits: dict = {"stack": args.stack}
    if args.region:
        traits["region"] = args.region
    if args.targets:
        traits["targets"] = args.targets
    if args.target_spaces:
        pairs = [item.partition("=") for item in args.target_spaces]
        if any(not name or not place.count("/") == 1 for name, _, place in pairs):
            parser.error("--target-space takes NAME=DOMAIN_ID/SPACE_NAME")
        traits["target_spaces"] = {name: place for name, _, place in pairs}
    folder = Path(args.config_dir or jupyter_config_dir())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    try:
        config = json.loads(path.read_text()) if path.exists() else {}
    except ValueError as exc:
        print(f"{path} is not JSON ({exc}): fix it, then run this again", file=sys.stderr)
        return 1
    for section, values in server_config(**traits).items():
        config[section] = {**config.get(section, {}), **values}
    path.write_text(json.dumps(config, indent=2) + "\n")
    print(f"Wrote the Studio Runner backend into {path}")
    if args.config_dir is None:
        overriding = _overridden()
        if overriding:
            print(f"but Jupyter will still use {overriding[0]}: {overriding[1]} sets SchedulerApp.scheduler_class "
                  "after this file (JUPYTER_CONFIG_PATH, or JUPYTER_PREFER_ENV_PATH putting the environment's config "
                  "first); remove it there", file=sys.stderr)
            return 1
    print("Restart JupyterLab to use it.")
    return 0


def _overridden() -> tuple[str, str] | None:
    """The scheduler class Jupyter will load, and the file that sets it, when it is not ours."""
    from jupyter_server.serverapp import ServerApp

    from studiorunner_jupyterlab import SCHEDULER

    app = ServerApp()
    app.load_config_file()
    effective = str(app.config.get("SchedulerApp", {}).get("scheduler_class", ""))
    if effective == SCHEDULER:
        return None
    for name in reversed(app.loaded_config_files):  # the last one read decides
        text = Path(name).read_text(errors="replace")
        if "scheduler_class" in text:
            return effective, name
    return effective, "a config file"


if __name__ == "__main__":
    sys.exit(main())
