"""Step 3 of the renderer, before the CoC (``layers``): depth edges. A pixel at a depth
discontinuity gets the disparity of one of the two sides, chosen by its colour (a real map
ramps across its edges; the ramp's pixels are not surfaces).

The function takes numpy arrays or torch tensors and returns the same kind; it changes only
the disparity map, so it composes with a scalar or a per-pixel focus.
"""

from __future__ import annotations

from refocus.render.backends import Array, active_box, ops_for

# Half-width in pixels of the band in which a depth map mixes the two sides of a depth edge:
# an 8-bit phone map or a 518 px network output upsampled 5-8x to the photo ramps across its
# edges over about that many pixels on either side.
EDGE_BAND = 4
# Each side's colour in the window is modelled as a Gaussian per channel (its mean and
# variance, plus this noise floor in sRGB): a textured side accepts a wider range of colours
# than a flat one, so texture does not flip correct pixels while a clear colour edge does.
EDGE_NOISE = 0.02
# How strongly a pixel's own disparity votes for its side against its colour, in units of the
# colour cost (twice the negative log-likelihood summed over the channels): moving a pixel whose
# value is fully on one side costs this much. Measured on the robust bench's dev set
# (run_robust.py; PSNR of perfect / edge_erode3 / network_like_guided): 4 gives 36.78 / 33.38 /
# 35.31, 6 36.81 / 33.18 / 35.32, 8 36.82 / 33.00 / 35.33, 10 36.83 / 32.90 / 35.34; the
# mean-colour cost this replaces (squared distance to each side's mean, prior 0.15) gave
# 36.81 / 32.79 / 34.97. 8 is the strongest colour vote that keeps perfect depth as good.
EDGE_VALUE_PRIOR = 8.0
# Share of an edge's depth step below which two disparities count as one level (an 8-bit map
# upsampled 5x ramps by about a fifth of the step per pixel, far above this).
PLATEAU = 0.01


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

    A pixel is at a discontinuity when the circle of confusion changes across the
    (2 EDGE_BAND + 1)^2 window around it by more than the window's width (a surface whose blur
    changes by more than 1 px per px is a step for the renderer; a slanted floor is not). There, it takes the
    window's nearest or farthest disparity, whichever side its colour is more likely to belong
    to (a Gaussian per channel fitted to the sRGB colours of the window's pixels on each side),
    with its own disparity as a prior (``EDGE_VALUE_PRIOR``): the edge a viewer sees is the
    photo's. Pixels away from discontinuities, and maps without any, are returned unchanged.

    Args:
        disparity: (H, W) disparity, larger = nearer.
        srgb: (H, W, 3) the photo, sRGB-encoded in [0, 1].
        strength: CoC radius in px per unit of disparity, >= 0.
    Returns:
        (H, W) disparity whose values at discontinuities are those of one side.
    """
    ops, r = ops_for(disparity), EDGE_BAND
    near, far = ops.window_max(disparity, r), -ops.window_max(-disparity, r)
    edge = strength * (near - far) > 2 * r + 1
    box = active_box(ops, edge, r)  # every window around an edge pixel lies inside it
    if box is None:
        return disparity
    d, srgb, edge, near, far = disparity[box], srgb[box], edge[box], near[box], far[box]
    t = (d - far) / (near - far).clip(1e-12, None)  # 0 on the far side ... 1 on the near side
    on_near = ops.as_float(t > 0.5)[..., None]
    # A ramp's pixels lie strictly between their neighbours' values. A pixel between the
    # window's extremes that is the highest or lowest of its own 3 x 3 neighbourhood belongs to
    # a level of its own (the middle depth where three meet, e.g. an object's rim between its
    # nearer centre and the background): a surface, left as it is.
    tolerance = PLATEAU * (near - far)
    level = (ops.window_max(d, 1) - d <= tolerance) | (d + ops.window_max(-d, 1) <= tolerance)
    edge = edge & ~(level & (t > PLATEAU) & (t < 1.0 - PLATEAU))
    colour, t = srgb[edge], t[edge]  # decide the edge pixels only

    def cost(side: Array) -> Array:
        """(E,) the colour cost of each edge pixel on one side (side: (h, w, 1) 0/1), window
        means with zero padding outside the box (the window's size cancels in the ratios; one
        array per quantity: interleaving them costs more than the filters)."""
        count = ops.window_mean(side, r)[edge].clip(1e-6, None)
        mean = ops.window_mean(srgb * side, r)[edge] / count
        var = (ops.window_mean(srgb * srgb * side, r)[edge] / count - mean ** 2).clip(0.0, None)
        var = var + EDGE_NOISE ** 2
        return ((colour - mean) ** 2 / var + ops.log(var)).sum(-1)

    cost_near = cost(on_near) + EDGE_VALUE_PRIOR * (1.0 - t) ** 2
    cost_far = cost(1.0 - on_near) + EDGE_VALUE_PRIOR * t ** 2
    out = disparity * 1.0  # a copy, on either backend
    out[box][edge] = ops.where(cost_near <= cost_far, near[edge], far[edge])
    return out
