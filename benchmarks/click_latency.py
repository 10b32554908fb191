"""Click -> refocused preview latency in a real browser, for a 1 MP photo.

Launches the app on 127.0.0.1, uploads a 1224 x 816 (1 MP) photo with a depth map (so no depth
network is needed), then clicks N points on the preview and times each until the new preview is
shown in the page. Prints a table and a one-line summary. Needs Debian's chromium and Playwright.

    python -m benchmarks.click_latency [--clicks 10] [--f-number 1.4]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def make_photo(folder: Path) -> tuple[Path, Path]:
    """A 1 MP scene: a textured near card on the left over a textured far wall, and its depth."""
    rng = np.random.default_rng(0)
    height, width = 816, 1224
    base = rng.random((height // 8, width // 8, 3))
    image = np.asarray(Image.fromarray((base * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC))
    depth = np.full((height, width), 6.0, np.float32)
    depth[200:700, 150:600] = 1.5
    Image.fromarray(image).save(folder / "photo.jpg", quality=92)
    np.save(folder / "depth.npy", depth)
    return folder / "photo.jpg", folder / "depth.npy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--f-number", type=float, default=1.4)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    import app as app_module

    folder = Path(tempfile.mkdtemp())
    photo, depth = make_photo(folder)
    demo = app_module.build_demo(app_module.RefocusApp(device="cpu"))
    demo.queue()
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=7872, prevent_thread_lock=True, quiet=True)
    latencies = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium",
            args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.get_by_text("Depth", exact=True).first.click()
        page.get_by_label("Depth (bright = far)").check()
        page.locator("#depth-upload input[type=file]").set_input_files(str(depth))
        page.locator("#photo input[type=file]").set_input_files(str(photo))
        page.wait_for_function("() => document.querySelector('#result img')?.src", timeout=120_000)
        slider = page.get_by_label("Aperture (f-number): smaller = more blur").first
        slider.fill(str(args.f_number))
        slider.press("Enter")
        page.wait_for_timeout(3000)
        rng = np.random.default_rng(1)
        for _ in range(args.clicks):
            old = page.locator("#result img").first.get_attribute("src")
            box = page.locator("#result img").first.bounding_box()
            x, y = rng.uniform(0.1, 0.9) * box["width"], rng.uniform(0.1, 0.9) * box["height"]
            start = time.perf_counter()
            page.locator("#result img").first.click(position={"x": x, "y": y})
            page.wait_for_function(
                "(old) => { const i = document.querySelector('#result img');"
                " return i && i.src !== old && i.complete; }",
                arg=old,
                timeout=60_000,
            )
            latencies.append(time.perf_counter() - start)
        browser.close()
    demo.close()
    print("| click | latency (ms) |\n| ---: | ---: |")
    for i, t in enumerate(latencies, 1):
        print(f"| {i} | {t * 1000:.0f} |")
    print(
        f"click -> preview for a 1 MP photo at f/{args.f_number:g}: median "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms over {len(latencies)} clicks"
    )


if __name__ == "__main__":
    main()
