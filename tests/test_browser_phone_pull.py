"""Issues 10 and 12 in a real browser: a HEIC upload shown and clicked, a focus pull picked by clicks and played."""

import av
import numpy as np
from PIL import Image

from browser import (
    block,
    click_image,
    error_toasts,
    image_src,
    open_app,
    save_photo,
    upload_depth_map,
    upload_photo,
    wait_for_new_src,
    wait_until_settled,
)
from conftest import textured_scene
from test_animate import sharp_left


def test_a_heic_upload_is_shown_and_clicking_it_refocuses(browser, server, tmp_path):
    image, disparity = textured_scene(320, 240)
    Image.fromarray(image).save(tmp_path / "phone.heic", format="HEIF", quality=90)
    Image.fromarray((disparity * 255).astype(np.uint8)).save(tmp_path / "map.png")  # 8-bit: relative disparity
    with open_app(browser, server[1]) as page:
        upload_depth_map(page, tmp_path / "map.png")  # auto focus takes the near half
        first = upload_photo(page, tmp_path / "phone.heic")
        # browsers cannot show HEIC: the photo component shows a full-size JPEG copy instead
        page.wait_for_function("() => document.querySelector('#photo img')?.naturalWidth === 320", timeout=60_000)
        assert image_src(page, "#photo").endswith("phone-shown.jpg")
        wait_until_settled(page, quiet_s=1.0)
        click_image(page, "#photo", 0.9, 0.1)  # the far half
        wait_for_new_src(page, "#result", first)
        assert error_toasts(page) == 0
        # a depth option changed while the box shows the copy: the HEIC itself is asked for its depth
        page.locator("#depth-source").get_by_text("The photo's own (iPhone, Google)").click()
        page.get_by_text("carries no depth map of its own").first.wait_for(timeout=30_000)
        # the session keeps the HEIC itself: its copy coming back to the server started nothing new
        depth_link = block(page, "Depth map (16-bit PNG)").locator("a[href]").first.get_attribute("href")
        assert depth_link.endswith("/phone-depth16.png")
        assert page.get_by_text("uploaded depth map").count() == 1  # the status line says where the depth came from


def test_a_focus_pull_picked_by_clicks_plays_in_the_page(browser, server, tmp_path):
    image, disparity = textured_scene(320, 240)
    Image.fromarray((disparity * 255).astype(np.uint8)).save(tmp_path / "map.png")  # 8-bit: relative disparity
    with open_app(browser, server[1]) as page:
        upload_depth_map(page, tmp_path / "map.png")
        before = upload_photo(page, save_photo(tmp_path / "photo.png", image))
        before = wait_until_settled(page, quiet_s=1.0)
        for mode, fx in (("Focus pull: start (A)", 0.25), ("Focus pull: end (B)", 0.75)):
            page.locator("#click-mode").get_by_text(mode).click()
            click_image(page, "#photo", fx, 0.5)
            before = wait_for_new_src(page, "#result", before)  # the preview marks A, then B
        page.get_by_role("tab", name="Focus pull").click()
        frames = block(page, "Frames").locator("input[type=number]").first
        range_input = block(page, "Frames").locator("input[type=range]").first
        range_input.wait_for(state="visible")
        # Typed into the tab's slider as it first appears, the value was lost about one run in six
        # of the browser tests under CI's load (the box mounted anew after the typing, it seems);
        # a person types later than that. The test is of the pull, so it types until the slider has it.
        from playwright.sync_api import TimeoutError as PlaywrightTimeout  # (the fixture skipped without it)

        for attempt in range(3):
            frames.fill("4")
            frames.press("Enter")  # applies the typed value (the page's script), as leaving the box does
            try:
                page.wait_for_function("(el) => el.value === '4'", arg=range_input.element_handle(), timeout=5_000)
                break
            except PlaywrightTimeout:
                if attempt == 2:
                    raise
        page.locator("#pull-button").click()
        video = page.locator("#pull-video video").first
        video.wait_for(timeout=60_000)
        page.wait_for_function("() => document.querySelector('#pull-video video')?.readyState >= 1", timeout=30_000)
        (tmp_path / "pull.mp4").write_bytes(page.request.get(video.get_attribute("src")).body())
        with av.open(str(tmp_path / "pull.mp4")) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(decoded) == 4
        assert sharp_left(decoded[0]) > 2 and sharp_left(decoded[-1]) < 0.5  # sharp at A first, at B last
        assert error_toasts(page) == 0
