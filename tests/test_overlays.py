"""Focus band tint, depth legend and 1:1 zoom."""

import numpy as np
import pytest

from conftest import sharpness, textured_scene
from refocus import render_bokeh
from refocus.io import colorize_disparity
from refocus.overlays import depth_legend, expand_box, focus_band_overlay, zoom_box


def test_the_band_tints_what_renders_sharp_and_leaves_the_rest():
    grey = np.full((20, 40, 3), 0.5, np.float32)
    d = np.full((20, 40), 0.1, np.float32)
    d[:, :20] = 1.0
    out = focus_band_overlay(grey, d, focus_disparity=1.0, strength=10.0)
    assert out[:, :20, 1].min() > 0.6 and out[:, :20, 0].max() < 0.5  # tinted green
    np.testing.assert_array_equal(out[:, 20:], grey[:, 20:])  # 9 px of blur: untouched


def test_the_band_widens_with_focus_range_and_a_gentler_lens():
    d = np.tile(np.linspace(0, 1, 101, dtype=np.float32), (4, 1))
    grey = np.full((4, 101, 3), 0.5, np.float32)

    def tinted(**kw) -> int:
        return int((focus_band_overlay(grey, d, 0.5, **kw) != grey).any(axis=2)[0].sum())

    assert tinted(strength=20.0, focus_range=0.2) > tinted(strength=20.0) > tinted(strength=80.0) > 0


def test_band_refuses_a_map_of_another_size():
    with pytest.raises(ValueError, match="disparity"):
        focus_band_overlay(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.float32), 0.5, 1.0)


def test_legend_colours_match_the_depth_view_nearest_on_top():
    d = np.linspace(0.2, 3.0, 1000, dtype=np.float32).reshape(20, 50)
    legend = depth_legend(d, height=200, width=110)
    view = colorize_disparity(d)
    np.testing.assert_array_equal(legend[0, 0], view.reshape(-1, 3)[-1])  # top = nearest colour
    np.testing.assert_array_equal(legend[-1, 0], view.reshape(-1, 3)[0])  # bottom = farthest
    assert legend.shape == (200, 110, 3) and legend.dtype == np.uint8
    assert (legend[:, 40:] < 128).any()  # labels are drawn


def test_legend_labels_metres_when_depth_is_metric(monkeypatch):
    import refocus.overlays as overlays

    labels = []
    monkeypatch.setattr(overlays.cv2, "putText", lambda img, text, *a, **k: labels.append(text))
    depth = np.linspace(1.0, 10.0, 1000, dtype=np.float32).reshape(20, 50)
    depth_legend(1.0 / depth, depth, ticks=2)
    assert labels == ["1.0 m", "10.0 m"]
    labels.clear()
    depth_legend(1.0 / depth, ticks=2)
    assert labels == ["1.00 near", "0.00 far"]


def test_zoom_box_is_centred_and_stays_inside_the_image():
    assert zoom_box((2000, 1500), (4000, 3000), 400) == (1800, 1300, 2200, 1700)
    assert zoom_box((5, 2990), (4000, 3000), 400) == (0, 2600, 400, 3000)
    assert zoom_box((50, 50), (100, 80), 400) == (0, 0, 100, 80)
    assert expand_box((0, 2600, 400, 3000), 64, (4000, 3000)) == (0, 2536, 464, 3000)


def test_a_zoom_rendered_with_a_margin_matches_the_full_render():
    image, d = textured_scene(240, 160)
    image = image.astype(np.float32) / 255
    strength, focus = 12.0, 1.0
    full = render_bokeh(image, d, focus, strength)
    box = zoom_box((150, 80), (240, 160), 64)
    x0, y0, x1, y1 = outer = expand_box(box, int(np.ceil(strength * 0.9)) + 2, (240, 160))
    zoom = render_bokeh(image[y0:y1, x0:x1], d[y0:y1, x0:x1], focus, strength)
    crop = zoom[box[1] - y0 : box[3] - y0, box[0] - x0 : box[2] - x0]
    reference = full[box[1] : box[3], box[0] : box[2]]
    assert np.abs(crop - reference).mean() < 0.01
    assert sharpness(reference * 255) < sharpness(image[box[1] : box[3], box[0] : box[2]] * 255) / 2  # blurred region
    assert outer != box
