"""Step 3 of the renderer, before the CoC (``layers``): depth edges. A pixel at a depth
discontinuity gets the disparity of one of the two sides, chosen by its colour (a real map
ramps across its edges, and a network's edge is often a few pixels off the photo's; the
edge a viewer sees is the photo's).

The function takes numpy arrays or torch tensors and returns the same kind; it changes only
the disparity map, so it composes with a scalar or a per-pixel focus.
"""

from __future__ import annotations

import functools
import itertools

from refocus.parallel import run_all
from refocus.render.backends import Array, Ops, active_boxes, ops_for

# Measured on the robust bench's dev set (../shared/refocus-bench/robust/run_robust.py), mean
# PSNR of perfect / network_like_guided / edge_erode3 depth in dB; the rules below took them
# from 36.87 / 35.23 / 32.96 to 36.91 / 35.33 / 35.61 (35.58 before the last change to the box).
#
# Half-width in pixels of the band in which a depth map mixes the two sides of a depth edge:
# an 8-bit phone map or a 518 px network output upsampled 5-8x to the photo ramps across its
# edges over about that many pixels on either side, and a network's outline is often 2-3 px
# inside or outside the object's. (5: 36.85 / 35.30 / 34.70, against 36.86 / 35.29 / 34.86.)
EDGE_BAND = 4
# A sharp step (a jump between neighbouring pixels of more than STEP_SHARPNESS of the band's
# range) is a depth edge once it changes the blur by more than STEP_COC px: a rim of 3 px
# left at the background's depth shows from about a pixel of blur on. Before, only steps
# whose blur changes by more than the band's width (9 px) were edges: edge_erode3 33.76 ->
# 34.79 dB with this rule (34.65 with STEP_COC 2, 34.12 with 4).
STEP_COC = 1.0
STEP_SHARPNESS = 0.5
# Each side's colours are modelled as a Gaussian with full colour covariance (a texture's
# colours spread along a line in RGB, dark to light green, not towards grey), plus this noise
# floor in sRGB, fitted to the side's pixels within about MODEL_RADIUS px. A textured side
# accepts a wider range of colours than a flat one, so texture does not flip correct pixels
# while a clear colour edge does. (A Gaussian per channel: 36.80 / 35.14 / 34.79 against
# 36.86 / 35.29 / 34.86; MODEL_RADIUS 8: 36.91 / 35.32 / 35.47 against 36.91 / 35.33 / 35.58.)
EDGE_NOISE = 0.02
MODEL_RADIUS = 10
# A side's model leaves out its pixels within EDGE_GUARD px of the other side: where the
# map's edge is a few px off the photo's, those pixels hold the other side's colours, and a
# model fitted to them accepts the very rim it should reject (a foreground 3 px too small:
# the background's model, half of it the foreground's colours, kept the rim at the
# background's depth). Without the guard 36.86 / 35.23 / 33.06 (per-channel models, before
# the step rule), with 3 px 36.79 / 35.12 / 33.76; now 2 px gives 36.91 / 35.31 / 34.20
# (before the level margin) and 4 px 36.84 / 35.11 / 35.65.
EDGE_GUARD = 3
# How strongly a pixel's own disparity votes for its side against its colour, in units of the
# colour cost (twice the negative log-likelihood): moving a pixel whose value is fully on one
# side costs this much. 4 / 5 / 8 give 36.90 / 36.91 / 36.91 dB on perfect depth and 35.61 /
# 35.58 / 35.47 on edge_erode3.
EDGE_VALUE_PRIOR = 5.0
# Share of an edge's depth step below which two disparities count as one level (an 8-bit map
# upsampled 5x ramps by about a fifth of the step per pixel, far above this).
PLATEAU = 0.01
# A pixel that is the highest or lowest of its 3 x 3 neighbourhood is a surface of its own
# (a level: an object's rim between its nearer centre and the background) when it lies more
# than this share of the step from both of the window's extremes. Nearer to one, it is the
# map's wrong side next to a sloping surface (a floor behind an outline drawn too small) and
# is decided by its colour: edge_erode3 34.76 -> 35.37 dB with 0.15 instead of 0.01 (0.25:
# 35.38, but then a convex object's rim at t = 0.77 is merged into its centre).
LEVEL_MARGIN = 0.15
# How far in px a pixel's decision looks (its band, the colour models around it and the wide
# window that sides each model pixel): a crop rendered alone matches the whole render when it
# is grown by this much more than the blur, and starts at even coordinates (the models are
# fitted on the 2 x 2 cells of the crop's grid).
REACH = 2 * (EDGE_BAND + MODEL_RADIUS) + 2
# On the CPU a tall cluster is decided in up to EDGE_PARTS horizontal parts at once
# (``refocus.parallel``), each at least PART_ROWS_PER_REACH times the REACH it is grown by.
EDGE_PARTS = 4
PART_ROWS_PER_REACH = 4
# The six distinct products of the colour channels: a covariance's entries.
PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))


