"""``python -m bench.html_page``: what the HTML rendering (``output_formats: ["html"]``) costs Cleanup.

Renders two executed notebooks with ``studiorunner.html_page`` — 1,000 code cells each
with a stdout stream and a ``text/plain`` result (plus one failed cell with a coloured
traceback), and one cell whose output is a 1 MB PNG — and prints the best and median
of ``--repeat`` renders, and the page size. Import time: ``python -X importtime``.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import time

from nbformat.v4 import new_code_cell, new_notebook, new_output

import localstudio  # noqa: F401  (puts lambdas/ on sys.path)
from studiorunner import html_page


def thousand_cells(n: int = 1000):
    cells = [new_code_cell(f"x = {i}\nprint('line', x)\nx * 2", execution_count=i + 1, outputs=[
        new_output("stream", name="stdout", text=f"line {i}\n"),
        new_output("execute_result", data={"text/plain": str(i * 2)}, execution_count=i + 1)])
        for i in range(n)]
    cells[-1].outputs.append(new_output("error", ename="ValueError", evalue="boom", traceback=[
        "\x1b[0;31m----\x1b[0m", "\x1b[0;31mValueError\x1b[0m: boom"] * 10))
    return new_notebook(cells=cells)


def big_image(size: int = 1_000_000):
    png = base64.b64encode(os.urandom(size)).decode()  # the renderer does not decode it: any bytes do
    return new_notebook(cells=[new_code_cell("plot()", execution_count=1, outputs=[
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})])])


def measure(nb, repeat: int) -> tuple[float, float, int]:
    times, page = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        page = html_page.render_notebook(nb)
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times), len(page.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for name, nb in (("1,000 cells", thousand_cells()), ("1 MB PNG", big_image())):
        best, median, size = measure(nb, args.repeat)
        print(f"{name:12} best {best * 1000:7.1f} ms  median {median * 1000:7.1f} ms  page {size / 1e6:5.2f} MB")
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
