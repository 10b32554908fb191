"""Refine brush: painted strokes edit the disparity the renderer sees."""

import numpy as np
import pytest

from refocus.brush import Stroke, apply_stroke, apply_strokes, stroke_weight


def scene():
    d = np.full((60, 80), 0.2, np.float32)
    d[:, :40] = 1.0
    mask = np.zeros((60, 80), bool)
    mask[20:40, 50:70] = True
    return d, mask


def test_keep_sharp_moves_painted_pixels_to_the_focus_disparity_only():
    d, mask = scene()
    out = apply_stroke(d, Stroke(mask, "keep-sharp"), focus_disparity=1.0)
    np.testing.assert_allclose(out[mask], 1.0)
    np.testing.assert_array_equal(out[~mask], d[~mask])
    assert d[30, 60] == pytest.approx(0.2)  # the input is not modified


def test_keep_sharp_follows_the_current_focus():
    d, mask = scene()
    strokes = [Stroke(mask, "keep-sharp")]
    assert apply_strokes(d, strokes, 0.6)[30, 60] == pytest.approx(0.6)
    assert apply_strokes(d, strokes, 0.9)[30, 60] == pytest.approx(0.9)


def test_blur_moves_painted_pixels_away_from_focus_by_a_share_of_the_depth_range():
    d, mask = scene()
    range_ = 1.0 - 0.2  # 1st to 99th percentile
    out = apply_stroke(d, Stroke(mask, "blur", strength=0.1), focus_disparity=1.0)
    assert out[30, 60] == pytest.approx(0.2 - 0.1 * range_)  # farther from a near focus
    near = apply_stroke(d, Stroke(mask, "blur", strength=0.5), focus_disparity=0.1)
    assert near[30, 60] == pytest.approx(0.2 + 0.5 * range_)  # nearer than a far focus
    far = apply_stroke(d, Stroke(mask, "blur", strength=1.0), focus_disparity=1.0)
    assert far[30, 60] == 0.0  # never beyond infinity


def test_push_and_pull_scale_disparity():
    d, mask = scene()
    assert apply_stroke(d, Stroke(mask, "push", strength=0.5), 1.0)[30, 60] == pytest.approx(0.1)
    assert apply_stroke(d, Stroke(mask, "pull", strength=0.5), 1.0)[30, 60] == pytest.approx(0.3)


def test_softness_feathers_the_edge_and_keeps_the_core():
    d, mask = scene()
    hard = apply_stroke(d, Stroke(mask, "pull", 1.0, softness=0.0), 1.0)
    soft = apply_stroke(d, Stroke(mask, "pull", 1.0, softness=0.03), 1.0)
    assert hard[30, 48] == pytest.approx(0.2) and 0.2 < soft[30, 48] < 0.4  # just outside the stroke
    assert soft[30, 60] == pytest.approx(0.4, abs=0.02)  # the stroke's centre


def test_a_preview_sized_mask_applies_to_the_full_resolution_map():
    d = np.full((600, 800), 0.5, np.float32)
    small = np.zeros((60, 80), np.uint8)
    small[:, 40:] = 255  # a sketch layer's alpha
    out = apply_stroke(d, Stroke(small, "push", 1.0), 0.5)
    assert out[300, 700] == pytest.approx(0.0) and out[300, 100] == pytest.approx(0.5)
    assert stroke_weight(Stroke(small), (800, 600)).shape == (600, 800)


def test_no_strokes_is_a_copy_and_undo_is_dropping_the_last():
    d, mask = scene()
    strokes = [Stroke(mask, "push", 0.5), Stroke(mask, "pull", 1.0)]
    np.testing.assert_array_equal(apply_strokes(d, [], 1.0), d)
    np.testing.assert_allclose(apply_strokes(d, strokes[:1], 1.0), apply_stroke(d, strokes[0], 1.0))
    assert apply_strokes(d, strokes, 1.0)[30, 60] == pytest.approx(0.2 * 0.5 * 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(mode="smudge"), "Unknown brush mode"),
        (dict(strength=2.0), "strength"),
        (dict(softness=-1.0), "softness"),
    ],
)
def test_bad_strokes_are_refused_with_a_sentence(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Stroke(np.ones((4, 4), bool), **kwargs)


def test_a_mask_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="another shape"):
        apply_stroke(np.ones((60, 80), np.float32), Stroke(np.ones((80, 60), bool)), 1.0)