def snap_depth_edges(disparity: Array, srgb: Array, strength: float) -> Array:
    """Give every pixel at a depth discontinuity the disparity of one of its two sides.

    Why: a real depth map is never a clean step at an object's outline. Upsampled from a low
    resolution (phone maps, networks) or softened by a network, it ramps from the foreground's
    disparity to the background's over a few pixels, and the renderer would take every pixel
    of the ramp for a surface at that intermediate depth. Where the ramp crosses the focal
    plane those pixels are drawn sharp: a 1-px contour line traced along the depth edge through
    the blur of both sides (seen on the phone photo at f/1.8); a far island's mixed rim becomes
    sharp fragments. In the scene a pixel at an outline sees the foreground or the background,
    never a surface halfway between. And a network's edge is often a few pixels off the
    photo's: a foreground 3 px too small leaves its rim at the background's depth.

    A pixel is at a discontinuity when it lies within EDGE_BAND px of a sharp step (a jump
    between neighbours that changes the blur by more than STEP_COC px), or when the circle of
    confusion changes across the (2 EDGE_BAND + 1)^2 window around it by more than the
    window's width (a ramp: a surface whose blur changes by more than 1 px per px is a step
    for the renderer; a slanted floor is not). There, it takes the window's nearest or
    farthest disparity, whichever side its colour is more likely to belong to (a Gaussian
    fitted to the colours of that side's pixels around it, leaving out those within
    EDGE_GUARD px of the other side), with its own disparity as a prior
    (``EDGE_VALUE_PRIOR``). Pixels away from discontinuities, and maps without any, are
    returned unchanged.

    Args:
        disparity: (H, W) disparity, larger = nearer.
        srgb: (H, W, 3) the photo, sRGB-encoded in [0, 1].
        strength: CoC radius in px per unit of disparity, >= 0.
    Returns:
        (H, W) disparity whose values at discontinuities are those of one side.
    """
    ops, r, m = ops_for(disparity), EDGE_BAND, MODEL_RADIUS
    near, far = ops.window_max(disparity, r), -ops.window_max(-disparity, r)
    # A step: the disparity jumps between neighbours by most of the window's range and by
    # more than STEP_COC px of blur; every pixel within EDGE_BAND of a step is decided.
    jump = ops.window_max(disparity, 1) + ops.window_max(-disparity, 1)
    step = (strength * jump > STEP_COC) & (jump > STEP_SHARPNESS * (near - far))
    edge = (strength * (near - far) > 2 * r + 1) | (ops.window_max(ops.as_float(step), r) > 0.5)
    # every window around an edge pixel, and the wide one around each pixel of those, lies
    # inside its cluster's box; a box starts on even coordinates, the half-resolution grid of
    # the frame (the same models as a backend that works on the whole frame). Clusters apart
    # are decided apart: on a 12 MP photo whose edges lie in a few places one box around them
    # all spans the frame.
    boxes = active_boxes(ops, edge, 2 * m + r)
    if not boxes:
        return disparity
    out = disparity * 1.0  # a copy, on either backend

    def decide_rows(box: tuple[slice, slice], own: Array, a: int, b: int) -> None:
        """Decide the box's edge pixels in its rows a..b, from those rows grown by REACH
        (from an even row: the same decisions as the whole box's)."""
        g0, g1 = max(a - REACH, 0) // 2 * 2, min(b + REACH, own.shape[0])  # rows of the box
        mine = own[g0:g1] | False  # a copy, then only rows a..b
        mine[:a - g0] = False
        mine[b - g0:] = False
        crop = slice(box[0].start + g0, box[0].start + g1), box[1]
        out[crop][mine] = decide(ops, disparity[crop], srgb[crop], mine, near[crop], far[crop])

    tasks = []
    for box, own in boxes:  # a tall box in parts on the CPU's cores (numpy; the decisions are local)
        parts = max(min(own.shape[0] // (PART_ROWS_PER_REACH * REACH), EDGE_PARTS), 1) if ops.tiled else 1
        cuts = [own.shape[0] * i // parts for i in range(parts + 1)]
        tasks += [functools.partial(decide_rows, box, own, a, b) for a, b in itertools.pairwise(cuts)]
    run_all(tasks)
    return out


def decide(ops: Ops, d: Array, srgb: Array, edge: Array, near: Array, far: Array) -> Array:
    """The disparity of each edge pixel of a box (E,): its window's ``near`` or ``far``, by
    colour (``snap_depth_edges``), or its own where no colour model tells the sides apart.
    ``d``, ``edge``, ``near``, ``far``: (h, w) in the box; ``srgb`` (h, w, 3); the box holds
    every window the box's edge pixels read (grown by 2 MODEL_RADIUS + EDGE_BAND)."""
    r, g, m = EDGE_BAND, EDGE_GUARD, MODEL_RADIUS
    t = (d - far) / (near - far).clip(1e-12, None)  # 0 on the far side ... 1 on the near side
    # Side of every pixel in a model window, against the extremes of a window wide enough to
    # hold every model window that contains it. A pixel whose own two candidates fall on one
    # side of that split (a step between two nearer levels, a farther level in the wide
    # window) has no colour model to tell them apart: it is left as it is.
    wide_near, wide_far = ops.window_max(d, m + r), -ops.window_max(-d, m + r)
    split = 0.5 * (wide_near + wide_far)
    on_near = ops.as_float(d > split)
    decided = edge & (near > split) & (far <= split)
    # A ramp's pixels lie strictly between their neighbours' values. A pixel well between the
    # window's extremes (LEVEL_MARGIN) that is the highest or lowest of its own 3 x 3
    # neighbourhood belongs to a level of its own (the middle depth where three meet, e.g. an
    # object's rim between its nearer centre and the background): a surface, left as it is.
    tolerance = PLATEAU * (near - far)
    level = (ops.window_max(d, 1) - d <= tolerance) | (d + ops.window_max(-d, 1) <= tolerance)
    decided = decided & ~(level & (t > LEVEL_MARGIN) & (t < 1.0 - LEVEL_MARGIN))
    colour, t = srgb[decided], t[decided]  # decide those pixels only

    def weights(side: Array) -> Array:
        """(h, w, 1) each pixel's weight in its side's colour model: the side's core (farther
        than EDGE_GUARD px from the other side) fully, the rest 1 %: the map's edge may be a
        few px off the photo's, and the pixels between belong to the other side's colours.
        Where a side has no core (thinner than the guard), its whole side counts."""
        core = 1.0 - ops.window_max(1.0 - side, g)
        return (core + 0.01 * side)[..., None]

    # The models are fitted at half resolution (each 2 x 2 cell's mean colour, in a window of
    # about 2 MODEL_RADIUS px whose statistics change slowly), each edge pixel reading its
    # cell's: a quarter of the filtering and memory traffic of full resolution.
    small = ops.box_downsample(srgb, 2)
    features = ops.cat([small] + [small[..., i:i + 1] * small[..., j:j + 1] for i, j in PAIRS])
    h, w = d.shape
    cell = (ops.arange(h)[:, None] // 2 * small.shape[1] + ops.arange(w)[None, :] // 2)[decided]

    def cost(side: Array) -> Array:
        """(E,) the colour cost of each decided pixel on one side (side: (h, w) 0/1)."""
        weight = ops.box_downsample(weights(side), 2)
        sums = ops.window_mean(ops.cat([weight, features * weight]), m // 2)
        return gaussian_cost(ops, colour, sums.reshape(-1, sums.shape[-1])[cell])

    cost_near = cost(on_near) + EDGE_VALUE_PRIOR * (1.0 - t) ** 2
    cost_far = cost(1.0 - on_near) + EDGE_VALUE_PRIOR * t ** 2
    out = d[edge]  # the box's edge pixels, each its own value unless decided
    out[decided[edge]] = ops.where(cost_near <= cost_far, near[decided], far[decided])
    return out


def gaussian_cost(ops: Ops, colour: Array, sums: Array) -> Array:
    """Twice the negative log-likelihood (up to a constant) of each colour under its side's
    Gaussian: colour (E, 3) sRGB; sums (E, 10) the window means of the side's weight, its
    weighted colour (3) and weighted colour products (``PAIRS``, 6). The covariance, plus
    EDGE_NOISE^2 on its diagonal, is inverted by cofactors (element-wise on either backend).
    Returns (E,)."""
    count = sums[:, 0:1].clip(1e-9, None)
    mean, second = sums[:, 1:4] / count, sums[:, 4:] / count
    x = colour - mean
    a, b, f, ab, ac, bc = (second[:, k] - mean[:, i] * mean[:, j] for k, (i, j) in enumerate(PAIRS))
    a, b, f = a + EDGE_NOISE ** 2, b + EDGE_NOISE ** 2, f + EDGE_NOISE ** 2
    # cofactors of [[a, ab, ac], [ab, b, bc], [ac, bc, f]] (symmetric)
    i00, i11, i22 = b * f - bc * bc, a * f - ac * ac, a * b - ab * ab
    i01, i02, i12 = ac * bc - ab * f, ab * bc - ac * b, ab * ac - a * bc
    det = (a * i00 + ab * i01 + ac * i02).clip(1e-12, None)
    quad = (i00 * x[:, 0] ** 2 + i11 * x[:, 1] ** 2 + i22 * x[:, 2] ** 2
            + 2.0 * (i01 * x[:, 0] * x[:, 1] + i02 * x[:, 0] * x[:, 2] + i12 * x[:, 1] * x[:, 2]))
    return quad / det + ops.log(det)
