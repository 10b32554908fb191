"""Uploaded depth maps read in their real units, with holes filled from the photo."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, SHARED
from refocus.errors import RefocusError
from refocus.io import load_photo, save_depth_png16
from refocus.user_depth import fill_invalid, parse_unit, read_user_depth

RGBD = SHARED / "real-rgbd"
needs_rgbd = pytest.mark.skipif(not RGBD.is_dir(), reason="../shared/real-rgbd is absent")


@needs_rgbd
def test_an_nyu_millimetre_png_is_recognised_as_metric():
    photo = load_photo(RGBD / "nyu_depth_v2_metric3d_demo" / "rgb" / "rgb_00050.jpg")
    path = RGBD / "nyu_depth_v2_metric3d_demo" / "depth" / "sync_depth_00050.png"
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    user = read_user_depth(path, photo.pixels)  # kind "auto"
    assert user.metric and user.interpretation.startswith("metric depth in millimetres: ")
    valid = raw > 0
    near, far = raw[valid].min() / 1000, raw[valid].max() / 1000
    assert user.depth_range_m == pytest.approx((near, far))
    assert f"{far:.1f} m" in user.interpretation and "filled from the photo" in user.interpretation
    # measured pixels keep their exact metric disparity (1/m)
    np.testing.assert_allclose(user.disparity[valid], 1000.0 / raw[valid], rtol=1e-5)


@needs_rgbd
def test_a_kitti_map_in_256ths_of_a_metre_gives_real_distances():
    photo = load_photo(RGBD / "kitti_metric3d_demo" / "rgb" / "0000000005.png")
    path = RGBD / "kitti_metric3d_demo" / "depth" / "0000000005.png"
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    user = read_user_depth(path, photo.pixels, "metric", "1/256")
    valid = raw > 0
    np.testing.assert_allclose(user.disparity[valid], 256.0 / raw[valid], rtol=1e-5)
    assert user.depth_range_m[0] > 5.0 and "units of 1/256 m: 5.3 m to 84.9 m" in user.interpretation
    # the sky has no LiDAR at all: it is filled, finite, and no nearer than the nearest measured point
    assert np.isfinite(user.disparity).all() and user.disparity.max() <= 1 / user.depth_range_m[0] + 1e-6


def test_units():
    assert parse_unit("mm") == (0.001, "millimetres") and parse_unit("m")[0] == 1.0
    assert parse_unit("1/256")[0] == parse_unit("1/256 m")[0] == 1 / 256
    assert parse_unit(0.001)[0] == 0.001
    for bad in ("furlongs", "0", "-1", "1/0"):
        with pytest.raises(RefocusError, match="depth unit"):
            parse_unit(bad)


def test_refocus_own_16_bit_depth_png_reads_back_as_relative_disparity(tmp_path):
    disparity = np.linspace(0.1, 1.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    save_depth_png16(tmp_path / "d.png", disparity)
    user = read_user_depth(tmp_path / "d.png", np.zeros((48, 64, 3), np.float32))
    assert not user.metric and user.interpretation.startswith("relative disparity")
    assert np.corrcoef(user.disparity.ravel(), disparity.ravel())[0, 1] > 0.999
    # the same values without refocus's marker: a 16-bit map in millimetres
    cv2.imwrite(str(tmp_path / "plain.png"), cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED))
    assert read_user_depth(tmp_path / "plain.png", np.zeros((48, 64, 3), np.float32)).metric


def pole_scene():
    """A dark pole (near) standing in the lower half of a bright scene (far); the upper half unmeasured."""
    h, w = 80, 120
    photo = np.full((h, w, 3), 0.85, np.float32)
    photo[40:, 58:62] = 0.1
    depth = np.full((h, w), 20.0)
    depth[40:, 58:62] = 2.0
    invalid = np.zeros((h, w), bool)
    invalid[:40] = True
    return photo, depth, invalid


def test_holes_are_filled_from_their_own_surface_not_by_streaks():
    photo, depth, invalid = pole_scene()
    filled = fill_invalid(np.where(invalid, 0, depth), invalid, photo)
    above_pole = filled[:38, 58:62]
    assert np.allclose(above_pole, 20.0, rtol=0.05)  # the sky above the pole is background, not pole
    assert np.allclose(filled[~invalid], depth[~invalid])  # measured values untouched
    # what copying the nearest valid pixel does: the pole's depth runs up to the top (a streak)
    from scipy import ndimage

    _, (rows, cols) = ndimage.distance_transform_edt(invalid, return_indices=True)
    assert np.allclose(depth[rows, cols][:38, 58:62], 2.0)


def test_hole_filling_is_repeatable():
    """The colour-guided median clusters the photo's colours from OpenCV's random numbers: the
    same map and photo must give the same filled map every time (and whatever ran before)."""
    rng = np.random.default_rng(1)
    photo = (rng.random((90, 120, 3)) * 255).astype(np.uint8)
    depth = rng.uniform(1.0, 5.0, (90, 120))
    invalid = rng.random((90, 120)) < 0.3
    first = fill_invalid(np.where(invalid, 0, depth), invalid, photo)
    cv2.randu(np.empty((3, 3), np.float32), 0, 1)  # other work draws from the generator between calls
    np.testing.assert_array_equal(fill_invalid(np.where(invalid, 0, depth), invalid, photo), first)


def test_kinds_and_shapes_are_checked():
    photo = np.zeros((30, 40, 3), np.float32)
    with pytest.raises(RefocusError, match="auto, disparity, depth, metric"):
        read_user_depth(np.ones((30, 40)), photo, "banana")
    with pytest.raises(RefocusError, match="shapes differ"):
        read_user_depth(np.ones((30, 30)), photo)
    with pytest.raises(RefocusError, match="no valid values"):
        read_user_depth(np.zeros((30, 40)), photo, "metric", "m")
    small = read_user_depth(np.full((15, 20), 2.0), photo, "metric", "m")  # smaller maps are brought up
    assert small.disparity.shape == (30, 40) and np.allclose(small.disparity, 0.5)


def test_cli_prints_the_interpretation_of_a_millimetre_map(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((48, 64, 3)) * 255).astype(np.uint8)).save(tmp_path / "p.png")
    depth_mm = np.full((48, 64), 4000, np.uint16)
    depth_mm[:, :32] = 500
    depth_mm[:5] = 0  # no measurement
    cv2.imwrite(str(tmp_path / "d.png"), depth_mm)
    result = subprocess.run(
        [sys.executable, "-m", "refocus", str(tmp_path / "p.png"), "-o", str(tmp_path / "o.jpg"),
         "--depth-map", str(tmp_path / "d.png"), "--focus", "10,30"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Depth: uploaded depth map (metric depth in millimetres: 0.5 m to 4.0 m; 10% of pixels" in result.stdout
