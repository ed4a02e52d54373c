"""The run's HTML page (studiorunner.report.page): nbconvert's lab rendering of an executed
notebook, self-contained, sanitised, with the run's header; report mode without code.

The notebook (tests/fixtures/report_executed.ipynb, made by make_report_notebook.py) has real
outputs: a pandas DataFrame, a matplotlib figure, ANSI colours, a failing cell, injected
parameters, cells tagged remove-input and remove-cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from studiorunner.report import html_uri
from studiorunner.report.page import CSP, render_page

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "report_executed.ipynb"
# Anything the browser would fetch: src/href/action/poster/data attributes, CSS url()/@import, <link>.
_FETCHES = re.compile(r"""(?:\b(?:src|action|poster|data|srcset)\s*=\s*["']?\s*(?!data:)[a-z]+:|url\(\s*["']?\s*"""
                      r"""(?!data:)[a-z]+:|@import|<link\b)""", re.IGNORECASE)


@pytest.fixture(scope="module")
def executed() -> nbformat.NotebookNode:
    return nbformat.read(FIXTURE, as_version=4)


@pytest.fixture(scope="module")
def page(executed) -> str:
    return render_page(executed)


@pytest.fixture(scope="module")
def report(executed) -> str:
    return render_page(executed, report=True)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_markdown_is_rendered_headings_links_table_code_fence(page):
    assert re.search(r"<h1[^>]*>Quarterly sales report", page)
    assert re.search(r"<h2[^>]*>Regions", page)
    assert '<a href="https://example.com/lake">finance data lake</a>' in page
    assert "<strong>Q3</strong>" in page and "<em>nothing else</em>" in page
    assert re.search(r"<th[^>]*>region</th>", page) and re.search(r"<td[^>]*>eu</td>", page)
    assert "# Quarterly" not in page and "|--------|" not in page  # not the markdown source
    # the fenced code block is highlighted by Pygments
    assert re.search(r'<span class="n">total</span>\s*<span class="o">=</span>', page)
    # math is MathML made at render time (no MathJax: the page loads nothing)
    assert re.search(r'<math display="inline"[^>]*><mrow><mi>g</mi><mo>=</mo><mfrac>', page)
    assert re.search(r'<math display="block"[^>]*><mrow><munderover><mo>∑</mo>', page)
    assert r"\frac" not in page


def test_code_is_highlighted_and_prompts_shown(page):
    assert re.search(r'<span class="kn">import</span>(<span class="w">)? (</span>)?<span class="nn">pandas</span>', page)
    assert re.search(r"In(&nbsp;|\xa0)\[3\]:", page) and "Out[3]:" in page


def test_the_dataframe_the_figure_and_ansi_colours(page):
    assert re.search(r'<table[^>]*class="dataframe"', page)
    assert re.search(r"<th[^>]*>sales</th>", page) and "310.00" in page
    assert re.search(r'<img[^>]+src="data:image/png;base64,iVBOR', page)
    assert '<span class="ansi-green-fg">OK</span>' in page
    assert re.search(r'<span class="ansi-red-(intense-)?fg ansi-bold">2 warnings</span>', page)


def test_the_error_banner_is_html_linking_the_failing_cell(page):
    assert "&lt;span" not in page and "&lt;a href" not in page
    assert re.search(r"""An Exception was encountered at '<a href="#papermill-error-cell">In \[8\]</a>'""", page)
    assert '<span id="papermill-error-cell"' in page
    assert '<span class="ansi-red-fg">ZeroDivisionError</span>: division by zero' in page


def test_the_run_header_has_status_duration_cells_and_a_link_to_the_failing_cell(page, executed):
    header = page[page.index('<header class="sr-header sr-failed"'):page.index("</header>")]
    text = _text(header)
    assert "reports/sales.ipynb" in text and "sales-20261204-060000-abcd" in text
    assert "Status failed" in text and "Duration 19 s" in text and "Cells run 8 of 9" in text
    assert "CellExecutionError : Cell 8 (In [8]) raised ZeroDivisionError: division by zero" in text
    failing = next(c for c in executed.cells if c.metadata.get("papermill", {}).get("status") == "failed")
    assert f'<a href="#cell-id={failing.id}">In [8]</a>' in header
    assert f'id="cell-id={failing.id}"' in page  # the link has somewhere to go


def test_the_page_is_self_contained_and_inert(page, report):
    for html in (page, report):
        assert "<script" not in html.lower()
        assert not _FETCHES.findall(html), _FETCHES.findall(html)[:5]
        # the first thing in <head>, before anything the policy governs
        first = re.search(r"<head>\s*(<meta [^>]*>)", html).group(1)
        assert 'http-equiv="Content-Security-Policy"' in first and f'content="{CSP}"' in first
    assert "default-src 'none'" in CSP and "script-src" not in CSP  # scripts fall under default-src 'none'


def test_cell_tags_behave_as_nbconvert_tag_filters(page, report):
    for html in (page, report):
        assert "this whole cell is removed" not in html  # remove-cell
        assert "only the output of this cell is shown" in html  # remove-input keeps its output
    assert "print(&#39;only the output" not in page and "print</span><span class=\"p\">(</span><span " \
        "class=\"s1\">&#39;only the output" not in page


def test_report_mode_has_no_code_no_prompts_and_no_parameters_cell(report):
    assert 'class="jp-CodeMirrorEditor' not in report and not re.search(r"In(&nbsp;|\xa0)\[", report)
    assert "import</span>" not in report
    assert "s3cr3t-value" not in report and "injected" not in _text(report).lower()
    # but the outputs, the markdown and the error stay
    assert re.search(r'<table[^>]*class="dataframe"', report) and "data:image/png;base64," in report
    assert "Quarterly sales report" in report and "ZeroDivisionError" in report
    assert "its code is hidden in this report" in report


HOSTILE = [
    ("text/html", '<b>bold</b><script>alert("html")</script><img src=x onerror="alert(\'img\')">'
                  '<div onmouseover="alert(1)">hover</div><a href="javascript:alert(1)">js</a>'
                  '<iframe src="https://evil.example/"></iframe><style>header{display:none}</style>'
                  '<form action="https://evil.example/"><input name=q></form><svg onload="alert(2)"></svg>'),
    ("image/svg+xml", '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(3)"><script>alert(4)</script>'
                      '<circle r="4"/></svg>'),
    ("text/markdown", "**md** <img src=x onerror=alert(5)> [x](javascript:alert(6))"),
    ("application/javascript", "alert(7)"),
]


def _hostile_notebook() -> nbformat.NotebookNode:
    outputs = [new_output("display_data", data={mime: value, "text/plain": f"<{mime} output>"})
               for mime, value in HOSTILE]
    return new_notebook(cells=[
        new_markdown_cell('# Title <script>alert("md")</script> <img src="https://tracker.example/p.gif" '
                          'onerror="alert(8)"> <a href="https://ok.example/" onclick="alert(9)">ok</a>'),
        new_code_cell("show()", execution_count=1, outputs=outputs),
    ], metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}})


