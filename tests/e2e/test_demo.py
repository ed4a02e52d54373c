"""``make demo`` prints what the README's quick start shows (issue 18 point 2)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _normalised(line: str) -> str:
    line = re.sub(r"demo-\d{8}T\d{6}Z-[0-9a-f]{6}", "RUN", line)
    return re.sub(r"\d+(\.\d+)?", "N", line).rstrip()


def _readme_sample() -> list[str]:
    text = (REPO / "README.md").read_text()
    quick = text[text.index("## Quick start"):]
    block = quick[quick.index("`build/demo-output.ipynb`:\n\n```\n") + len("`build/demo-output.ipynb`:\n\n```\n"):]
    return block[: block.index("```")].splitlines()


def _makefile_demo() -> tuple[str, list[str]]:
    """The install message and the demo's command line, as the Makefile has them."""
    makefile = (REPO / "Makefile").read_text()
    message = re.search(r'@echo "(Installing studio-runner\[local\][^"]*)"', makefile).group(1)
    command = re.search(r"^demo:.*\n\t@?(.*)$", makefile, re.M).group(1)
    return message.replace("$(VENV)", ".venv"), shlex.split(command)


def test_make_demo_prints_what_the_readme_shows(tmp_path):
    message, command = _makefile_demo()
    sample = _readme_sample()
    assert sample[0] == message, "the README's first line is the Makefile's install message"
    assert command[0] == "$(VENV)/bin/studio-runner"
    checkout = tmp_path / "studio-runner"
    (checkout / "examples").mkdir(parents=True)
    shutil.copy(REPO / "examples" / "demo.ipynb", checkout / "examples" / "demo.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STUDIO_RUNNER_", "POWERTOOLS_"))}
    env.update(PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "studiorunner_cli", *command[1:]], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = [_normalised(line.replace(str(checkout), "/…/studio-runner")) for line in done.stdout.splitlines()]
    position = 0
    for line in sample[1:]:
        if line.strip() == "…":
            continue
        wanted = _normalised(line)
        if line.startswith("  … ") and wanted not in printed[position:]:
            continue  # a phase is printed when a poll sees it: a quick one (preparing) may pass unseen
        assert wanted in printed[position:], f"README line {line!r} not printed (in order) by the demo:\n{done.stdout}"
        position = printed.index(wanted, position) + 1
    assert (checkout / "build" / "demo-output.ipynb").is_file()
