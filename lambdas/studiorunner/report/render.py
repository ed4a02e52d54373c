"""Asking for a run's page: in this process, or from the RenderPage Lambda.

nbconvert is ~20 MB and seconds of cold import (bench/README.md), so it lives in a Lambda of
its own with its own bundle; Cleanup asks it for the page with one synchronous invoke and
knows nothing of nbconvert. Where no such function is configured (the local stack, tests),
the page is rendered in this process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import boto3
from botocore.config import Config

from studiorunner.errors import StudioRunnerError
from studiorunner.report import HTML_CONTENT_TYPE
from studiorunner.store import NotebookStore

log = logging.getLogger(__name__)

#: The RenderPage function's name, set on the functions that ask for pages (infra/pages.py).
RENDER_FUNCTION_ENV = "STUDIO_RUNNER_RENDER_FUNCTION"
#: RenderPage's own timeout (infra/pages.py), and how long Cleanup waits for its answer: one
#: attempt, never botocore's default 60 s read timeout with retries (a 1,000-cell page takes
#: 8-16 s on a loaded core, bench/README.md), and well inside Cleanup's own 5 minutes.
RENDER_TIMEOUT_SECONDS = 150
INVOKE_READ_TIMEOUT_SECONDS = RENDER_TIMEOUT_SECONDS + 15


def invoke_client() -> Any:
    """A Lambda client that waits for RenderPage's whole run, once (no retried invoke)."""

    return boto3.client("lambda", config=Config(read_timeout=INVOKE_READ_TIMEOUT_SECONDS, connect_timeout=10,
                                                retries={"total_max_attempts": 1}))


class PageNotRendered(StudioRunnerError):
    """The page could not be rendered or written (a warning in the run's result, never a failure)."""


@dataclass(frozen=True)
class PageRequest:
    notebook_uri: str
    html_uri: str
    report: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PageRequest:
        try:
            return cls(notebook_uri=str(raw["notebook_uri"]), html_uri=str(raw["html_uri"]),
                       report=raw.get("report") is True)
        except KeyError as exc:
            raise PageNotRendered(f"a page request needs {exc.args[0]!r}") from exc


PageRenderer = Callable[[PageRequest], None]


def render_to_store(store: NotebookStore, request: PageRequest) -> int:
    """Read the notebook, render its page, write it beside it; the page's size in bytes."""
    # nbconvert, only where pages are made: +436-473 ms to anything that imports this module
    # (min-median of 7 fresh processes, `import studiorunner.report.page` after this module).
    from studiorunner.report.page import render_page

    page = render_page(store.read(request.notebook_uri), report=request.report).encode("utf-8")
    store.write_bytes(request.html_uri, page, content_type=HTML_CONTENT_TYPE)
    return len(page)


def in_process(store: Callable[[], NotebookStore]) -> PageRenderer:
    def render(request: PageRequest) -> None:
        render_to_store(store(), request)

    return render


def from_lambda(function_name: str, lambda_client: Any) -> PageRenderer:
    """Invoke the RenderPage function and wait for it (RequestResponse)."""

    def render(request: PageRequest) -> None:
        try:
            answer = lambda_client.invoke(FunctionName=function_name, InvocationType="RequestResponse",
                                          Payload=json.dumps(request.to_dict()).encode())
        except Exception as exc:
            raise PageNotRendered(f"could not invoke {function_name}: {type(exc).__name__}") from exc
        body = answer["Payload"].read()
        if answer.get("FunctionError"):
            try:
                kind = json.loads(body).get("errorType") or "error"
            except (ValueError, AttributeError):
                kind = "error"
            # Only the error's kind: its message may quote the notebook.
            raise PageNotRendered(f"{function_name} failed: {kind}")

    return render