def test_hostile_outputs_lose_their_scripts_handlers_and_fetches():
    html = render_page(_hostile_notebook())
    lowered = html[html.index("</head>"):].lower()  # the lab CSS has .validationErrors
    assert "<script" not in html.lower()
    for bad in ("<script", "onerror", "onload", "onmouseover", "onclick", "javascript:", "<iframe", "<form",
                "evil.example", "tracker.example", "alert("):
        assert bad not in lowered, bad
    assert "header{display:none}" not in html  # a notebook's CSS cannot hide the run's header
    assert not _FETCHES.findall(html)
    assert "<b>bold</b>" in html and "<strong>md</strong>" in html  # what is harmless stays
    assert '<a href="https://ok.example/">ok</a>' in html
    assert re.search(r'<img[^>]+src="data:image/svg\+xml;base64,', html)  # SVG only as an image
    assert "JavaScript output not shown" not in html  # the next MIME type is shown instead
    assert "&lt;application/javascript output&gt;" in html


def test_a_latex_output_is_mathml_and_what_cannot_be_converted_stays_tex():
    nb = new_notebook(cells=[new_code_cell("Math()", execution_count=1, outputs=[
        new_output("display_data", data={"text/latex": r"$$\sqrt{x^2 + 1}$$", "text/plain": "<Math>"}),
        new_output("display_data", data={"text/latex": r"\unknowncommand{<b>x</b>}", "text/plain": "<?>"})])])
    html = render_page(nb)
    assert re.search(r'<math display="block"[^>]*><mrow><msqrt>', html)
    assert r"\unknowncommand{&lt;b&gt;x&lt;/b&gt;}" in html  # escaped source, never markup


def test_the_page_goes_beside_the_notebook():
    assert html_uri("s3://b/runs/r-1/sales.ipynb") == "s3://b/runs/r-1/sales.html"
