"""Lens maths: the thin-lens formula and focus picking."""

import math

import numpy as np
import pytest

from refocus.errors import RefocusError
from refocus.lens import blur_strength, focal_length_px, focus_disparity_at


def test_strength_is_thin_lens_aperture_radius_times_focal_length():
    # 50 mm at f/2 on a 3000 x 2000 image: A = 12.5 mm, f_px = 50 mm / 43.27 mm * diagonal.
    f_px = 50 * math.hypot(3000, 2000) / math.hypot(36, 24)
    assert focal_length_px(3000, 2000) == pytest.approx(f_px)
    assert blur_strength(2.0, 3000, 2000) == pytest.approx(0.0125 * f_px)


def test_coc_of_thin_lens_matches_textbook_formula():
    # Full-frame 50 mm f/1.4 focused at 2 m: background at infinity has a blur *diameter* on the
    # sensor of f^2 / (N (S - f)) (textbook), i.e. about 1.3 % of the 36 mm width as a radius.
    width, height = 3600, 2400
    strength = blur_strength(1.4, width, height)
    radius_px = strength * abs(0.0 - 1 / 2.0)  # disparity 0 (infinity) vs focus at 2 m
    f, n, s = 0.050, 1.4, 2.0
    diameter_on_sensor_m = f * f / (n * (s - f))
    expected_radius_px = diameter_on_sensor_m / 2 / 0.036 * width
    assert radius_px == pytest.approx(expected_radius_px, rel=0.03)  # thin lens vs small-angle form


def test_strength_scales_with_image_size_so_preview_matches_full_resolution():
    assert blur_strength(2.8, 4000, 3000) == pytest.approx(4 * blur_strength(2.8, 1000, 750))


def test_strength_falls_with_f_number_squared_for_known_focal_length():
    # A = f / 2N, so K = f_px * f / 2N: halving the aperture halves K.
    assert blur_strength(2.0, 1000, 1000) == pytest.approx(2 * blur_strength(4.0, 1000, 1000))
    assert blur_strength(16, 1000, 667) < 0.1 * blur_strength(1.4, 1000, 667)


def test_known_focal_length_is_used():
    wide = blur_strength(2.0, 1000, 1000, focal_px=focal_length_px(1000, 1000, 24))
    tele = blur_strength(2.0, 1000, 1000, focal_px=focal_length_px(1000, 1000, 85))
    assert tele / wide == pytest.approx((85 / 24) ** 2)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), 1e9, 0.1])
def test_bad_f_numbers_are_refused(bad):
    with pytest.raises(RefocusError, match="f-number"):
        blur_strength(bad, 100, 100)


def test_focus_picks_the_median_of_a_neighbourhood_not_one_noisy_pixel():
    disparity = np.full((100, 100), 0.5, np.float32)
    disparity[50, 50] = 9.0  # a single outlier under the click
    assert focus_disparity_at(disparity, 50, 50) == pytest.approx(0.5)


def test_focus_near_an_edge_follows_the_surface_under_most_of_the_window():
    disparity = np.zeros((100, 100), np.float32)
    disparity[:, :51] = 1.0
    assert focus_disparity_at(disparity, 49, 50, radius=3) == 1.0
    assert focus_disparity_at(disparity, 53, 50, radius=3) == 0.0


@pytest.mark.parametrize("xy", [(-1, 5), (5, 100), (100, 0), (float("nan"), 3)])
def test_focus_outside_the_image_is_a_clear_error(xy):
    with pytest.raises(RefocusError, match="outside|numbers"):
        focus_disparity_at(np.zeros((100, 100), np.float32), *xy)


def test_focus_on_a_one_pixel_image():
    assert focus_disparity_at(np.array([[0.25]], np.float32), 0, 0) == 0.25
