"""Reusing the focus-independent steps between renders (``refocus.render.reuse``)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

import refocus.render.entry as entry
from refocus.animate import FocusPull, render_focus_pull
from refocus.errors import RefocusError
from refocus.io import Photo
from refocus.refocuser import LensSettings, Refocuser
from refocus.render import render_bokeh
from refocus.render.reuse import Reuse


def soft_edged_scene(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A bright card on a dark textured wall whose depth map ramps across the card's outline
    (upsampled from 1/8): the edges the renderer snaps, and a clipped light on the wall."""
    rng = np.random.default_rng(3)
    image = rng.uniform(0.1, 0.4, (size, size, 3)).astype(np.float32)
    image[20:70, 25:75] += 0.5
    image[80, 10] = 1.0
    disparity = np.full((size, size), 0.2, np.float32)
    disparity[20:70, 25:75] = 1.0
    small = cv2.resize(disparity, (size // 8, size // 8), interpolation=cv2.INTER_AREA)
    return np.clip(image, 0, 1), cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


@pytest.fixture
def snaps(monkeypatch) -> list[int]:
    """Counts the renderer's depth-edge snapping."""
    calls: list[int] = []
    snap = entry.snap_depth_edges
    monkeypatch.setattr(entry, "snap_depth_edges", lambda *a: calls.append(1) or snap(*a))
    return calls


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_a_render_that_reuses_equals_a_fresh_one_whatever_changes(kind, snaps):
    image, disparity = soft_edged_scene()
    if kind == "torch":
        image, disparity = torch.from_numpy(image), torch.from_numpy(disparity)
    reuse = Reuse()
    as_numpy = (lambda x: x.numpy()) if kind == "torch" else (lambda x: x)
    for focus, strength, gain in [(1.0, 8.0, 4.0), (0.2, 8.0, 4.0), (0.6, 8.0, 4.0), (0.6, 5.0, 4.0), (0.6, 5.0, 1.0)]:
        reused = render_bokeh(image, disparity, focus, strength, clipped_gain=gain, reuse=reuse)
        fresh = render_bokeh(image, disparity, focus, strength, clipped_gain=gain)
        np.testing.assert_array_equal(as_numpy(reused), as_numpy(fresh))
    # each of the 5 fresh renders snaps; the reusing ones only at the first and the new strength
    assert len(snaps) == 5 + 2


def test_a_new_depth_map_is_not_served_the_old_ones_edges(snaps):
    image, disparity = soft_edged_scene()
    reuse = Reuse()
    render_bokeh(image, disparity, 1.0, 8.0, reuse=reuse)
    brushed = disparity.copy()
    brushed[:, :40] = 1.0  # a new array, as a brush stroke gives
    reused = render_bokeh(image, brushed, 1.0, 8.0, reuse=reuse)
    np.testing.assert_array_equal(reused, render_bokeh(image, brushed, 1.0, 8.0))
    assert len(snaps) == 3


def test_preview_clicks_snap_the_edges_once_per_photo_and_map(snaps):
    image, disparity = soft_edged_scene(160)
    refocuser = Refocuser(preview_size=160)  # the user's map: no network
    prepared = refocuser.prepare(Photo(image), depth_map=disparity)
    settings = LensSettings(f_number=1.4)
    for xy in [(50, 70), (10, 10), (150, 150)]:  # three clicks
        preview = refocuser.render_preview(prepared, refocuser.preview_lens(prepared, xy, settings), settings)
    assert len(snaps) == 1
    # a copy with another map (the brush's ``dataclasses.replace``) shares the Reuse, not the edges
    flat = dataclasses.replace(prepared, preview_disparity=np.full_like(prepared.preview_disparity, 0.5))
    lens = refocuser.preview_lens(flat, (150, 150), settings)
    np.testing.assert_allclose(refocuser.render_preview(flat, lens, settings), flat.preview, atol=1e-6)  # all in focus
    assert len(snaps) == 2 and not np.array_equal(preview, flat.preview)


@pytest.mark.parametrize("full_resolution", [False, True])
def test_a_focus_pulls_frames_snap_the_edges_once(snaps, full_resolution):
    image, disparity = soft_edged_scene(160)
    refocuser = Refocuser(preview_size=120)
    photo = Photo(image)
    prepared = refocuser.prepare(photo, depth_map=disparity)
    pull = FocusPull(((50, 40), (140, 140)), frames=4)
    frames = list(render_focus_pull(refocuser, photo, prepared, pull, LensSettings(f_number=1.4),
                                    full_resolution=full_resolution))
    assert len(frames) == 4 and not np.array_equal(frames[0], frames[-1])
    assert len(snaps) == 1
    # each frame is the render from scratch at its focus
    focus = pull.focus_disparities(prepared.depth.disparity)[-1]
    image_used, map_used = (photo.pixels, prepared.depth.disparity) if full_resolution else (
        prepared.preview, prepared.preview_disparity)
    expected = refocuser.render(image_used, map_used, None, LensSettings(f_number=1.4), focus=float(focus))
    np.testing.assert_array_equal(frames[-1], expected)


def test_a_wrong_reuse_object_is_refused_with_a_sentence():
    image, disparity = soft_edged_scene()
    with pytest.raises(RefocusError, match="reuse must be"):
        render_bokeh(image, disparity, 1.0, 8.0, reuse={})
