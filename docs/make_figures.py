"""Make the README's pictures with the app itself: a screenshot and a before/after pair.

Uses a ray-traced scene of the project's own benchmark (``../shared/refocus-bench``) and its
measured depth, uploaded as a depth map, so it works offline. Run from the repository root:

    python -m docs.make_figures

Needs Debian's chromium and Playwright (``requirements-dev.txt``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import app as app_module

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO.parent / "shared" / "refocus-bench" / "scenes" / "scene_0001"


def main() -> None:
    if not SCENE.is_dir():
        sys.exit(f"{SCENE} is missing: this script needs ../shared/refocus-bench.")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp())
    photo = work / "scene.png"
    shutil.copy(SCENE / "pinhole.png", photo)
    depth_m = np.load(SCENE / "depth_center.npy")
    np.save(work / "depth.npy", depth_m)
    focus = (224, 205)  # the striped cylinder in the middle distance

    refocus_app = app_module.RefocusApp(device="cpu")
    demo = app_module.build_demo(refocus_app)
    demo.queue()
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=7871, prevent_thread_lock=True, quiet=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.get_by_text("Depth map", exact=True).first.click()  # open the accordion
        page.get_by_label("Depth (bright = far)").check()
        # The depth map first, so the photo never waits for a depth network.
        page.locator("#depth-upload input[type=file]").set_input_files(str(work / "depth.npy"))
        page.locator("#photo input[type=file]").set_input_files(str(photo))
        page.wait_for_function("() => document.querySelector('#result img')?.src", timeout=60_000)
        page.get_by_label("Aperture (f-number): smaller = more blur").first.fill("1.4")
        page.keyboard.press("Enter")
        old = page.locator("#result img").first.get_attribute("src")
        box = page.locator("#photo img").first.bounding_box()
        scale = box["width"] / 480
        page.locator("#photo img").first.click(position={"x": focus[0] * scale, "y": focus[1] * scale})
        page.wait_for_function(
            "(old) => document.querySelector('#result img')?.src !== old", arg=old, timeout=60_000
        )
        page.wait_for_timeout(500)
        page.screenshot(path=str(REPO / "docs" / "screenshot.png"))
        browser.close()
    demo.close()

    from refocus.io import load_photo, save_png
    from refocus.refocuser import LensSettings
    from refocus.user_depth import read_user_depth

    scene = load_photo(photo)
    depth = read_user_depth(work / "depth.npy", scene.pixels, "depth")
    prepared = refocus_app.refocuser().prepare(scene, depth.disparity)
    after = refocus_app.refocuser().render_full(scene, prepared, focus, LensSettings(f_number=1.4))
    Image.open(photo).convert("RGB").save(REPO / "docs" / "before.jpg", quality=90)
    save_png(work / "after.png", after)
    Image.open(work / "after.png").save(REPO / "docs" / "after.jpg", quality=90)
    print("wrote docs/screenshot.png, docs/before.jpg, docs/after.jpg")


if __name__ == "__main__":
    main()
