"""An executed notebook as one standalone HTML page (``output_formats: ["html"]``).

Not nbconvert: nbconvert and what it pulls in are ~16 MB and add seconds of cold import
(bench/README.md), for what is mostly putting bundles the kernel already rendered into a
page. This module is the stdlib and the notebook's own data: inline CSS, no script, no
external asset (images are data URIs), so the page opens anywhere, offline.

What is shown as nbconvert shows it: each output's richest MIME type in nbconvert's
priority order; ``text/html`` and ``image/svg+xml`` inserted as they are (as nbconvert
does: the page is as trustworthy as the notebook's outputs); everything textual escaped.
Markdown cells are shown as their escaped source (no markdown dependency in the Lambda).
Terminal colours in streams, text and tracebacks are removed, not converted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape
from typing import Any

from studiorunner.terminal.ansi import clean as strip_ansi

HTML_CONTENT_TYPE = "text/html; charset=utf-8"

# nbconvert.utils.base.NbConvertBase.display_data_priority, minus application/pdf (no inline
# viewer without a script), plus application/json last (nbconvert would show nothing).
MIME_PRIORITY = ("text/html", "text/latex", "image/svg+xml", "image/png", "image/jpeg",
                 "text/markdown", "text/plain", "application/json")
_NOT_RUN = {"pending": "not run", "queued": "not run", "skipped": "skipped", "aborted": "aborted",
            "running": "did not finish"}
_WHITESPACE = re.compile(r"\s+")

_CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;
 background:#fafafa;color:#222}
main{max-width:1100px;margin:0 auto;padding:1em}
header{padding:1em;border-bottom:3px solid #2e7d32;background:#fff}
header.failed{border-color:#c62828}
header h1{margin:0 0 .3em;font-size:1.4em}
header dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0}
header dt{color:#666}header dd{margin:0}
.status-failed{color:#c62828;font-weight:bold}.status-succeeded{color:#2e7d32;font-weight:bold}
.run-error{margin:.6em 0 0;padding:.6em;background:#fdecea;border-left:4px solid #c62828;white-space:pre-wrap}
.cell{display:grid;grid-template-columns:6em minmax(0,1fr);margin:.6em 0}
.prompt{color:#303f9f;font-family:monospace;text-align:right;padding:.4em .5em 0 0;white-space:nowrap}
.out-prompt{color:#d84315}
.source{background:#f5f5f5;border:1px solid #ddd;border-radius:2px}
.cell.failed .source{border-color:#c62828;border-width:2px}
.cell.not-run .source{border-style:dashed;opacity:.7}
pre{margin:0;padding:.4em;font-family:SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em;
 white-space:pre-wrap;word-wrap:break-word}
.markdown pre{font-family:inherit;font-size:1em}
.badge{display:inline-block;margin:.2em 0;padding:0 .5em;border-radius:3px;font-size:.8em;color:#fff;background:#757575}
.badge.failed{background:#c62828}
.output{overflow-x:auto;padding:.2em 0}
.output img{max-width:100%}
.stderr{background:#fff0f0}
.error pre{background:#fdecea;color:#8b0000}
"""


