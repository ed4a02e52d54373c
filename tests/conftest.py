"""Fixtures every test folder may use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from localstudio.lambda_context import FakeLambdaContext

EVENTS = Path(__file__).parent / "events"


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A Lambda context with 15 minutes left, as Powertools' examples use one."""
    return FakeLambdaContext("studio-runner-test", 900)


@pytest.fixture
def sample_event() -> Callable[[str], dict[str, Any]]:
    """``sample_event("s3_object_created")``: a fresh copy of ``tests/events/<name>.json``."""
    return lambda name: json.loads((EVENTS / f"{name}.json").read_text())
