"""What people read about a run: its HTML page (``page``, nbconvert's, rendered by the
RenderPage Lambda) and the message sent when it ends (``message``, ``webhook``).

This module itself is light (no nbconvert): Cleanup imports it to name the page and to ask
for it to be rendered.
"""

from __future__ import annotations

HTML_CONTENT_TYPE = "text/html; charset=utf-8"
#: Payload key: render the page as a report (no code, no injected-parameters cell).
REPORT_KEY = "html_report"


def html_uri(notebook_uri: str) -> str:
    """Where a notebook's page goes: the same key with ``.html`` (``runs/<id>/<name>.html``)."""
    return f"{notebook_uri.removesuffix('.ipynb')}.html"
