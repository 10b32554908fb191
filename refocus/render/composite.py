"""Step 6 of the renderer: the composite loop, far to near, written once for every backend.

For each batch of layers (one layer on the CPU; consecutive layers sharing a downsampling
factor on a GPU): gather their premultiplied stacks, blur them, extend them behind nearer
occluders, fill what each hides in the accumulated background, and composite it *over* the
accumulation. A layer's colour never leaves its own mask before it is blurred, so an in-focus
edge stays sharp, a defocused foreground spreads over what is behind it, and what it reveals
is the filled background.

Layers blurred at 1/s (s > 1) are also extended, filled and composited at 1/s: a run of
consecutive layers sharing s is composited over the accumulation behind it at 1/s
(``Reduced``), and only the run's result, its premultiplied colour P and transmittance T, is
upsampled and laid over the full-resolution accumulation, once: ``acc = up(P) + up(T) acc``
(*over* is associative, so this is the same composite). Full resolution is touched once per
run instead of several passes per layer: on the iPhone photo at 12 MP, 20 of its 31 layers
are blurred at 1/s and make 9 runs.

Work is bounded by where a layer's pixels are (``refocus/render/tiles.py``): on real depth a
layer is often a thin band or contour in a large crop box. Layers blurred at full resolution
go through the same steps on the tiles their blurred pixels reach (``Tiled``), and a sparse
layer blurred at 1/s gets its stack at 1/s from the tiles around its pixels
(``reduced_stack``); both give what the crop box gives (tested to 2e-5).
"""

from __future__ import annotations

import numpy as np

from refocus.render.aperture import Aperture, aperture_kernel
from refocus.render.backends import Array, Ops
from refocus.render.blur import blur_stack, downsample_stack
from refocus.render.layers import Layer, Layering, Run, batches, layer_stack, plan_layers, premultiplied, runs
from refocus.render.occlusion import extend, extend_behind_occluders, fill_estimate, fill_hidden, hidden
from refocus.render.tiles import (MAX_HALO, TILE, Grid, blocks, halo, occupancy, occupied_tiles, rectangles,
                                  reduced_stack, reduced_tiles)

# A run's premultiplied colour and transmittance this close to 0 and 1 leave the accumulation
# as it is (a blurred zero is not always exactly zero: OpenCV filters large kernels by DFT).
IDENTITY = 1e-6

# Tiles of one layer processed at once (memory: up to 40 kB per tile of a 5-channel stack).
TILE_BATCH = 1024


