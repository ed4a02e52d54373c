"""The run's page opened in headless Chromium, offline, as a manager opens a downloaded file:
it asks for nothing but itself, runs no script, and shows the report (a screenshot read
back pixel by pixel: not blank, the size of a page). bench/screenshots/ keeps the same shots
(``python -m bench.html_page --screenshots``)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from bench.browser import chromium_available, open_page
from studiorunner.report.page import render_page
from tests.unit.test_report_page import FIXTURE, _hostile_notebook

pytestmark = pytest.mark.skipif(chromium_available() is not None, reason=str(chromium_available()))


@pytest.mark.parametrize("report", [False, True], ids=["page", "report"])
def test_the_page_asks_for_nothing_runs_nothing_and_is_not_blank(tmp_path: Path, report: bool):
    path = tmp_path / "sales.html"
    path.write_text(render_page(nbformat.read(FIXTURE, as_version=4), report=report), encoding="utf-8")
    visit = open_page(path)
    assert visit.requests == [path.resolve().as_uri()]  # nothing from the internet, nothing else at all
    assert visit.dialogs == [] and visit.title == "sales"
    assert not [line for line in visit.console if "Content Security Policy" in line]  # nothing even tried
    image = visit.image
    assert image["width"] == 1100 and image["height"] > (1000 if report else 1400)  # the whole report, not a stub
    assert image["non_white"] > 0.05 and image["colours"] > 50  # a header, tables, a chart: not blank


def test_hostile_outputs_run_nothing_in_a_browser(tmp_path: Path):
    path = tmp_path / "hostile.html"
    path.write_text(render_page(_hostile_notebook()), encoding="utf-8")
    visit = open_page(path)
    assert visit.dialogs == []  # no alert() ran
    assert visit.requests == [path.resolve().as_uri()]
