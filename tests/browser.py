"""Drive the app in a real browser: Debian's chromium under Playwright, for the browser tests.

``launch_app`` serves a ``RefocusApp`` on a free local port; ``chromium`` starts the browser
(conftest's ``browser`` fixture holds one per session); ``open_app`` opens the app in a fresh page; the helpers upload photos and depth maps, click images where their pixels are, and
wait for the preview to change or to settle. Coordinates given to helpers are fractions of the
shown image (0..1), so a test does not depend on the layout's pixel sizes.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network: without the background-networking ones chromium keeps trying to
# reach Google's hosts. --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
DESKTOP = {"width": 1400, "height": 1000}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 60_000

@contextlib.contextmanager
def launch_app(refocus_app) -> Iterator[str]:
    """Serve ``build_demo(refocus_app)`` on 127.0.0.1 as ``main`` would; yields its base URL."""
    import app as app_module

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app_module.build_demo(refocus_app)
    demo.queue(max_size=16, default_concurrency_limit=2)  # what ``app.main`` sets
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's chromium under Playwright (one per test session: Playwright's sync API nests badly)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_app(browser, url: str, viewport: dict | None = None):
    """A fresh page (own cookies and session) of ``browser`` showing the app at ``url``."""
    context = browser.new_context(viewport=viewport or DESKTOP)
    try:
        page = context.new_page()
        page.goto(url)
        page.locator("#photo").wait_for(timeout=TIMEOUT_MS)
        yield page
    finally:
        context.close()


def save_photo(path: Path, image: np.ndarray, quality: int = 90) -> Path:
    """Write a uint8 (H, W, 3) image; the suffix picks the format (JPEG keeps big photos small)."""
    Image.fromarray(image).save(path, quality=quality)  # PNG ignores ``quality``
    return path


def save_disparity(path: Path, disparity: np.ndarray) -> Path:
    """Write a float (H, W) disparity map as refocus's own 16-bit depth download (bright = near),
    which the depth-map input's "auto" kind reads back as relative disparity."""
    from refocus.io import save_depth_png16

    return save_depth_png16(path, disparity)


def upload_depth_map(page, path: Path) -> None:
    """Upload ``path`` through the app's depth-map input (opening the Depth accordion if closed)."""
    field = page.locator("#depth-upload input[type=file]")
    if field.count() == 0:
        page.get_by_text("Depth map", exact=True).first.click()
    field.first.set_input_files(str(path))
    page.wait_for_function(  # the file list shows the name's stem and suffix apart
        "(stem) => document.querySelector('#depth-upload')?.innerText.includes(stem)", arg=path.stem, timeout=TIMEOUT_MS
    )


def upload_photo(page, path: Path) -> str:
    """Upload ``path`` as the photo and wait for its first preview; returns the preview's src."""
    old = image_src(page, "#result")
    page.locator("#photo input[type=file]").set_input_files(str(path))
    return wait_for_new_src(page, "#result", old)


def image_src(page, selector: str) -> str:
    """The src of the first <img> inside ``selector`` ("" when none is shown)."""
    img = page.locator(f"{selector} img").first
    return (img.get_attribute("src") or "") if img.count() else ""


def wait_for_new_src(page, selector: str, old: str, timeout_ms: int = TIMEOUT_MS) -> str:
    """Wait until the <img> in ``selector`` shows something other than ``old``; returns its src."""
    page.wait_for_function(
        "([sel, old]) => { const img = document.querySelector(sel + ' img'); return img && img.src && img.src !== old; }",
        arg=[selector, old],
        timeout=timeout_ms,
    )
    return image_src(page, selector)


def wait_until_settled(page, selector: str = "#result", quiet_s: float = 2.0, timeout_s: float = 60.0) -> str:
    """Wait until ``selector``'s image has not changed for ``quiet_s`` and nothing is pending."""
    deadline = time.monotonic() + timeout_s
    last, since = image_src(page, selector), time.monotonic()
    while time.monotonic() < deadline:
        page.wait_for_timeout(100)
        src = image_src(page, selector)
        busy = page.locator(f"{selector} .eta-bar, {selector} .progress-text, {selector} .wrap.pending").count()
        if src != last or busy:
            last, since = src, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return src
    raise TimeoutError(f"{selector} kept changing for {timeout_s} s")


def fetch_image(page, src: str) -> np.ndarray:
    """The image at ``src`` (a served file or a data URL) as uint8 (H, W, 3)."""
    data = page.request.get(src).body() if not src.startswith("data:") else urllib.request.urlopen(src).read()
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def shown_image_box(page, selector: str) -> dict:
    """Page-pixel box {x, y, width, height} of the picture inside ``selector``'s <img>.

    The <img> may be larger than the picture (it is fitted inside, centred, never enlarged):
    the same geometry Gradio uses to turn a click into image pixels.
    """
    return page.locator(f"{selector} img").first.evaluate(
        """(img) => {
            const r = img.getBoundingClientRect();
            const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight, 1);
            const w = img.naturalWidth * s, h = img.naturalHeight * s;
            return {x: r.left + (r.width - w) / 2, y: r.top + (r.height - h) / 2, width: w, height: h};
        }"""
    )


def image_point(page, selector: str, fx: float, fy: float) -> tuple[float, float]:
    """Page pixels of the point at fractions (fx, fy) of the width and height of ``selector``'s picture."""
    box = shown_image_box(page, selector)
    return box["x"] + fx * box["width"], box["y"] + fy * box["height"]


def click_image(page, selector: str, fx: float, fy: float) -> None:
    """Click the picture in ``selector`` at fractions (fx, fy) of its width and height."""
    page.locator(f"{selector} img").first.scroll_into_view_if_needed()  # mouse clicks need it on screen
    page.mouse.click(*image_point(page, selector, fx, fy))


def answers(page) -> int:
    """How many server answers the page has shown (``window.refocus.answered``, ``app_page.js``).

    A click's answer is what to wait on, not a new preview address: a click at the same depth
    gives the same preview.
    """
    return page.evaluate("() => window.refocus.answered")


def wait_for_answer(page, old: int, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until the page has shown an answer after its ``old``-th and the preview in it has loaded."""
    page.wait_for_function(
        "(old) => { const img = document.querySelector('#result img');"
        " return window.refocus.answered > old && img && img.complete; }",
        arg=old,
        timeout=timeout_ms,
    )


def error_toasts(page) -> int:
    """How many error toasts the page shows."""
    return page.locator(".toast-body.error").count()


def block(page, label: str):
    """The Gradio component whose label is ``label`` (for components without an elem_id)."""
    return page.locator("div.block").filter(has=page.get_by_text(label, exact=True)).last


def set_number(page, label: str, value: float, key: str = "Enter") -> None:
    """Type ``value`` into the number box of the slider labelled ``label`` and press ``key``."""
    box = block(page, label).locator("input[type=number]").first
    box.fill(str(value))
    box.press(key)


def sharpness_at(image: np.ndarray, fx: float, fy: float, half: float = 0.1) -> float:
    """Mean |horizontal difference| of grey in a box of ``half`` the size around (fx, fy) (fractions)."""
    grey = image.astype(np.float32).mean(axis=2)
    h, w = grey.shape
    window = grey[int((fy - half) * h) : int((fy + half) * h), int((fx - half) * w) : int((fx + half) * w)]
    return float(np.abs(np.diff(window, axis=1)).mean())
