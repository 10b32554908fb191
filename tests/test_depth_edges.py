"""Depth edges that are off the photo's edge: what a network's map gets wrong at outlines."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from refocus.render import NumpyOps, TorchOps, render_bokeh
from refocus.render.backends import active_boxes
from refocus.render.depth_edges import EDGE_BAND, MODEL_RADIUS, snap_depth_edges


def disc_scene(n: int = 96, radius: int = 24, erode: int = 3,
               slope: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reddish disc with a little texture before a grey-green wall, flat or (``slope``, in
    disparity per row) sloping like a floor: (photo, true disparity, the disparity a network
    gives: the disc ``erode`` px too small)."""
    yy, xx = np.mgrid[:n, :n] - n // 2
    inside = np.hypot(xx, yy) <= radius
    rng = np.random.default_rng(3)
    wall = np.float32([0.45, 0.5, 0.45]) + rng.normal(0, 0.01, (n, n, 3))
    disc = np.float32([0.8, 0.35, 0.3]) + cv2.GaussianBlur(rng.normal(0, 0.08, (n, n, 3)), (0, 0), 1.0)
    img = np.where(inside[..., None], disc, wall).clip(0, 1).astype(np.float32)
    behind = 1.0 + slope * yy
    truth = np.where(inside, 1.5, behind).astype(np.float32)
    small = np.hypot(xx, yy) <= radius - erode
    return img, truth, np.where(small, 1.5, behind).astype(np.float32)


@pytest.mark.parametrize("as_array", [np.asarray, torch.from_numpy], ids=["numpy", "torch"])
@pytest.mark.parametrize("strength, slope", [(4.0, 0.0), (40.0, 0.0), (40.0, 0.002)],
                         ids=["blur_step_2px", "blur_step_20px", "sloping_wall"])
def test_the_rim_of_a_foreground_drawn_too_small_takes_the_foregrounds_depth(as_array, strength, slope):
    """The map's disc is 3 px too small, so its rim (the disc's colour) carries the wall's
    disparity. Whether the step changes the blur by 2 px or 20 px, and behind it a flat wall
    or a sloping one, the rim takes the disc's disparity and the wall keeps its own. (Before,
    the wall's colour model was fitted to the rim too and accepted it, a step of under 9 px of
    blur was not an edge at all, and a rim pixel a little nearer than the sloping wall beside
    it counted as a depth level of its own.)"""
    img, truth, eroded = disc_scene(slope=slope)
    out = np.asarray(snap_depth_edges(as_array(eroded), as_array(img), strength))
    wrong = strength * np.abs(out - truth) > 1.0  # off by more than a pixel of blur
    assert wrong.sum() <= 0.05 * (eroded != truth).sum()  # was about 100 % of the rim


@pytest.mark.parametrize("backend", [None, TorchOps("cpu")], ids=["numpy", "torch"])
def test_a_foreground_drawn_too_small_is_rendered_with_its_own_blur(backend):
    """Focus on the wall, the disc defocused by 6 px: its rim must be blurred with the disc,
    not drawn sharp around it (the render from the eroded map matches the one from the true
    map at the outline as closely as the true map's render matches the photo's disc there)."""
    img, truth, eroded = disc_scene()
    yy, xx = np.mgrid[:96, :96] - 48
    rim = np.abs(np.hypot(xx, yy) - 22.5) <= 3.5  # the outline, both sides of the eroded edge
    good = render_bokeh(img, truth, 1.0, 12.0, backend=backend)
    bad = render_bokeh(img, eroded, 1.0, 12.0, backend=backend)
    error = np.abs(bad - good).mean(axis=-1)[rim].mean()
    assert error < 0.1 * np.abs(good - img).mean(axis=-1)[rim].mean()


def test_numpy_and_torch_snap_the_same_pixels():
    """One algorithm on both backends: the same decisions on a textured scene with an eroded
    outline, a dilated one and a soft ramp, placed off-centre in a larger frame (the numpy
    path works on the box around the edges, the torch path on the whole frame)."""
    img, truth, eroded = disc_scene()
    rng = np.random.default_rng(0)
    img = (img + rng.normal(0, 0.05, img.shape)).clip(0, 1).astype(np.float32)
    disparity = eroded.copy()
    disparity[:, 60:] = cv2.dilate(truth, np.ones((5, 5), np.uint8))[:, 60:]
    disparity[70:] = cv2.GaussianBlur(truth, (0, 0), 2.0)[70:]
    pad = ((37, 50), (41, 30))
    img = np.pad(img, pad + ((0, 0),), mode="edge")
    disparity = np.pad(disparity, pad, mode="edge")
    a = snap_depth_edges(disparity, img, 20.0)
    b = snap_depth_edges(torch.from_numpy(disparity), torch.from_numpy(img), 20.0).numpy()
    assert (a != disparity).sum() > 100
    assert (a != b).sum() <= 2  # float rounding may flip a tie


