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
# How strongly a pixel's own disparity votes for its side against its colour: the squared sRGB
# distance (summed over the channels) by which its colour must favour the other side to move a
# pixel whose value is fully on one side (0.15 ~ 0.22 per channel: a clear colour edge, above
# texture). Measured on the robust bench's dev set (perfect / edge_erode3 PSNR): 0.05 gives
# 36.66 / 33.36 dB (texture flips correct pixels), 0.15 36.81 / 32.79, 0.5 36.83 / 32.43.
EDGE_VALUE_PRIOR = 0.15


def snap_depth_edges(disparity: Array, srgb: Array, strength: float) -> Array:
    """Give every pixel at a depth discontinuity the disparity of one of its two sides.

    Why: a real depth map is never a clean step at an object's outline. Upsampled from a low
    resolution (phone maps, networks) or softened by a network, it ramps from the foreground's
    disparity to the background's over a few pixels, and the renderer would take every pixel
    of the ramp for a surface at that intermediate depth. Where the ramp crosses the focal
    plane those pixels are drawn sharp: a 1-px contour line traced along the depth edge through
    the blur of both sides (seen on the phone photo at f/1.8); a far island's mixed rim becomes
    sharp fragments. In the scene a pixel at an outline sees the foreground or the background,
    never a surface halfway between.

    A pixel is at a discontinuity when the circle of confusion changes across the
    (2 EDGE_BAND + 1)^2 window around it by more than the window's width (a surface whose blur
    changes by more than 1 px per px is a step for the renderer). There, it takes the window's
    nearest or farthest disparity, whichever side its colour resembles more (the mean sRGB
    colour of the window's pixels on each side), with its own disparity as a prior
    (``EDGE_VALUE_PRIOR``): the edge a viewer sees is the photo's. Pixels away from
    discontinuities, and maps without any, are returned unchanged.

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
    # window means of the near side's colour and count, and of all colour and count; the
    # window's size cancels in the ratios, so means with zero padding outside the box will do
    # (one array per quantity: interleaving them costs more than the filters)
    near_colour, near_count = ops.window_mean(srgb * on_near, r)[edge], ops.window_mean(on_near, r)[edge]
    all_colour, all_count = ops.window_mean(srgb, r)[edge], ops.window_mean(on_near * 0.0 + 1.0, r)[edge]
    colour_near = near_colour / near_count.clip(1e-6, None)
    colour_far = (all_colour - near_colour) / (all_count - near_count).clip(1e-6, None)
    colour, t = srgb[edge], t[edge]  # decide the edge pixels only
    cost_near = ((colour - colour_near) ** 2).sum(-1) + EDGE_VALUE_PRIOR * (1.0 - t) ** 2
    cost_far = ((colour - colour_far) ** 2).sum(-1) + EDGE_VALUE_PRIOR * t ** 2
    out = disparity * 1.0  # a copy, on either backend
    out[box][edge] = ops.where(cost_near <= cost_far, near[edge], far[edge])
    return out
