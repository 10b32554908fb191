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
from tests.browser import (
    answers,
    chromium,
    click_image,
    launch_app,
    open_app,
    set_number,
    upload_depth_map,
    upload_photo,
    wait_for_answer,
    wait_until_settled,
)

REPO = Path(__file__).resolve().parents[1]
SCENE = REPO.parent / "shared" / "refocus-bench" / "scenes" / "scene_0001"
VIEWPORT = {"width": 1400, "height": 900}


def main() -> None:
    if not SCENE.is_dir():
        sys.exit(f"{SCENE} is missing: this script needs ../shared/refocus-bench.")
    work = Path(tempfile.mkdtemp())
    photo = work / "scene.png"
    shutil.copy(SCENE / "pinhole.png", photo)
    depth_m = np.load(SCENE / "depth_center.npy")
    np.save(work / "depth.npy", depth_m)
    focus = (224, 205)  # the striped cylinder in the middle distance

    refocus_app = app_module.RefocusApp(device="cpu")
    with launch_app(refocus_app) as url, chromium() as browser, open_app(browser, url, VIEWPORT) as page:
        page.get_by_text("Depth map", exact=True).first.click()  # open the accordion
        page.get_by_label("Depth (bright = far)").check()
        # The depth map first, so the photo never waits for a depth network.
        upload_depth_map(page, work / "depth.npy")
        upload_photo(page, photo)
        set_number(page, "Aperture (f-number): smaller = more blur", 1.4)  # Enter
        wait_until_settled(page)
        # Click as a user does, with the mouse at the picture's pixels, and wait for the page to
        # show the server's answer (benchmarks/click_latency.py clicks the same way).
        width, height = Image.open(photo).size
        old = answers(page)
        click_image(page, "#photo", focus[0] / width, focus[1] / height)  # the mouse at ``image_point``
        wait_for_answer(page, old)
        wait_until_settled(page, quiet_s=0.5)
        page.screenshot(path=str(REPO / "docs" / "screenshot.png"))

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
