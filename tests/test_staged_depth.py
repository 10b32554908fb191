"""Depth at the size it is needed: preview depth first, full-resolution depth on demand."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import refocus.render
from conftest import textured_scene
from refocus.depth import load_depth_model
from refocus.depth.staged import NetworkDepth
from refocus.io import Photo
from refocus.refocuser import LensSettings, Refocuser


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir):
    return load_depth_model(str(tiny_model_dir), device="cpu")


def test_network_depth_upsampled_matches_predict(tiny_model):
    image, _ = textured_scene(240, 180)
    full = tiny_model.predict(image).disparity
    staged = tiny_model.predict_network(image).upsample(image).disparity
    assert staged.shape == full.shape == (180, 240)
    # Same network, same upsampler; only the relative scale is taken from the network's map
    # (its 99th percentile is 1) instead of the upsampled one, so the two agree up to a factor.
    ratio = float(staged.max() / full.max())
    assert ratio > 0 and np.percentile(tiny_model.predict_network(image).disparity, 99) == pytest.approx(1.0)
    # OpenCV's weighted median quantises its input to 256 levels, so a few pixels change bin.
    assert np.abs(staged - full * ratio).mean() < 0.01 * staged.max()


def test_first_preview_does_not_wait_for_full_resolution_depth(tiny_model):
    image, _ = textured_scene(480, 360)
    refocuser = Refocuser(load_model=lambda spec, device: tiny_model, preview_size=120)
    photo = Photo(image.astype(np.float32) / 255)
    prepared = refocuser.prepare(photo)
    refocuser.render_preview(prepared, refocuser.preview_lens(prepared, (100, 100), LensSettings()), LensSettings())
    assert not prepared.full_depth.computed and prepared.preview_disparity.shape == (90, 120)
    assert prepared.depth.disparity.shape == (360, 480) and prepared.full_depth.computed
    assert prepared.depth is prepared.depth  # computed once, then cached


class SmoothNetwork:
    """A stand-in network whose map looks like depth: a near card left of a far wall, at 56 x 70.

    (The tiny random network's map is more than half zeros with sparse spikes, which two median
    filters of different reach thin differently; a depth map's scale is what matters here.)
    """

    name, licence, device = "smooth", "none", "cpu"

    def predict_network(self, image: np.ndarray) -> NetworkDepth:
        disparity = np.full((56, 70), 0.1, np.float32)
        disparity[:, :35] = np.linspace(1.0, 0.8, 56, dtype=np.float32)[:, None]
        return NetworkDepth(disparity)


def test_preview_and_full_resolution_depth_share_one_scale():
    image, _ = textured_scene(480, 360)
    prepared = Refocuser(load_model=lambda spec, device: SmoothNetwork(), preview_size=120).prepare(
        Photo(image.astype(np.float32) / 255)
    )
    full = cv2.resize(prepared.depth.disparity, (120, 90), interpolation=cv2.INTER_AREA)
    assert prepared.preview_disparity.mean() == pytest.approx(full.mean(), rel=0.02)
    near, far = prepared.preview_disparity[:, :50], prepared.preview_disparity[:, 70:]
    np.testing.assert_allclose([near.mean(), far.mean()], [full[:, :50].mean(), full[:, 70:].mean()], rtol=0.01)


def test_the_click_focuses_the_same_value_at_either_resolution(tiny_model, monkeypatch):
    image, _ = textured_scene(480, 360, seed=3)
    refocuser = Refocuser(load_model=lambda spec, device: tiny_model, preview_size=120)
    photo = Photo(image.astype(np.float32) / 255)
    focus_values = []
    render = refocus.render.render_bokeh

    def spy(image, disparity, focus, *args, **kwargs):
        focus_values.append(focus)
        return render(image, disparity, focus, *args, **kwargs)

    monkeypatch.setattr(refocus.render, "render_bokeh", spy)
    for xy in [(37.0, 251.0), (479.0, 359.0)]:
        # Full resolution first on a fresh refocuser, then the preview, and the other way round.
        for order in [("full", "preview"), ("preview", "full")]:
            prepared = Refocuser(load_model=lambda spec, device: tiny_model, preview_size=120).prepare(photo)
            settings = LensSettings()
            for which in order:
                if which == "full":
                    refocuser.render_full(photo, prepared, xy, settings)
                else:
                    refocuser.render_preview(prepared, refocuser.preview_lens(prepared, xy, settings), settings)
            assert focus_values[-1] == focus_values[-2] == refocuser.focus_value(prepared, xy)


def test_the_cpu_network_runs_channels_last_with_the_same_output(tiny_model):
    import torch

    weights = next(p for p in tiny_model.model.parameters() if p.ndim == 4)
    assert weights.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(1, 3, 56, 70, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        channels_last = tiny_model.model(pixel_values=x.contiguous(memory_format=torch.channels_last))
        plain = tiny_model.model.to(memory_format=torch.contiguous_format)(pixel_values=x)
        tiny_model.model.to(memory_format=torch.channels_last)
    np.testing.assert_allclose(channels_last.predicted_depth, plain.predicted_depth, rtol=1e-4, atol=1e-5)


def test_full_resolution_depth_is_edge_aware_at_full_resolution(tiny_model):
    image, _ = textured_scene(480, 360, seed=5)
    photo = Photo(image.astype(np.float32) / 255)
    prepared = Refocuser(load_model=lambda spec, device: tiny_model, preview_size=120).prepare(photo)
    # The network's map brought to the photo's size guided by the photo itself, not the
    # preview's depth enlarged.
    expected = tiny_model.predict_network(prepared.preview).upsample(photo.pixels).disparity
    np.testing.assert_array_equal(prepared.depth.disparity, expected)


def test_the_upsampler_gives_the_same_depth_on_every_call():
    import cv2

    from refocus.depth.upsample import upsample_disparity

    rng = np.random.default_rng(0)
    guide = cv2.resize((rng.random((30, 40, 3)) * 255).astype(np.uint8), (480, 360), interpolation=cv2.INTER_CUBIC)
    low = rng.random((56, 70)).astype(np.float32)
    first = upsample_disparity(low, guide)
    cv2.randu(np.empty(10, np.float32), 0, 1)  # OpenCV's random state moves between calls
    np.testing.assert_array_equal(upsample_disparity(low, guide), first)


def test_the_upsampler_gives_the_same_depth_from_concurrent_calls():
    # OpenCV's weighted median keeps state across calls: two at once (two sessions of the app)
    # returned different maps, or crashed the process, until calls took turns.
    from concurrent.futures import ThreadPoolExecutor

    from refocus.depth.upsample import upsample_disparity

    rng = np.random.default_rng(0)
    guide = cv2.resize((rng.random((30, 40, 3)) * 255).astype(np.uint8), (400, 300), interpolation=cv2.INTER_CUBIC)
    low = cv2.resize(rng.random((20, 30)).astype(np.float32), (300, 225), interpolation=cv2.INTER_CUBIC)
    alone = upsample_disparity(low, guide)
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda _: upsample_disparity(low, guide), range(8)))
    for depth in together:
        np.testing.assert_array_equal(depth, alone)
