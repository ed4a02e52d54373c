"""A real local bundling of the Lambda code (no Docker), from the offline wheelhouse.

`make synth` fills build/wheelhouse/ (`python -m infra.bundling download`); without it this
test is skipped rather than reaching for the network.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from infra.bundling import LAMBDAS, PipLocalBundling, runtime_python_version, wheelhouse_dir


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
    for absent in ("botocore", "boto3", "jupyter_server", "ipykernel"):
        assert not (tmp_path / absent).exists(), absent
    # .pyc files compiled by the runtime's Python, which is what the runtime will load.
    assert (tmp_path / "studiorunner" / "__pycache__" / f"config.{tag}.pyc").is_file()
    assert (tmp_path / "studiorunner" / "steps" / "__pycache__" / f"run_cells.{tag}.pyc").is_file()
    # Pruned to keep the zip under 5 MB (make test-bundle proves nothing pruned is imported).
    assert not (tmp_path / "aws_lambda_powertools" / "event_handler").exists()
    assert not list(tmp_path.glob("*/tests"))
