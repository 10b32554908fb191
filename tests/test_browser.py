"""A real browser: Debian's chromium driven by Playwright uploads a photo, clicks it, sees it refocus."""

import os
from pathlib import Path

import numpy as np

from browser import (
    click_image,
    error_toasts,
    image_src,
    open_app,
    save_disparity,
    save_photo,
    upload_depth_map,
    upload_photo,
    wait_for_new_src,
)
from conftest import textured_scene


def test_upload_click_refocus_in_chromium(browser, server, tmp_path):
    image, disparity = textured_scene(320, 240)
    image[:, :, 0] = np.linspace(0, 255, 320, dtype=np.uint8)  # some colour structure to look at
    screenshots = Path(os.environ.get("REFOCUS_SCREENSHOTS", tmp_path))

    with open_app(browser, server[1]) as page:
        upload_depth_map(page, save_disparity(tmp_path / "depth.png", disparity))
        first = upload_photo(page, save_photo(tmp_path / "photo.png", image))
        page.screenshot(path=str(screenshots / "browser-after-upload.png"))

        answered = page.evaluate("() => window.refocus.answered")
        click_image(page, "#result", 0.9, 0.1)  # the far wall: upload focused on the near card
        wait_for_new_src(page, "#result", first)
        # The page counts the answers it shows (what benchmarks/click_latency.py waits on): one per click.
        page.wait_for_function("(n) => window.refocus.answered === n + 1", arg=answered, timeout=10_000)
        page.screenshot(path=str(screenshots / "browser-after-click.png"))
        assert image_src(page, "#result") != first
        assert error_toasts(page) == 0
