"""pytest plugin for `make test-bundle`: the Lambda-side tests against the built bundle.

Loaded with ``-p tests.infra.bundle_plugin`` under the runtime's Python (.venv313), with
``STUDIO_RUNNER_LAMBDA_PATH`` naming the bundle folder and ``-o pythonpath=<bundle> .``
replacing pytest.ini's ``lambdas``. Before any test runs it checks that this is so — the
interpreter is the runtime's, and the handlers, the library and their dependencies come from
the bundle, with the .pyc files compiled at bundling — and stops the session otherwise,
so a green run cannot have quietly tested the source tree.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

# The Lambda runtime's Python (infra.bundling.RUNTIME); not imported from there: no CDK here.
RUNTIME_VERSION = (3, 13)
FROM_BUNDLE = ("studiorunner.steps", "studiorunner.steps.run_cells", "studiorunner", "studiorunner.run", "aws_lambda_powertools",
               "nbformat", "websocket", "requests")


def bundle_problems(bundle: Path) -> list[str]:
    problems = []
    if sys.version_info[:2] != RUNTIME_VERSION:
        problems.append(f"Python {sys.version_info[:2]} is not the Lambda runtime's {RUNTIME_VERSION}")
    for name in FROM_BUNDLE:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            problems.append(f"{name} cannot be imported: {exc}")
            continue
        where = Path(module.__file__ or "").resolve()
        if not where.is_relative_to(bundle):
            problems.append(f"{name} imported from {where}, not from the bundle {bundle}")
            continue
        compiled = Path(module.__cached__ or "")
        if not compiled.is_file():
            problems.append(f"{name} has no .pyc in the bundle ({compiled.name})")
    return problems


def pytest_sessionstart(session: pytest.Session) -> None:
    path = os.environ.get("STUDIO_RUNNER_LAMBDA_PATH")
    if not path:
        pytest.exit("tests.infra.bundle_plugin needs STUDIO_RUNNER_LAMBDA_PATH (the bundle folder)", returncode=4)
    problems = bundle_problems(Path(path).resolve())
    if problems:
        pytest.exit("not testing the built bundle:\n  " + "\n  ".join(problems), returncode=4)
