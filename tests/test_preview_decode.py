"""Decoding a JPEG at preview size, with the full decode on demand."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import textured_scene
from refocus.depth import load_depth_model
from refocus.errors import RefocusError
from refocus.focus import FocusTarget
from refocus.io import Photo, load_photo
from refocus.preview_decode import DraftPhoto, load_draft_photo
from refocus.refocuser import LensSettings, Refocuser


def jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    """A smooth JPEG (block decoding at reduced size is exact enough to compare)."""
    rng = np.random.default_rng(1)
    pixels = cv2.resize(rng.random((6, 8, 3), np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    im = Image.fromarray(np.clip(pixels * 255, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def test_a_large_jpeg_is_decoded_at_preview_size_upright():
    data = jpeg(1600, 1200, orientation=6)  # stored landscape, shown portrait
    photo = load_draft_photo(data, long_edge=400)
    assert isinstance(photo, DraftPhoto) and (photo.width, photo.height) == (1200, 1600)
    assert photo.draft.pixels.shape == (400, 300, 3)  # 1/4 of the size, turned upright
    assert not photo.full.computed
    full = photo.full.get().pixels
    np.testing.assert_array_equal(full, load_photo(data).pixels)
    shrunk = cv2.resize(full, photo.draft.pixels.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(shrunk - photo.draft.pixels).mean() < 0.01


def test_small_or_non_jpeg_photos_are_decoded_in_full():
    assert isinstance(load_draft_photo(jpeg(600, 400), long_edge=400), Photo)
    buffer = io.BytesIO()
    Image.new("RGB", (1600, 1200), (10, 20, 30)).save(buffer, "PNG")
    assert isinstance(load_draft_photo(buffer.getvalue(), long_edge=400), Photo)
    with pytest.raises(RefocusError, match="not an image"):
        load_draft_photo(b"not an image at all", long_edge=400)
    with pytest.raises(RefocusError, match="limit"):
        load_draft_photo(jpeg(1600, 1200), long_edge=400, max_pixels=1_000_000)


def test_a_draft_photo_refocuses_like_the_full_decode(tiny_model_dir):
    model = load_depth_model(str(tiny_model_dir), device="cpu")
    image, _ = textured_scene(800, 600)
    image = cv2.GaussianBlur(image, (0, 0), 2)  # JPEG-friendly detail
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=95)
    draft = load_draft_photo(buffer.getvalue(), long_edge=200)
    assert isinstance(draft, DraftPhoto)
    refocuser = Refocuser(load_model=lambda spec, device: model, preview_size=200)
    prepared = refocuser.prepare(draft)
    refocuser.render_preview(prepared, refocuser.preview_lens(prepared, (400, 300), LensSettings()), LensSettings())
    assert not draft.full.computed, "the first preview must not decode the full photo"
    reference = Refocuser(load_model=lambda spec, device: model, preview_size=200).prepare(load_photo(buffer.getvalue()))
    assert (prepared.width, prepared.height) == (800, 600) and prepared.preview.shape == reference.preview.shape
    assert np.abs(prepared.preview - reference.preview).mean() < 0.01
    assert prepared.depth.disparity.shape == (600, 800) and draft.full.computed


def marked_jpeg(width: int, height: int, orientation: int, box: tuple[int, int, int, int]) -> bytes:
    """A dark JPEG with a white rectangle (x0, y0, x1, y1, stored pixels) and EXIF naming that
    rectangle as its SubjectArea (centre x, centre y, width, height)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9214] = ((x0 + x1) // 2, (y0 + y1) // 2, x1 - x0, y1 - y0)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_cameras_subject_area_turns_with_the_photo(orientation):
    data = marked_jpeg(1600, 1200, orientation, (200, 100, 600, 500))
    photo = load_photo(data)
    x0, y0, x1, y1 = photo.subject_area
    h, w = photo.pixels.shape[:2]
    # the white rectangle, where the upright pixels show it, is the box
    rows, cols = np.nonzero(photo.pixels[..., 0] > 0.5)
    np.testing.assert_allclose([x0 * w, y0 * h, x1 * w, y1 * h],
                               [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], atol=2)  # fmt: skip
    # decoded at preview size (the draft's own size is smaller): the same fractions
    draft = load_draft_photo(data, long_edge=400)
    assert isinstance(draft, DraftPhoto) and draft.subject_area == photo.subject_area


def test_a_photo_without_a_subject_area_or_with_a_point_has_none():
    assert load_photo(jpeg(320, 240)).subject_area is None
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9214] = (100, 80)  # a point: no extent to search in
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240)).save(buffer, "JPEG", exif=exif.tobytes())
    assert load_photo(buffer.getvalue()).subject_area is None


def test_the_subject_area_reaches_the_prepared_photo_and_auto_focus():
    data = marked_jpeg(1600, 1200, 1, (200, 100, 600, 500))
    photo = load_draft_photo(data, long_edge=400)
    depth = np.full((1200, 1600), 0.2, np.float32)
    depth[900:, 1200:] = 0.9  # nearer and larger, but outside the camera's subject area
    depth[150:450, 250:550] = 0.6  # the subject, inside it
    prepared = Refocuser().prepare(photo, depth)
    assert prepared.subject_area == photo.subject_area
    x, y = FocusTarget.parse("auto").point_in(prepared.depth.disparity, prepared.subject_area)
    assert 250 <= x < 550 and 150 <= y < 450
