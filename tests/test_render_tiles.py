"""The tiled composite of full-resolution layers (refocus/render/tiles.py) must render exactly
what the composite over each layer's crop box renders: same blur, extension, fill and
composite, only less work."""

from __future__ import annotations

import numpy as np
import torch
import pytest

from refocus.render import Aperture, NumpyOps, TorchOps
from refocus.render.blur import blur_stack, downsample_stack
from refocus.render.composite import Full, Tiled
from refocus.render.layers import Layer, layer_stack, plan_layers
from refocus.render.occlusion import extend_behind_occluders, fill_hidden
from refocus.render.tiles import (MAX_HALO, SUB, TILE, Grid, blocks, halo, occupancy, occupied_tiles, reduced_stack,
                                  reduced_tiles)


def contour_scene(H: int = 150, W: int = 170) -> tuple[np.ndarray, np.ndarray]:
    """Linear colour (H, W, 3) and a signed CoC (H, W) as real depth gives it: a far wall, a
    receding floor (a ramp through many 1 px layers) and a near disc whose rim is a thin
    contour of in-between depth; every radius is below 6 px (all at full resolution)."""
    rng = np.random.default_rng(3)
    linear = rng.random((H, W, 3)).astype(np.float32)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    coc = np.full((H, W), 4.6, np.float32)
    floor = y > 0.55 * H
    coc[floor] = 4.6 - 8.0 * (y[floor] / H - 0.55)
    d = np.hypot(y - 0.4 * H, x - 0.6 * W)
    coc[d < 30] = -2.2
    coc[(d >= 30) & (d < 32)] = 0.9
    return linear, coc


@pytest.mark.parametrize("backend", [NumpyOps(), TorchOps("cpu")], ids=["numpy", "torch"])
@pytest.mark.parametrize("shape", ["disc", "polygon"])
def test_tiles_render_what_crop_boxes_render(backend, shape):
    ops, aperture = backend, Aperture(shape=shape, blades=6)
    linear, coc = contour_scene()
    H, W = coc.shape
    index, layers, cells = plan_layers(ops, ops.asarray(coc), 0.2)
    assert len(layers) >= 6 and max(ly.radius for ly in layers) < 6
    grid = Grid(H, W)
    padded = grid.padded_source(ops, ops.asarray(linear), index)
    source = padded[:, MAX_HALO:MAX_HALO + H, MAX_HALO:MAX_HALO + W]
    tiles = occupied_tiles(occupancy(cells, grid), layers)
    boxes = ops.zeros((H, W, 4))
    tiled = ops.zeros((grid.rows * TILE, grid.cols * TILE, 4))
    full, by_tiles = Full(ops, boxes), Tiled(ops, grid, padded, tiled)
    for i, ly in enumerate(layers):  # far to near, both ways
        small, _ = downsample_stack(ops, layer_stack(ops, source, [ly]), [ly], 1)
        blurred, _ = blur_stack(ops, small, None, [ly], aperture, 1, (W, H))
        blurred = extend_behind_occluders(ops, blurred)
        if ly.radius >= 0.5 and i > 0:
            fill_hidden(ops, full.under(ly), small[0, ..., 3], ly.radius)
        full.over(ly, blurred[0])
        by_tiles.composite(ly, tiles[ly.k], aperture, i > 0)
    a, b = ops.to_host(boxes), ops.to_host(tiled)[:H, :W]
    assert a[..., 3].mean() > 0.95  # the frame is (nearly) covered: a test of the whole composite
    np.testing.assert_allclose(b, a, atol=2e-5)


def test_blocks_cover_each_tile_once():
    """A layer's tiles are composited as rectangles and leftover tiles that cover each of its
    tiles exactly once (a dense layer's bounding box may add empty tiles, which change
    nothing). The contour scene, rendered against crop boxes above, goes through all three
    kinds: a dense bounding box, runs along tile rows and single tiles."""
    _, coc = contour_scene()
    _, layers, cells = plan_layers(NumpyOps(), coc, 0.2)
    grid = Grid(*coc.shape)
    kinds = set()
    for ly, tiles in occupied_tiles(occupancy(cells, grid), layers).items():
        rects, rest = blocks(tiles, grid.rows, grid.cols)
        covered = np.zeros((grid.rows, grid.cols), int)
        for r0, r1, c0, c1 in rects:
            covered[r0:r1, c0:c1] += 1
        covered[rest] += 1
        assert (covered[tiles] == 1).all() and covered.max() == 1
        dense = len(rects) == 1 and len(rest[0]) == 0
        assert dense or covered.sum() == len(tiles[0])  # only a dense box adds tiles
        kinds |= {"box"} if dense else {"runs"} if rects else set()
        kinds |= {"tiles"} if len(rest[0]) else set()
    assert kinds == {"box", "runs", "tiles"}


