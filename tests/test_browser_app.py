"""Issue 13 in a real browser, the first minute and the tools: no model, depth source, auto focus,
undo, the in-focus tint, the depth legend, a phone-sized screen.

Each test failed before its feature landed (the app had no notice, undo, tint, legend, ...).
"""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import (
    PHONE,
    click_image,
    error_toasts,
    fetch_image,
    image_src,
    launch_app,
    open_app,
    save_disparity,
    save_photo,
    sharpness_at,
    upload_depth_map,
    upload_photo,
    wait_for_new_src,
    wait_until_settled,
)
from conftest import sharpness, textured_scene

NEAR, FAR = (0.25, 0.5), (0.75, 0.5)  # the textured scene's near card and far wall


@pytest.fixture
def scene(tmp_path):
    """The 320 x 240 textured scene as files: (photo, depth map)."""
    image, disparity = textured_scene(320, 240)
    return save_photo(tmp_path / "photo.png", image), save_disparity(tmp_path / "depth.png", disparity)


def settled_preview(page) -> np.ndarray:
    return fetch_image(page, wait_until_settled(page, quiet_s=1.0))


def sharper_at(page, point, other) -> bool:
    preview = settled_preview(page)
    return sharpness_at(preview, *point) > 1.5 * sharpness_at(preview, *other)


def screenshots(tmp_path) -> Path:
    return Path(os.environ.get("REFOCUS_SCREENSHOTS", tmp_path))


def test_without_a_model_the_page_says_what_works_and_nothing_shows_an_error(browser, tmp_path, scene):
    import app as app_module

    refocus_app = app_module.RefocusApp(str(tmp_path / "no-such-model"), device="cpu")
    refocus_app.try_load_default_model()
    with launch_app(refocus_app) as url, open_app(browser, url) as page:
        assert "works on photos that come with depth" in page.locator("#no-model").inner_text()
        assert page.locator("#depth-upload").is_visible()  # no accordion to find first

        page.locator(".gallery-item").first.click()  # an example photo, which needs the model
        page.locator("#status").get_by_text("needs a depth map").wait_for(timeout=30_000)
        click_image(page, "#photo", 0.5, 0.5)  # "Upload a photo first" here would be wrong
        page.wait_for_timeout(1000)
        assert "Upload a photo first" not in page.locator(".toast-body").all_inner_texts()
        assert error_toasts(page) == 0, page.locator(".toast-body").all_inner_texts()
        assert page.get_by_text("Error", exact=True).count() == 0

        photo, depth = scene  # a photo first, then its map: the way a user reads the notice
        page.locator("#photo input[type=file]").set_input_files(str(photo))
        page.wait_for_timeout(1000)
        upload_depth_map(page, depth)
        wait_for_new_src(page, "#result", "")
        assert "uploaded depth map" in page.locator("#status").inner_text()
        page.screenshot(path=str(screenshots(tmp_path) / "browser-no-model.png"), full_page=True)
        assert error_toasts(page) == 0


def test_the_status_names_the_depth_source_in_use_and_its_own_timings(browser, server, scene, tmp_path):
    photo, depth = scene
    with open_app(browser, server[1]) as page:
        upload_depth_map(page, depth)
        upload_photo(page, photo)
        status = page.locator("#status").inner_text()
        assert "uploaded depth map" in status and "depth 0" not in status  # no network ran: no depth time

        other, _ = textured_scene(320, 240, seed=2)
        upload_photo(page, save_photo(tmp_path / "other.png", other))  # the map was the first photo's
        wait_until_settled(page, quiet_s=1.0)
        status = page.locator("#status").inner_text()
        assert "uploaded depth map" not in status and "depth " in status and " s" in status


def test_upload_focuses_on_the_subject_then_clicks_undo_and_redo(browser, server, scene):
    photo, depth = scene
    with open_app(browser, server[1]) as page:
        upload_depth_map(page, depth)
        upload_photo(page, photo)
        assert sharper_at(page, NEAR, FAR), "the upload did not focus on the near card"
        click_image(page, "#photo", *FAR)
        assert sharper_at(page, FAR, NEAR)
        page.locator("#undo").click()
        assert sharper_at(page, NEAR, FAR), "undo did not bring the focus back"
        page.locator("#redo").click()
        assert sharper_at(page, FAR, NEAR), "redo did not repeat the click"


