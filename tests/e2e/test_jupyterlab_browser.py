"""Notebook Jobs through JupyterLab itself, in a real browser: ``studio-runner lab --local``,
Debian's chromium driven by playwright, a person's clicks. The screenshot it takes is the
README's (``STUDIO_RUNNER_SCREENSHOTS=docs/images`` writes it there)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from e2e_support import REPO, write_notebook
from jupyterlab_support import Lab

from bench.browser import CHROMIUM, FLAGS, chromium_available

pytestmark = pytest.mark.skipif(chromium_available() is not None, reason=str(chromium_available()))


def test_a_job_created_from_the_open_notebook_completes_in_the_jobs_panel(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    root = tmp_path / "home"
    write_notebook(root, "weekly-report.ipynb", "region = 'nowhere'",
                   "total = {'eu': 1250, 'us': 980}.get(region, 0)\nprint(f'{region}: {total} orders')",
                   tags={0: ["parameters"]})
    screenshot = tmp_path / "jupyterlab-jobs.png"
    with Lab(root, tmp_path / "lab") as lab, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1280, "height": 760})
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(lab.url.replace("/lab?", "/lab/tree/weekly-report.ipynb?"))
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            no_news = page.get_by_role("button", name="No", exact=True)
            if no_news.count():
                no_news.first.click()  # JupyterLab's "notified about official Jupyter news?" toast
            page.locator(".jp-Notebook .jp-Cell").first.click()  # the notebook is the current widget again

            page.locator("[data-command='scheduling:create-from-notebook']").click()  # the notebook's "Create a job"
            # the form fills the input file in once it has read the notebook's path: a name typed
            # before that is lost with it (a person is slower than that)
            expect(page.locator("#jp-create-job-inputFile")).to_have_value("weekly-report.ipynb", timeout=30_000)
            expect(page.locator("#jp-create-job-outputFormat-html")).to_be_checked()
            page.get_by_role("button", name="Add new parameter").click()
            page.locator("input[name='parameter-0-name']").fill("region")
            page.locator("input[name='parameter-0-name']").press("Tab")  # the form checks a field when it is left
            page.locator("input[name='parameter-0-value']").fill("eu")
            page.locator("input[name='parameter-0-value']").press("Tab")
            page.locator("#jp-create-job-jobName").fill("Weekly report EU")  # last: the form's other edits
            page.locator("#jp-create-job-jobName").press("Tab")               # start from the name it had
            expect(page.locator("#jp-create-job-jobName")).to_have_value("Weekly report EU")
            page.get_by_role("button", name="Create", exact=True).click()

            row = page.locator("tr", has_text="Weekly report EU")
            expect(row).to_be_visible()
            deadline = time.monotonic() + 240
            while not row.get_by_text("Completed").count():
                assert not row.get_by_text("Failed").count(), row.inner_text()
                assert time.monotonic() < deadline, f"the job did not complete: {row.inner_text()}"
                page.get_by_role("button", name="Reload").click()  # the panel reloads when asked, as a person does
                time.sleep(2)
            row.get_by_role("button", name="download").click()  # 'Download output files for "Weekly report EU"'
            deadline = time.monotonic() + 60
            while not lab.jobs()[0]["downloaded"]:
                assert time.monotonic() < deadline, "the job's files did not download"
                time.sleep(0.5)
            page.get_by_role("button", name="Reload").click()
            expect(row.get_by_text("HTML")).to_be_visible()  # the downloaded files, linked in the row
            page.screenshot(path=str(screenshot))
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"))  # what the browser showed, for whoever reads the failure
            raise
        finally:
            browser.close()
        job = lab.jobs()[0]
        assert job["name"] == "Weekly report EU" and job["status"] == "COMPLETED"
        assert job["parameters"] == {"region": "eu"} and job["output_formats"] == ["ipynb", "html"]
        files = {f["file_format"]: root / f["file_path"] for f in job["job_files"]}
        executed = nbformat.read(files["ipynb"], as_version=4)
        printed = [o["text"] for c in executed.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
        assert printed == ["eu: 1250 orders\n"]
        assert "eu: 1250 orders" in files["html"].read_text()

    target = os.environ.get("STUDIO_RUNNER_SCREENSHOTS")
    if target:
        folder = Path(target) if Path(target).is_absolute() else REPO / target
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, folder / screenshot.name)
