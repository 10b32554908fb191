"""Issue 13 in a real browser: every click counts, Enter applies, nothing per-photo goes stale.

Each test failed before its fix (they were strict-xfail tests until the fix landed).
"""

from pathlib import Path

import cv2
import numpy as np
import pytest

from browser import (
    answers,
    click_image,
    fetch_image,
    image_point,
    image_src,
    launch_app,
    open_app,
    save_disparity,
    save_photo,
    set_number,
    sharpness_at,
    upload_depth_map,
    upload_photo,
    wait_for_answer,
    wait_for_new_src,
    wait_until_settled,
)
from conftest import textured_scene

APERTURE = "Aperture (f-number): smaller = more blur"
FULL_FILE = "#full-file"
DEPTH_VIEW = "#depth-view"
# Two points of the 12 MP scene at different depths: the top and the bottom of a receding floor.
UPPER, LOWER = (0.75, 0.3), (0.75, 0.75)
NEAR, FAR = (0.25, 0.5), (0.75, 0.5)  # the textured scene's near card and far wall


def big_scene(folder: Path) -> tuple[Path, Path]:
    """A 4000 x 3000 textured photo (JPEG) and its depth map: a near card left, a floor right.

    The floor's disparity ramps from far (top) to near (bottom), so the preview has many
    depth layers to render, as a real photo does.
    """
    w, h = 4000, 3000
    rng = np.random.default_rng(0)
    texture = (rng.random((h // 4, w // 4, 3)) * 255).astype(np.uint8)
    photo = cv2.resize(texture, (w, h), interpolation=cv2.INTER_NEAREST)
    disparity = np.repeat(np.linspace(0.1, 0.6, h // 10, dtype=np.float32)[:, None], w // 10, axis=1)
    disparity[:, : w // 20] = 1.0
    return save_photo(folder / "big.jpg", photo), save_disparity(folder / "big-depth.png", disparity)


@pytest.fixture(scope="module")
def big_app(browser, tiny_model_dir, tmp_path_factory):
    """The app with room for 12 MP photos, opened at f/1.4 on the 12 MP scene: the page."""
    import app as app_module

    refocus_app = app_module.RefocusApp(str(tiny_model_dir), device="cpu", max_image_pixels=13_000_000)
    photo, depth = big_scene(tmp_path_factory.mktemp("big"))
    with launch_app(refocus_app) as url, open_app(browser, url) as page:
        set_number(page, APERTURE, 1.4)
        upload_depth_map(page, depth)
        upload_photo(page, photo)
        wait_until_settled(page, quiet_s=1.0)
        yield page


def depth_view(page) -> np.ndarray:
    """The picture the Depth tab shows."""
    return fetch_image(page, page.locator(f"{DEPTH_VIEW} img").first.get_attribute("src"))


def focused_on(page, first, second) -> bool:
    """Whether the settled preview is sharper at ``second`` than at ``first``."""
    preview = fetch_image(page, wait_until_settled(page, quiet_s=1.5))
    return sharpness_at(preview, *second) > sharpness_at(preview, *first)


# On the preview too: while the first click renders, nothing may cover it and take the second.
@pytest.mark.parametrize("image", ["#photo", "#result"])
def test_two_clicks_100_ms_apart_on_a_12_mp_photo_end_focused_on_the_second(big_app, image):
    page = big_app
    for first, second in [(UPPER, LOWER), (LOWER, UPPER)]:  # both ways: no side wins by luck
        click_image(page, image, *second)
        assert focused_on(page, first, second)  # a known start
        click_image(page, image, *first)
        page.wait_for_timeout(100)
        click_image(page, image, *second)
        assert focused_on(page, first, second), f"the second click at {second} was lost"


def test_the_marker_moves_at_once_before_the_render_returns(big_app):
    page = big_app
    page.locator("#photo img").first.scroll_into_view_if_needed()  # a screenshot's clip must be on screen
    point = image_point(page, "#photo", 0.4, 0.5)
    clip = {"x": point[0] - 30, "y": point[1] - 30, "width": 60, "height": 60}  # the spot, no toolbar
    page.mouse.move(*point)  # hovering may show the image's buttons: not what is tested
    page.wait_for_timeout(300)
    before = page.screenshot(clip=clip)
    page.mouse.click(*point)
    page.wait_for_timeout(50)  # far less than a 12 MP f/1.4 preview takes to come back
    assert page.screenshot(clip=clip) != before, "nothing on the photo showed where it was clicked"
    wait_until_settled(page, quiet_s=1.0)


def test_enter_applies_a_typed_f_number(browser, server, tmp_path):
    image, _ = textured_scene(320, 240)
    with open_app(browser, server[1]) as page:
        first = upload_photo(page, save_photo(tmp_path / "photo.png", image))
        set_number(page, APERTURE, 8.0)  # Enter, and the box keeps the keyboard focus
        wait_for_new_src(page, "#result", first, timeout_ms=10_000)


def test_a_click_on_the_preview_after_enter_in_the_f_number_box_is_honoured(browser, server, tmp_path, monkeypatch):
    refocus_app, url = server
    image, disparity = textured_scene(320, 240)
    with open_app(browser, url) as page:
        upload_depth_map(page, save_disparity(tmp_path / "depth.png", disparity))
        first = upload_photo(page, save_photo(tmp_path / "photo.png", image))  # focused on the near card
        set_number(page, APERTURE, 1.4)  # Enter: the box keeps the keyboard focus
        wait_for_new_src(page, "#result", first, timeout_ms=10_000)
        wait_until_settled(page, quiet_s=1.0)
        renders = []
        render_preview = refocus_app.render_preview
        monkeypatch.setattr(refocus_app, "render_preview", lambda *a: renders.append(1) or render_preview(*a))
        answered = answers(page)
        click_image(page, "#result", *FAR)  # its mousedown takes the focus from the box
        wait_for_answer(page, answered, timeout_ms=10_000)
        preview = fetch_image(page, wait_until_settled(page, quiet_s=1.0))
        assert answers(page) == answered + 1, "one click, one answer"
        assert len(renders) == 1, "the box's unchanged value was applied again, racing the click's render"
        assert page.evaluate("() => window.refocus.focus.fx") == pytest.approx(FAR[0], abs=0.02)
        assert sharpness_at(preview, *FAR) > 1.5 * sharpness_at(preview, *NEAR), "the preview did not refocus"


def test_a_new_photo_shows_its_own_depth_not_the_previous_photos_map(browser, server, tmp_path):
    image, disparity = textured_scene(320, 240)
    with open_app(browser, server[1]) as page:
        upload_depth_map(page, save_disparity(tmp_path / "first-depth.png", disparity))
        upload_photo(page, save_photo(tmp_path / "first.png", image))
        page.get_by_role("tab", name="Depth").click()
        old_view = depth_view(page)

        second, _ = textured_scene(320, 240, seed=1)  # same size, another photo
        upload_photo(page, save_photo(tmp_path / "second.png", second))
        wait_until_settled(page, quiet_s=1.0)
        assert "first-depth" not in page.locator("#depth-upload").inner_text(), "the old map is still in use"
        new_view = depth_view(page)
        assert not np.array_equal(new_view, old_view), "the Depth tab still shows the first photo's map"


def test_the_full_resolution_download_never_offers_a_stale_render(browser, server, tmp_path):
    image, _ = textured_scene(320, 240)
    with open_app(browser, server[1]) as page:
        upload_photo(page, save_photo(tmp_path / "photo.png", image))
        page.get_by_role("button", name="Render full resolution").click()
        offered = page.locator(FULL_FILE).locator("a[download], a[href*='refocused']").first
        offered.wait_for(timeout=60_000)
        old_link = offered.get_attribute("href")

        before = image_src(page, "#result")
        set_number(page, APERTURE, 8.0, key="Tab")
        wait_for_new_src(page, "#result", before)
        wait_until_settled(page, quiet_s=1.0)
        links = page.locator(FULL_FILE).locator("a[href]")
        stale = [links.nth(i).get_attribute("href") for i in range(links.count())]
        outdated = page.locator(FULL_FILE).get_by_text("outdated").count() > 0
        assert old_link not in stale or outdated, "the download still offers the render made at f/2.8"


def test_a_full_resolution_render_shows_its_progress_and_can_be_cancelled(big_app):
    page = big_app
    page.get_by_role("button", name="Render full resolution").click()
    page.get_by_text("Rendering 4000 x 3000:").first.wait_for(timeout=60_000)  # a share done, not a fixed 10 %
    page.locator("#cancel").click()
    page.wait_for_timeout(3000)
    assert page.locator(f"{FULL_FILE} a[href]").count() == 0, "the cancelled render still delivered a file"
    assert page.get_by_text("Rendering 4000 x 3000").count() == 0, "the progress bar stayed"
    wait_until_settled(page, quiet_s=1.0)  # one strip at most finishes in the background
