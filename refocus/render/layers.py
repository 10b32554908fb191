"""Step 3 of the renderer: the circle of confusion of every pixel and its depth layers.

The signed CoC ``c`` (pixels, > 0 behind the focal plane), with small far islands given the CoC
of the surface around them, is quantised into layers, 1 px wide for small blurs and ~20 % wide
for large ones; each layer is described by its blur radius and the crop box that holds its
pixels and everything its blur and fill can reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from refocus.render.backends import Array, Ops


def signed_coc(ops: Ops, disparity: Array, focus_disparity: float | Array, strength: float,
               focus_range: float, focus_falloff: float = 0.0) -> Array:
    """Signed CoC radius in pixels (H, W), > 0 behind the focal plane.

    The geometric CoC of a thin lens is ``strength * |focus - D|``; ``focus_range`` widens the
    focal plane into a band ``|D - focus| <= focus_range`` that stays sharp, and the CoC grows
    from the band's edge: ``r = strength * e`` with ``e = max(|D - focus| - focus_range, 0)``.
    ``focus_disparity`` is a scalar or an (H, W) array (a tilted or curved focal surface).

    ``focus_falloff`` (disparity units, >= 0) softens the band's edge. Blur radii of independent
    spreads add in quadrature, so a spot the eye takes as sharp, of radius
    ``c0 = strength * focus_falloff`` (the "acceptable circle of confusion" of depth-of-field
    tables), hides the first part of the lens's blur: the visible extra blur is
    ``sqrt((strength * e)^2 + c0^2) - c0``. It starts quadratically (no kink at the band's
    edge), turns linear after about ``focus_falloff`` past the edge, and then trails the lens's
    own blur by ``c0`` pixels. ``focus_falloff = 0`` is the hard band, exactly.

    The radius is capped at the image's long edge (a larger blur looks the same).
    """
    d = focus_disparity - disparity
    excess = (abs(d) - focus_range).clip(0.0, None)
    if focus_falloff > 0.0:
        c0 = strength * focus_falloff
        r = ((strength * excess) ** 2 + c0 * c0) ** 0.5 - c0
    else:
        r = strength * excess
    # strength 0 times a difference that overflowed float32 to inf is NaN; no strength, no blur.
    r = ops.nan_to_num(r)
    return ops.sign(d) * r.clip(None, float(max(disparity.shape)))


# Half-width in px of the window in which a farther patch counts as an island: islands up to
# 2 ISLAND_RADIUS + 1 = 11 px across are absorbed. A hole-filled depth map (KITTI's LiDAR
# covers 18 % of the frame) leaves islands of a few to about 10 px.
ISLAND_RADIUS = 5
# An island is absorbed when its blur radius exceeds its surroundings' by less than this
# fraction of theirs: the radius error that the default quality's ~12 % wide layers accept for
# large blurs anyway (a layer's pixels share its mean radius). Relative, not in pixels: at small
# blurs a pixel more is visible (0.5 px is sharp, 1.5 px is not), and there a small island
# covers enough of its kernel to be extended behind its nearer layer, so it leaves no fragment.
ISLAND_TOLERANCE = 0.12


def absorb_far_islands(ops: Ops, coc: Array) -> Array:
    """Give a small patch that is a little farther than the surface around it (its blur larger
    by under ``ISLAND_TOLERANCE`` of the surface's) the CoC of that surface, (H, W) -> (H, W).

    Why: a depth layer is composited *over* the ones behind it, and a small far island is a
    hole in its nearer layer. Blurred, the island's own layer covers only a few percent of its
    kernel, too little to be extended behind the nearer layer (``extend_behind_occluders``
    extends a layer fully only where it covers a quarter of the kernel), so the nearer layer's
    small transparency at the hole shows what lies behind the island instead of the island:
    the fill of the farther layers (a bright sky behind trees), cut to the island's sharp
    outline by the fill's mask. A real lens blurs two surfaces whose blur radii differ by
    so little as one surface. Rendering the island with its surroundings' blur changes its
    blur by no more than the layers' own quantisation does (invisible) and leaves no layer
    boundary around it.

    The surface around is the grey opening of the CoC (window minimum, then maximum, over
    (2 ISLAND_RADIUS + 1)^2): it removes farther patches that do not hold the window and
    keeps edges, ramps and larger regions where they are. Farther is a larger signed CoC on
    either side of the focal plane. Pixels that the opening lowers by more than the tolerance
    (a real depth hole, e.g. sky through leaves) keep their CoC.
    """
    r = ISLAND_RADIUS
    surround = ops.window_max(-ops.window_max(-coc, r), r)
    return ops.select(coc - surround >= ISLAND_TOLERANCE * abs(surround), coc, surround)


def layer_edges(cmin: float, cmax: float, relative_width: float) -> np.ndarray:
    """Boundaries of the CoC layers (float32, increasing): 1 px wide up to |c| =
    1/relative_width, then a fixed fraction of |c| (a radius error that is invisible relative
    to the blur)."""
    def side(limit: float) -> list[float]:
        edges, e = [], 0.5
        while e < limit:
            edges.append(e)
            e += max(1.0, relative_width * e)
        return edges + [e]

    pos, neg = side(max(cmax, 0.0)), side(max(-cmin, 0.0))
    return np.array([-e for e in reversed(neg)] + pos, np.float64).astype(np.float32)


@dataclass
class Layer:
    """One depth layer: index k (larger = farther), blur radius (px), crop box [y0:y1, x0:x1]."""

    k: int
    radius: float
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0


# Side in px of the cells in which ``plan_layers`` records where each layer's pixels are (the
# tiles of ``tiles.py`` are made of them).
CELL = 8


@dataclass
class Layering:
    """How a frame's CoC is cut into layers: the layers' boundaries (float32, increasing;
    ``layer_edges``) and the blur radius of each layer index (its pixels' mean |CoC|, px)."""

    edges: np.ndarray
    radii: np.ndarray


def layering(ops: Ops, coc: Array, relative_width: float) -> tuple[Layering, Array]:
    """The layers of a CoC map (H, W), boundaries from its range and radii from its pixels, and
    the layer index of each pixel (H, W; larger = farther)."""
    edges = layer_edges(float(coc.min()), float(coc.max()), relative_width)
    index, n = ops.bucketize(coc, edges), len(edges) + 1
    count = ops.to_host(ops.bincount(index, None, n))
    return Layering(edges, ops.to_host(ops.bincount(index, abs(coc), n)) / np.maximum(count, 1)), index


def plan_layers(ops: Ops, coc: Array, relative_width: float,
                cut: tuple[Layering, Array] | None = None) -> tuple[Array, list[Layer], np.ndarray]:
    """Quantise the CoC (H, W) into layers: its own (``layering``), or those of a larger frame
    of which this is a part, ``cut`` = (its ``Layering``, this part's layer index (H, W)), so
    that a pixel falls in the same layer, with the same blur, in every part.

    Returns the layer index of every pixel (H, W); the occupied layers far to near, each with
    its mean |CoC| as blur radius and its bounding box grown by the blur and the fill's context
    (2 radii + 2 px); and which CELL x CELL cells hold pixels of each layer, (n, ceil(H /
    CELL), ceil(W / CELL)) bool by layer index.
    """
    H, W = coc.shape
    layers_of, index = layering(ops, coc, relative_width) if cut is None else cut
    n, radii = len(layers_of.edges) + 1, layers_of.radii
    # per layer in one pass: its occupied cells
    ch, cw = -(-H // CELL), -(-W // CELL)
    cell = (ops.arange(H)[:, None] // CELL) * cw + ops.arange(W) // CELL
    cells = ops.to_host(ops.bincount(index * (ch * cw) + cell, None, n * ch * cw)).reshape(n, ch, cw) > 0

    occupied = [k for k in reversed(range(n)) if cells[k].any()]  # far to near
    # each layer's extent to the pixel: its first and last occupied cell rows and columns,
    # searched row by row (column by column), all layers in one gather each
    ks = ops.asarray(np.array(occupied).reshape(-1, 1, 1))
    step = np.arange(CELL)
    y0, y1, x0, x1 = [], [], [], []
    for axis, size, (first, last) in ((1, H, (y0, y1)), (0, W, (x0, x1))):
        along = [np.flatnonzero(cells[k].any(axis)) * CELL for k in occupied]
        for out, start, pick in ((first, [a[0] for a in along], 0), (last, [a[-1] for a in along], -1)):
            lines = np.minimum(np.array(start)[:, None] + step, size - 1)  # (L, CELL) rows or columns
            if axis == 1:
                hit = ops.to_host((index[ops.asarray(lines)] == ks).any(-1))
            else:
                hit = ops.to_host((index[:, ops.asarray(lines)] == ks[:, :, 0][None]).any(0))
            out.extend(int(line[np.flatnonzero(h)[pick]]) for line, h in zip(lines, hit))
    layers = []
    for i, k in enumerate(occupied):
        radius = float(radii[k])
        grow = 2 * int(math.ceil(radius)) + 2
        layers.append(Layer(k, radius, max(y0[i] - grow, 0), min(y1[i] + grow + 1, H),
                            max(x0[i] - grow, 0), min(x1[i] + grow + 1, W)))
    return index, layers, cells


def scale(radius: float, fine_radius: float) -> int:
    """The downsampling factor s of a blur: the kernel at 1/s has a radius <= fine_radius."""
    return max(int(math.ceil(radius / fine_radius)), 1) if math.isfinite(fine_radius) else 1


@dataclass
class Run:
    """Consecutive layers (far to near) blurred at the same 1/s resolution, their crop boxes
    grown to the s-pixel grid (clipped to the frame), and the union of those boxes."""

    s: int
    layers: list[Layer]
    y0: int
    y1: int
    x0: int
    x1: int


def runs(layers: list[Layer], fine_radius: float, shape: tuple[int, int]) -> Iterator[Run]:
    """Split the layers (far to near) into runs of one downsampling factor each."""
    H, W = shape

    def snap(ly: Layer, s: int) -> Layer:
        return Layer(ly.k, ly.radius, ly.y0 // s * s, min(-(-ly.y1 // s) * s, H),
                     ly.x0 // s * s, min(-(-ly.x1 // s) * s, W))

    group: list[Layer] = []
    for ly in layers + [None]:
        if group and (ly is None or scale(ly.radius, fine_radius) != scale(group[0].radius, fine_radius)):
            s = scale(group[0].radius, fine_radius)
            snapped = [snap(g, s) for g in group]
            yield Run(s, snapped, min(g.y0 for g in snapped), max(g.y1 for g in snapped),
                      min(g.x0 for g in snapped), max(g.x1 for g in snapped))
            group = []
        if ly is not None:
            group.append(ly)


def batches(layers: list[Layer], max_pixels: int) -> Iterator[list[Layer]]:
    """Consecutive layers of one run as long as the batch (layers x largest crop) stays within
    ``max_pixels``; a layer larger than that runs alone."""
    batch: list[Layer] = []
    for ly in layers:
        if batch:
            grown = batch + [ly]
            if len(grown) * max(b.height for b in grown) * max(b.width for b in grown) > max_pixels:
                yield batch
                batch = []
        batch.append(ly)
    if batch:
        yield batch


def layer_stack(ops: Ops, source: Array, batch: list[Layer]) -> Array:
    """The premultiplied stacks of a batch of layers, planar (5, N, hb, wb): colour x own, own
    (0/1 coverage), and nearer - 1 (-1 where nothing nearer is; zero padding then counts the
    world outside the frame as an occluder, behind which the layer continues too).

    ``source`` (4, H, W) is [linear colour, layer index], planar. Each crop sits at the top left
    of a common (hb, wb) canvas (the largest crop) whose rest has index -1, nearer than every
    layer, so the stack is zero there, as zero padding is.
    """
    n = len(batch)
    if n == 1:
        ly = batch[0]
        canvas = source[:, None, ly.y0:ly.y1, ly.x0:ly.x1]
    else:
        canvas = ops.zeros((4, n, max(ly.height for ly in batch), max(ly.width for ly in batch)))
        canvas[3] = -1.0
        for i, ly in enumerate(batch):
            canvas[:, i, :ly.height, :ly.width] = source[:, ly.y0:ly.y1, ly.x0:ly.x1]
    return premultiplied(ops, canvas, [ly.k for ly in batch])


def premultiplied(ops: Ops, canvas: Array, ks: list[int]) -> Array:
    """The stacks of ``layer_stack``, (5, N, h, w) from crops (4, N, h, w) of [linear colour,
    layer index], crop i holding layer ks[i]. Planar (channels first) because numpy's products
    with a per-pixel factor are several times faster on contiguous planes than on interleaved
    channels."""
    k = ops.asarray(np.array(ks, np.float32).reshape(1, len(ks), 1, 1))
    ids = canvas[3:4]
    stack = ops.empty((5, *canvas.shape[1:]))
    stack[3:4] = ids == k
    stack[:3] = canvas[:3] * stack[3:4]
    stack[4:5] = ids < k
    stack[4:5] -= 1.0
    return stack
