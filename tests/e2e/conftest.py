"""End-to-end fixtures: the real state machine (moto's interpreter) against the Studio stand-in."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from e2e_support import Env

from localstudio.local_stack import LocalStack
from localstudio.standin import StandIn


@pytest.fixture
def local_env(tmp_path: Path) -> Iterator[Callable[..., Env]]:
    """Factory: ``local_env(flavor="studio-space", faults=..., run_cells_budget=..., **standin options)``."""
    with ExitStack() as stack:
        def make(flavor: str = "studio-space", *, run_cells_budget: float | None = None,
                 wait_scale: float = 0.05, max_concurrent_runs: int | None = None, **options: Any) -> Env:
            root = tmp_path / "home"
            root.mkdir(exist_ok=True)
            standin = stack.enter_context(StandIn(root=root, flavor=flavor, **options))
            local = stack.enter_context(LocalStack(standin, run_cells_budget=run_cells_budget, wait_scale=wait_scale,
                                                        max_concurrent_runs=max_concurrent_runs))
            return Env(standin, local, root)

        yield make
