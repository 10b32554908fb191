"""Where a small-blur layer's work is: the tiles of the frame its blurred pixels can reach.

On real depth (floors, walls, a subject's outline) a depth layer with a blur of a few pixels
is a thin band or contour whose bounding box spans much of the frame, so work over its crop
box grows with layers x frame. The layers blurred at full resolution are therefore processed
on the TILE x TILE tiles of a fixed grid that their pixels, grown by their kernel's reach,
touch: each tile is read with a halo of that reach (so its blur is exact), and only the tile's
core is extended, filled and composited. The cost grows with the pixels a layer changes.

The frame is padded to a whole number of tiles plus a margin of ``MAX_HALO`` px; in the padded
source the margin and the padding carry layer index -1 (nearer than every layer), which is
what the zero padding of a crop means to ``layer_stack``: the world past the frame is an
occluder behind which the layer continues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from refocus.render.backends import Array, Ops, cells_holding, grown_cells
from refocus.render.layers import CELL, Layer, premultiplied

# Tile size in px. Smaller tiles follow a thin band of pixels more closely, larger ones carry
# less halo: (32 + 2 * 6)^2 / 32^2 = 1.9 times a tile's pixels are read at the largest
# full-resolution blur of the default quality, 1.1 times at 1 px. 32 and 64 timed within the
# noise of each other on the real-depth benchmark (32 a few per cent ahead).
TILE = 32
# Occupancy is counted on SUB x SUB cells (``plan_layers``), then grown by the kernel's reach
# in cells, then gathered into tiles: a finer count than a tile's keeps a layer that only
# grazes a tile's border from pulling in its neighbour.
SUB = CELL
# Layers whose kernel reaches farther than this (quality "high" blurs everything at full
# resolution) work on their crop box: their halo would outweigh the tile.
MAX_HALO = 16


def halo(radius: float) -> int:
    """Half-size in px of the aperture kernel of a blur radius (``aperture_kernel``'s n)."""
    return max(int(math.ceil(radius - 0.5)), 0)


@dataclass
class Grid:
    """The tile grid of an (H, W) frame: ``rows`` x ``cols`` tiles of TILE px."""

    H: int
    W: int

    @property
    def rows(self) -> int:
        return -(-self.H // TILE)

    @property
    def cols(self) -> int:
        return -(-self.W // TILE)

    def padded_source(self, ops: Ops, linear: Array, index: Array) -> Array:
        """Planar [linear colour, layer index] (4, rows * TILE + 2 MAX_HALO + REACH_PAST,
        cols * TILE + 2 MAX_HALO + REACH_PAST), the frame at offset MAX_HALO, index -1 around
        it."""
        m = MAX_HALO
        source = ops.zeros((4, self.rows * TILE + 2 * m + REACH_PAST, self.cols * TILE + 2 * m + REACH_PAST))
        source[3] = -1.0
        for c in range(3):  # channel by channel: no planar copy of the whole image first
            source[c, m:m + self.H, m:m + self.W] = linear[..., c]
        source[3, m:m + self.H, m:m + self.W] = ops.as_float(index)
        return source

    def windows(self, ops: Ops, source: Array, ty: Array, tx: Array, h: int) -> Array:
        """The tiles (N,) of the padded source (C, ...) with a halo of h px: (C, N, TILE + 2h,
        TILE + 2h)."""
        m = MAX_HALO - h
        return ops.windows(source[..., m:, m:], TILE + 2 * h, TILE)[..., ty, tx, :, :]

    def cores(self, ops: Ops, acc: Array) -> Array:
        """(rows * TILE, cols * TILE, C) -> a planar (C, rows, cols, TILE, TILE) view of its
        tiles: indexed by (row, column) index arrays it reads or writes (C, N, TILE, TILE) in
        one strided pass, several times faster than a gather and a transposition."""
        return ops.permute(acc.reshape(self.rows, TILE, self.cols, TILE, acc.shape[-1]), (4, 0, 2, 1, 3))

    def planar_cores(self, ops: Ops, planes: Array) -> Array:
        """``cores`` of a planar (C, rows * TILE, cols * TILE) array."""
        return ops.permute(planes.reshape(planes.shape[0], self.rows, TILE, self.cols, TILE), (0, 1, 3, 2, 4))


def occupancy(cells: np.ndarray, grid: Grid) -> np.ndarray:
    """``plan_layers``' cells (n, ch, cw) bool, padded with empty cells to whole tiles."""
    n, ch, cw = cells.shape
    per_tile = TILE // SUB
    return np.pad(cells, ((0, 0), (0, grid.rows * per_tile - ch), (0, grid.cols * per_tile - cw)))


def occupied_tiles(present: np.ndarray, layers: list[Layer]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each layer whose kernel reaches at most MAX_HALO px: the (row, column) indices (N,),
    (N,) of the tiles that hold its pixels grown by its kernel's reach. ``present``:
    ``occupancy``."""
    per_tile = TILE // SUB
    out = {}
    for ly in layers:
        h = halo(ly.radius)
        if h > MAX_HALO:
            continue
        cells = grown_cells(present[ly.k], h, SUB)
        rows, cols = cells.shape[0] // per_tile, cells.shape[1] // per_tile
        ty, tx = np.nonzero(cells.reshape(rows, per_tile, cols, per_tile).any(axis=(1, 3)))
        out[ly.k] = (ty, tx)
    return out


# A run of at least this many occupied tiles along a tile row is composited as one rectangle
# (merged with the rows below it that hold the same run) instead of tile by tile: its halo is
# read once around the rectangle, not around every tile (1.9 times a tile's pixels at a 6 px
# blur), and OpenCV filters one wide image several times faster than a tall stack of narrow
# tiles (an 11 x 11 disc: 4x). Noisy depth (a network's on a low-texture photo) spreads every
# layer over most of the frame, where this is most of the work.
MIN_BLOCK = 4
# Tiles that fill at least this share of their bounding box are composited as that one box
# (its empty tiles change nothing: no coverage, no fill).
BLOCK_SHARE = 0.8


def blocks(tiles: tuple[np.ndarray, np.ndarray], rows: int, cols: int) -> tuple[list[tuple[int, int, int, int]],
                                                                             tuple[np.ndarray, np.ndarray]]:
    """Split a layer's (row, column) tiles (N,), (N,) of a ``rows`` x ``cols`` grid into
    rectangles (first row, end row, first column, end column, in tiles) and the tiles left over
    (row, column indices): the tiles' bounding box where they fill BLOCK_SHARE of it, else the
    runs of at least MIN_BLOCK tiles along a row, each merged with the rows below that hold the
    same run."""
    if len(tiles[0]) == 0:
        return [], tiles
    box = (int(tiles[0].min()), int(tiles[0].max()) + 1, int(tiles[1].min()), int(tiles[1].max()) + 1)
    if len(tiles[0]) >= BLOCK_SHARE * (box[1] - box[0]) * (box[3] - box[2]):
        return [box], (tiles[0][:0], tiles[1][:0])
    occupied = np.zeros((rows, cols), bool)
    occupied[tiles] = True
    rest = occupied.copy()
    rects, open_runs = [], {}  # (c0, c1) -> first row of the rectangle growing down
    for r in range(rows + 1):
        runs_here = set()
        if r < rows:
            edges = np.flatnonzero(np.diff(np.concatenate([[0], occupied[r].view(np.int8), [0]])))
            runs_here = {(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= MIN_BLOCK}
        for run in [run for run in open_runs if run not in runs_here]:
            rects.append((open_runs.pop(run), r, *run))
        for run in runs_here:
            open_runs.setdefault(run, r)
            rest[r, run[0]:run[1]] = False
    return rects, np.nonzero(rest)


def rectangles(changed: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Rectangles (first row, end row, first column, end column) that cover the True pixels of
    ``changed`` (h, w) bool, made of REDUCED_TILE x REDUCED_TILE tiles (``blocks``' rectangles,
    and the tiles left over)."""
    h, w, t = *changed.shape, REDUCED_TILE
    occupied = cells_holding(changed, t)
    rects, (ry, rx) = blocks(np.nonzero(occupied), *occupied.shape)
    rects += [(int(r), int(r) + 1, int(c), int(c) + 1) for r, c in zip(ry, rx)]
    return [(r0 * t, min(r1 * t, h), c0 * t, min(c1 * t, w)) for r0, r1, c0, c1 in rects]


# --- layers blurred at 1/s: their stack at 1/s built on tiles of REDUCED_TILE px at 1/s
# (REDUCED_TILE s px at full resolution, on a grid from the layer's crop origin), where the
# layer's pixels are, instead of at full resolution over its whole crop box.
REDUCED_TILE = 16
# Largest s tiled this way (the padded source reaches REACH_PAST px past the tile grid for it).
MAX_TILED_S = 8
REACH_PAST = REDUCED_TILE * MAX_TILED_S + MAX_TILED_S - MAX_HALO
# Tiled only when the tiles cover less than this share of the crop box (else the box is as cheap).
TILED_SHARE = 0.6


def reduced_tiles(present: np.ndarray, ly: Layer, s: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The tiles (row, column indices (N,), (N,), on the grid of REDUCED_TILE s px from the
    layer's crop origin) whose 1/s stack can differ from zero where it matters: the layer's
    pixels grown by twice its blur radius (its own coverage spreads that far, and the nearer
    coverage that it is divided by as far again) and by the downsampling filter (s px). None
    when s > MAX_TILED_S or the tiles would not save work."""
    if s > MAX_TILED_S:
        return None
    c = REDUCED_TILE * s
    rows, cols = -(-ly.height // c), -(-ly.width // c)
    cy, cx = np.nonzero(grown_cells(present[ly.k], 2 * int(math.ceil(ly.radius)) + 2 * s + 1, SUB))
    occupied = np.zeros((rows, cols), bool)
    for y in ((cy * SUB - ly.y0) // c, (cy * SUB + SUB - 1 - ly.y0) // c):  # a cell spans up to 2 tiles
        for x in ((cx * SUB - ly.x0) // c, (cx * SUB + SUB - 1 - ly.x0) // c):
            inside = (y >= 0) & (y < rows) & (x >= 0) & (x < cols)
            occupied[y[inside], x[inside]] = True
    if occupied.sum() * c * c >= TILED_SHARE * ly.height * ly.width:
        return None
    return np.nonzero(occupied)


def reduced_stack(ops: Ops, source: Array, ly: Layer, s: int, tiles: tuple[np.ndarray, np.ndarray]) -> Array:
    """``tent_downsample(layer_stack(...), s)`` of one layer, (1, ceil(h/s), ceil(w/s), 5),
    computed on its ``reduced_tiles`` only (zero elsewhere: no coverage, and a nearer coverage
    that no coverage of the layer ever meets). ``source``: ``Grid.padded_source``."""
    c, t = REDUCED_TILE * s, REDUCED_TILE
    h, w = -(-ly.height // s), -(-ly.width // s)
    rows, cols = -(-h // t), -(-w // t)
    ty, tx = ops.asarray(tiles[0]), ops.asarray(tiles[1])
    # each tile read with a margin of s px (one pixel at 1/s), which the tent's taps reach into
    start = source[..., MAX_HALO + ly.y0 - s:, MAX_HALO + ly.x0 - s:]
    windows = ops.windows(start, c + 2 * s, c)[..., ty, tx, :, :]
    small = ops.tent_downsample(premultiplied(ops, windows, [ly.k] * len(tiles[0])), s, margins=True)
    out = ops.zeros((rows * t, cols * t, 5))
    out.reshape(rows, t, cols, t, 5).swapaxes(1, 2)[ty, tx] = small[:, 1:t + 1, 1:t + 1]
    return out[None, :h, :w]
