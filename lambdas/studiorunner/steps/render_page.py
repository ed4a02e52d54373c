"""RenderPage: an executed notebook's HTML page, written beside it (nbconvert's lab template).

Invoked synchronously by Cleanup (and ExecutionEnded) when a run asked for
``output_formats: ["notebook", "html"]``. Deployed from a bundle of its own (infra/bundling.py:
``RENDER``): nbconvert and its dependencies burden no other step.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from studiorunner.report import page  # noqa: F401 — nbconvert loads at INIT, not in the first request
from studiorunner.report.render import PageRequest, render_to_store
from studiorunner.store import S3NotebookStore

from ._runtime import clients, logger, step


@step
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = PageRequest.from_dict(event)
    size = render_to_store(S3NotebookStore(clients()("s3")), request)
    logger.info("page written", extra={"html_uri": request.html_uri, "bytes": size, "report": request.report})
    return {"html_uri": request.html_uri, "bytes": size}
