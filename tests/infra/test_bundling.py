"""A real local bundling of the Lambda code (no Docker), from the offline wheelhouse.

`make synth` fills build/wheelhouse/ (`python -m infra.bundling download`); without it this
test is skipped rather than reaching for the network.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.bundling import LAMBDAS, RENDER, PipLocalBundling, runtime_python, runtime_python_version, wheelhouse_dir


@pytest.mark.skipif(not wheelhouse_dir().is_dir(), reason="no wheelhouse: run `make synth` "
                    "or `python -m infra.bundling download` once with access to PyPI")
def test_bundle_has_the_handlers_and_runtime_deps_for_the_lambda_platform(tmp_path: Path):
    started = time.monotonic()
    bundling = PipLocalBundling(source=LAMBDAS, python_version=runtime_python_version(), wheelhouse=wheelhouse_dir())

    assert bundling.try_bundle(str(tmp_path)) is True

    assert time.monotonic() - started < 60
    for handler in ("prepare", "start_target", "start_kernel", "run_cells", "cleanup", "s3_trigger"):
        assert (tmp_path / "studiorunner" / "steps" / f"{handler}.py").is_file(), handler
    assert (tmp_path / "studiorunner" / "s3_trigger.py").is_file()
    for package in ("requests", "websocket", "nbformat", "aws_lambda_powertools"):
        assert (tmp_path / package).is_dir(), package
    # Wheels built for the Lambda's CPython, not this machine's.
    tag = "cpython-" + runtime_python_version().replace(".", "")
    assert list(tmp_path.glob(f"rpds/*.{tag}-x86_64-linux-gnu.so")), "rpds-py was not installed for the runtime"
    # The runtime's own boto3/botocore must not be shadowed; the Jupyter server never ships.
    for absent in ("botocore", "boto3", "jupyter_server", "ipykernel", "nbconvert"):  # nbconvert: RenderPage's
        assert not (tmp_path / absent).exists(), absent
    # .pyc files compiled by the runtime's Python, which is what the runtime will load.
    assert (tmp_path / "studiorunner" / "__pycache__" / f"config.{tag}.pyc").is_file()
    assert (tmp_path / "studiorunner" / "steps" / "__pycache__" / f"run_cells.{tag}.pyc").is_file()
    # Pruned to keep the zip under 5 MB (make test-bundle proves nothing pruned is imported).
    assert not (tmp_path / "aws_lambda_powertools" / "event_handler").exists()
    assert not list(tmp_path.glob("*/tests"))


@pytest.mark.skipif(not wheelhouse_dir().is_dir(), reason="no wheelhouse: run `make synth` "
                    "or `python -m infra.bundling download` once with access to PyPI")
def test_the_render_bundle_renders_the_page_with_nothing_but_itself(tmp_path: Path):
    """RenderPage's bundle (nbconvert's templates live in its share/, outside any sys.prefix)
    renders the page on the runtime's Python with only the bundle on the path."""
    import subprocess

    bundle = tmp_path / "render"
    PipLocalBundling(source=LAMBDAS, python_version=runtime_python_version(), wheelhouse=wheelhouse_dir(),
                     variant=RENDER).try_bundle(str(bundle))
    assert (bundle / "nbconvert").is_dir() and (bundle / "share" / "jupyter" / "nbconvert" / "templates" / "lab").is_dir()
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "report_executed.ipynb"
    done = subprocess.run(
        [runtime_python(runtime_python_version()), "-S", "-c",
         "import nbformat, sys; from studiorunner.report.page import render_page; "
         f"page = render_page(nbformat.read({str(fixture)!r}, 4), report=True); "
         "print(len(page), 'dataframe' in page, '<script' in page)"],
        env={"PYTHONPATH": str(bundle), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    size, table, script = done.stdout.split()
    assert int(size) > 100_000 and table == "True" and script == "False"
