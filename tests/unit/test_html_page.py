"""The HTML rendering of an executed notebook (studiorunner.html_page): escaped where it must
be, rich outputs shown, failures visible."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from studiorunner import html_page
from studiorunner import notebook as nbtools

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk\n+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\n"


def _failed_run() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell("# Report <script>alert('md')</script>"),
                             new_code_cell("print('<script>alert(1)</script>')"), new_code_cell("plot()"),
                             new_code_cell("1 / 0"), new_code_cell("print('never')")])
    nbtools.prepare_for_run(nb, run_id="report-1", input_path="reports/report.ipynb",
                            output_uri="s3://b/runs/report-1/report.ipynb", parameters={},
                            kernel_name="python3", started_at=T0)
    outputs = [
        [new_output("stream", name="stdout", text="<script>alert(2)</script>\n"),
         new_output("stream", name="stderr", text="careful\n")],
        [new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"},
                    metadata={"image/png": {"width": 40}})],
        [new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                    traceback=["\x1b[0;31m---------\x1b[0m", "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"])],
    ]
    for count, (cell, outs) in enumerate(zip(nb.cells[1:4], outputs, strict=False), start=1):
        nbtools.mark_cell_started(cell, T0)
        cell.execution_count, cell.outputs = count, outs
        nbtools.mark_cell_finished(cell, "failed" if count == 3 else "completed", T0)
    nbtools.add_error_banner(nb, 3, "ZeroDivisionError", "division by zero")
    nbtools.finish_run(nb, "failed", T0, {"error": "CellExecutionError", "message": "Cell 3 raised ZeroDivisionError",
                                          "ename": "ZeroDivisionError", "evalue": "division by zero"})
    return nb


def _cells(page: str) -> list[str]:
    return re.findall(r'<div class="cell .*?(?=<div class="cell |</main>)', page, re.DOTALL)


def test_source_and_text_outputs_are_escaped():
    page = html_page.render_notebook(_failed_run())
    assert "<script>" not in page  # neither from the source, the stream, nor the markdown
    assert "print(&#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27;)" in page or \
        "print('&lt;script&gt;alert(1)&lt;/script&gt;')" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "In [1]:" in page


def test_text_plain_is_escaped_and_html_is_inserted_as_nbconvert_does():
    assert html_page.render_bundle({"text/plain": "<script>x</script>"}) == "<pre>&lt;script&gt;x&lt;/script&gt;</pre>"
    assert html_page.render_bundle({"text/html": "<b>bold</b>", "text/plain": "bold"}) == "<b>bold</b>"
    # nbconvert's order: LaTeX before PNG, PNG before plain text
    assert html_page.render_bundle({"text/plain": "x", "text/latex": "$x$"}) == "<pre>$x$</pre>"


def test_an_image_output_is_a_data_uri():
    page = html_page.render_notebook(_failed_run())
    uri = re.search(r'<img src="data:image/png;base64,([^"]+)" width="40"', page)
    assert uri, page
    assert uri.group(1) == PNG.replace("\n", "")  # the notebook's line breaks are not in the URI
    assert "&lt;Figure&gt;" not in page  # the richer type wins


def test_an_errors_ansi_codes_are_gone_and_stderr_is_styled():
    page = html_page.render_notebook(_failed_run())
    assert "\x1b" not in page and "[0;31m" not in page
    assert "ZeroDivisionError: division by zero" in page
    assert '<div class="output stream stderr"><pre>careful\n</pre>' in page


def test_failed_and_not_run_cells_are_marked():
    cells = _cells(html_page.render_notebook(_failed_run()))
    failing = [c for c in cells if "1 / 0" in c]
    never = [c for c in cells if "print(&#x27;never&#x27;)" in c or "print('never')" in c]
    assert len(failing) == 1 and 'class="cell code failed"' in failing[0] and "badge failed" in failing[0]
    assert len(never) == 1 and "not-run" in never[0] and ">not run<" in never[0]
    assert not any("failed" in c for c in cells if "plot()" in c)
    # the papermill-style banner renders like any markdown cell: escaped, so its text is there
    assert "An Exception was encountered at" in cells[0]


def test_the_header_names_the_run_and_its_error():
    page = html_page.render_notebook(_failed_run())
    header = page[page.index("<header"):page.index("</header>")]
    assert 'class="failed"' in header and "reports/report.ipynb" in header and "report-1" in header
    assert "CellExecutionError" in header and "ZeroDivisionError: division by zero" in header
    assert "<title>reports/report.ipynb</title>" in page


def test_a_page_is_standalone():
    page = html_page.render_notebook(_failed_run())
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.startswith("<!DOCTYPE html>")


def test_where_the_page_goes():
    assert html_page.html_uri("s3://b/runs/r-1/report.ipynb") == "s3://b/runs/r-1/report.html"
