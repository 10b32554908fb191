"""A real browser: Debian's chromium driven by Playwright uploads a photo, clicks it, sees it refocus."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import textured_scene

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network: without the background-networking ones chromium keeps trying to
# reach Google's hosts. --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)


def preview_src(page) -> str:
    return page.locator("#result img").first.get_attribute("src") or ""


def test_upload_click_refocus_in_chromium(server, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api")
    image, _ = textured_scene(320, 240)
    image[:, :, 0] = np.linspace(0, 255, 320, dtype=np.uint8)  # some colour structure to look at
    photo = tmp_path / "photo.png"
    Image.fromarray(image).save(photo)
    screenshots = Path(os.environ.get("REFOCUS_SCREENSHOTS", tmp_path))

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server[1])
        page.locator("#photo input[type=file]").set_input_files(str(photo))
        page.wait_for_function("() => document.querySelector('#result img')?.src", timeout=60_000)
        first = preview_src(page)
        page.screenshot(path=str(screenshots / "browser-after-upload.png"))

        page.locator("#result img").first.click(position={"x": 20, "y": 20})
        page.wait_for_function(
            "(old) => { const img = document.querySelector('#result img'); return img && img.src !== old; }",
            arg=first,
            timeout=60_000,
        )
        page.screenshot(path=str(screenshots / "browser-after-click.png"))
        assert preview_src(page) != first
        assert page.locator(".toast-body.error").count() == 0  # no error toast
        browser.close()
