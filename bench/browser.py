"""A page opened in headless Chromium as a person opens a downloaded file: offline.

``open_page`` loads a local HTML file with every request recorded and every request but the
file itself refused (as with no network), and returns what the page asked for, what the
console said and a full-page screenshot. Chromium is Debian's (``apt-get install chromium``,
``make build/.browser``), driven by playwright's Python package.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass
class PageVisit:
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, the page's own first
    console: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)  # alert()/confirm(): a script ran
    screenshot: bytes = b""
    title: str = ""
    image: dict = field(default_factory=dict)  # the screenshot's width, height, non_white share, colours


# Reads the screenshot back in a canvas (in a page of its own, not the one under test).
_IMAGE_STATS = """async (src) => {
  const img = new Image(); img.src = src; await img.decode();
  const canvas = document.createElement('canvas'); canvas.width = img.width; canvas.height = img.height;
  const ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  let nonWhite = 0; const colours = new Set();
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] < 245 || data[i + 1] < 245 || data[i + 2] < 245) nonWhite++;
    if (colours.size < 5000) colours.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
  }
  return {width: img.width, height: img.height, non_white: nonWhite / (img.width * img.height),
          colours: colours.size};
}"""


def chromium_available() -> str | None:
    """Why the browser cannot be used, or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (make build/.browser)"
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"{CHROMIUM} is missing (apt-get install -y chromium; make build/.browser)"
    return None


def open_page(path: Path, *, width: int = 1100, screenshot: Path | None = None) -> PageVisit:
    """Open ``path`` (file://) offline in a fresh profile; ``screenshot`` also saves the PNG there."""
    from playwright.sync_api import sync_playwright

    visit = PageVisit()
    url = path.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="studio-runner-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": width, "height": 800}, offline=True)
        try:
            page = context.new_page()
            page.on("console", lambda message: visit.console.append(f"{message.type}: {message.text}"))
            page.on("dialog", lambda dialog: (visit.dialogs.append(dialog.message), dialog.dismiss()))

            def route(request_route) -> None:
                visit.requests.append(request_route.request.url)
                if request_route.request.url == url:
                    request_route.continue_()
                else:
                    request_route.abort()

            context.route("**/*", route)
            page.goto(url, wait_until="load")
            page.wait_for_timeout(300)  # anything a late script would fetch or alert
            visit.title = page.title()
            visit.screenshot = page.screenshot(full_page=True, path=str(screenshot) if screenshot else None)
            reader = context.new_page()
            reader.set_content("<html><body></body></html>")
            visit.image = reader.evaluate(_IMAGE_STATS, "data:image/png;base64,"
                                          + base64.b64encode(visit.screenshot).decode())
        finally:
            context.close()
    return visit