def _text(value: Any) -> str:
    """Notebook text may be a string or a list of lines (nbformat on disk)."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _pre(text: str, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f"<pre{klass}>{escape(strip_ansi(text), quote=False)}</pre>"


def _image(mime: str, data: Any, meta: Mapping[str, Any]) -> str:
    # base64 as stored (line breaks allowed in the notebook, not in a data URI); escaped
    # in case a notebook carries something else in the field.
    payload = _WHITESPACE.sub("", _text(data))
    size = "".join(f' {dim}="{escape(str(meta[dim]))}"' for dim in ("width", "height")
                   if isinstance(meta.get(dim), (int, float)) and not isinstance(meta.get(dim), bool))
    return f'<img src="data:{mime};base64,{escape(payload)}"{size} alt="{mime} output">'


def render_bundle(data: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> str:
    """The HTML for one MIME bundle: its richest type we can show, else a note of what it holds."""
    metadata = metadata or {}
    for mime in MIME_PRIORITY:
        if mime not in data:
            continue
        value = data[mime]
        if mime in ("text/html", "image/svg+xml"):
            return _text(value)
        if mime in ("image/png", "image/jpeg"):
            meta = metadata.get(mime)
            return _image(mime, value, meta if isinstance(meta, Mapping) else {})
        if mime == "application/json":
            import json

            return _pre(json.dumps(value, indent=1, ensure_ascii=False, default=str))
        return _pre(_text(value))
    return _pre(f"[output of type {', '.join(sorted(data)) or 'none'} not shown]", "note")


def render_output(output: Mapping[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        name = output.get("name", "stdout")
        return f'<div class="output stream {escape(str(name))}">{_pre(_text(output.get("text")))}</div>'
    if kind == "error":
        traceback = "\n".join(_text(line) for line in output.get("traceback") or [])
        text = traceback or f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
        return f'<div class="output error">{_pre(text)}</div>'
    if kind in ("execute_result", "display_data"):
        data = output.get("data") or {}
        return f'<div class="output">{render_bundle(data, output.get("metadata"))}</div>'
    return _pre(f"[unknown output type {kind!r}]", "note")


def _cell_status(cell: Mapping[str, Any]) -> str | None:
    meta = cell.get("metadata") or {}
    runner = meta.get("studio_runner") or {}
    papermill = meta.get("papermill") or {}
    return runner.get("status") or papermill.get("status")


def render_cell(cell: Mapping[str, Any]) -> str:
    source = _text(cell.get("source"))
    kind = cell.get("cell_type")
    if kind != "code":
        return (f'<div class="cell {escape(str(kind))}"><div class="prompt"></div>'
                f'<div class="markdown">{_pre(source)}</div></div>')
    status = _cell_status(cell)
    count = cell.get("execution_count")
    prompt = f"In [{escape(str(count)) if count is not None else '&nbsp;'}]:"
    classes, badge = ["cell", "code"], ""
    if status == "failed":
        classes.append("failed")
        badge = '<span class="badge failed">failed</span>'
    elif status in _NOT_RUN:
        classes.append("not-run")
        badge = f'<span class="badge">{_NOT_RUN[status]}</span>'
    outputs = "".join(render_output(o) for o in cell.get("outputs") or [])
    out_block = (f'<div class="prompt out-prompt"></div><div class="outputs">{outputs}</div>' if outputs else "")
    return (f'<div class="{" ".join(classes)}" data-status="{escape(str(status or ""))}">'
            f'<div class="prompt">{prompt}<br>{badge}</div>'
            f'<div class="source">{_pre(source)}</div>{out_block}</div>')


def _status_class(status: str) -> str:
    return f' class="status-{escape(status)}"'


def _header(nb: Mapping[str, Any], name: str) -> str:
    record = (nb.get("metadata") or {}).get("studio_runner") or {}
    status = str(record.get("status") or "unknown")
    rows = [("Run", record.get("run_id")), ("Status", status), ("Started", record.get("start_time")),
            ("Ended", record.get("end_time"))]
    duration = record.get("duration")
    if isinstance(duration, (int, float)):
        rows.append(("Duration", f"{duration:.1f} s"))
    if record.get("cells_total") is not None:
        rows.append(("Cells run", f"{record.get('cells_executed', 0)} of {record['cells_total']}"))
    items = "".join(
        f"<dt>{label}</dt><dd{_status_class(status) if label == 'Status' else ''}>{escape(str(value))}</dd>"
        for label, value in rows if value is not None)
    error = record.get("error")
    error_html = ""
    if isinstance(error, Mapping):
        name_ = error.get("error") or error.get("name") or "Error"
        detail = error.get("message") or ""
        raised = f"{error.get('ename')}: {error.get('evalue', '')}" if error.get("ename") else ""
        if raised and raised not in str(detail):
            detail = f"{detail}\n{raised}" if detail else raised
        error_html = f'<div class="run-error"><strong>{escape(str(name_))}</strong>: {escape(strip_ansi(str(detail)))}</div>'
    warnings = "".join(f"<li>{escape(str(w))}</li>" for w in record.get("warnings") or [])
    warnings_html = f"<ul class=warnings>{warnings}</ul>" if warnings else ""
    css = "failed" if status == "failed" else ""
    return (f'<header class="{css}"><h1>{escape(name)}</h1><dl>{items}</dl>{error_html}{warnings_html}'
            f"</header>")


def render_notebook(nb: Mapping[str, Any], *, name: str | None = None) -> str:
    """The whole page. ``name`` defaults to the notebook's input path as the run recorded it."""
    record = (nb.get("metadata") or {}).get("studio_runner") or {}
    name = name or str(record.get("input_path") or "notebook")
    cells = "\n".join(render_cell(cell) for cell in nb.get("cells") or [])
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(name)}</title><style>{_CSS}</style></head>\n"
            f"<body>{_header(nb, name)}<main>\n{cells}\n</main></body></html>\n")


def html_uri(notebook_uri: str) -> str:
    """Where a notebook's HTML goes: the same key with ``.html`` (``runs/<id>/<name>.html``)."""
    stem = notebook_uri.removesuffix(".ipynb")
    return f"{stem}.html"
