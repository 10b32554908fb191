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

import cv2
import numpy as np

from refocus.render.backends import Array, Ops
from refocus.render.layers import Layer

# Tile size in px. Smaller tiles follow a thin band of pixels more closely, larger ones carry
# less halo: (32 + 2 * 6)^2 / 32^2 = 1.9 times a tile's pixels are read at the largest
# full-resolution blur of the default quality, 1.1 times at 1 px. 32 and 64 timed within the
# noise of each other on the real-depth benchmark (32 a few per cent ahead).
TILE = 32
# Occupancy is counted on SUB x SUB cells, then grown by the kernel's reach in cells, then
# gathered into tiles: a finer count than a tile's keeps a layer that only grazes a tile's
# border from pulling in its neighbour.
SUB = 8
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
        """Planar [linear colour, layer index] (4, rows * TILE + 2 MAX_HALO, cols * TILE +
        2 MAX_HALO), the frame at offset MAX_HALO, index -1 around it."""
        m = MAX_HALO
        source = ops.zeros((4, self.rows * TILE + 2 * m, self.cols * TILE + 2 * m))
        source[3] = -1.0
        source[:3, m:m + self.H, m:m + self.W] = ops.planes(linear)
        source[3, m:m + self.H, m:m + self.W] = ops.as_float(index)
        return source

    def windows(self, ops: Ops, source: Array, ty: Array, tx: Array, h: int) -> Array:
        """The tiles (N,) of the padded source (C, ...) with a halo of h px: (C, N, TILE + 2h,
        TILE + 2h)."""
        m = MAX_HALO - h
        return ops.windows(source[..., m:, m:], TILE + 2 * h, TILE)[..., ty, tx, :, :]

    def cores(self, acc: Array) -> Array:
        """(rows * TILE, cols * TILE, C) -> a (rows, cols, TILE, TILE, C) view of its tiles."""
        return acc.reshape(self.rows, TILE, self.cols, TILE, acc.shape[-1]).swapaxes(1, 2)


def occupied_tiles(ops: Ops, index: Array, layers: list[Layer]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each layer whose kernel reaches at most MAX_HALO px: the (row, column) indices (N,),
    (N,) of the tiles that hold its pixels grown by its kernel's reach."""
    H, W = index.shape
    grid = Grid(H, W)
    per_tile = TILE // SUB
    sh, sw = grid.rows * per_tile, grid.cols * per_tile
    n = max(ly.k for ly in layers) + 1
    cell = (ops.arange(H)[:, None] // SUB) * sw + ops.arange(W) // SUB
    present = ops.to_host(ops.bincount(index * (sh * sw) + cell, None, n * sh * sw)).reshape(n, sh, sw) > 0
    out = {}
    for ly in layers:
        h = halo(ly.radius)
        if h > MAX_HALO:
            continue
        cells = present[ly.k].astype(np.uint8)
        d = -(-h // SUB)
        if d:
            cells = cv2.dilate(cells, np.ones((2 * d + 1, 2 * d + 1), np.uint8))
        ty, tx = np.nonzero(cells.reshape(grid.rows, per_tile, grid.cols, per_tile).any(axis=(1, 3)))
        out[ly.k] = (ty, tx)
    return out