def composite_layers(ops: Ops, linear: Array, coc: Array, aperture: Aperture, fine_radius: float,
                     relative_width: float, cut: tuple[Layering, Array] | None = None) -> Array:
    """Render linear light (H, W, 3) with signed CoC (H, W) (> 0 behind the focal plane), in
    the frame's own layers or those of a larger frame of which this is a part (``cut``, as
    ``plan_layers`` takes it).

    Returns the normalised linear render (H, W, 3).
    """
    H, W = coc.shape
    index, layers, cells = plan_layers(ops, coc, relative_width, cut)
    grid = Grid(H, W)
    # colour and layer index in one planar array: one copy gathers a layer's crop or tiles
    padded = grid.padded_source(ops, linear, index)
    source = padded[:, MAX_HALO:MAX_HALO + H, MAX_HALO:MAX_HALO + W]
    lit = lit_layers(ops, linear, index)
    present = occupancy(cells, grid)
    # (a kernel that varies over the frame, the cat's eye, is blurred per crop: no tiles)
    tiles = occupied_tiles(present, layers) if ops.tiled and not aperture.varies_over_frame else {}
    acc_tiles = ops.zeros((grid.rows * TILE, grid.cols * TILE, 4))  # the frame, padded to whole tiles
    tiled = Tiled(ops, grid, padded, acc_tiles)
    acc = acc_tiles[:H, :W]
    behind = False  # whether anything is composited yet
    for run in runs(layers, fine_radius, (H, W)):
        s = run.s
        if s == 1 and all(ly.k in tiles for ly in run.layers):  # small blurs: work where the pixels are
            for ly in run.layers:
                tiled.composite(ly, tiles[ly.k], aperture, behind)
                behind = True
            continue
        target = Full(ops, acc) if s == 1 else Reduced(ops, acc, run, behind)
        for batch in batches(run.layers, ops.batch_pixels):
            lights_in = any(lit[ly.k] for ly in batch)
            sparse = ops.tiled and s > 1 and len(batch) == 1 and not lights_in
            where = reduced_tiles(present, batch[0], s) if sparse else None
            if where is not None:  # a sparse layer: its stack at 1/s built where its pixels are
                small, lights = reduced_stack(ops, padded, batch[0], s, where), None
            else:
                small, lights = downsample_stack(ops, layer_stack(ops, source, batch), batch, s, lights_in)
            blurred, lights = blur_stack(ops, small, lights, batch, aperture, s, (W, H))
            blurred = extend_behind_occluders(ops, blurred)
            for i, ly in enumerate(batch):
                h, w = -(-ly.height // s), -(-ly.width // s)
                layer = blurred[i, :h, :w]
                # a blurred layer reveals part of what it hides; nothing is behind the farthest one
                if ly.radius >= 0.5 and behind:
                    fill_hidden(ops, target.under(ly), small[i, :h, :w, 3], ly.radius / s)
                target.over(ly, layer)
                if lights is not None:
                    target.add_lights(ly, lights[i, :ly.height, :ly.width])
                behind = True
        target.flush()
    return ops.unpremultiply(acc)


def lit_layers(ops: Ops, linear: Array, index: Array) -> np.ndarray:
    """Which layers hold a pixel brighter than white (a light), by layer index (bool): the
    others need no search for lights, a pass over their crop each."""
    n = int(ops.to_host(index.max())) + 1
    if not bool(linear.max() > 1.0):  # one cheap pass decides it for most photos
        return np.zeros(n, bool)
    bright = ops.maximum(ops.maximum(linear[..., 0], linear[..., 1]), linear[..., 2]) > 1.0
    return ops.to_host(ops.bincount(index[bright], None, n)) > 0  # lights are few: count only theirs


class Tiled:
    """Composite full-resolution layers over ``acc`` (the frame padded to whole tiles, 4
    channels) on their tiles only (``refocus.render.tiles``): the steps of the loop above on
    each tile's core, from the tile read with a halo as far as the kernel reaches (so the blur
    is exact). Planar (channels first), which makes the per-pixel arithmetic several times
    faster on the CPU. The fill's context is still the layer's whole crop box of the
    accumulation before the layer (the push-pull reaches far): computed once, and only when
    one of its tiles holds a hole.
    """

    def __init__(self, ops: Ops, grid: Grid, source: Array, acc: Array) -> None:
        """``source``: ``Grid.padded_source``; ``acc``: (rows * TILE, cols * TILE, 4)."""
        self.ops, self.grid, self.source, self.acc = ops, grid, source, acc
        self.fill: Array | None = None  # frame-sized scratch for the fill at full resolution, planar

    def composite(self, ly: Layer, tiles: tuple[np.ndarray, np.ndarray], aperture: Aperture, behind: bool) -> None:
        """Composite layer ``ly`` on its (row, column) tiles (N,), (N,)."""
        ops, grid, source, T = self.ops, self.grid, self.source, TILE
        h, k = halo(ly.radius), ly.k
        kernel = aperture_kernel(round(ly.radius, 2), aperture)
        cores = grid.cores(ops, self.acc)  # planar view, (4, rows, cols, TILE, TILE)
        ty, tx = ops.asarray(tiles[0]), ops.asarray(tiles[1])
        fill = None
        if ly.radius >= 0.5 and behind:
            own = grid.windows(ops, source[3], ty, tx, 0) == k
            if hidden(ops, cores[3, ty, tx], own) is not None:
                small, f = fill_estimate(ops, self.acc[ly.y0:ly.y1, ly.x0:ly.x1], ly.radius)
                if self.fill is None:  # outside the current box: stale or zero (finite), under a zero mask
                    self.fill = ops.zeros((4, *self.acc.shape[:2]))
                fill = self.fill
                for c, plane in enumerate(ops.planes(small)):  # upsampled plane by plane, read planar
                    fill[c, ly.y0:ly.y1, ly.x0:ly.x1] = ops.upsample(plane[..., None], small.shape[0] * f,
                                                                     small.shape[1] * f)[:ly.height, :ly.width, 0]
        rects, rest = blocks(tiles, grid.rows, grid.cols)
        m = MAX_HALO - h
        for r0, r1, c0, c1 in rects:  # runs of tiles: one window each
            y0, y1, x0, x1 = r0 * T, r1 * T, c0 * T, c1 * T
            window = source[:, None, y0 + m:y1 + MAX_HALO + h, x0 + m:x1 + MAX_HALO + h]
            region = self.acc[y0:y1, x0:x1]
            extra = None if fill is None else fill[:, None, y0:y1, x0:x1]
            under = self.layer_over(window, ops.planes(region)[:, None], extra, kernel, h, k)
            region[...] = ops.interleave(under[:, 0])
        ry, rx = ops.asarray(rest[0]), ops.asarray(rest[1])
        for start in range(0, len(ry), TILE_BATCH):  # the other tiles, gathered in batches
            y, x = ry[start:start + TILE_BATCH], rx[start:start + TILE_BATCH]
            extra = None if fill is None else grid.planar_cores(ops, fill)[:, y, x]
            cores[:, y, x] = self.layer_over(grid.windows(ops, source, y, x, h), cores[:, y, x], extra, kernel, h, k)

    def layer_over(self, window: Array, under: Array, fill: Array | None, kernel: np.ndarray, h: int,
                   k: int) -> Array:
        """One layer blurred and composited over pieces of the accumulation: ``window`` (4, N,
        h' + 2h, w' + 2h) the padded source around the pieces, ``under`` (4, N, h', w') the
        accumulation there (planar, written over and returned), ``fill`` the same pieces of
        the fill (or None: no fill)."""
        ops = self.ops
        stack = premultiplied(ops, window, [k] * window.shape[1])
        inner = (slice(None), slice(None), slice(h, stack.shape[2] - h), slice(h, stack.shape[3] - h))
        if fill is not None:
            missing = hidden(ops, under[3:4], stack[3:4][inner])
            if missing is not None:
                ops.addcmul(under, missing, fill, out=under)
        core = stack[inner]
        if kernel.shape != (1, 1):  # unblurred, a layer is its own extension (alpha = own)
            core = ops.convolve_planes(stack, kernel)[inner]
            core[3:4] = extend(ops, core[:3], core[3:4], core[4:5])
        alpha = core[3:4]
        ops.addcmul(core[:4], 1.0 - alpha, under, out=under)
        return under


class Full:
    """Composite at full resolution, straight into the accumulation (H, W, 4)."""

    def __init__(self, ops: Ops, acc: Array) -> None:
        self.ops, self.acc = ops, acc

    def under(self, ly: Layer) -> Array:
        """The accumulation (a view) behind the layer's crop."""
        return self.acc[ly.y0:ly.y1, ly.x0:ly.x1]

    def over(self, ly: Layer, layer: Array) -> None:
        """Composite the layer [colour, alpha, 0] over the accumulation."""
        under = self.under(ly)
        self.ops.addcmul(layer[..., :4], 1.0 - layer[..., 3:4], under, out=under)

    def flush(self) -> None:
        pass


class Reduced:
    """Composite a run's layers at 1/s over the accumulation behind them, then lay the result
    over the full-resolution accumulation once.

    State on the run's box at 1/s, one (h, w, 5) array: U (4 channels), the accumulation as
    the next layer sees it (the accumulation before the run, ``back``, as box means, with the
    run's layers and fills composited over it exactly as at full resolution), and T, the run's
    transmittance. The run's own premultiplied colour and alpha is then ``P = U - T back``, and
    the accumulation at full resolution becomes ``up(P) + up(T) acc``: one upsampling and one
    pass per run (the same op count per run on a GPU as the per-layer upsampling it replaces).

    Lights (energy above white, blurred at full resolution) are added at full resolution when
    the run ends, under the runs nearer than theirs but not under the other layers of their own
    run (radii within a factor s / (s - 1)): tracking each light's own transmittance would cost
    a full-resolution pass per layer again, and on the quality bench the scores are the same to
    the second decimal.
    """

    def __init__(self, ops: Ops, acc: Array, run: Run, behind: bool) -> None:
        self.ops, self.acc, self.run, s = ops, acc, run, run.s
        h, w = -(-(run.y1 - run.y0) // s), -(-(run.x1 - run.x0) // s)
        self.back = ops.box_downsample(acc[run.y0:run.y1, run.x0:run.x1], s) if behind else None
        self.state = ops.empty((h, w, 5))
        self.state[..., :4] = 0.0 if self.back is None else self.back
        self.state[..., 4:] = 1.0
        self.lights: list[tuple[Layer, Array]] = []

    def box(self, ly: Layer) -> tuple[slice, slice]:
        """The layer's crop in the run's 1/s grid."""
        s, run = self.run.s, self.run
        y0, x0 = (ly.y0 - run.y0) // s, (ly.x0 - run.x0) // s
        return slice(y0, y0 + -(-ly.height // s)), slice(x0, x0 + -(-ly.width // s))

    def under(self, ly: Layer) -> Array:
        return self.state[self.box(ly)][..., :4]

    def over(self, ly: Layer, layer: Array) -> None:
        # the layer's fifth channel is 0: the same multiply-add takes T to T (1 - alpha)
        state = self.state[self.box(ly)]
        self.ops.addcmul(layer, 1.0 - layer[..., 3:4], state, out=state)

    def add_lights(self, ly: Layer, lights: Array) -> None:
        self.lights.append((ly, lights))

    def changed(self) -> list[tuple[int, int, int, int]]:
        """Rectangles of the run's 1/s grid (first row, end row, first column, end column)
        outside which the run changes nothing (P = 0, T = 1, to IDENTITY), grown by a node
        for the upsampling's reach: on real depth a run's box is mostly empty (on the iPhone
        photo at 12 MP, 0-10 % of most runs' boxes hold anything), and laying it over the
        full-resolution accumulation is a pass over the box. The whole grid on a backend that
        does not branch on values."""
        ops, state = self.ops, self.state
        h, w = state.shape[:2]
        if not ops.branch_on_values:
            return [(0, h, 0, w)]
        change = abs(state[..., 4] - 1.0)
        for c in range(4):
            change = ops.maximum(change, abs(state[..., c]))
        return rectangles(ops.to_host(ops.window_max(ops.as_float(change > IDENTITY), 1)) > 0.5)

    def flush(self) -> None:
        ops, run, s = self.ops, self.run, self.run.s
        h, w = run.y1 - run.y0, run.x1 - run.x0
        if self.back is not None:  # U -> P
            self.state[..., :4] -= self.state[..., 4:] * self.back
        region = self.acc[run.y0:run.y1, run.x0:run.x1]
        for a0, a1, b0, b1 in self.changed():  # at 1/s
            # with one node around each piece (where the grid has it), so that its bilinear
            # upsampling matches the whole grid's to the pixel
            m0, m1 = max(a0 - 1, 0), min(a1 + 1, self.state.shape[0])
            n0, n1 = max(b0 - 1, 0), min(b1 + 1, self.state.shape[1])
            piece = self.state[m0:m1, n0:n1]
            size = piece.shape[0] * s, piece.shape[1] * s
            # P and T upsampled apart: OpenCV resizes 4 channels and 1 fast, 5 slowly
            colour, transmittance = ops.upsample(piece[..., :4], *size), ops.upsample(piece[..., 4:], *size)
            y0, y1, x0, x1 = a0 * s, min(a1 * s, h), b0 * s, min(b1 * s, w)
            inside = slice(y0 - m0 * s, y1 - m0 * s), slice(x0 - n0 * s, x1 - n0 * s)
            under = region[y0:y1, x0:x1]
            ops.addcmul(colour[inside], transmittance[inside], under, out=under)
        for ly, lights in self.lights:
            colour = self.acc[ly.y0:ly.y1, ly.x0:ly.x1, :3]
            colour += lights