def test_the_in_focus_tint_and_the_depth_legend(browser, server, scene):
    photo, depth = scene
    with open_app(browser, server[1]) as page:
        upload_depth_map(page, depth)
        plain = fetch_image(page, upload_photo(page, photo))
        old = image_src(page, "#result")
        page.locator("#band input[type=checkbox]").check()
        tinted = fetch_image(page, wait_for_new_src(page, "#result", old))
        greener = tinted[..., 1].astype(int) - plain[..., 1].astype(int)
        h, w = greener.shape
        assert greener[:, : w // 3].mean() > 30, "the in-focus (near) half is not tinted"
        assert abs(greener[:, 2 * w // 3 :].mean()) < 10, "the blurred half is tinted"

        page.get_by_role("tab", name="Depth").click()
        legend = fetch_image(page, page.locator("#depth-legend img").first.get_attribute("src"))
        assert legend.shape[0] > legend.shape[1]  # a vertical bar with its labels


def test_on_a_phone_a_tap_on_the_photo_brings_the_preview_into_view(browser, server, scene, tmp_path):
    photo, depth = scene
    with open_app(browser, server[1], viewport=PHONE) as page:
        upload_depth_map(page, depth)
        upload_photo(page, photo)
        page.locator("#photo").scroll_into_view_if_needed()
        click_image(page, "#photo", *FAR)
        page.wait_for_timeout(1500)  # the smooth scroll
        box = page.locator("#result img").first.bounding_box()
        assert 0 <= box["y"] and box["y"] + box["height"] / 2 <= PHONE["height"], "the preview is off screen"
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scroll
        page.screenshot(path=str(screenshots(tmp_path) / "browser-phone-390.png"))


def test_the_1_to_1_view_shows_full_resolution_pixels_around_the_focus(browser, server, tmp_path):
    image, disparity = textured_scene(1600, 1200)  # the preview is 1024 px wide: 0.64 of these pixels
    with open_app(browser, server[1]) as page:
        upload_depth_map(page, save_disparity(tmp_path / "depth.png", disparity))
        upload_photo(page, save_photo(tmp_path / "photo.png", image))  # focused on the near card (left)
        page.get_by_role("tab", name="1:1 at focus").click()
        page.locator("#zoom img").first.wait_for(timeout=60_000)
        zoom = fetch_image(page, page.locator("#zoom img").first.get_attribute("src"))
        assert zoom.shape == (480, 480, 3)  # 1:1: pixels of the photo, not of the preview
        assert sharpness(zoom) > 0.8 * sharpness(image[:, :800]), "the in-focus card is not sharp at 1:1"
        assert "1:1 around (" in page.locator("#zoom").inner_text()


def test_a_keep_sharp_brush_stroke_sharpens_what_it_covers_and_undo_removes_it(browser, server, scene):
    photo, depth = scene
    with open_app(browser, server[1]) as page:
        upload_depth_map(page, depth)
        upload_photo(page, photo)
        click_image(page, "#photo", *FAR)
        assert sharper_at(page, FAR, NEAR)
        page.get_by_role("tab", name="Refine (brush)").click()
        paint(page, 0.12, 0.3, 0.7)  # a vertical stroke on the near card, 12 % in from the left
        old = image_src(page, "#result")
        page.locator("#apply-stroke").click()
        page.get_by_role("tab", name="Refocused").click()
        wait_for_new_src(page, "#result", old)
        assert sharper_at(page, (0.12, 0.5), (0.35, 0.5)), "the painted part of the card is still blurred"
        assert sharper_at(page, FAR, (0.35, 0.5)), "the stroke moved the focus"
        page.get_by_role("tab", name="Refine (brush)").click()
        page.locator("#undo-stroke").click()
        page.get_by_role("tab", name="Refocused").click()
        assert not sharper_at(page, (0.12, 0.5), (0.35, 0.5)), "undo kept the stroke"


def paint(page, fx: float, fy0: float, fy1: float) -> None:
    """Drag the brush down the photo in the brush's canvas at fractions ``fx``, ``fy0`` to ``fy1``.

    The canvas is wider than the photo and pads it: the photo's box is found from the canvas'
    pixels (the photo is the non-white part of its middle row and column).
    """
    canvas = page.locator("#brush canvas").first
    frame = canvas.bounding_box()
    shot = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"), np.float32)
    scale = shot.shape[1] / frame["width"]
    cols = np.flatnonzero(shot[shot.shape[0] // 2] < 235)
    rows = np.flatnonzero(shot[:, (cols[0] + cols[-1]) // 2] < 235)
    x0, x1, y0, y1 = cols[0] / scale, cols[-1] / scale, rows[0] / scale, rows[-1] / scale
    x = frame["x"] + x0 + fx * (x1 - x0)
    page.mouse.move(x, frame["y"] + y0 + fy0 * (y1 - y0))
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x, frame["y"] + y0 + (fy0 + step * (fy1 - fy0) / 20) * (y1 - y0))
    page.mouse.up()
