"""A large frame's composite in horizontal parts on two threads (refocus/render/parts.py): the
same picture as one whole composite, whatever the machine's cores."""

from __future__ import annotations

import numpy as np
import pytest

from refocus import parallel
from refocus.render import parts, render_bokeh


def scene(H: int = 640, W: int = 700) -> tuple[np.ndarray, np.ndarray]:
    """sRGB (H, W, 3) and disparity (H, W) as real photos have them: a textured far wall, a
    floor receding towards it, a near disc across two of the parts' borders, a small light."""
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    image = (0.35 + 0.25 * np.sin(x / 7.0)[..., None] * np.cos(y / 11.0)[..., None]
             + 0.1 * rng.random((H, W, 3))).astype(np.float32)
    disparity = np.full((H, W), 0.3, np.float32)
    floor = y > 0.45 * H
    disparity[floor] = 0.3 + 1.2 * (y[floor] / H - 0.45)
    disc = np.hypot(y - 0.5 * H, x - 0.4 * W) < 0.2 * H
    disparity[disc], image[disc] = 1.6, [0.8, 0.3, 0.2]
    image[40:43, 500:503] = 1.0
    return np.clip(image, 0, 1), disparity


def render(image, disparity):
    return render_bokeh(image, disparity, 0.9, 12.0)  # blur up to 12 px, in focus mid-floor


def test_parts_render_what_one_composite_renders_on_any_number_of_cores(monkeypatch):
    image, disparity = scene()
    calls = []
    monkeypatch.setattr(parts, "run_all", lambda tasks: calls.append(len(tasks)) or parallel.run_all(tasks))
    monkeypatch.setattr(parallel, "WORKERS", 2)
    split = render(image, disparity)
    assert calls == [parts.PARTS]
    monkeypatch.setattr(parallel, "WORKERS", 1)  # one core: the parts one after the other
    np.testing.assert_array_equal(render(image, disparity), split)
    monkeypatch.setattr(parts, "MIN_PIXELS", image.shape[0] * image.shape[1] + 1)  # one whole composite
    whole = render(image, disparity)
    assert calls == [parts.PARTS, parts.PARTS]
    # Only the fill's context differs (2.2e-5 on average, 0.023 at a few pixels). Each part in
    # its own layers gives 8.3e-5 on average, parts not aligned to the 1/s grids 4.4e-5.
    difference = np.abs(split - whole)
    assert difference.mean() < 3.3e-5 and difference.max() < 0.04


@pytest.mark.parametrize("option", [{"shape": "cats_eye"}, {}])
def test_frames_that_cannot_be_split_render_whole(monkeypatch, option):
    """A kernel that changes over the frame (the cat's eye) and a frame too short for its
    blur's margins render in one piece."""
    image, disparity = scene()
    calls = []
    monkeypatch.setattr(parts, "run_all", lambda tasks: calls.append(len(tasks)) or parallel.run_all(tasks))
    strength = 12.0 if option else 120.0  # margins of 190 px: more than a quarter of the rows
    render_bokeh(image, disparity, 0.9, strength, **option)
    assert calls == []
