"""``python -m studiorunner_jupyterlab enable [--stack S] [--target T]…``: write the one
configuration that makes jupyter-scheduler use Studio Runner (into the user's Jupyter config,
which Jupyter reads after the image's own), and nothing else."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studiorunner_jupyterlab import server_config

FILE_NAME = "studio-runner.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studiorunner_jupyterlab")
    sub = parser.add_subparsers(dest="verb", required=True)
    enable = sub.add_parser("enable", help="write jupyter_server_config.d/studio-runner.json")
    enable.add_argument("--stack", default="StudioRunner")
    enable.add_argument("--region")
    enable.add_argument("--target", action="append", default=[], dest="targets",
                        help="a target offered as a runtime environment (repeatable; the first is the default)")
    enable.add_argument("--config-dir", help="the Jupyter config folder (default: jupyter's user config dir)")
    args = parser.parse_args(argv)
    from jupyter_core.paths import jupyter_config_dir

    traits: dict = {"stack": args.stack}
    if args.region:
        traits["region"] = args.region
    if args.targets:
        traits["targets"] = args.targets
    folder = Path(args.config_dir or jupyter_config_dir()) / "jupyter_server_config.d"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    path.write_text(json.dumps(server_config(**traits), indent=2) + "\n")
    print(f"Wrote {path}: restart JupyterLab to use the Studio Runner backend")
    return 0


if __name__ == "__main__":
    sys.exit(main())
