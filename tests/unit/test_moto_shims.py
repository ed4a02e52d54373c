"""The moto shims (localstudio/moto_shims.py) run only on the moto versions they were tested
with, and the ``[local]`` extra installs only those."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_an_untested_moto_is_refused_by_name():
    from localstudio.moto_shims import TESTED_SPEC, MotoVersionUnsupported, check_moto_version

    assert check_moto_version("5.2.5") == "5.2.5"
    for version in ("5.3.0", "6.0.0", "5.1.9", "4.2.14"):
        with pytest.raises(MotoVersionUnsupported) as raised:
            check_moto_version(version)
        assert f"moto {version} is installed" in str(raised.value)
        assert f"moto{TESTED_SPEC}" in str(raised.value)


def test_importing_the_local_stack_with_an_untested_moto_fails_at_once_with_that_message(tmp_path):
    """Not somewhere inside a run: the import of the local stack says it, naming both versions."""
    script = (
        "import sys, importlib.metadata as md\n"
        "real = md.version\n"
        "md.version = lambda name: '5.9.0' if name == 'moto' else real(name)\n"
        f"sys.path[:0] = [{str(REPO)!r}, {str(REPO / 'lambdas')!r}]\n"
        "import localstudio.local_stack\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "MotoVersionUnsupported: the local stack was written for moto>=5.2.5,<5.3" in done.stderr
    assert "moto 5.9.0 is installed" in done.stderr


def test_the_local_extra_caps_moto_to_the_tested_versions():
    from localstudio.moto_shims import TESTED_SPEC

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["local"]
    moto = [spec for spec in extra if re.match(r"moto\b", spec)]
    assert len(moto) == 1 and moto[0].endswith(TESTED_SPEC.replace(",", ",")), moto
    pinned = re.search(r"^moto\[[^\]]*\]==([\d.]+)", (REPO / "requirements-dev.txt").read_text(), re.M)
    from localstudio.moto_shims import check_moto_version

    assert pinned and check_moto_version(pinned.group(1))  # what the tests run on is a tested one
