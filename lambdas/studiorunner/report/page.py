"""An executed notebook as one HTML page: nbconvert's, as JupyterLab's "Export as HTML".

nbconvert's ``HTMLExporter`` with the ``lab`` template (markdown rendered, code highlighted by
Pygments, ANSI colours kept, pandas tables and images as JupyterLab shows them), through
``templates/studio_runner`` which extends it:

- self-contained and inert: require.js, MathJax, mermaid and the widget manager (all loaded
  from CDNs by the lab template) are dropped, so the page makes no request when opened, and
  its Content-Security-Policy (:data:`CSP`) forbids scripts and every request but inline
  images and styles. Math (markdown and ``text/latex``) is MathML made here (``math.py``);
- sanitised: every ``text/html`` and ``text/markdown`` output, markdown cell and raw cell goes
  through :func:`studiorunner.report.sanitize.clean_html` (nbconvert's ``sanitize_html`` with
  a JupyterLab-like allow-list); SVG is shown as an ``<img>`` (no script runs in one);
  JavaScript and widget outputs fall back to their next MIME type;
- the run's header (status, duration, cells run, the error and a link to the failing cell);
- ``report=True``: no code, no prompts and no ``injected-parameters`` cell (nbconvert's
  ``--no-input``, papermill's ``--report-mode``). In both modes cells tagged ``remove-cell``,
  ``remove-input`` and ``remove-output`` lose what nbconvert's ``TagRemovePreprocessor`` removes.

Imported only by the RenderPage Lambda (its own bundle: nbconvert's weight burdens no other
step; bench/README.md).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

import jinja2
import nbconvert
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import MarkdownWithMath
from nbformat import NotebookNode
from traitlets.config import Config

from studiorunner.report import format_duration
from studiorunner.report.math import MathMLRenderer, latex_output
from studiorunner.report.sanitize import clean_html

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Scripts and every fetch forbidden; only inline styles and data: images and fonts.
CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
       "base-uri 'none'; form-action 'none'")
PARAMETERS_TAG = "injected-parameters"
# nbconvert's HTML priority without application/javascript and widget views (nothing would run).
DISPLAY_PRIORITY = ["text/html", "text/markdown", "image/svg+xml", "text/latex", "image/png", "image/jpeg",
                    "text/plain"]

_CSS = """
.sr-header{font-family:var(--jp-ui-font-family);margin:0 0 1em;padding:.8em 1em;border-left:6px solid #2e7d32;
 background:#f1f8e9}
.sr-header.sr-failed{border-color:#c62828;background:#fdecea}
.sr-header h1{margin:0 0 .4em;font-size:1.3em}
.sr-header dl{display:grid;grid-template-columns:max-content auto;gap:.15em 1em;margin:0}
.sr-header dt{color:#555}.sr-header dd{margin:0}
.sr-status-succeeded{color:#2e7d32;font-weight:bold}.sr-status-failed{color:#c62828;font-weight:bold}
.sr-error{margin:.6em 0 0;white-space:pre-wrap;font-family:var(--jp-code-font-family)}
.celltag_papermill-error-cell-tag span{color:#c62828;font-size:1.4em}
.jp-Cell.celltag_sr-cell-failed{border-left:4px solid #c62828}
.sr-header a{color:#1565c0}
.studio-runner-removed{color:#777;font-style:italic}
"""
_NOT_RUN = {"pending": "not run", "queued": "not run", "aborted": "aborted", "running": "did not finish"}


def _failing_cell(nb: Mapping[str, Any]) -> NotebookNode | None:
    for cell in nb.get("cells") or []:
        if ((cell.get("metadata") or {}).get("papermill") or {}).get("status") == "failed":
            return cell
    return None


def header_html(nb: Mapping[str, Any], *, report: bool) -> str:
    """The run's header: notebook, run, status, times, cells run, the error and a link to its cell."""
    record = (nb.get("metadata") or {}).get("studio_runner") or {}
    name = str(record.get("input_path") or "notebook")
    status = str(record.get("status") or "unknown")
    rows: list[tuple[str, str]] = [("Run", escape(str(record["run_id"])))] if record.get("run_id") else []
    rows.append(("Status", f'<span class="sr-status-{escape(status)}">{escape(status)}</span>'))
    for label, key in (("Started", "start_time"), ("Ended", "end_time")):
        if record.get(key):
            rows.append((label, escape(str(record[key]))))
    duration = record.get("duration")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        rows.append(("Duration", escape(format_duration(duration))))
    if record.get("cells_total") is not None:
        rows.append(("Cells run", f"{int(record.get('cells_executed') or 0)} of {int(record['cells_total'])}"))
    error = record.get("error")
    error_html = ""
    if isinstance(error, Mapping):
        failing = _failing_cell(nb)
        if failing is not None:
            count = failing.get("execution_count")
            label = f"In [{count}]" if count is not None else "the failing cell"
            anchor = f"cell-id={failing.get('id')}" if failing.get("id") else "papermill-error-cell"
            where = f'<a href="#{escape(anchor)}">{escape(label)}</a>'
            if report:  # the code is hidden, but its error output is not
                where += " (its code is hidden in this report)"
            rows.append(("Failing cell", where))
        raised = f"{error.get('ename')}: {error.get('evalue', '')}" if error.get("ename") else ""
        message = str(error.get("message") or "")
        text = message if not raised or raised in message else (f"{message}\n{raised}" if message else raised)
        error_html = (f'<div class="sr-error"><strong>{escape(str(error.get("error") or "Error"))}</strong>: '
                      f"{escape(text)}</div>")
    items = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    css = "sr-header sr-failed" if status == "failed" else "sr-header"
    return (f'<header class="{css}" id="studio-runner-run"><h1>{escape(name)}</h1><dl>{items}</dl>'
            f"{error_html}</header>")


class _Exporter(HTMLExporter):
    """HTMLExporter whose markdown math becomes MathML (its ``markdown2html``, with our renderer)."""

    @jinja2.pass_context
    def markdown2html(self, context, source):
        cell = context.get("cell", {})
        renderer = MathMLRenderer(
            escape=False, attachments=cell.get("attachments", {}), embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text, exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options)
        return MarkdownWithMath(renderer=renderer).render(source)


def _latex_html(text: str) -> str:
    """The ``text/latex`` block's content: MathML, else the escaped source (as nbconvert shows it)."""
    return latex_output(text) or escape(text)


@functools.cache
def exporter(*, report: bool) -> HTMLExporter:
    """nbconvert's HTML exporter configured as this module says (one per mode and process:
    building one loads its templates, ~100 ms)."""
    config = Config()
    config.NbConvertBase.display_data_priority = DISPLAY_PRIORITY
    config.TagRemovePreprocessor.enabled = True
    config.TagRemovePreprocessor.remove_cell_tags = {"remove-cell", *([PARAMETERS_TAG] if report else [])}
    config.TagRemovePreprocessor.remove_input_tags = {"remove-input"}
    config.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    if report:
        config.TemplateExporter.exclude_input = True
        config.TemplateExporter.exclude_input_prompt = True
        config.TemplateExporter.exclude_output_prompt = True
    bundled = _bundled_templates()
    # extra_template_paths: where 'lab/index.html.j2' (our template's parent) is found by name.
    html = _Exporter(config=config, template_name="studio_runner", sanitize_html=True,
                        extra_template_basedirs=[str(TEMPLATES), *bundled], extra_template_paths=bundled)
    html.register_filter("clean_html", clean_html)
    html.register_filter("latex_html", lambda text: clean_html(_latex_html(text)))
    return html


def _bundled_templates() -> list[str]:
    """nbconvert's own templates inside a Lambda bundle (pip --target puts its data files in
    ``share/``, which jupyter_core does not search outside sys.prefix)."""

    shared = Path(nbconvert.__file__).resolve().parent.parent / "share" / "jupyter" / "nbconvert" / "templates"
    return [str(shared)] if shared.is_dir() else []


def render_page(nb: NotebookNode, *, report: bool = False) -> str:
    """The page for an executed notebook (its ``metadata.studio_runner`` gives the header)."""
    nb = copy.deepcopy(nb)
    failing = _failing_cell(nb)
    if failing is not None:
        tags = failing.setdefault("metadata", {}).setdefault("tags", [])
        if "sr-cell-failed" not in tags:
            tags.append("sr-cell-failed")
    record = nb.get("metadata", {}).get("studio_runner") or {}
    name = Path(str(record.get("input_path") or "notebook")).stem
    resources = {"metadata": {"name": name},
                 "studio_runner": {"csp": CSP, "css": _CSS, "header": header_html(nb, report=report)}}
    body, _ = exporter(report=report).from_notebook_node(nb, resources=resources)
    return body
