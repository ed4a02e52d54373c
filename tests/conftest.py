"""Fixtures every test folder may use."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from localstudio.lambda_context import FakeLambdaContext
from tests import peer_suites as peers

EVENTS = Path(__file__).parent / "events"


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A Lambda context with 15 minutes left, as Powertools' examples use one."""
    return FakeLambdaContext("studio-runner-test", 900)


@pytest.fixture(scope="session")
def peer_suites() -> Path:
    """The peer projects' test notebooks (``../shared/peer-suites``); the test is skipped, saying why, without them."""
    return peers.require()


@pytest.fixture
def sample_event() -> Callable[[str], dict[str, Any]]:
    """``sample_event("s3_object_created")``: a fresh copy of ``tests/events/<name>.json``."""
    return lambda name: json.loads((EVENTS / f"{name}.json").read_text())


_LOGGERS = ("", "moto", "werkzeug", "botocore", "urllib3", "websocket", "studiorunner", "localstudio")


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """The CLI quietens loggers for its own process (``studiorunner_cli.local.quiet_logs``);
    a test that runs it in-process must not leave the next test's warnings unheard."""
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
