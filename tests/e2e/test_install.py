"""``pip install studio-runner`` as a new user does it: the wheel built from this checkout,
installed into fresh virtual environments and used from a folder outside the checkout, once
without extras (the command against AWS) and once with ``[local]`` (issue 18 point 1).

Needs PyPI (or a warm pip cache) for the dependencies, as ``make test`` on a fresh machine does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "STUDIO_RUNNER_", "POWERTOOLS_", "PYTHON", "VIRTUAL_ENV"))}
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the checkout (a build writes build/ and *.egg-info)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "node_modules", "cdk.out", "build", "*.egg-info", "__pycache__", ".ruff_cache"))
    out = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    str(source), "-w", str(out)], check=True, capture_output=True, text=True, timeout=300)
    (built,) = out.glob("studio_runner-*.whl")
    return built


def _venv(where: Path, requirement: str) -> Path:
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement],
                          env=_env(), capture_output=True, text=True, timeout=800)
    assert done.returncode == 0, done.stdout + done.stderr
    return where / "bin"


def test_the_wheel_alone_runs_against_aws_and_names_the_extra_for_local(wheel, tmp_path):
    bin_dir = _venv(tmp_path / "venv", str(wheel))
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    assert not (site / "steps").exists(), "a top-level package named steps"
    top_level = next(site.glob("studio_runner-*.dist-info/top_level.txt")).read_text().split()
    # our names only (the JupyterLab backend's package is imported only by the [jupyterlab] extra's users)
    assert sorted(top_level) == ["localstudio", "studiorunner", "studiorunner_cli", "studiorunner_jupyterlab"]
    assert (site / "studiorunner" / "statemachine" / "runner.asl.json").is_file()

    work = tmp_path / "work"
    work.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), work / "nb.ipynb")
    cli = str(bin_dir / "studio-runner")
    assert subprocess.run([cli, "--help"], cwd=work, env=_env(), capture_output=True, timeout=60).returncode == 0

    local = subprocess.run([cli, "run", "--local", "nb.ipynb"], cwd=work, env=_env(), capture_output=True,
                           text=True, timeout=60)
    assert local.returncode == 2, local.stdout + local.stderr
    assert local.stderr.strip().count("\n") == 0, local.stderr  # one line
    assert "[local] extra" in local.stderr and "pip install 'studio-runner[local]'" in local.stderr
    assert "Traceback" not in local.stderr

    # against AWS: boto3 and the client library are there; an unreachable endpoint is one line, exit 1
    env = {**_env(), "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "eu-west-1",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    aws = subprocess.run([cli, "list"], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert aws.returncode == 1, aws.stdout + aws.stderr
    assert "cannot reach AWS" in aws.stderr and "Traceback" not in aws.stderr


def test_the_wheel_with_local_runs_a_notebook_from_any_folder(wheel, tmp_path):
    bin_dir = _venv(tmp_path / "venv", f"{wheel}[local]")
    work = tmp_path / "somewhere"
    work.mkdir()
    shutil.copy(REPO / "examples" / "demo.ipynb", work / "demo.ipynb")
    env = {**_env(), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([str(bin_dir / "studio-runner"), "run", "--local", "demo.ipynb", "-p", "who", "you",
                           "-o", "out/"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCEEDED" in done.stdout
    nb = nbformat.read(work / "out" / "demo.ipynb", as_version=4)
    assert any("you" in str(cell.get("outputs")) for cell in nb.cells)
    assert "moto" in subprocess.run([str(bin_dir / "python"), "-m", "pip", "list"], env=_env(),
                                    capture_output=True, text=True).stdout
    cfn = subprocess.run([str(bin_dir / "python"), "-c", "import cfnlint"], env=_env(), capture_output=True)
    assert cfn.returncode != 0, "[local] pulled in cfn-lint (moto[server]): the demo never uses it"
