"""What every step shares: the outside world it talks to, and the step's limits.

Each step takes the state machine's state (small, non-secret references; its parts are
typed in :mod:`studiorunner.run.state`) and returns the part it owns. Steps log in afresh
every time: no cookie, token or URL crosses a step boundary. The Lambda handlers in
``lambdas/studiorunner/steps`` are thin wrappers; tests swap the parts of :class:`Services`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from studiorunner.clients import ClientCache
from studiorunner.config import RunnerConfig
from studiorunner.report import render
from studiorunner.run.slot_table import SlotTable
from studiorunner.store import NotebookStore, S3NotebookStore
from studiorunner.targets import Target, target_for

#: How long before the Lambda's own timeout RunCells stops sending cells and saves.
SAFETY_MARGIN_SECONDS = 20.0
#: A kernel POST on Studio Classic blocks while a KernelGateway app starts: never longer than this.
KERNEL_POST_TIMEOUT_SECONDS = 25.0
#: How long StartKernel waits for a kernel_info_reply before letting the state machine wait.
KERNEL_PROBE_SECONDS = 10.0
UPLOAD_DIR = "studio-runner/uploads"  # hidden folders are refused by jupyter_server (allow_hidden)


def _now() -> float:
    return time.time()


@dataclass
class Services:
    """The outside world a step talks to; tests and the local stack swap parts of it."""

    config: RunnerConfig
    store: NotebookStore | None = None
    target_factory: Callable[..., Target] = target_for  # (TargetConfig, *, clients) -> Target
    clock: Callable[[], float] = _now
    clients: ClientCache = field(default_factory=ClientCache)
    slots: SlotTable | None = None  # made on first use when the deployment has a table
    page_renderer: Any = None  # report.render.PageRenderer, chosen on first use

    def pages(self) -> Any:
        """What renders a run's HTML page: the RenderPage Lambda when the deployment has one
        (``STUDIO_RUNNER_RENDER_FUNCTION``), else this process (the local stack, tests)."""
        if self.page_renderer is None:

            function = os.environ.get(render.RENDER_FUNCTION_ENV)
            self.page_renderer = (render.from_lambda(function, render.invoke_client()) if function
                                  else render.in_process(self.notebooks))
        return self.page_renderer

    def notebooks(self) -> NotebookStore:
        if self.store is None:
            self.store = S3NotebookStore(self.clients("s3"))
        return self.store

    def slot_table(self) -> SlotTable | None:
        """The concurrency slots' table, or None when the deployment has none (no limits)."""
        if self.slots is None and self.config.slots_table:
            self.slots = SlotTable(self.config.slots_table, dynamodb=self.clients("dynamodb"),
                                   stepfunctions=self.clients("stepfunctions"))
        return self.slots

    def target(self, name: str | None) -> Target:
        """The configured target called ``name`` (TargetNotAllowed when there is none)."""
        return self.target_factory(self.config.target(name), clients=self.clients)

