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


def format_duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 03 min`` (the page's header and the run message)."""
    if seconds is None:
        return "unknown"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