def test_tiles_reach_as_far_as_the_blur():
    """A single pixel next to a tile's edge pulls in the neighbouring tile once its kernel
    reaches across, and not before."""
    H = W = 4 * TILE
    coc = np.zeros((H, W), np.float32)
    coc[TILE + TILE // 2, 2 * TILE - 1] = 3.0  # on the right edge of tile (1, 1)
    _, planned, cells = plan_layers(NumpyOps(), coc, 0.2)
    k = planned[0].k  # the farther layer: the pixel's
    assert planned[0].y0 == TILE + TILE // 2 - 8 and planned[0].x1 == 2 * TILE + 8  # its box: 2 r + 2 around it
    for radius, expected in [(0.3, {(1, 1)}), (SUB, {(1, 1), (1, 2)})]:
        layers = [Layer(k, radius, 0, H, 0, W)]
        tiles = occupied_tiles(occupancy(cells, Grid(H, W)), layers)
        assert halo(radius) <= MAX_HALO
        assert set(zip(*map(list, tiles[k]))) == expected


@pytest.mark.parametrize("backend", [NumpyOps(), TorchOps("cpu")], ids=["numpy", "torch"])
def test_sparse_reduced_layer_stack_built_on_tiles(backend):
    """A layer blurred at 1/s whose pixels are a thin contour in a large crop box gets its
    stack at 1/s from tiles around the contour: the same as from its whole crop box, wherever
    its blur can reach (elsewhere it has no coverage in both)."""
    ops = backend
    H = W = 640
    linear = np.random.default_rng(4).random((H, W, 3)).astype(np.float32)
    y, x = np.mgrid[0:H, 0:W]
    coc = np.full((H, W), 1.0, np.float32)
    coc[abs(y - x) < 2] = 9.0  # a diagonal contour blurred at 1/2
    coc[abs(y + x - W) < 2] = -14.0  # and one at 1/3
    index, layers, cells = plan_layers(ops, ops.asarray(coc), 0.2)
    grid = Grid(H, W)
    padded = grid.padded_source(ops, ops.asarray(linear), index)
    source = padded[:, MAX_HALO:MAX_HALO + H, MAX_HALO:MAX_HALO + W]
    present = occupancy(cells, grid)
    tested = 0
    for ly in layers:
        s = int(np.ceil(ly.radius / 6.0))
        ly = Layer(ly.k, ly.radius, ly.y0 // s * s, ly.y1, ly.x0 // s * s, ly.x1)
        where = reduced_tiles(present, ly, s) if s > 1 else None
        if where is None:
            continue
        tested += 1
        box, _ = downsample_stack(ops, layer_stack(ops, source, [ly]), [ly], s)
        tiles = ops.to_host(reduced_stack(ops, padded, ly, s, where))[0]
        box = ops.to_host(box)[0]
        reach = (ops.to_host(blur_stack(ops, ops.asarray(box[None]), None, [ly], Aperture(), s, (W, H))[0])[0, ..., 3]
                 > 1e-6)
        assert tiles.shape == box.shape
        np.testing.assert_allclose(tiles[..., :4], box[..., :4], atol=1e-5)  # colour and coverage everywhere
        np.testing.assert_allclose(tiles[reach], box[reach], atol=1e-5)  # nearer coverage where it matters
    assert tested >= 2


@pytest.mark.parametrize("r", [1, 4, 40])
def test_window_max_is_the_maximum_over_the_window_inside_the_frame_on_both_backends(r):
    """(Wide windows go as a row then a column on the CPU.)"""
    from scipy import ndimage

    x = np.random.default_rng(r).normal(size=(90, 130)).astype(np.float32)
    expected = ndimage.maximum_filter(x, size=2 * r + 1, mode="constant", cval=-np.inf)
    np.testing.assert_array_equal(NumpyOps().window_max(x, r), expected)
    np.testing.assert_array_equal(TorchOps("cpu").window_max(torch.from_numpy(x), r).numpy(), expected)
