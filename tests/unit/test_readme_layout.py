"""The README's folder map (## Layout) names every folder and module that exists, so a newcomer
finds each one there (issue 20 part 2.6). A new module: one word in that map."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lambdas/studiorunner", "infra", "studiorunner_cli", "studiorunner_jupyterlab", "localstudio", "bench")


def _layout() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index("## Layout"):readme.index("## Development")]


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return out.splitlines()
    except (OSError, subprocess.CalledProcessError):  # not a checkout: what is on disk
        return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if ".venv" not in p.parts]


def test_the_layout_names_every_module_and_folder():
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", _layout()))
    missing = []
    for path in _tracked():
        if not path.endswith(".py") or not path.startswith(PACKAGES):
            continue
        parts = Path(path).parts
        stem = Path(path).stem
        if stem not in ("__init__", "__main__") and stem not in words and f"{stem}.py" not in words:
            missing.append(path)
        for folder in parts[1:-1]:
            if folder not in words and f"{folder}/" not in _layout():
                missing.append(f"{'/'.join(parts[:-1])}/")
    top = {Path(p).parts[0] for p in _tracked() if "/" in p and not p.startswith(".")}
    missing += [f"{folder}/" for folder in sorted(top) if f"{folder}/" not in _layout()]
    assert not sorted(set(missing)), f"README ## Layout does not name: {sorted(set(missing))}"
