"""Click -> refocused preview latency in a real browser.

Serves the app on 127.0.0.1, uploads a photo of ``--megapixels`` (1 by default) with a depth
map (so no depth network is needed), then clicks N points on the preview and times each from
the mouse click until the page has shown the server's answer (``window.refocus.answered``, counted
by ``app_page.js``, has grown and the preview picture is loaded). Waiting on the answer, not on a
new picture, matters: a click at the same depth gives the same preview. Prints a table and a
one-line summary. Needs Debian's chromium and Playwright.

    python -m benchmarks.click_latency [--clicks 10] [--f-number 1.4] [--megapixels 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from refocus.server import RefocusApp
from tests.browser import (
    answers,
    chromium,
    image_point,
    launch_app,
    open_app,
    save_disparity,
    save_photo,
    set_number,
    upload_depth_map,
    upload_photo,
    wait_for_answer,
    wait_until_settled,
)

def make_photo(folder: Path, megapixels: float) -> tuple[Path, Path]:
    """A 3:2 scene of ``megapixels``: a textured near card on the left over a textured far wall,
    and its disparity (refocus's 16-bit depth PNG, bright = near)."""
    rng = np.random.default_rng(0)
    height = round((megapixels * 1e6 / 1.5) ** 0.5)
    width = round(height * 1.5)
    base = rng.random((height // 8, width // 8, 3))
    image = np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC))
    depth = np.full((height, width), 6.0, np.float32)  # metres
    depth[height // 4 : height * 7 // 8, width // 8 : width // 2] = 1.5
    return save_photo(folder / "photo.jpg", image, quality=92), save_disparity(folder / "depth.png", 1.0 / depth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--f-number", type=float, default=1.4)
    parser.add_argument("--megapixels", type=float, default=1.0)
    args = parser.parse_args()

    photo, depth = make_photo(Path(tempfile.mkdtemp()), args.megapixels)
    width, height = Image.open(photo).size
    latencies = []
    with launch_app(RefocusApp(device="cpu")) as url, chromium() as browser, open_app(browser, url) as page:
        upload_depth_map(page, depth)
        upload_photo(page, photo)
        set_number(page, "Aperture (f-number): smaller = more blur", args.f_number)  # Enter
        wait_until_settled(page)
        page.locator("#result img").first.scroll_into_view_if_needed()  # mouse clicks need it on screen
        rng = np.random.default_rng(1)
        for _ in range(args.clicks):
            old = answers(page)
            x, y = image_point(page, "#result", rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9))
            start = time.perf_counter()
            page.mouse.click(x, y)
            wait_for_answer(page, old)
            latencies.append(time.perf_counter() - start)
    print("| click | latency (ms) |\n| ---: | ---: |")
    for i, t in enumerate(latencies, 1):
        print(f"| {i} | {t * 1000:.0f} |")
    print(
        f"click -> preview for a {width} x {height} photo at f/{args.f_number:g}: median "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms over {len(latencies)} clicks"
    )


if __name__ == "__main__":
    main()
