"""Step 6 for a large frame on the CPU: the composite in horizontal parts, on two threads.

The composite (``composite``) is most of a render and depends on the focus, so every click pays
it; its work is local to the blur's reach, so horizontal parts of a frame, each grown by that
reach, render apart and at once (``refocus.parallel``, which hands the next part to whichever
thread is free: four parts even out a sky that renders faster than a subject). All parts use
the whole frame's layers (``layers.Layering``: a pixel falls in the same layer with the same
blur in every part) and start on multiples of ALIGN rows, so that the grids at 1/s (s
dividing ALIGN) fall where the whole frame's do. What differs is the fill's context (the
background guessed behind a blurred layer sees only its part): on the real photos of the
speed benchmark at the app's preview size the parts differ from one whole composite by 1e-6
to 2e-5 on average, by 0.01-0.13 at a few pixels of a disocclusion.

How many parts depends on the frame alone, never on the machine: the same photo renders the
same everywhere (on one core, the parts run one after the other).
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from refocus.parallel import run_all
from refocus.render.aperture import Aperture
from refocus.render.backends import Array, Ops
from refocus.render.colour import linear_to_srgb
from refocus.render.composite import composite_layers
from refocus.render.layers import layering

# Four parts: 10 clicks on the app's preview (render_speed's --clicks points) of the iPhone /
# NYU / KITTI photo took 188 / 123 / 32 ms whole, 141 / 93 / 23 ms in parts (interleaved runs;
# six parts: 150 / 95 / 27 ms; two: the iPhone's halves took 45 and 100 ms, 156 ms in all).
PARTS = 4
# Smallest frame split, in pixels. With the focus on the centre, a render that reuses the depth
# edges and colour took, whole -> in parts: at 0.8 MP 121 -> 97 (NYU), 192 -> 150 (iPhone), 80 -> 65 ms
# (KITTI); at 0.5 MP 73 -> 60, 96 -> 90, 48 -> 37 ms; at 0.3 MP 42 -> 44, 56 -> 57, 23 -> 21
# ms; at 0.15 MP 20 -> 20, 25 -> 29, 10.5 -> 11.6 ms (the threads take turns at the GIL).
MIN_PIXELS = 400_000
# A part's own rows are at least this many times the margin it carries, whose work is repeated
# (a 12 MP photo's full-resolution strips, 378 rows with blurs of up to 40 px, render whole).
MIN_ROWS_PER_MARGIN = 4
# Parts start on multiples of this many rows (see above).
ALIGN = 24


def composite_srgb(ops: Ops, linear: Array, coc: Array, aperture: Aperture, fine_radius: float,
                   relative_width: float) -> Array:
    """``linear_to_srgb(composite_layers(...))`` of linear light (H, W, 3) with signed CoC (H,
    W), in PARTS horizontal parts where the frame is large enough (numpy backend; an aperture
    that does not vary over the frame). Returns sRGB (H, W, 3) in [0, 1]."""
    H, W = coc.shape
    margin = 0
    if ops.tiled and not aperture.varies_over_frame and H * W >= MIN_PIXELS:
        # the reach of the largest blur (its kernel and the layer's extension), in rows
        margin = math.ceil(max(float(coc.max()), -float(coc.min()))) + 2
    if margin == 0 or H // PARTS < MIN_ROWS_PER_MARGIN * margin:
        return linear_to_srgb(composite_layers(ops, linear, coc, aperture, fine_radius, relative_width))
    layers_of, index = layering(ops, coc, relative_width)
    rows = np.linspace(0, H, PARTS + 1).astype(int)

    def part(y0: int, y1: int) -> Array:
        a, b = max(y0 - margin, 0) // ALIGN * ALIGN, min(y1 + margin, H)
        done = composite_layers(ops, linear[a:b], coc[a:b], aperture, fine_radius, relative_width,
                                (layers_of, index[a:b]))
        return linear_to_srgb(done[y0 - a:y1 - a])

    return np.concatenate(run_all([functools.partial(part, y0, y1) for y0, y1 in itertools.pairwise(rows)]))
