"""The workflow shared by the app, the API and the CLI: depth once, previews, full renders."""

import numpy as np
import pytest

from conftest import sharpness, textured_scene
from refocus.depth.base import DepthResult
from refocus import parallel
from refocus.errors import RefocusError
import refocus.refocuser as refocuser_module
from refocus.io import Photo
from refocus.refocuser import LensSettings, Refocuser


class CountingModel:
    """A depth model that reports the scene's true disparity and counts its calls."""

    name, licence, device = "counting", "test", "cpu"

    def __init__(self, disparity: np.ndarray):
        self.disparity = disparity
        self.calls = 0

    def predict(self, image: np.ndarray) -> DepthResult:
        self.calls += 1
        return DepthResult(self.disparity)


def test_depth_is_predicted_once_per_photo_and_previews_are_small():
    image, disparity = textured_scene(2400, 1600)
    model = CountingModel(disparity)
    refocuser = Refocuser(load_model=lambda spec, device: model, preview_size=600)
    photo = Photo(image.astype(np.float32) / 255)
    first = refocuser.prepare(photo)
    second = refocuser.prepare(Photo(photo.pixels.copy()))
    assert model.calls == 1 and first is second
    assert first.preview.shape == (400, 600, 3) and first.preview_scale == pytest.approx(0.25)
    settings = LensSettings(f_number=1.4)
    preview = refocuser.render_preview(first, refocuser.preview_lens(first, (600, 800), settings), settings)  # near
    assert preview.shape == (400, 600, 3)
    assert sharpness(preview[:, :250]) > 2 * sharpness(preview[:, 350:])


def test_a_failed_model_load_is_not_retried_on_every_photo():
    attempts = []

    def unavailable(spec, device):
        attempts.append(spec)
        raise RefocusError("Depth model x is not in the local cache.")

    refocuser = Refocuser("x", load_model=unavailable)
    for _ in range(3):
        with pytest.raises(RefocusError, match="not in the local cache"):
            refocuser.model
    assert attempts == ["x"]


def test_a_users_depth_map_needs_no_model():
    image, disparity = textured_scene()

    def no_model(spec, device):
        raise AssertionError("the depth network must not be loaded")

    refocuser = Refocuser(load_model=no_model)
    photo = Photo(image.astype(np.float32) / 255)
    prepared = refocuser.prepare(photo, disparity)
    out = refocuser.render_full(photo, prepared, (120, 60), LensSettings(f_number=1.4))
    assert out.shape == image.shape and sharpness(out[:, 90:]) > 2 * sharpness(out[:, :70])


@pytest.fixture(scope="module")
def card_at_f14():
    """The textured scene prepared at 480 x 320 and rendered whole at f/1.4, focused on the card.

    Returns (refocuser, photo, prepared, settings, whole render).
    """
    image, disparity = textured_scene(480, 320)
    refocuser = Refocuser(load_model=lambda spec, device: CountingModel(disparity))
    photo = Photo(image.astype(np.float32) / 255)
    prepared = refocuser.prepare(photo)
    settings = LensSettings(f_number=1.4)
    whole = refocuser.render(photo.pixels, prepared.depth.disparity, (100, 160), settings, focal_px=prepared.focal_px)
    return refocuser, photo, prepared, settings, whole


def test_a_crop_rendered_alone_matches_the_full_render_there(card_at_f14):
    refocuser, photo, prepared, settings, full = card_at_f14
    box = (180, 100, 300, 220)  # across the card's edge, where light from outside the box matters
    crop = refocuser.render_crop(photo, prepared, (100, 160), settings, box)
    assert crop.shape == (120, 120, 3)
    # Rendered without its margin the box differs by up to 0.04 at its edges; with the crop's own
    # size deciding the blur strength, by 0.016 on average.
    difference = np.abs(crop - full[100:220, 180:300])
    assert difference.max() < 0.005 and difference.mean() < 0.001


def test_a_small_photo_renders_in_one_piece_as_render_does(card_at_f14):
    refocuser, photo, prepared, settings, whole = card_at_f14  # 0.15 MP: one strip
    reports = []
    np.testing.assert_allclose(refocuser.render_full(photo, prepared, (100, 160), settings, progress=reports.append),
                               whole, atol=1e-6)
    assert reports == [1.0]


def test_a_full_render_with_progress_reports_each_strip_matches_the_whole_and_can_stop(card_at_f14, monkeypatch):
    refocuser, photo, prepared, settings, whole = card_at_f14
    monkeypatch.setattr(refocuser_module, "STRIP_PIXELS", 480 * 320 // 8)  # strips, as a 12 MP photo gets
    reports = []
    strips = refocuser.render_full(photo, prepared, (100, 160), settings, progress=reports.append)
    assert reports == pytest.approx([(i + 1) / len(reports) for i in range(len(reports))]) and len(reports) > 2
    assert np.abs(strips - whole).max() < 0.01 and np.abs(strips - whole).mean() < 0.001  # no margin: 0.04
    # without progress reports the same strips: the app's download, the API, the CLI and batch agree
    np.testing.assert_array_equal(refocuser.render_full(photo, prepared, (100, 160), settings), strips)
    monkeypatch.setattr(parallel, "WORKERS", 1)  # and one core renders them as two do
    np.testing.assert_array_equal(refocuser.render_full(photo, prepared, (100, 160), settings), strips)

    def cancel(done):
        raise RefocusError("Render cancelled.")

    with pytest.raises(RefocusError, match="cancelled"):
        refocuser.render_full(photo, prepared, (100, 160), settings, progress=cancel)
