"""Automatic subject focus."""

import numpy as np
import pytest

from refocus import autofocus
from refocus.autofocus import auto_focus_point


def floor_and_card(width=800, height=600, noise=0.0, seed=0):
    """A floor from the horizon (middle row, far) to the bottom edge (near), a card standing on it."""
    d = np.full((height, width), 0.1, np.float32)
    d[height // 2 :] = np.linspace(0.1, 1.0, height - height // 2, dtype=np.float32)[:, None]
    card = (slice(height // 5, 3 * height // 5), slice(width // 2, 3 * width // 4))
    d[card] = 0.5
    if noise:
        d += np.random.default_rng(seed).normal(0, noise, d.shape).astype(np.float32)
    return d, card


def inside(point, region) -> bool:
    x, y = point
    return region[0].start <= y < region[0].stop and region[1].start <= x < region[1].stop


def test_focus_lands_inside_the_nearest_object():
    d = np.full((300, 400), 0.2, np.float32)
    d[50:150, 40:140] = 1.0  # near box
    d[150:280, 250:380] = 0.6  # bigger, farther box
    assert inside(auto_focus_point(d), (slice(50, 150), slice(40, 140)))


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_a_receding_floor_nearer_than_the_subject_is_not_the_subject(noise):
    d, card = floor_and_card(noise=noise)
    assert inside(auto_focus_point(d), card)


def test_tiny_near_specks_are_not_subjects():
    d = np.full((300, 400), 0.2, np.float32)
    d[10:14, 10:14] = 5.0  # a speck (0.01 % of the frame)
    d[100:250, 150:350] = 0.8
    assert inside(auto_focus_point(d), (slice(100, 250), slice(150, 350)))


def test_a_flat_map_focuses_on_the_centre_and_the_point_is_in_full_resolution_pixels():
    assert auto_focus_point(np.ones((3000, 4000), np.float32)) == (2000.0, 1500.0)
    d, card = floor_and_card(4000, 3000)
    assert inside(auto_focus_point(d), card)  # searched on a small copy, answered in these pixels


def test_a_face_wins_over_depth_when_a_detector_finds_one(monkeypatch):
    d, card = floor_and_card()
    image = np.zeros((300, 400, 3), np.uint8)  # half the depth map's size: the answer scales
    monkeypatch.setattr(autofocus, "largest_face", lambda img: (100.0, 50.0))
    assert auto_focus_point(d, image) == (200.0, 100.0)
    monkeypatch.setattr(autofocus, "largest_face", lambda img: None)
    assert inside(auto_focus_point(d, image), card)


def test_face_detection_without_a_bundled_cascade_is_quietly_skipped():
    image = (np.random.default_rng(0).random((120, 160, 3)) * 255).astype(np.uint8)
    assert autofocus.largest_face(image) is None  # noise has no face, and a missing cascade is fine


def test_a_non_2d_map_is_refused():
    with pytest.raises(ValueError, match="2-D"):
        auto_focus_point(np.ones((4, 4, 3), np.float32))
