"""Fixtures that run the Studio stand-in (a real jupyter_server + ipykernel) for tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localstudio.standin import StandIn

StandInFactory = Callable[..., StandIn]


@pytest.fixture
def standin_factory(tmp_path: Path) -> Iterator[StandInFactory]:
    """Start stand-ins with ``factory(flavor=…, faults=…, root=…, **options)``; all are stopped at teardown.

    ``root`` defaults to a fresh directory under tmp_path (one per stand-in).
    """
    started: list[StandIn] = []

    def factory(flavor: str = "studio-space", *, root: Path | None = None, **options: Any) -> StandIn:
        if root is None:
            root = tmp_path / f"home-{len(started)}"
            root.mkdir()
        standin = StandIn(root=root, flavor=flavor, **options)
        started.append(standin)  # before start(): a half-started one is stopped too
        return standin.start()

    try:
        yield factory
    finally:
        for standin in reversed(started):
            standin.stop()


@pytest.fixture(scope="module")
def standin_space(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    """One studio-space stand-in shared by a module (its app InService, default knobs)."""
    with StandIn(root=tmp_path_factory.mktemp("space-home"), flavor="studio-space") as standin:
        yield standin
