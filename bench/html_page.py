"""``python -m bench.html_page``: the run's page (``studiorunner.report.page``) against nbconvert's own.

    .venv/bin/python -m bench.html_page --repeat 5
    .venv/bin/python -m bench.html_page --screenshots     # also bench/screenshots/{page,report}.png

On three executed notebooks — tests/fixtures/report_executed.ipynb (markdown, a DataFrame, a
matplotlib figure, ANSI colours, a failed cell), 1,000 code cells (a stream and a result
each, one coloured traceback), one 1 MB PNG output — it times, median of ``--repeat``:

- ours: ``render_page(nb)`` in a warm process (as a warm RenderPage Lambda renders);
- the peer in the same process: nbconvert's ``HTMLExporter()`` (lab template, defaults);
- the peer as a user meets it: ``jupyter nbconvert --to html`` (a fresh process: import
  included), and ours the same way (``python -c`` that imports and renders once);

and prints each page's size. Ratios are ours / peer, in the same run.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lambdas")) if str(ROOT / "lambdas") not in sys.path else None
from studiorunner.report.page import render_page  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "report_executed.ipynb"
SCREENSHOTS = ROOT / "bench" / "screenshots"


def thousand_cells(n: int = 1000) -> nbformat.NotebookNode:
    cells = [new_code_cell(f"x = {i}\nprint('line', x)\nx * 2", execution_count=i + 1, outputs=[
        new_output("stream", name="stdout", text=f"line {i}\n"),
        new_output("execute_result", data={"text/plain": str(i * 2)}, execution_count=i + 1)])
        for i in range(n)]
    cells[-1].outputs.append(new_output("error", ename="ValueError", evalue="boom", traceback=[
        "\x1b[0;31m----\x1b[0m", "\x1b[0;31mValueError\x1b[0m: boom"] * 10))
    return new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})


def big_image(size: int = 1_000_000) -> nbformat.NotebookNode:
    png = base64.b64encode(os.urandom(size)).decode()  # nobody decodes it: any bytes do
    return new_notebook(cells=[new_code_cell("plot()", execution_count=1, outputs=[
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})])],
        metadata={"language_info": {"name": "python"}})


def _median_ms(fn, repeat: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        size = len(fn().encode())
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), size


def _process_ms(command: list[str], repeat: int, cwd: str) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=cwd)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def screenshots() -> None:
    from bench.browser import open_page

    SCREENSHOTS.mkdir(exist_ok=True)
    nb = nbformat.read(FIXTURE, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        for name, report in (("page", False), ("report", True)):
            path = Path(tmp) / "sales.html"
            path.write_text(render_page(nb, report=report), encoding="utf-8")
            visit = open_page(path, screenshot=SCREENSHOTS / f"{name}.png")
            print(f"bench/screenshots/{name}.png {visit.image} requests={len(visit.requests)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--screenshots", action="store_true")
    args = parser.parse_args()
    from nbconvert import HTMLExporter

    peer = HTMLExporter()
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    print(f"{'notebook':<14}{'ours ms':>9}{'nbconvert ms':>14}{'ratio':>7}{'ours MB':>9}{'nbconvert MB':>14}"
          f"{'ours cold ms':>14}{'CLI cold ms':>13}{'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, nb in (("fixture", nbformat.read(FIXTURE, as_version=4)), ("1,000 cells", thousand_cells()),
                         ("1 MB PNG", big_image())):
            ours, our_size = _median_ms(lambda nb=nb: render_page(nb), args.repeat)
            theirs, their_size = _median_ms(lambda nb=nb: peer.from_notebook_node(nb)[0], args.repeat)
            path = Path(tmp) / "nb.ipynb"
            nbformat.write(nb, path)
            cold_ours = _process_ms([sys.executable, "-c", "import sys, nbformat; sys.path.insert(0, 'lambdas'); "
                                     "from studiorunner.report.page import render_page; "
                                     f"open('{tmp}/ours.html', 'w').write(render_page(nbformat.read('{path}', 4)))"],
                                    args.repeat, cwd=str(ROOT))
            cold_cli = _process_ms([jupyter, "nbconvert", "--to", "html", "--output-dir", tmp, str(path)],
                                   args.repeat, cwd=tmp)
            print(f"{name:<14}{ours:>9.0f}{theirs:>14.0f}{ours / theirs:>7.2f}{our_size / 1e6:>9.2f}"
                  f"{their_size / 1e6:>14.2f}{cold_ours:>14.0f}{cold_cli:>13.0f}{cold_ours / cold_cli:>7.2f}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.screenshots:
        screenshots()


if __name__ == "__main__":
    main()
