"""Focus targets (pixels, percent, auto) and focal planes through three points."""

import numpy as np
import pytest

from refocus.errors import RefocusError
from refocus.focus import FocusTarget, auto_focus_point, fit_focus_plane, focus_plane_disparity, tilted_focus_plane


def test_focus_target_syntax():
    assert FocusTarget.parse("640,360") == FocusTarget(640, 360)
    assert FocusTarget.parse(" 50% , 40%") == FocusTarget(50, 40, relative=True)
    assert FocusTarget.parse("AUTO").auto
    for bad in ["50%,40", "1,2,3", "150%,10%", ""]:
        with pytest.raises(RefocusError, match="focus point"):
            FocusTarget.parse(bad)
    with pytest.raises(RefocusError, match="focus x must be a finite number"):
        FocusTarget.parse("nan,3")


def test_percent_is_the_same_spot_on_any_size_and_100_percent_stays_inside():
    assert FocusTarget(50, 40, relative=True).point_in(np.ones((100, 200))) == (100, 40)
    assert FocusTarget(100, 100, relative=True).point_in(np.ones((100, 200))) == (199, 99)


def scene_with_subject_and_floor(height=240, width=320):
    """A far wall, a floor whose bottom rows are the nearest pixels, and a subject standing on it."""
    rows = np.arange(height, dtype=np.float32)[:, None]
    disparity = np.where(rows > height * 0.6, 0.2 + (rows - height * 0.6) / (height * 0.4) * 1.0, 0.2)
    disparity = np.broadcast_to(disparity, (height, width)).copy()
    disparity[60:200, 200:260] = 0.8  # the subject, right of centre
    return disparity


def test_auto_focus_finds_the_subject_not_the_floors_nearest_edge():
    disparity = scene_with_subject_and_floor()
    x, y = auto_focus_point(disparity)
    assert type(x) is float and type(y) is float  # plain numbers for JSON (UI, API)
    assert 200 <= x < 260 and 60 <= y < 200
    # Interior, so the focus window (1 % of the short side) lies on the subject.
    assert 210 <= x < 250 and 70 <= y < 190


def test_auto_focus_on_a_large_photo_maps_back_to_its_pixels():
    disparity = np.kron(scene_with_subject_and_floor(), np.ones((10, 10), np.float32))  # 3200 x 2400
    x, y = auto_focus_point(disparity)
    assert 2000 <= x < 2600 and 600 <= y < 2000


def test_auto_focus_looks_inside_the_cameras_subject_area():
    """A pet's portrait: the near bed fills the lower right corner, the pet stands in the middle,
    where the camera focused. Without the camera's subject area the bed wins (nearer, large);
    with it, the pet."""
    disparity = np.full((240, 320), 0.2, np.float32)  # the wall
    disparity[160:, 220:] = 0.9  # the bed, nearest, in the corner
    disparity[60:150, 120:180] = 0.6  # the pet
    x, y = auto_focus_point(disparity)
    assert x >= 220 and y >= 160
    area = (0.25, 0.15, 0.75, 0.7)  # fractions of the frame: x 80-240, y 36-168
    x, y = auto_focus_point(disparity, area)
    assert 125 <= x < 175 and 65 <= y < 145  # on the pet, inside its outline
    assert FocusTarget.parse("auto").point_in(disparity, area) == (x, y)


def test_auto_focus_on_a_flat_map_is_the_centre():
    assert auto_focus_point(np.ones((11, 21), np.float32)) == (10, 5)


def test_three_points_on_a_depth_ramp_reproduce_the_ramp():
    ys, xs = np.mgrid[0:120, 0:160].astype(np.float32)
    ramp = 0.3 + 0.004 * xs + 0.002 * ys  # a tilted plane, e.g. a table top
    focus = focus_plane_disparity(ramp, [(20, 100), (140, 90), (80, 10)])
    assert focus.shape == ramp.shape and focus.dtype == np.float32
    np.testing.assert_allclose(focus, ramp, atol=1e-5)