def test_edges_far_apart_are_decided_in_their_own_boxes_as_in_one():
    """Two outlines far apart (a disc drawn too small at each end of a wide frame) are decided
    in a box each, with the same result as the torch path's one pass over the whole frame."""
    img, _, eroded = disc_scene()
    rng = np.random.default_rng(1)
    wide_img = np.concatenate([img, np.repeat(img[:, -1:], 300, axis=1), img[:, ::-1]], axis=1)
    wide_img = (wide_img + rng.normal(0, 0.03, wide_img.shape)).clip(0, 1).astype(np.float32)
    wide = np.concatenate([eroded, np.repeat(eroded[:, -1:], 300, axis=1), eroded[:, ::-1]], axis=1)
    edge = np.abs(cv2.dilate(wide, np.ones((9, 9))) - cv2.erode(wide, np.ones((9, 9)))) > 0
    assert len(active_boxes(NumpyOps(), edge, 2 * MODEL_RADIUS + EDGE_BAND)) == 2
    a = snap_depth_edges(wide, wide_img, 20.0)
    b = snap_depth_edges(torch.from_numpy(wide), torch.from_numpy(wide_img), 20.0).numpy()
    assert (a != wide).sum() > 100
    np.testing.assert_array_equal(a, b)


def test_each_cluster_box_holds_its_pixels_reach_and_the_clusters_share_out_the_pixels():
    rng = np.random.default_rng(2)
    mask = np.zeros((300, 400), bool)
    for y, x in [(20, 30), (40, 50), (150, 380), (280, 10), (290, 200)]:  # some close, some far apart
        mask[y:y + rng.integers(1, 6), x:x + rng.integers(1, 6)] = True
    grow = 24
    boxes = active_boxes(NumpyOps(), mask, grow)
    assert 2 <= len(boxes) < 5
    count = np.zeros(mask.shape, int)
    for (rows, cols), own in boxes:
        ys, xs = np.nonzero(own)
        ys, xs = ys + rows.start, xs + cols.start
        count[ys, xs] += 1
        # ``grow`` px around each of its pixels inside its box, or the frame's edge
        assert ((ys - grow >= rows.start) | (rows.start == 0)).all() and ((ys + grow < rows.stop) | (rows.stop == 300)).all()
        assert ((xs - grow >= cols.start) | (cols.start == 0)).all() and ((xs + grow < cols.stop) | (cols.stop == 400)).all()
    np.testing.assert_array_equal(count, mask.astype(int))  # every pixel in exactly one cluster


def test_a_tall_cluster_decided_in_parts_at_once_decides_as_one_pass(monkeypatch):
    """On the CPU a tall cluster is cut into horizontal parts, each grown by the decisions'
    reach and decided at once on the CPU's cores: the same result as the torch path's one pass
    over the whole frame, with the parts' borders through the outlines."""
    from refocus import parallel
    from refocus.render import depth_edges

    img, _, eroded = disc_scene()
    rng = np.random.default_rng(4)
    tall_img = (np.concatenate([img, img[::-1], img]) + rng.normal(0, 0.03, (288, 96, 3))).clip(0, 1).astype(np.float32)
    tall = np.concatenate([eroded, eroded[::-1], eroded])
    tasks = []
    monkeypatch.setattr(depth_edges, "run_all", lambda t: tasks.append(len(t)) or parallel.run_all(t))
    monkeypatch.setattr(depth_edges, "PART_ROWS_PER_REACH", 1)  # parts of 72 rows: borders cross the discs
    monkeypatch.setattr(parallel, "WORKERS", 2)
    a = snap_depth_edges(tall, tall_img, 20.0)
    b = snap_depth_edges(torch.from_numpy(tall), torch.from_numpy(tall_img), 20.0).numpy()
    assert tasks == [depth_edges.EDGE_PARTS, 1] and (a != tall).sum() > 300  # numpy in parts, torch whole
    np.testing.assert_array_equal(a, b)