def test_a_plane_fit_at_full_size_applies_to_the_preview():
    ys, xs = np.mgrid[0:120, 0:160].astype(np.float32)
    ramp = 1.0 + 0.01 * xs
    plane = fit_focus_plane(ramp, [(20, 100), (140, 90), (80, 10)])
    preview = plane.disparity_map(40, 30, scale=0.25)  # each preview pixel covers 4 x 4
    np.testing.assert_allclose(preview[0], 1.0 + 0.01 * (np.arange(40) * 4 + 1.5), atol=1e-5)


def test_points_on_one_line_are_refused():
    with pytest.raises(RefocusError, match="one line"):
        fit_focus_plane(np.ones((100, 100), np.float32), [(10, 10), (50, 50), (90, 90)])
    with pytest.raises(RefocusError, match="three points"):
        fit_focus_plane(np.ones((100, 100), np.float32), [(10, 10), (50, 50)])


def test_tilt_keeps_the_line_at_its_depth_and_changes_focus_across_it():
    disparity = np.tile(np.linspace(0.0, 1.0, 100, dtype=np.float32)[:, None], (1, 200))  # 0.01 per row
    focus = tilted_focus_plane(disparity, (100, 50), 0.0, tilt=1.0).disparity_map(200, 100)
    np.testing.assert_allclose(focus[50], disparity[50, 100], atol=1e-6)  # the level line stays sharp
    # Upwards (smaller y) the focus rises by 0.96 (the 2-98 % range) per image height.
    assert focus[0, 0] - focus[50, 0] == pytest.approx(0.5 * 0.96, rel=1e-3)
    turned = tilted_focus_plane(disparity, (100, 50), 90.0, tilt=1.0).disparity_map(200, 100)
    assert np.ptp(turned[:, 100]) == pytest.approx(0, abs=1e-6)  # a vertical sharp line


def test_cli_parses_a_focus_plane_of_three_points():
    from refocus.__main__ import build_parser

    args = build_parser().parse_args(["p.jpg", "-o", "o.png", "--focus-plane", "10,20 50%,50% 30,5"])
    assert args.focus_plane == [FocusTarget(10, 20), FocusTarget(50, 50, relative=True), FocusTarget(30, 5)]
    for bad in ["10,20 30,40", "10,20 30,40 auto", "1,2 3,4 5,6 7,8"]:
        with pytest.raises(SystemExit):
            build_parser().parse_args(["p.jpg", "-o", "o.png", "--focus-plane", bad])


def test_cli_focus_plane_keeps_a_receding_plane_sharp_end_to_end(tmp_path):
    """A floor receding from the camera (disparity falls from the bottom row to the top): one focus
    depth keeps a single band sharp; the plane through three points on it keeps all of it sharp."""
    from PIL import Image

    from conftest import sharpness
    from test_cli import run_cli

    height, width = 120, 160
    image = (np.random.default_rng(4).random((height, width, 3)) * 255).astype(np.uint8)
    disparity = np.repeat(np.linspace(0.2, 1.0, height, dtype=np.float32)[:, None], width, axis=1)
    Image.fromarray(image).save(tmp_path / "floor.png")
    np.save(tmp_path / "disparity.npy", disparity)
    common = ["--depth-map", str(tmp_path / "disparity.npy"), "--depth-kind", "disparity", "--f-number", "1.4"]
    plane = run_cli(str(tmp_path / "floor.png"), "-o", str(tmp_path / "plane.png"), *common,
                    "--focus-plane", "20,10 140,60 80,110")  # fmt: skip
    single = run_cli(str(tmp_path / "floor.png"), "-o", str(tmp_path / "single.png"), *common, "--focus", "80,60")
    assert plane.returncode == 0 and single.returncode == 0, plane.stderr + single.stderr
    original = sharpness(image[5:20]), sharpness(image[100:115])
    with_plane = np.asarray(Image.open(tmp_path / "plane.png"))
    with_point = np.asarray(Image.open(tmp_path / "single.png"))
    for rows, kept in zip((slice(5, 20), slice(100, 115)), original):
        assert sharpness(with_plane[rows]) > 0.9 * kept  # near and far ends both sharp
        assert sharpness(with_point[rows]) < 0.6 * kept  # one focus depth blurs them
